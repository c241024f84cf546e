/**
 * What /proc says about processes: their children, and the CPU time they
 * used. Reading /proc takes microseconds and spawns nothing, so a test can
 * poll it tightly without blocking its event loop; the bench reads its
 * process trees and per-thread CPU through here too (bench/lib/proc.ts).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { sleep } from './timing.js';

/** The pids of `pid`'s children (of any of its threads); [] when it is gone. */
export function childPids(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // gone
  }
  return tasks.flatMap((task) => {
    try {
      return readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return []; // the thread ended
    }
  });
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user + system CPU ms from a /proc stat file (of a process or one thread). Throws when the file is gone. */
export function statCpuMs(file: string): number {
  const stat = readFileSync(file, 'utf8');
  // Fields after the ")" that closes the name (which may hold spaces): fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** CPU time (user + system, every thread) a process has used, in ms. */
export function processCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** CPU this process used during `windowMs`, as a share of one core. */
export async function ownCpuShare(windowMs: number): Promise<number> {
  const start = process.cpuUsage();
  const started = performance.now();
  await sleep(windowMs);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / (performance.now() - started);
}
