/**
 * The cluster: the primary reads the config once, migrates the schema once,
 * forks WORKERS processes that all listen on one port, respawns a crashed
 * worker with backoff, and drains everything on SIGTERM.
 *
 *   node dist/src/main.js        (npm start, iaas start)
 */
import cluster, { type Worker } from 'node:cluster';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { AdmissionClient } from './admission/client.js';
import { BrokerHost } from './admission/host.js';
import { isAdmissionMessage, type FromBroker, type ToBroker } from './admission/protocol.js';
import { ConfigError, loadConfig } from './config/load.js';
import { ImageError } from './errors.js';
import type { Config } from './config/types.js';
import { createLogger, type Logger } from './log.js';
import { loadUws } from './http/uws.js';
import { createMetrics, routeClass } from './metrics.js';
import { answerSnapshots, METRICS_CONTENT_TYPE, metricsText, startPrimaryMetrics } from './metrics-cluster.js';
import { brokerSettings, startServer, storeFor } from './server.js';
import { sweepTempFiles } from './sweep.js';

/** Messages between the primary and its workers. */
type WorkerMessage =
  | { type: 'ready'; port: number }
  | { type: 'shutdown' }
  | { type: 'iaas:forget'; id: string; key: string }
  | { type: 'iaas:forgotten'; key: string };

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

async function runPrimary(config: Config, log: Logger): Promise<void> {
  // Fail before forking: a worker on the JS fallback would break SO_REUSEPORT silently.
  loadUws();
  await migrate(config);
  // Temp files of a previous run are abandoned uploads and half-written originals. (The render
  // cache can hold millions of files: its leftovers are swept only after a worker dies.)
  await sweepTempFiles({ objects: [config.originalsDir], uploads: config.tempDir });
  const folders = { objects: [config.originalsDir, config.cacheDir], uploads: config.tempDir };
  await mkdir(config.tempDir, { recursive: true });
  const port = config.port === 0 ? await freePort(config.listenAddress) : config.port;
  // Workers run this module whichever entry (npm start, iaas start) launched the primary.
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: [] });
  let stopping = false;
  let backoff = BACKOFF_START_MS;
  const bornAt = new Map<number, number>();
  const ready = new Set<number>();
  let announced = false;

  // One render budget for the machine: every worker's renders are admitted here.
  const admission = new BrokerHost(brokerSettings(config));
  const ownerOf = (worker: Worker) => `w${worker.id}`;

  const forgetting = new Map<string, { origin: Worker; pending: number }>();
  const settleForget = (key: string) => {
    const entry = forgetting.get(key);
    forgetting.delete(key);
    if (entry?.origin.isConnected()) entry.origin.send({ type: 'iaas:forgotten', key } satisfies WorkerMessage);
  };

  const fork = (): Worker => {
    const worker = cluster.fork({ PORT: String(port) });
    bornAt.set(worker.id, Date.now());
    admission.attach(ownerOf(worker), (message: FromBroker) => {
      if (worker.isConnected()) worker.send(message);
    });
    worker.on('message', (message: WorkerMessage | ToBroker) => {
      if (isAdmissionMessage(message)) return admission.receive(ownerOf(worker), message as ToBroker);
      if (message.type === 'ready') {
        ready.add(worker.id);
        log.info({ worker: worker.process.pid, bootMs: Date.now() - (bornAt.get(worker.id) ?? Date.now()) }, 'worker ready');
      }
      // A delete in one worker: the others drop what they remember of the id, then the deleter answers.
      if (message.type === 'iaas:forget') {
        const others = Object.values(cluster.workers ?? {}).filter((other): other is Worker => !!other && other.id !== worker.id && other.isConnected());
        forgetting.set(message.key, { origin: worker, pending: others.length });
        for (const other of others) other.send(message);
        if (others.length === 0) settleForget(message.key);
      }
      if (message.type === 'iaas:forgotten') {
        const entry = forgetting.get(message.key);
        if (entry && --entry.pending <= 0) settleForget(message.key);
      }
      if (message.type === 'ready' && !announced) {
        announced = true;
        log.info({ port: message.port, workers: config.workers, pool: config.pool }, 'iaas listening');
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

  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining workers');
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    for (const worker of workers) {
      // A worker still booting may not listen for messages yet, and has nothing in flight: signal it.
      if (ready.has(worker.id)) worker.send({ type: 'shutdown' } satisfies WorkerMessage);
      else worker.process.kill('SIGTERM');
    }
    // A worker that ignores the drain is killed after the grace period.
    const force = setTimeout(() => {
      for (const worker of workers) worker.process.kill('SIGKILL');
    }, config.shutdownGraceMs + 2_000);
    force.unref();
    let left = workers.length;
    if (left === 0) process.exit(0);
    cluster.on('exit', () => {
      left--;
      if (left <= 0) {
        log.info('all workers stopped');
        process.exit(0);
      }
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function runWorker(config: Config, log: Logger): Promise<void> {
  // Listen for the drain before booting: a replacement worker may be told to stop while it starts.
  let stopRequested = false;
  const acks = new Map<string, () => void>();
  let forgetSeq = 0;
  // Assigned once booted; `stop` may run before that.
  // eslint-disable-next-line prefer-const
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  const stop = async () => {
    if (stopRequested) return;
    stopRequested = true;
    if (!server) return; // the boot below sees stopRequested and exits
    const drained = await server.close();
    if (!drained) log.warn('grace period over with requests in flight');
    process.exit(0);
  };
  process.on('message', (message: WorkerMessage) => {
    if (message.type === 'shutdown') void stop();
    if (message.type === 'iaas:forget') {
      server?.service.forget(message.id);
      server?.app.forgetFiles();
      process.send?.({ type: 'iaas:forgotten', key: message.key } satisfies WorkerMessage);
    }
    if (message.type === 'iaas:forgotten') acks.get(message.key)?.();
  });
  // The primary drains workers; a direct SIGTERM (one worker) drains too.
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => {});

  const metrics = createMetrics();
  answerSnapshots();
  server = await startServer(config, {
    admitter: clusterAdmitter(),
    log,
    events: metrics.events,
    observe: (method, path, status) => metrics.request(routeClass(method, path), status),
    deleted: (id) =>
      new Promise<void>((resolve) => {
        if (!process.send) return resolve();
        const key = `${process.pid}:${forgetSeq++}`;
        // A worker that never answers must not hold the DELETE forever.
        const timer = setTimeout(done, 2_000);
        function done() {
          clearTimeout(timer);
          acks.delete(key);
          resolve();
        }
        acks.set(key, done);
        process.send({ type: 'iaas:forget', id, key } satisfies WorkerMessage);
      }),
    // With METRICS_PORT the primary serves them; otherwise they are public here.
    ...(config.metricsPort === undefined
      ? {
          extraGet: {
            '/metrics': async (exchange) => exchange.send(200, { 'Content-Type': METRICS_CONTENT_TYPE }, await metricsText()),
          },
        }
      : {}),
  });
  metrics.watchPool(server.pool);
  if (stopRequested) {
    await server.close();
    process.exit(0);
  }
  process.send?.({ type: 'ready', port: server.port } satisfies WorkerMessage);
}

/** The worker's side of the machine-wide admission: the broker lives in the primary. */
function clusterAdmitter(): AdmissionClient {
  return new AdmissionClient({
    send(message) {
      if (!process.send || !process.connected) throw new ImageError('UNAVAILABLE', 'The cluster primary is gone');
      process.send(message);
    },
    listen(handler) {
      process.on('message', (message: unknown) => {
        if (isAdmissionMessage(message)) handler(message as FromBroker);
      });
    },
  });
}

/** Entry point of `npm start` and `iaas start`. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ env });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`iaas: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const log = cluster.isPrimary
    ? createLogger(config.log, { bindings: { role: 'primary' } })
    : createLogger(config.log, { bindings: { role: 'worker' }, buffered: true });
  try {
    if (cluster.isPrimary) await runPrimary(config, log);
    else await runWorker(config, log);
  } catch (error) {
    log.fatal({ err: error }, (error as Error).message);
    // Give pino a moment to flush before exiting.
    setTimeout(() => process.exit(1), 50);
  }
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) void main();
