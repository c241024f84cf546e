/**
 * Child processes of the benchmark: starting a server with its output in a
 * log file, waiting for it to say it listens, measuring the memory of its
 * whole process tree from /proc, and stopping exactly the processes it started.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { childPids, statCpuMs } from '../../test/helpers/procfs.js';
import { sleep } from '../../test/helpers/timing.js';

/** The pids of every live descendant of `pid` (children of any of its threads, recursively). */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of childPids(queue.shift() as number)) {
      if (Number.isInteger(child) && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/** Resident memory of one process in bytes (VmRSS), 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a process and all its descendants (cluster workers, nginx workers). */
export function treeRssBytes(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + rssBytes(p), 0);
}

/** CPU time of a process tree by role, ms: where a server spends its cycles. */
export interface ThreadCpu {
  /** The root process (a cluster primary), all its threads. */
  primary: number;
  /** The event-loop (main) thread of each child process: HTTP, routing, the store. */
  main: number;
  /** Every other thread of the children, including ones that already exited: render-pool threads, libvips' workers, libuv's pool. */
  rest: number;
}

/** user + system CPU ms from a /proc stat file; 0 when the process or thread is gone. */
function cpuMsOrZero(file: string): number {
  try {
    return statCpuMs(file);
  } catch {
    return 0; // gone
  }
}

/**
 * Reads the CPU time of `pid` and its descendants by role. Process totals
 * include threads that have exited (libvips retires idle workers), so only
 * the main thread is read per thread.
 */
export function treeThreadCpuMs(pid: number): ThreadCpu {
  const cpu: ThreadCpu = { primary: cpuMsOrZero(`/proc/${pid}/stat`), main: 0, rest: 0 };
  for (const child of descendants(pid)) {
    const main = cpuMsOrZero(`/proc/${child}/task/${child}/stat`);
    cpu.main += main;
    cpu.rest += cpuMsOrZero(`/proc/${child}/stat`) - main;
  }
  return cpu;
}

/** CPU ms of a process and all its descendants, threads included. */
export function treeCpuMs(pid: number): number {
  const tree = treeThreadCpuMs(pid);
  return tree.primary + tree.main + tree.rest;
}

/**
 * Waits until the tree of `pid` is quiet: under `idlePercent` of one core over
 * two periods of `periodMs` in a row, or until `maxMs`. A server that queued
 * more work than its clients waited for (a peer at overload keeps rendering
 * for connections that already timed out) would otherwise load the machine
 * through the next contender's round. Resolves with the ms waited.
 */
export async function waitForQuiet(pid: number, { idlePercent = 10, periodMs = 500, maxMs = 120_000 } = {}): Promise<number> {
  const started = performance.now();
  let quietPeriods = 0;
  let before = treeCpuMs(pid);
  while (quietPeriods < 2 && performance.now() - started < maxMs) {
    await sleep(periodMs);
    const now = treeCpuMs(pid);
    quietPeriods = now - before < (periodMs * idlePercent) / 100 ? quietPeriods + 1 : 0;
    before = now;
  }
  return performance.now() - started;
}

/** Samples the tree's RSS on an interval; `stop` returns the peak seen. */
export function startRssSampler(pid: number, intervalMs = 250): { stop(): number } {
  let peak = treeRssBytes(pid);
  // The tree is re-read each time: a respawned worker would otherwise go unseen.
  const timer = setInterval(() => (peak = Math.max(peak, treeRssBytes(pid))), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, treeRssBytes(pid));
      return peak;
    },
  };
}

/** A free TCP port on 127.0.0.1 (for servers that cannot pick their own and say which). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Resolves once something accepts connections on the port. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the process exited before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
}

/** A server process started by the benchmark. */
export interface ManagedProcess {
  pid: number;
  logFile: string;
  /** True until the process exits. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL for the whole tree after `graceMs`. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export interface LaunchOptions {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout and stderr go (a file: reading a busy log through a pipe would cost the harness CPU). */
  logFile: string;
  /** Looks at each log line; returns the port once the process says it listens. */
  ready?: (line: string) => number | undefined;
  timeoutMs?: number;
}

/** The last lines of a log, for error messages. */
export function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts a process; with `ready`, waits until a log line names the port. */
export async function launch(options: LaunchOptions): Promise<{ process: ManagedProcess; port: number | undefined }> {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(options.command, options.args, { env: options.env, cwd: options.cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
    child.once('error', () => {
      exited = true;
      resolve();
    });
  });
  const pid = child.pid ?? -1;
  let stopping: Promise<void> | undefined;
  const managed: ManagedProcess = {
    pid,
    logFile: options.logFile,
    alive: () => !exited,
    stop(graceMs = 15_000) {
      stopping ??= (async () => {
        if (exited) return;
        const tree = descendants(pid);
        child.kill('SIGTERM');
        const timer = setTimeout(() => {
          for (const p of [pid, ...descendants(pid), ...tree]) killQuietly(p);
        }, graceMs);
        await exit;
        clearTimeout(timer);
        // Orphans of a primary that died abruptly: pids that were ours and now hang off init.
        for (const p of tree) if (parentOf(p) === 1) killQuietly(p);
      })();
      return stopping;
    },
  };
  if (!options.ready) return { process: managed, port: undefined };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let offset = 0;
  let partial = '';
  while (Date.now() < deadline) {
    let text = '';
    try {
      text = readFileSync(options.logFile, 'utf8');
    } catch {
      // not written yet
    }
    const fresh = partial + text.slice(offset);
    offset = text.length;
    const lines = fresh.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const port = options.ready(line);
      if (port !== undefined) return { process: managed, port };
    }
    if (exited) throw new Error(`${options.command} exited before it listened:\n${logTail(options.logFile)}`);
    await sleep(50);
  }
  await managed.stop(1_000);
  throw new Error(`${options.command} did not report listening within ${options.timeoutMs ?? 60_000} ms:\n${logTail(options.logFile)}`);
}

/** The parent pid of a live process, undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 4, after the command in parentheses (which may itself hold spaces).
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Parses a JSON log line; undefined for anything else. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
