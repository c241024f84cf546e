/** What machine and build a benchmark ran on, recorded with every result. */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { libvipsVersion } from '../../src/index.js';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  libvips: string;
  gitSha: string;
  date: string;
}

/** The short git sha of HEAD, or `nogit` outside a checkout. */
export function gitShortSha(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'nogit';
  }
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    libvips: libvipsVersion(),
    gitSha: gitShortSha(),
    date: new Date().toISOString(),
  };
}

/** A file-name-safe stamp: `<ISO date>-<git short sha>`. */
export function resultStamp(info: MachineInfo): string {
  return `${info.date.replace(/[:.]/g, '-')}-${info.gitSha}`;
}
