/**
 * The primary's supervision: it migrates the schema once, sweeps what a
 * previous run left behind, forks the workers on one port, respawns a
 * crashed worker (with backoff only for crash loops) and sweeps the temp
 * files a dead worker was writing. It also hosts the machine's admission
 * broker and relays deletes between the workers.
 */
import cluster, { type Worker } from 'node:cluster';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { BrokerHost } from '../admission/host.js';
import { isAdmissionMessage, type FromBroker, type ToBroker } from '../admission/protocol.js';
import type { Config } from '../config/types.js';
import { loadUws } from '../http/uws.js';
import type { Logger } from '../log.js';
import { startPrimaryMetrics } from '../metrics-cluster.js';
import { brokerSettings, storeFor } from '../server.js';
import { sweepTempFiles } from '../sweep.js';
import { drainWorkers, onPrimarySignals } from './drain.js';
import { ForgetRelay } from './forget.js';
import { isToPrimary } from './protocol.js';

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** A worker that dies sooner than this after its start is in a crash loop. */
const QUICK_DEATH_MS = 2_000;
/** A worker that lived this long resets the backoff. */
const STABLE_MS = 10_000;

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Creates or migrates the schema, once, before any worker starts. */
export async function migrate(config: Config): Promise<void> {
  const store = storeFor(config);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

/** Runs the primary; `entry` is the module the workers run (main.js, whichever entry launched the primary). */
export async function runPrimary(config: Config, log: Logger, entry: string): Promise<void> {
  // Fail before forking: a worker on the JS fallback would break SO_REUSEPORT silently.
  loadUws();
  await migrate(config);
  // Temp files of a previous run are abandoned uploads and half-written originals. (The render
  // cache can hold millions of files: its leftovers are swept only after a worker dies.)
  await sweepTempFiles({ objects: [config.originalsDir], uploads: config.tempDir });
  const folders = { objects: [config.originalsDir, config.cacheDir], uploads: config.tempDir };
  await mkdir(config.tempDir, { recursive: true });
  const port = config.port === 0 ? await freePort(config.listenAddress) : config.port;
  cluster.setupPrimary({ exec: entry, args: [] });
  let stopping = false;
  let backoff = BACKOFF_START_MS;
  const bornAt = new Map<number, number>();
  const ready = new Set<number>();
  let announced = false;

  // One render budget for the machine: every worker's renders are admitted here.
  const admission = new BrokerHost(brokerSettings(config));
  const ownerOf = (worker: Worker) => `w${worker.id}`;
  const forgets = new ForgetRelay();

  const fork = (): Worker => {
    const worker = cluster.fork({ PORT: String(port) });
    bornAt.set(worker.id, Date.now());
    admission.attach(ownerOf(worker), (message: FromBroker) => {
      if (worker.isConnected()) worker.send(message);
    });
    worker.on('message', (message: unknown) => {
      if (isAdmissionMessage(message)) return admission.receive(ownerOf(worker), message as ToBroker);
      if (!isToPrimary(message)) return;
      switch (message.type) {
        case 'ready':
          ready.add(worker.id);
          log.info({ worker: worker.process.pid, bootMs: Date.now() - (bornAt.get(worker.id) ?? Date.now()) }, 'worker ready');
          if (!announced) {
            announced = true;
            log.info({ port: message.port, workers: config.workers, pool: config.pool }, 'iaas listening');
          }
          return;
        // A delete in one worker: the others drop what they remember of the id, then the deleter answers.
        case 'iaas:forget':
          return forgets.forget(worker, message);
        case 'iaas:forgotten':
          return forgets.forgotten(worker, message.key);
      }
    });
    return worker;
  };

  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (bornAt.get(worker.id) ?? Date.now());
    bornAt.delete(worker.id);
    ready.delete(worker.id);
    // What it held or waited for returns to the machine at once; what it counted stays counted.
    admission.detach(ownerOf(worker));
    forgets.exited(worker);
    metrics.metrics.retire(worker);
    if (stopping) return;
    if (lived > STABLE_MS) backoff = BACKOFF_START_MS;
    // A worker that ran a while crashed on a request, not at boot: replace it at once.
    // Only crash loops (deaths right after start) wait, and longer each time.
    const delay = lived > QUICK_DEATH_MS ? 0 : backoff;
    if (delay > 0) backoff = Math.min(BACKOFF_MAX_MS, backoff * 2);
    log.error({ worker: worker.process.pid, code, signal, respawnInMs: delay }, 'worker exited; respawning');
    setTimeout(() => !stopping && fork(), delay);
    // What it was writing when it died is garbage now; nothing refers to a temp file.
    const pid = worker.process.pid;
    if (pid !== undefined) {
      void sweepTempFiles(folders, pid).then(
        (removed) => removed && log.warn({ worker: pid, removed }, 'removed temp files of the dead worker'),
        (error: unknown) => log.warn({ err: error }, 'sweeping temp files failed'),
      );
    }
  });

  const metrics = startPrimaryMetrics(config, log, admission);
  const metricsPort = await metrics.port;
  if (metricsPort !== undefined) log.info({ metricsPort }, 'metrics on their own port');
  for (let i = 0; i < config.workers; i++) fork();

  onPrimarySignals((signal) => {
    stopping = true;
    drainWorkers(config, log, signal, ready);
  });
}
