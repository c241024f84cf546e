/**
 * Starts the Node peer (node-sharp-cluster.js) as a child process with its
 * own data folder holding the photo (and any other originals), and waits until all its
 * workers listen. Runs in the harness; the peer's code runs in the child.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PHOTO_ID } from '../lib/plan.js';
import { jsonLine, launch, type ManagedProcess } from '../lib/proc.js';
import { bareEnv, SERVICE_ENV } from '../lib/service.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, 'node-sharp-cluster.js');

export interface RunningPeer {
  url: string;
  pid: number;
  dataDir: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts the peer with `workers` processes. It gets the service's extra
 * environment too (MALLOC_ARENA_MAX=2), so memory is compared on equal terms.
 */
export async function startNodePeer(options: { root: string; workers: number; photo: Uint8Array; originals?: { id: string; bytes: Uint8Array }[] }): Promise<RunningPeer> {
  const dir = mkdtempSync(path.join(options.root, 'node-peer-'));
  const dataDir = path.join(dir, 'data');
  mkdirSync(path.join(dataDir, 'originals'), { recursive: true });
  mkdirSync(path.join(dataDir, 'cache'), { recursive: true });
  for (const original of [{ id: PHOTO_ID, bytes: options.photo }, ...(options.originals ?? [])]) {
    writeFileSync(path.join(dataDir, 'originals', original.id), original.bytes);
  }
  const { process: child, port } = await launch({
    command: process.execPath,
    args: [entry],
    env: bareEnv({ ...SERVICE_ENV, WORKERS: String(options.workers), PORT: '0', PEER_DATA_DIR: dataDir }),
    cwd: dir,
    logFile: path.join(dir, 'peer.log'),
    ready: (line) => {
      const record = jsonLine(line);
      return record?.message === 'peer listening' && typeof record.port === 'number' ? record.port : undefined;
    },
    timeoutMs: 30_000,
  });
  return {
    url: `http://127.0.0.1:${port as number}`,
    pid: child.pid,
    dataDir,
    process: child,
    async stop() {
      await child.stop(5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
