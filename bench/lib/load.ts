/**
 * The two load generators, each with its own CPU accounted for:
 * autocannon (in a child process running bench/load-runner.js) and wrk (when
 * installed), whose text output is parsed. A run is client-bound when the
 * client used more than 90% of a core: its numbers then say more about the
 * client than about the server.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AutocannonJob } from '../load-runner.js';
import { CLIENT_BOUND_PERCENT, type LoadResult } from './types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const runner = path.resolve(here, '..', 'load-runner.js');

/** Runs one autocannon job in a fresh child process. */
export function runAutocannon(job: AutocannonJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [runner], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = output.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`load-runner exited with ${code}: ${output.slice(-300)}`));
      try {
        resolve(JSON.parse(line) as LoadResult);
      } catch {
        reject(new Error(`load-runner printed no JSON result: ${output.slice(-300)}`));
      }
    });
    // The job goes through stdin: an upload job's token list is too long for argv.
    child.stdin.end(JSON.stringify(job));
  });
}

/** The wrk binary on PATH, or null. */
export function findWrk(): string | null {
  try {
    return execFileSync('which', ['wrk'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

/** wrk's version line, e.g. `wrk debian/4.1.0-3+b2 [epoll]`. */
export function wrkVersion(wrk: string): string | null {
  try {
    // `wrk -v` prints the version and exits with status 1.
    return execFileSync(wrk, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0] ?? null;
  } catch (error) {
    const out = String((error as { stdout?: unknown }).stdout ?? '');
    return out.split('\n')[0]?.trim() || null;
  }
}

/**
 * A `done` hook printing exact numbers on one line: `--latency` only prints
 * p50/p75/p90/p99, and p97.5 is asked for. Only `done` is defined, so wrk
 * still sends its static request without calling into Lua per request.
 */
const DONE_SCRIPT = `done = function(summary, latency, requests)
  io.write(string.format("IAAS-BENCH %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\\n",
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(97.5), latency:percentile(99), latency.max))
end
`;

/** Writes the `done` hook into `dir` (once) and returns its path. */
function doneScript(dir: string): string {
  const file = path.join(dir, 'wrk-done.lua');
  if (!existsSync(file)) writeFileSync(file, DONE_SCRIPT);
  return file;
}

/** What wrk's text output says. Latencies in ms. */
export interface WrkText {
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  bytes: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** wrk counts statuses of 400 and above here, despite the wording. */
  non2xx3xx: number;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function toMs(value: string, unit: string): number {
  return Number(value) * (TIME_UNITS[unit] ?? Number.NaN);
}

/** Parses the text wrk prints with `--latency`. */
export function parseWrkText(text: string): WrkText {
  const summary = /(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!summary || !rps) throw new Error(`unexpected wrk output:\n${text.slice(0, 500)}`);
  /** A latency percentile as wrk printed it. */
  const reported = (p: string): number | null => {
    const match = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
    return match ? toMs(match[1] as string, match[2] as string) : null;
  };
  const latency = /^\s+Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)/m.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requests: Number(summary[1]),
    seconds: toMs(summary[2] as string, summary[3] as string) / 1000,
    requestsPerSecond: Number(rps[1]),
    p50: reported('50'),
    p99: reported('99'),
    max: latency ? toMs(latency[1] as string, latency[2] as string) : null,
    bytes: Number(summary[4]) * (SIZE_UNITS[summary[5] as string] ?? Number.NaN),
    socketErrors: {
      connect: Number(socket?.[1] ?? 0),
      read: Number(socket?.[2] ?? 0),
      write: Number(socket?.[3] ?? 0),
      timeout: Number(socket?.[4] ?? 0),
    },
    non2xx3xx: Number(non?.[1] ?? 0),
  };
}

/** The exact numbers of the `done` hook, when its line is there. Latencies in ms. */
export function parseDoneLine(text: string): { requests: number; seconds: number; bytes: number; status: number; timeout: number; socket: number; p50: number; p97_5: number; p99: number; max: number } | null {
  const line = /^IAAS-BENCH ((?:\d+ ?){12})$/m.exec(text);
  if (!line?.[1]) return null;
  const n = line[1].trim().split(' ').map(Number);
  const at = (i: number) => n[i] as number;
  return {
    requests: at(0),
    seconds: at(1) / 1e6,
    bytes: at(2),
    socket: at(3) + at(4) + at(5),
    status: at(6),
    timeout: at(7),
    p50: at(8) / 1000,
    p97_5: at(9) / 1000,
    p99: at(10) / 1000,
    max: at(11) / 1000,
  };
}

/** The children's user and system seconds from bash's `times` (its last line). */
export function parseTimes(text: string): number {
  const lines = text.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const parts = [...last.matchAll(/(\d+)m([\d.]+)s/g)];
  if (parts.length !== 2) throw new Error(`unexpected output of times: ${last}`);
  return parts.reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0);
}

/** Runs wrk under bash, whose `times` then reports wrk's CPU (user + system). */
function wrkUnderBash(wrk: string, args: string[]): Promise<{ text: string; cpuSeconds: number; wall: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('bash', ['-c', '"$0" "$@"; status=$?; times; exit $status', wrk, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let errors = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${errors || text}`));
      try {
        resolve({ text, cpuSeconds: parseTimes(text), wall });
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

export interface WrkJob {
  wrk: string;
  /** A folder of the run for wrk's Lua hook. */
  scriptDir: string;
  url: string;
  pathAndQuery: string;
  connections: number;
  threads: number;
  /** wrk takes whole seconds; 0 skips the warm-up. */
  warmupSeconds: number;
  durationSeconds: number;
  /** Request headers every request sends (`-H`), e.g. If-None-Match for revalidations. */
  headers?: Record<string, string>;
}

/**
 * Runs wrk once to warm up (dropped), then once measured with `--latency`.
 * CPU is per wrk process; with one thread, above 90% of a core it is saturated.
 */
export async function runWrk(job: WrkJob): Promise<LoadResult> {
  const target = `${job.url}${job.pathAndQuery}`;
  const headers = Object.entries(job.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
  const common = [`-t${job.threads}`, `-c${job.connections}`, '--timeout', '10s', ...headers];
  if (job.warmupSeconds > 0) await wrkUnderBash(job.wrk, [...common, `-d${Math.max(1, Math.round(job.warmupSeconds))}s`, target]);
  // wrk cannot stop between whole seconds.
  const duration = Math.max(1, Math.round(job.durationSeconds));
  const { text, cpuSeconds } = await wrkUnderBash(job.wrk, [...common, `-d${duration}s`, '--latency', '-s', doneScript(job.scriptDir), target]);
  const parsed = parseWrkText(text);
  const exact = parseDoneLine(text);
  const seconds = exact?.seconds ?? parsed.seconds;
  const requests = exact?.requests ?? parsed.requests;
  const bad = exact?.status ?? parsed.non2xx3xx;
  const socket = exact ? exact.socket + exact.timeout : Object.values(parsed.socketErrors).reduce((a, b) => a + b, 0);
  // CPU over the measured run's own duration (bash and process start are noise next to it).
  const clientCpuPercent = (cpuSeconds / seconds) * 100;
  return {
    client: 'wrk',
    rps: (requests - bad) / seconds,
    totalRps: requests / seconds,
    requests,
    seconds,
    latency: {
      p50: exact?.p50 ?? parsed.p50 ?? Number.NaN,
      p97_5: exact?.p97_5 ?? null,
      p99: exact?.p99 ?? parsed.p99 ?? Number.NaN,
      max: exact?.max ?? parsed.max ?? Number.NaN,
    },
    errors: socket,
    timeouts: exact?.timeout ?? parsed.socketErrors.timeout,
    non2xx: bad,
    statusCodes: {},
    bytesPerSecond: (exact?.bytes ?? parsed.bytes) / seconds,
    clientCpuPercent,
    clientBound: clientCpuPercent > CLIENT_BOUND_PERCENT,
  };
}
