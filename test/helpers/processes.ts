/**
 * Service processes for tests: one worker's server in this process on fresh
 * folders, the real cluster (`main.js` of this build) as a child process,
 * its log read from a pipe or, under heavy load, from a file, and runs of
 * the `iaas` CLI of this build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { createLogger } from '../../src/log.js';
import { startServer, storeFor, type Server, type ServerOptions } from '../../src/server.js';
import { packageRoot } from '../../src/util/package-root.js';
import { crashMark } from './crashes.js';
import { childPids } from './procfs.js';
import { eventually } from './timing.js';

/** One JSON log line of the service. */
export interface LogLine {
  message?: string;
  level?: string;
  pid?: number;
  role?: string;
  port?: number;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------
// Temp folders and children that outlive a crashed test process

/**
 * Folders of servers not stopped yet. A test process that dies on an uncaught
 * exception skips every teardown; these at least go when it exits.
 */
const liveFolders = new Set<string>();
/** Clusters not stopped yet: signalled when this process exits. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Makes fresh temp folders and returns a function that removes them. */
async function tempFolders(...prefixes: string[]): Promise<{ folders: string[]; remove(): Promise<void> }> {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const child of liveChildren) child.kill('SIGTERM');
      for (const folder of liveFolders) rmSync(folder, { recursive: true, force: true });
    });
  }
  const folders: string[] = [];
  for (const prefix of prefixes) {
    const folder = await mkdtemp(path.join(tmpdir(), prefix));
    liveFolders.add(folder);
    folders.push(folder);
  }
  return {
    folders,
    async remove() {
      await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
      for (const folder of folders) liveFolders.delete(folder);
    },
  };
}

/** Splits text into lines as it arrives and hands each JSON line to `onLine`. */
function jsonLines(onLine: (line: LogLine) => void): (text: string) => void {
  let pending = '';
  return (text) => {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (!line.startsWith('{')) continue;
      try {
        onLine(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
  };
}

// ---------------------------------------------------------------------------
// In-process server

/** An in-process server and what a test needs to look behind it. */
export interface TestServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  port: number;
  server: Server;
  config: Config;
  dataDir: string;
  /** Log lines, when started with `captureLogs`; else empty. */
  logs: LogLine[];
  /** Closes the server and removes its folders. Safe to call twice. */
  stop(): Promise<void>;
}

/** The server's own options, and what the test wants to see of it. */
export interface TestServerOptions extends ServerOptions {
  /** Collect the server's log lines in `logs` (and keep them off stdout); replaces `log`. */
  captureLogs?: boolean;
}

/**
 * Starts one worker's server in this process: the config comes from
 * `overrides` (by file key) and `env` only, never from this machine's
 * environment; data lives in a fresh temp folder. The schema is migrated
 * first, as the cluster's primary does before forking.
 */
export async function startTestServer(overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}, options: TestServerOptions = {}): Promise<TestServer> {
  const temp = await tempFolders('iaas-api-', 'iaas-api-config-');
  const [dataDir = '', configDir = ''] = temp.folders;
  const removeFolders = () => temp.remove();
  const { captureLogs, ...serverOptions } = options;
  const logs: LogLine[] = [];
  let server: Server;
  let config: Config;
  try {
    config = loadConfig({
      env,
      configDir,
      overrides: { port: 0, listen_address: '127.0.0.1', data_dir: dataDir, 'log.info': false, ...overrides },
    });
    const store = storeFor(config);
    try {
      await store.migrate();
    } finally {
      await store.close();
    }
    if (captureLogs) {
      const feed = jsonLines((line) => logs.push(line));
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          feed(chunk.toString('utf8'));
          done();
        },
      });
      serverOptions.log = createLogger(config.log, { destination: sink });
    }
    server = await startServer(config, serverOptions);
  } catch (error) {
    await removeFolders();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port,
    server,
    config,
    dataDir,
    logs,
    stop() {
      stopping ??= (async () => {
        try {
          await server.close();
        } finally {
          await removeFolders();
        }
      })();
      return stopping;
    },
  };
}

/** Quiet by default: the TAP stream is stdout. */
const QUIET = { 'log.info': false, 'log.warn': false, 'log.error': false, shutdown_grace_ms: 2_000 };

/**
 * The reliability suite's server: startTestServer with every log level off
 * (with `captureLogs`, warnings and errors on, into `logs`), a 2 s shutdown
 * grace, the crash watch started, and a stop at `t`'s teardown.
 */
export async function serve(t: Test, overrides: Record<string, unknown> = {}, options: { captureLogs?: boolean } = {}): Promise<TestServer> {
  crashMark();
  const logged = options.captureLogs ? { 'log.warn': true, 'log.error': true } : {};
  const started = await startTestServer({ ...QUIET, ...logged, ...overrides }, {}, options.captureLogs ? { captureLogs: true } : {});
  t.teardown(() => started.stop());
  return started;
}

/**
 * Resolves true once nothing the server started is in flight any more, work
 * after the response (storing a render, completing a token) included; false
 * after `timeoutMs`. The signal the server's own drain waits for.
 */
export function settled(server: Server, timeoutMs = 5_000): Promise<boolean> {
  return server.app.inflight.idle(timeoutMs);
}

// ---------------------------------------------------------------------------
// The cluster as a child process

/** The cluster (`node dist/src/main.js`) as a child process. */
export interface Cluster {
  url: string;
  port: number;
  child: ChildProcess;
  dataDir: string;
  /** Every JSON log line written so far, in order (the same array each call; with `logToFile`, read from the file on each call). */
  logs(): LogLine[];
  /** Resolves with the first log line (already written or to come) that `match` accepts; rejects after `timeoutMs` (default 5 s). */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Distinct pids of workers seen in request log lines, in order of first appearance: which workers served. */
  servingPids(): number[];
  /** Pids of the primary's live children (the workers), from /proc. */
  workerPids(): number[];
  /** SIGTERM (SIGKILL after 20 s); resolves with the exit code (a signal becomes -1) and removes the folders. Safe to call twice. */
  stop(): Promise<number>;
}

/** How to run the cluster. */
export interface ClusterOptions {
  /** The working folder; default the package root. */
  cwd?: string;
  /**
   * Send stdout and stderr to a file instead of a pipe. Under heavy load the
   * test process drains a pipe slowly, and pino's synchronous writes to a
   * full pipe would stall the worker: the test would measure its own log
   * reading, not the service.
   */
  logToFile?: boolean;
  /** How long to wait for "iaas listening"; default 30 s. */
  timeoutMs?: number;
}

/** `main.js` of the same build as this file: dist*\/test/helpers/ -> dist*\/src/main.js. */
const MAIN_JS = fileURLToPath(new URL('../../src/main.js', import.meta.url));

/**
 * Spawns the cluster with a fresh DATA_DIR and NODE_CONFIG_DIR (empty: the
 * embedded defaults), PORT=0 on 127.0.0.1 and LOG_INFO=true, plus `env`
 * (nothing else of this machine's environment but PATH and HOME), and
 * resolves once the primary logged `iaas listening`. The caller stops it.
 */
export async function startCluster(env: Record<string, string>, options: ClusterOptions = {}): Promise<Cluster> {
  const temp = await tempFolders('iaas-cluster-', 'iaas-cluster-config-', 'iaas-cluster-log-');
  const [freshDataDir = '', configDir = '', logDir = ''] = temp.folders;
  const dataDir = env.DATA_DIR ?? freshDataDir;
  const logFile = path.join(logDir, 'cluster.log');
  const out = options.logToFile ? openSync(logFile, 'a') : undefined;
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd: options.cwd ?? packageRoot(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
      NODE_CONFIG_DIR: configDir,
      DATA_DIR: freshDataDir,
      PORT: '0',
      LISTEN_ADDRESS: '127.0.0.1',
      LOG_INFO: 'true',
      ...env,
    },
    stdio: out === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', out, out],
  });
  if (out !== undefined) closeSync(out);
  liveChildren.add(child);

  const lines: LogLine[] = [];
  const feed = jsonLines((line) => lines.push(line));
  let stderr = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', feed);
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  // With a log file, each call reads what was appended since the last one
  // (the decoder keeps a character cut in two for the next call).
  let readUpTo = 0;
  const decoder = new StringDecoder('utf8');
  const readLogFile = (): string => {
    const fd = openSync(logFile, 'r');
    try {
      const pieces: Buffer[] = [];
      const buffer = Buffer.alloc(1 << 20);
      let read: number;
      while ((read = readSync(fd, buffer, 0, buffer.length, readUpTo)) > 0) {
        pieces.push(Buffer.from(buffer.subarray(0, read)));
        readUpTo += read;
      }
      return decoder.write(Buffer.concat(pieces));
    } finally {
      closeSync(fd);
    }
  };
  const logs = (): LogLine[] => {
    if (options.logToFile) feed(readLogFile());
    return lines;
  };
  /** The end of what the cluster wrote (its stderr, or the whole log file), for error messages. */
  const tail = () => (options.logToFile ? readFileSync(logFile, 'utf8').slice(-2000) : stderr.slice(-2000));

  let exitedYet = false;
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedYet = true;
      liveChildren.delete(child);
      resolve(code ?? (signal ? -1 : 0));
    });
  });

  const waitForLog = async (match: (line: LogLine) => boolean, timeoutMs = 5_000): Promise<LogLine> => {
    let found: LogLine | undefined;
    if (await eventually(() => (found = logs().find(match)) !== undefined, timeoutMs)) return found as LogLine;
    throw new Error(`no matching log line within ${timeoutMs} ms; output: ${tail()}`);
  };

  let stopping: Promise<number> | undefined;
  const stop = (): Promise<number> => {
    stopping ??= (async () => {
      if (!exitedYet) child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        return await exited;
      } finally {
        clearTimeout(force);
        await temp.remove();
      }
    })();
    return stopping;
  };

  const timeoutMs = options.timeoutMs ?? 30_000;
  const isListening = (line: LogLine) => line.message === 'iaas listening';
  await eventually(() => exitedYet || logs().some(isListening), timeoutMs);
  const listening = logs().find(isListening);
  if (!listening) {
    const reason = exitedYet ? `exited with ${await exited} before listening` : `did not log "iaas listening" within ${timeoutMs} ms`;
    const output = tail();
    await stop();
    throw new Error(`the cluster ${reason}; output: ${output}`);
  }
  const port = Number(listening.port);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    dataDir,
    logs,
    waitForLog,
    servingPids() {
      const pids: number[] = [];
      for (const line of logs()) {
        if (line.message === 'request' && line.role === 'worker' && typeof line.pid === 'number' && !pids.includes(line.pid)) pids.push(line.pid);
      }
      return pids;
    },
    workerPids: () => childPids(child.pid ?? -1),
    stop,
  };
}

// ---------------------------------------------------------------------------
// The CLI

/** The CLI of the same build as this file: dist*\/test/helpers/ -> dist*\/src/cli/iaas.js. */
const CLI_JS = fileURLToPath(new URL('../../src/cli/iaas.js', import.meta.url));

/** How a CLI run ended, and what it printed. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `iaas <args>` with exactly `env` (nothing of this machine's environment unless given), its output piped. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [CLI_JS, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs `iaas <args>` with exactly `env` to completion (killed after 60 s). */
export async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}
