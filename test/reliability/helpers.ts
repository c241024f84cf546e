/**
 * Shared tools of the reliability suite: servers (in-process and the real
 * cluster), raw sockets, multipart bodies built by hand, a crash watch,
 * memory and latency measurements, and scans of what was stored.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import type { Test } from 'tap';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log.js';
import { startServer, storeFor, type Server } from '../../src/server.js';
import { MAIN_JS, startClusterProcess, type ClusterProcess } from '../helpers/cluster-process.js';
import { freshDatabase, startTestServer } from '../helpers/service.js';

export type Json = Record<string, unknown>;

const execFileAsync = promisify(execFile);

/** A random id (letters, digits, `-`): every test uses its own ids. */
export function uid(prefix = 'r'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 25 ms for up to `timeoutMs`; true as soon as it holds. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2_000, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** True when `check` holds every time it is polled for `forMs` (nothing appears later). */
export async function stays(check: () => boolean | Promise<boolean>, forMs = 2_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + forMs;
  for (;;) {
    if (!(await check())) return false;
    if (Date.now() >= deadline) return true;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------
// Crash watch: an uncaught exception or unhandled rejection would have killed
// a worker process. tap keeps the test process alive, so each test asserts
// that none happened since it started, and names the error if one did.

const crashes: string[] = [];
let watching = false;

function watchCrashes(): void {
  if (watching) return;
  watching = true;
  process.on('uncaughtException', (error) => crashes.push(`uncaughtException: ${describeError(error)}`));
  process.on('unhandledRejection', (error) => crashes.push(`unhandledRejection: ${describeError(error)}`));
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message} @ ${(error.stack ?? '').split('\n').slice(1, 4).join(' | ')}`;
  return String(error);
}

/** The position in the crash log; pass it to `crashesSince`. */
export function crashMark(): number {
  watchCrashes();
  return crashes.length;
}

export function crashesSince(mark: number): string[] {
  return crashes.slice(mark);
}

/** The process survived (no uncaught error since `mark`) and still answers /_health with 200. */
export async function assertAlive(t: Test, url: string, mark: number): Promise<void> {
  t.same(crashesSince(mark), [], 'no uncaught exception or unhandled rejection: the server process would have survived');
  t.equal(await healthStatus(url), 200, 'a follow-up GET /_health answers 200');
}

// ---------------------------------------------------------------------------
// Servers

/** An in-process server (one worker's server) and what the tests look at. */
export interface Rel {
  url: string;
  port: number;
  server: Server;
  config: Config;
  dataDir: string;
  /** Log lines, when started with `captureLogs`. */
  logs: Json[];
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** Collect the server's log lines in `logs` (and keep them off stdout). */
  captureLogs?: boolean;
}

/** Quiet by default: the TAP stream is stdout. */
const QUIET = { 'log.info': false, 'log.warn': false, 'log.error': false, shutdown_grace_ms: 2_000 };

/**
 * Starts an in-process server on a fresh data folder (the colleague's
 * startTestServer), or, with `captureLogs`, the same thing with a logger
 * whose lines the test can read. Stopped in teardown.
 */
export async function serve(t: Test, overrides: Record<string, unknown> = {}, options: ServeOptions = {}): Promise<Rel> {
  crashMark();
  if (!options.captureLogs) {
    const started = await startTestServer({ ...QUIET, ...overrides });
    t.teardown(() => started.stop());
    return { ...started, port: started.server.port, logs: [], stop: () => started.stop() };
  }
  const root = await mkdtemp(path.join(tmpdir(), 'iaas-rel-'));
  const configDir = path.join(root, 'config');
  await mkdir(configDir);
  const config = loadConfig({
    env: {},
    configDir,
    overrides: { port: 0, listen_address: '127.0.0.1', data_dir: path.join(root, 'data'), ...QUIET, 'log.warn': true, 'log.error': true, ...overrides },
  });
  const store = storeFor(config);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  const logs: Json[] = [];
  let pending = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        try {
          logs.push(JSON.parse(line) as Json);
        } catch {
          // not a log line
        }
      }
      done();
    },
  });
  const server = await startServer(config, { log: createLogger(config.log, { destination: sink }) });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        await server.close();
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    })();
    return stopping;
  };
  t.teardown(stop);
  return { url: `http://127.0.0.1:${server.port}`, port: server.port, server, config, dataDir: config.dataDir, logs, stop };
}

/** The real cluster (src/main.js of this build) on its own data and config folders. */
export interface Cluster {
  url: string;
  port: number;
  proc: ClusterProcess;
  dataDir: string;
  /** Pids of the primary's children (the workers), from `ps --ppid`. */
  workerPids(): number[];
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Wraps a graceful stop so that it runs once, falls back to SIGKILL after
 * 20 s, and runs at teardown too, removing `root` afterwards.
 */
function stopOnce(t: Test, root: string, child: ChildProcess, graceful: () => Promise<number | null>): () => Promise<number | null> {
  let stopping: Promise<number | null> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        return await graceful();
      } finally {
        clearTimeout(force);
      }
    })();
    return stopping;
  };
  t.teardown(async () => {
    await stop();
    await rm(root, { recursive: true, force: true });
  });
  return stop;
}

export async function startCluster(t: Test, env: Record<string, string>): Promise<Cluster> {
  const root = await mkdtemp(path.join(tmpdir(), 'iaas-rel-cluster-'));
  const dataDir = path.join(root, 'data');
  const configDir = path.join(root, 'config');
  await mkdir(dataDir);
  await mkdir(configDir);
  const proc = await startClusterProcess({ DATA_DIR: dataDir, NODE_CONFIG_DIR: configDir, LOG_INFO: 'true', ...env }, packageRoot());
  const stop = stopOnce(t, root, proc.child, () => proc.stop());
  return { url: proc.url, port: proc.port, proc, dataDir, workerPids: () => childPids(proc.child.pid ?? -1), stop };
}

function packageRoot(): string {
  let dir = path.dirname(new URL(import.meta.url).pathname);
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

/**
 * The cluster with its stdout and stderr going to a file instead of a pipe.
 * Under heavy load the test process drains a pipe slowly, and pino's
 * synchronous writes to a full pipe would stall the worker: the test would
 * measure its own log reading, not the service. `lines()` reads the file.
 */
export interface FileLoggedCluster extends Cluster {
  logFile: string;
  lines(): Json[];
}

export async function startClusterLoggingToFile(t: Test, env: Record<string, string>, timeoutMs = 30_000): Promise<FileLoggedCluster> {
  const root = await mkdtemp(path.join(tmpdir(), 'iaas-rel-cluster-'));
  const dataDir = path.join(root, 'data');
  const configDir = path.join(root, 'config');
  await mkdir(dataDir);
  await mkdir(configDir);
  const logFile = path.join(root, 'cluster.log');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: packageRoot(),
    env: { PATH: process.env.PATH ?? '', PORT: '0', LISTEN_ADDRESS: '127.0.0.1', DATA_DIR: dataDir, NODE_CONFIG_DIR: configDir, LOG_INFO: 'true', ...env },
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const lines = (): Json[] => {
    const parsed: Json[] = [];
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        parsed.push(JSON.parse(line) as Json);
      } catch {
        // a line being written
      }
    }
    return parsed;
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = stopOnce(t, root, child, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    return exited;
  });
  let listening: Json | undefined;
  const deadline = Date.now() + timeoutMs;
  while (!listening) {
    listening = lines().find((line) => line.message === 'iaas listening');
    if (listening) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`the cluster did not start: ${readFileSync(logFile, 'utf8').slice(-1000)}`);
    }
    await sleep(50);
  }
  const port = Number(listening.port);
  const proc: ClusterProcess = {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    get lines() {
      return lines() as Record<string, unknown>[];
    },
    stop,
  };
  return { url: proc.url, port, proc, dataDir, logFile, lines, workerPids: () => childPids(child.pid ?? -1), stop };
}

/** Pids whose parent is `pid`, without blocking the event loop. */
export async function childPidsAsync(pid: number): Promise<number[]> {
  try {
    const { stdout } = await execFileAsync('ps', ['--ppid', String(pid), '-o', 'pid=']);
    return stdout
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((value) => Number.isInteger(value) && value > 0);
  } catch {
    return [];
  }
}

/** Pids whose parent is `pid`. */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid='], { encoding: 'utf8' })
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((value) => Number.isInteger(value) && value > 0);
  } catch {
    return []; // ps exits 1 when there is no child
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system, every thread) a process has used, in ms, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** CPU this process used during `windowMs`, as a share of one core. */
export async function ownCpuShare(windowMs: number): Promise<number> {
  const start = process.cpuUsage();
  const started = performance.now();
  await sleep(windowMs);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / (performance.now() - started);
}

// ---------------------------------------------------------------------------
// HTTP over fetch

export async function healthStatus(url: string, timeoutMs = 5_000): Promise<number | 'timeout' | 'error'> {
  try {
    const response = await fetch(`${url}/_health`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? 'timeout' : 'error';
  }
}

export async function jsonOf(response: Response): Promise<Json> {
  const text = await response.text();
  try {
    return JSON.parse(text) as Json;
  } catch {
    return { raw: text };
  }
}

/** POST /token; the status and the token when one was issued. */
export async function tokenFor(url: string, id: string, timeoutMs = 15_000): Promise<{ status: number; token?: string; body: Json }> {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = await jsonOf(response);
  return { status: response.status, body, ...(typeof body.token === 'string' ? { token: body.token } : {}) };
}

/** A token for `id`, or throws. */
export async function token(url: string, id: string): Promise<string> {
  const issued = await tokenFor(url, id);
  if (issued.status !== 200 || issued.token === undefined) throw new Error(`POST /token ${id} answered ${issued.status} ${JSON.stringify(issued.body)}`);
  return issued.token;
}

export interface UploadOptions {
  /** Media type of the part (default image/jpeg). */
  type?: string;
  filename?: string;
  field?: string;
  /** Extension of the path; null for `POST /{id}`. Default jpg. */
  ext?: string | null;
  timeoutMs?: number;
}

export interface UploadAnswer {
  status: number;
  body: Json;
  headers: Headers;
  ms: number;
}

/** POST /{id}.{ext} with X-Token and one multipart part (fetch + FormData). */
export async function upload(url: string, id: string, tokenValue: string, bytes: Uint8Array, options: UploadOptions = {}): Promise<UploadAnswer> {
  const form = new FormData();
  form.append(options.field ?? 'image', new Blob([bytes], { type: options.type ?? 'image/jpeg' }), options.filename ?? `${id}.jpg`);
  const ext = options.ext === undefined ? 'jpg' : options.ext;
  const started = performance.now();
  const response = await fetch(`${url}/${id}${ext === null ? '' : `.${ext}`}`, {
    method: 'POST',
    headers: { 'X-Token': tokenValue },
    body: form,
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const body = await jsonOf(response);
  return { status: response.status, body, headers: response.headers, ms: performance.now() - started };
}

/** A GET (no redirects followed): status, headers, bytes and the time taken. */
export async function getBytes(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<{ status: number; headers: Headers; body: Buffer; ms: number }> {
  const started = performance.now();
  const response = await fetch(url, { redirect: 'manual', ...init, signal: init.signal ?? AbortSignal.timeout(init.timeoutMs ?? 30_000) });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------
// Multipart bodies built by hand

export interface Part {
  name: string;
  filename?: string;
  type?: string;
  data: Uint8Array | string;
}

/** A multipart/form-data body; `close: false` leaves out the closing boundary. */
export function multipart(parts: Part[], options: { close?: boolean; boundary?: string } = {}): { body: Buffer; contentType: string } {
  const boundary = options.boundary ?? `rel${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type ? `Content-Type: ${part.type}\r\n` : ''}\r\n`));
    chunks.push(typeof part.data === 'string' ? Buffer.from(part.data) : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  if (options.close !== false) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A complete HTTP/1.1 request head. */
export function head(method: string, target: string, headers: Record<string, string | number>): string {
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

/** Chunked transfer encoding of `body` in chunks of `size`, with the last chunk. */
export function chunked(body: Uint8Array, size = 16 * 1024): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < body.byteLength; at += size) {
    const piece = body.subarray(at, at + size);
    out.push(Buffer.from(`${piece.byteLength.toString(16)}\r\n`), Buffer.from(piece), Buffer.from('\r\n'));
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

// ---------------------------------------------------------------------------
// Raw sockets

export interface WireResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
  /**
   * False for a chunked answer cut off before its last chunk: a refusal of an
   * upload goes out at once and ends only once the rest of the body is read
   * (or the connection is closed, past the bound).
   */
  complete: boolean;
}

export interface WireResult {
  responses: WireResponse[];
  /** How the connection ended: closed by the server (fin or reset), or still open when we stopped listening. */
  ended: 'fin' | 'reset' | 'open';
  /** ms from connect to the end. */
  ms: number;
  raw: Buffer;
}

/** Parses every complete response in `data` (Content-Length or chunked bodies), and a last chunked one cut off after whole chunks. */
export function parseResponses(data: Buffer): WireResponse[] {
  const responses: WireResponse[] = [];
  let at = 0;
  while (at < data.byteLength) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number((lines[0] ?? '').split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyStart = end + 4;
    let body: Buffer;
    if (headers['transfer-encoding']?.includes('chunked')) {
      const pieces: Buffer[] = [];
      let complete = false;
      while (bodyStart < data.byteLength) {
        const lineEnd = data.indexOf('\r\n', bodyStart);
        if (lineEnd === -1) break;
        const size = parseInt(data.subarray(bodyStart, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          bodyStart = lineEnd + 4;
          complete = true;
          break;
        }
        pieces.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        bodyStart = lineEnd + 2 + size + 2;
      }
      if (!complete) {
        if (pieces.length > 0) responses.push({ status, headers, body: Buffer.concat(pieces), complete: false });
        break;
      }
      body = Buffer.concat(pieces);
      at = bodyStart;
    } else {
      const length = Number(headers['content-length'] ?? '0');
      if (data.byteLength < bodyStart + length) break;
      body = data.subarray(bodyStart, bodyStart + length);
      at = bodyStart + length;
    }
    responses.push({ status, headers, body, complete: true });
  }
  return responses;
}

export interface WireOptions {
  /** Stop listening after this long (the connection is then reported 'open'). Default 5 s. */
  timeoutMs?: number;
  /** Stop as soon as this holds for the responses parsed so far. */
  until?: (responses: WireResponse[]) => boolean;
  /** Stop as soon as this holds for the bytes received so far. */
  untilRaw?: (raw: Buffer) => boolean;
  /** Pause between writes, ms. */
  gapMs?: number;
}

/**
 * Opens a connection, writes `writes` in order (a function may write as it
 * likes), and collects every byte until the server closes the connection,
 * `until` holds, or the time is up.
 */
export function wire(port: number, writes: (string | Uint8Array)[] | ((socket: Socket) => Promise<void>), options: WireOptions = {}): Promise<WireResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    let reset = false;
    const finish = (ended: WireResult['ended']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      if (ended === 'open') socket.destroy();
      resolve({ responses: parseResponses(raw), ended, ms: performance.now() - started, raw });
    };
    const timer = setTimeout(() => finish('open'), options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const raw = Buffer.concat(chunks);
      if (options.until?.(parseResponses(raw)) || options.untilRaw?.(raw)) finish('open');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => finish(reset ? 'reset' : 'fin'));
    socket.on('connect', () => {
      void (async () => {
        try {
          if (typeof writes === 'function') {
            await writes(socket);
            return;
          }
          for (const piece of writes) {
            if (socket.destroyed) return;
            socket.write(piece);
            if (options.gapMs) await sleep(options.gapMs);
          }
        } catch {
          // the server closed the connection while we wrote
        }
      })();
    });
  });
}

/** Writes `data` to `socket` and waits until it is flushed (or the socket is gone). */
export function writeAll(socket: Socket, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(data, () => resolve());
  });
}

// ---------------------------------------------------------------------------
// Measurements

/** Nearest-rank percentile, `p` in 0..1. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

/**
 * Runs `fn(i, lane)` for i in 0..count-1 with at most `concurrency` at once
 * (`lane` is the runner, 0..concurrency-1: one lane never runs twice at
 * once); resolves with the results in order.
 */
export async function runLimited<T>(count: number, concurrency: number, fn: (i: number, lane: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async (_, lane) => {
      while (next < count) {
        const i = next++;
        results[i] = await fn(i, lane);
      }
    }),
  );
  return results;
}

/** Tally of values, for one readable assertion over many answers. */
export function tally(values: (string | number)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}

export const MB = 1024 * 1024;

/** A full garbage collection, so RSS is compared without garbage the collector has not reached yet. */
let collector: (() => void) | undefined;
export function collectGarbage(): void {
  if (!collector) {
    v8.setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as () => void;
  }
  collector();
  collector();
}
const WARM_UP = 50;

/**
 * Runs `fn` `reps` times (`concurrency` at once; uploads reusing a token need
 * a token per lane, since only one request at a time can hold a token) after a warm-up of 50,
 * and asserts every answer is `expected` and this process' RSS grew less than 50 MB.
 */
export async function memoryFlat(
  t: Test,
  label: string,
  reps: number,
  expected: number | string,
  fn: (i: number, lane: number) => Promise<number | string>,
  concurrency = 1,
  warmUp = WARM_UP,
): Promise<void> {
  // The first uses grow the allocator's arenas (pool thread, libuv threads) and the JS heap: warm up before measuring.
  const warm = await runLimited(warmUp, concurrency, (i, lane) => fn(-1 - i, lane));
  collectGarbage();
  const before = process.memoryUsage();
  const answers = await runLimited(reps, concurrency, fn);
  collectGarbage();
  const afterUsage = process.memoryUsage();
  const after = afterUsage.rss;
  const delta = (key: 'heapTotal' | 'external' | 'arrayBuffers') => ((afterUsage[key] - before[key]) / MB).toFixed(1);
  t.comment(`${label}: RSS ${(before.rss / MB).toFixed(0)} -> ${(after / MB).toFixed(0)} MB; JS heap ${delta('heapTotal')} MB, external ${delta('external')} MB, ArrayBuffers ${delta('arrayBuffers')} MB`);
  t.same(tally([...warm, ...answers]), { [String(expected)]: reps + warmUp }, `${label}: all ${reps + warmUp} repetitions answer ${expected}`);
  const grown = (after - before.rss) / MB;
  t.ok(grown < 50, `${label}: RSS grew ${grown.toFixed(1)} MB over ${reps} repetitions (limit 50 MB)`);
}

// ---------------------------------------------------------------------------
// What is stored

/** Every path below `dir`, relative, sorted; folders end in `/`. */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string, prefix: string) => {
    let entries: string[];
    try {
      entries = readdirSync(at);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const full = path.join(at, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      if (statSync(full).isDirectory()) {
        out.push(`${rel}/`);
        walk(full, rel);
      } else out.push(rel);
    }
  };
  walk(dir, '');
  return out;
}

/** Files in a folder (not below it); [] when it does not exist. */
export function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Half-written files of the local storage (`.tmp-*`) anywhere below `dir`. */
export function halfWritten(dir: string): string[] {
  return tree(dir).filter((entry) => path.basename(entry).startsWith('.tmp-'));
}

/** Rows of a SQLite database file (a second connection; fine beside a running server in WAL mode). */
export function sqliteRows<T>(file: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL and S3 stand-ins

export const PG_ADMIN_URL = process.env.IAAS_TEST_DATABASE_URL ?? '';

/** A fresh database for this file (dropped WITH (FORCE) in teardown), or undefined when PostgreSQL is not configured. */
export async function pgDatabase(t: Test): Promise<{ url: string; name: string } | undefined> {
  if (PG_ADMIN_URL === '') return undefined;
  const database = await freshDatabase(PG_ADMIN_URL);
  t.teardown(() => database.drop());
  return { url: database.url, name: database.name };
}

/** An HTTP front for s3rver that can answer every request with a 5xx instead of forwarding it. */
export interface S3Front {
  port: number;
  endpoint: string;
  mode: 'pass' | 'fail';
  /** Requests answered with a 5xx so far. */
  failed: number;
  stop(): Promise<void>;
}

export async function startS3Front(t: Test, target: { port: number }, status = 503): Promise<S3Front> {
  const front: S3Front = {
    port: 0,
    endpoint: '',
    mode: 'pass',
    failed: 0,
    stop: async () => undefined,
  };
  const server: HttpServer = createHttpServer((req, res) => {
    if (front.mode === 'fail') {
      front.failed++;
      req.resume();
      res.writeHead(status, { 'Content-Type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>injected</Message></Error>`);
      return;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  front.port = address.port;
  front.endpoint = `http://127.0.0.1:${address.port}`;
  front.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.teardown(() => front.stop());
  return front;
}

/** A tiny HTTP server counting requests (an external reference an SVG might try to fetch). */
export async function startSpy(t: Test): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createHttpServer((req, res) => {
    hits.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.end('x');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${address.port}`, hits };
}

/** The status line and JSON `code` of one request on its own connection (`Connection: close`). */
export async function rawStatus(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string | number> = {},
  body?: Uint8Array,
  timeoutMs = 10_000,
): Promise<{ status: number | string; code?: string }> {
  const answer = await wire(port, body ? [head(method, target, { Connection: 'close', ...headers }), body] : [head(method, target, { Connection: 'close', ...headers })], {
    untilRaw: (raw) => (method === 'HEAD' ? raw.includes('\r\n\r\n') : parseResponses(raw).length > 0),
    timeoutMs,
  });
  const line = /^HTTP\/1\.1 (\d{3})/.exec(answer.raw.toString('latin1'));
  if (!line) return { status: `no answer (${answer.ended})` };
  const first = parseResponses(answer.raw)[0];
  let code: string | undefined;
  try {
    code = (JSON.parse(first?.body.toString() ?? '') as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: Number(line[1]), ...(code !== undefined ? { code } : {}) };
}

/**
 * Sends `first` on a keep-alive connection, waits for its answer, then sends
 * `second` on the same connection: a server that refused the first request
 * must answer the second or close the connection, never leave it hanging.
 */
export function followUp(
  port: number,
  first: (string | Uint8Array)[],
  second: string,
  timeoutMs = 4_000,
): Promise<{ first?: WireResponse; second?: WireResponse; ended: 'fin' | 'reset' | 'open' }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sentSecond = false;
    let settled = false;
    let reset = false;
    let timer = setTimeout(() => finish('open'), timeoutMs);
    const finish = (ended: 'fin' | 'reset' | 'open') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const responses = parseResponses(Buffer.concat(chunks));
      resolve({ ...(responses[0] ? { first: responses[0] } : {}), ...(responses[1] ? { second: responses[1] } : {}), ended });
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const responses = parseResponses(Buffer.concat(chunks));
      if (responses.length >= 1 && !sentSecond) {
        sentSecond = true;
        clearTimeout(timer);
        timer = setTimeout(() => finish('open'), timeoutMs);
        socket.write(second);
      }
      if (responses.length >= 2) finish('open');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => finish(reset ? 'reset' : 'fin'));
    socket.on('connect', () => {
      for (const piece of first) if (!socket.destroyed) socket.write(piece);
    });
  });
}
