/**
 * Helpers for the HTTP integration tests: an in-process server on a fresh
 * data folder, the cluster as a child process, uploads, and raw requests for
 * what fetch hides (HEAD bodies, early answers to a body that is not sent).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { startServer, storeFor, type Server, type ServerOptions } from '../../src/server.js';

/** An in-process server and what a test needs to look behind it. */
export interface TestServer {
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  server: Server;
  config: Config;
  dataDir: string;
  /** Closes the server and removes its folders. Safe to call twice. */
  stop(): Promise<void>;
}

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

/** A database of its own for one test file, on the server of `adminUrl`. */
export interface FreshDatabase {
  /** `adminUrl` with the fresh database's name. */
  url: string;
  name: string;
  /** Drops the database, ending any session still in it. */
  drop(): Promise<void>;
}

/** Databases of test files are named `iaas_t_<creation time, base 36>_<random>`. */
const DATABASE_NAME = /^iaas_t_([0-9a-z]{6,10})_[0-9a-f]{12}$/;
/** Older than this, a test database outlived its file (tap's timeout is 180 s): a crashed run left it. */
const STALE_DATABASE_MS = 10 * 60_000;

/**
 * Creates `iaas_t_<time>_<random>` with a client on `adminUrl`; drop() removes
 * it `WITH (FORCE)`. Also drops test databases that crashed runs left behind.
 */
export async function freshDatabase(adminUrl: string): Promise<FreshDatabase> {
  const name = `iaas_t_${Date.now().toString(36)}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'iaas\\_t\\_%'");
    for (const { datname } of rows) {
      const created = DATABASE_NAME.exec(datname)?.[1];
      if (created !== undefined && Date.now() - parseInt(created, 36) > STALE_DATABASE_MS) {
        await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
      }
    }
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A random suffix for ids, buckets and databases. */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/**
 * Starts one worker's server in this process: the config comes from
 * `overrides` (by file key) and `env` only, never from this machine's
 * environment; data lives in a fresh temp folder. The schema is migrated
 * first, as the cluster's primary does before forking.
 */
export async function startTestServer(overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}, options: ServerOptions = {}): Promise<TestServer> {
  const temp = await tempFolders('iaas-api-', 'iaas-api-config-');
  const [dataDir = '', configDir = ''] = temp.folders;
  const removeFolders = () => temp.remove();
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
    server = await startServer(config, options);
  } catch (error) {
    await removeFolders();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${server.port}`,
    server,
    config,
    dataDir,
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

/** One JSON log line of the cluster. */
export interface LogLine {
  message?: string;
  level?: string;
  pid?: number;
  role?: string;
  port?: number;
  [key: string]: unknown;
}

/** The cluster (`node dist/src/main.js`) as a child process. */
export interface RunningCluster {
  url: string;
  port: number;
  child: ChildProcess;
  /** Every JSON line read from stdout so far. */
  logs: LogLine[];
  /** Distinct pids of workers seen in request log lines, in order of first appearance. */
  pids(): number[];
  /** Resolves with the first log line (already read or to come) that `match` accepts. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends SIGTERM and resolves with the exit code (signal names become -1). Removes the data folder. */
  stop(): Promise<number>;
}

/** `main.js` of the same build as this file: dist*\/test/helpers/ -> dist*\/src/main.js. */
function mainScript(): string {
  return fileURLToPath(new URL('../../src/main.js', import.meta.url));
}

/** The package root (holding package.json), the cluster's working folder. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

/**
 * Spawns the cluster with a fresh DATA_DIR, PORT=0 and LOG_INFO=true plus
 * `env` (nothing else of this machine's environment but PATH and HOME), and
 * resolves once the primary logged `iaas listening`.
 */
export async function startCluster(env: Record<string, string>, timeoutMs = 20_000): Promise<RunningCluster> {
  const temp = await tempFolders('iaas-cluster-', 'iaas-cluster-config-');
  const [dataDir = '', configDir = ''] = temp.folders;
  const removeFolders = () => temp.remove();
  const child = spawn(process.execPath, [mainScript()], {
    cwd: packageRoot(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
      NODE_CONFIG_DIR: configDir,
      DATA_DIR: dataDir,
      PORT: '0',
      LISTEN_ADDRESS: '127.0.0.1',
      LOG_INFO: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  const logs: LogLine[] = [];
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let stderr = '';
  let pending = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      const text = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (!text.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const waiter of waiters.slice()) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve(code ?? (signal ? -1 : 0));
    });
  });
  let exitedYet = false;
  void exited.then(() => {
    exitedYet = true;
  });

  const waitForLog = (match: (line: LogLine) => boolean, waitMs = 5_000): Promise<LogLine> => {
    const seen = logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: LogLine) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line within ${waitMs} ms; stderr: ${stderr.slice(-2000)}`));
      }, waitMs);
      waiters.push(waiter);
    });
  };

  let stopping: Promise<number> | undefined;
  const stop = (): Promise<number> => {
    stopping ??= (async () => {
      if (!exitedYet) child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        return await exited;
      } finally {
        clearTimeout(force);
        await removeFolders();
      }
    })();
    return stopping;
  };

  let listening: LogLine;
  try {
    listening = await Promise.race([
      waitForLog((line) => line.message === 'iaas listening', timeoutMs),
      exited.then((code): never => {
        throw new Error(`the cluster exited with ${code} before listening; stderr: ${stderr.slice(-2000)}`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  const port = Number(listening.port);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    logs,
    pids() {
      const pids: number[] = [];
      for (const line of logs) {
        if (line.message === 'request' && line.role === 'worker' && typeof line.pid === 'number' && !pids.includes(line.pid)) pids.push(line.pid);
      }
      return pids;
    },
    waitForLog,
    stop,
  };
}

/** A parsed JSON body of an answer, or undefined when it is not JSON. */
export type Json = Record<string, unknown>;

/** POST /token; the raw answer and its JSON body. */
export async function requestToken(url: string, id: unknown, secret?: string): Promise<{ status: number; body: Json; response: Response }> {
  const payload: Record<string, unknown> = { id };
  if (secret !== undefined) payload.secret = secret;
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
  });
  return { status: response.status, body: (await response.json()) as Json, response };
}

export interface UploadOptions {
  /** The secret sent with the token request. */
  secret?: string;
  /** Use this token instead of requesting one. */
  token?: string;
  /** The path's extension: `POST /{id}.{ext}`; null for `POST /{id}`. Default 'jpg'. */
  ext?: string | null;
  /** The query string (without `?`), e.g. a crop. */
  query?: string;
  /** The multipart field name; default `image`. */
  field?: string;
  /** The part's file name and media type. */
  filename?: string;
  type?: string;
  /** Post to this id instead of the one the token is for. */
  postId?: string;
}

export interface UploadAnswer {
  status: number;
  body: Json;
  token: string;
  response: Response;
}

/** Posts `bytes` as the multipart field `image` with X-Token, to `POST /{id}.{ext}` (or `POST /{id}`). */
export async function postImage(url: string, id: string, token: string, bytes: Uint8Array | null, options: UploadOptions = {}): Promise<Response> {
  const form = new FormData();
  if (bytes) form.append(options.field ?? 'image', new Blob([bytes], { type: options.type ?? 'image/jpeg' }), options.filename ?? `${id}.jpg`);
  const ext = options.ext === undefined ? 'jpg' : options.ext;
  const target = `${url}/${id}${ext === null ? '' : `.${ext}`}${options.query ? `?${options.query}` : ''}`;
  return fetch(target, { method: 'POST', headers: { 'X-Token': token }, body: form });
}

/** Gets a token for `id` (unless given), then uploads `bytes` with it. Throws when no token is issued. */
export async function uploadImage(url: string, id: string, bytes: Uint8Array, options: UploadOptions = {}): Promise<UploadAnswer> {
  let token = options.token;
  if (token === undefined) {
    const issued = await requestToken(url, id, options.secret);
    if (issued.status !== 200 || typeof issued.body.token !== 'string') {
      throw new Error(`POST /token for ${id} answered ${issued.status} ${JSON.stringify(issued.body)}`);
    }
    token = issued.body.token;
  }
  const response = await postImage(url, options.postId ?? id, token, bytes, options);
  const text = await response.text();
  let body: Json;
  try {
    body = JSON.parse(text) as Json;
  } catch {
    body = { raw: text };
  }
  return { status: response.status, body, token, response };
}

/** A GET without following redirects. */
export function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', headers });
}

/** The answer's JSON error body. */
export async function errorOf(response: Response): Promise<{ error: unknown; code: unknown }> {
  const body = (await response.json()) as Json;
  return { error: body.error, code: body.code };
}

/** An answer read off the wire. Header names are lower case. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  /** The body after the header block (chunked bodies decoded), until the connection closed or went quiet. */
  body: Buffer;
}

/** The data of a chunked body, as far as whole chunks arrived. */
function dechunk(raw: Buffer): Buffer {
  const pieces: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(raw.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0 || lineEnd + 2 + size > raw.byteLength) break;
    pieces.push(raw.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(pieces);
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent after the headers, unless the answer arrives first. */
  body?: Uint8Array;
  /** How long to wait for more bytes after the header block, when the connection stays open. Default 300 ms. */
  quietMs?: number;
  timeoutMs?: number;
}

/**
 * One request over its own TCP connection (`Connection: close`), reading every
 * byte that comes back: for HEAD (no body may follow the headers) and for
 * answers sent before the request body.
 */
export function rawRequest(url: string, request: RawRequest): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let headerEnd = -1;
    let quiet: NodeJS.Timeout | undefined;
    let settled = false;
    const overall = setTimeout(() => finish(new Error(`no answer to ${request.method} ${request.path} in time`)), request.timeoutMs ?? 10_000);
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      if (quiet) clearTimeout(quiet);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return reject(error ?? new Error(`incomplete answer: ${JSON.stringify(all.toString('latin1').slice(0, 200))}`));
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number((lines[0] ?? '').split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const body = all.subarray(end + 4);
      resolve({ status, headers, body: headers['transfer-encoding'] === 'chunked' ? dechunk(body) : body });
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (headerEnd === -1) headerEnd = Buffer.concat(chunks).indexOf('\r\n\r\n');
      if (headerEnd !== -1) {
        if (quiet) clearTimeout(quiet);
        // A GET whose declared body has fully arrived is complete; anything else waits for quiet or close.
        const all = Buffer.concat(chunks);
        const declared = /\r\ncontent-length:\s*(\d+)/i.exec(all.subarray(0, headerEnd).toString('latin1'));
        if (request.method !== 'HEAD' && declared && all.byteLength - headerEnd - 4 >= Number(declared[1])) return finish();
        quiet = setTimeout(() => finish(), request.quietMs ?? 300);
      }
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server that answers and closes while the body is still being sent resets the connection.
    socket.on('error', (error) => finish(error));
    socket.on('connect', () => {
      const headers: Record<string, string> = { Host: `${hostname}:${port}`, Connection: 'close', ...request.headers };
      const head = `${request.method} ${request.path} HTTP/1.1\r\n${Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('')}\r\n`;
      socket.write(head);
      if (request.body) socket.write(request.body);
    });
  });
}

/** A multipart/form-data body with one file part, built by hand for raw requests. */
export function multipartBody(bytes: Uint8Array, options: { field?: string; filename?: string; type?: string } = {}): { body: Buffer; contentType: string } {
  const boundary = `iaas${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${options.field ?? 'image'}"; filename="${options.filename ?? 'image.jpg'}"\r\n` +
      `Content-Type: ${options.type ?? 'image/jpeg'}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, bytes, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Starts a request that declares `body` in full, sends only its first
 * `sendBytes` bytes, then drops the connection: a client going away mid-upload.
 */
export function abortedRequest(url: string, request: { method: string; path: string; headers: Record<string, string>; body: Uint8Array; sendBytes: number }): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    socket.on('connect', () => {
      const headers: Record<string, string> = { Host: `${hostname}:${port}`, 'Content-Length': String(request.body.byteLength), ...request.headers };
      socket.write(`${request.method} ${request.path} HTTP/1.1\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`);
      socket.write(request.body.subarray(0, request.sendBytes));
      // Let the server start on the body, then vanish.
      setTimeout(() => {
        socket.destroy();
        setTimeout(resolve, 100);
      }, 200);
    });
    socket.setTimeout(10_000, () => reject(new Error('the aborted request hung')));
  });
}

/** Polls `check` every 25 ms until it returns true, for up to `timeoutMs`. Resolves with the last result. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
