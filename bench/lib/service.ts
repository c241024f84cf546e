/**
 * The service under test: `src/main.js` (the cluster) started as a child
 * process on the embedded defaults, a fresh DATA_DIR and a port of its own
 * choosing, plus the few HTTP calls the scenarios need to set it up (built on
 * the tests' clients, test/helpers/http.ts).
 *
 * The bench keeps its own launcher (proc.ts `launch`) instead of the tests'
 * startCluster (test/helpers/processes.ts) because it needs what the tests do
 * not: the same launcher for iaas and its peers (nginx, the node-sharp
 * servers), so every contender is started, logged and stopped alike; a stop
 * that kills the whole process tree, orphans of a dead primary included, so
 * no server outlives its round and skews the next; the log always in a file
 * in the bench's own folder (kept for the report), never a pipe the harness
 * would spend CPU draining; and MALLOC_ARENA_MAX recorded with the result.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBytes, issueToken, uploadImage } from '../../test/helpers/http.js';
import { sleep } from '../../test/helpers/timing.js';
import { multipart } from '../../test/helpers/wire.js';
import { jsonLine, launch, type ManagedProcess } from './proc.js';
import { PHOTO_ID } from './plan.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled service beside this compiled file: <outDir>/bench/lib -> <outDir>/src/main.js. */
export const SERVICE_MAIN = path.resolve(here, '..', '..', 'src', 'main.js');

/**
 * Environment every service instance runs with, recorded in the result.
 * MALLOC_ARENA_MAX=2: glibc's per-thread arenas are the usual cause of libvips
 * processes whose RSS only grows; production should run with it too.
 */
export const SERVICE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/** A running iaas cluster. */
export interface RunningService {
  label: string;
  url: string;
  port: number;
  pid: number;
  dataDir: string;
  /** The variables set on top of the bare environment. */
  env: Record<string, string>;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export interface ServiceOptions {
  label: string;
  /** The benchmark's temp folder; the instance gets a fresh folder inside. */
  root: string;
  workers?: number;
  pool?: number;
  env?: Record<string, string>;
}

/** The environment of a child server: PATH and HOME only, so nothing of the caller's leaks in. */
export function bareEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

/** Starts `node src/main.js` and resolves once it logged "iaas listening". */
export async function startIaas(options: ServiceOptions): Promise<RunningService> {
  const dir = mkdtempSync(path.join(options.root, `iaas-${options.label}-`));
  const dataDir = path.join(dir, 'data');
  const configDir = path.join(dir, 'config');
  mkdirSync(dataDir);
  // An empty config folder: the embedded defaults, whatever ./config holds.
  mkdirSync(configDir);
  const env: Record<string, string> = {
    ...SERVICE_ENV,
    NODE_CONFIG_DIR: configDir,
    DATA_DIR: dataDir,
    PORT: '0',
    LISTEN_ADDRESS: '127.0.0.1',
    ...(options.workers !== undefined ? { WORKERS: String(options.workers) } : {}),
    ...(options.pool !== undefined ? { POOL_SIZE: String(options.pool) } : {}),
    ...options.env,
  };
  const { process: child, port } = await launch({
    command: process.execPath,
    args: [SERVICE_MAIN],
    env: bareEnv(env),
    cwd: dir,
    logFile: path.join(dir, 'service.log'),
    ready: (line) => {
      const record = jsonLine(line);
      return record?.message === 'iaas listening' && typeof record.port === 'number' ? record.port : undefined;
    },
    timeoutMs: 60_000,
  });
  const url = `http://127.0.0.1:${port as number}`;
  return {
    label: options.label,
    url,
    port: port as number,
    pid: child.pid,
    dataDir,
    env,
    process: child,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Issues tokens for many ids, `parallel` at a time (before a measurement, not during it). */
export async function issueTokens(url: string, ids: string[], parallel = 8): Promise<{ id: string; token: string }[]> {
  const out: { id: string; token: string }[] = new Array(ids.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < ids.length) {
        const i = next++;
        const id = ids[i] as string;
        out[i] = { id, token: await issueToken(url, id) };
      }
    }),
  );
  return out;
}

/** The multipart body of an upload, for load generators that send a file: one field `image` holding the JPEG. */
export function photoForm(bytes: Uint8Array, boundary: string): Buffer {
  return multipart([{ name: 'image', filename: 'photo.jpg', type: 'image/jpeg', data: bytes }], { boundary }).body;
}

/** Uploads `bytes` as `id` (token, then the multipart POST); throws unless it is stored. */
export async function uploadPhoto(url: string, bytes: Uint8Array, id = PHOTO_ID): Promise<void> {
  const answer = await uploadImage(url, id, bytes, { filename: 'photo.jpg' });
  if (answer.status !== 200) throw new Error(`upload of ${id}: ${answer.status} ${JSON.stringify(answer.body)}`);
}

/**
 * Requests a variant until it is served from the cache: a 200 with X-Cache: HIT
 * (`hit`), or the 303 to the bucket (`redirect`). The first request renders
 * it; the store happens after that response, so the next few may still miss.
 * Returns the cached answer's body size.
 */
export async function primeCache(base: string, pathAndQuery: string, expect: 'hit' | 'redirect', timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const answer = await getBytes(`${base}${pathAndQuery}`);
    const cache = answer.headers.get('x-cache');
    if (expect === 'hit' && answer.status === 200 && cache === 'HIT') return answer.body.byteLength;
    if (expect === 'redirect' && answer.status === 303 && cache === 'HIT') return answer.body.byteLength;
    last = `${answer.status} X-Cache: ${cache}`;
    await sleep(100);
  }
  throw new Error(`${pathAndQuery} was never served from the cache (${expect}); last answer ${last}`);
}
