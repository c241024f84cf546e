/**
 * The drain on SIGTERM (or SIGINT): the primary tells its workers to stop
 * accepting and finish what is in flight, kills those that ignore it after
 * the grace period, and exits once all are gone; a worker drains its server
 * and exits, whether the primary asked or it was signalled directly.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Server } from '../server.js';
import type { ToWorker } from './protocol.js';

/** Calls `drain` once, on the first SIGTERM or SIGINT of the primary. */
export function onPrimarySignals(drain: (signal: string) => void): void {
  let draining = false;
  const once = (signal: string) => {
    if (draining) return;
    draining = true;
    drain(signal);
  };
  process.on('SIGTERM', () => once('SIGTERM'));
  process.on('SIGINT', () => once('SIGINT'));
}

/** The primary's drain: every worker stops, then the primary exits 0. `ready` holds the ids of booted workers. */
export function drainWorkers(config: Config, log: Logger, signal: string, ready: ReadonlySet<number>): void {
  log.info({ signal }, 'draining workers');
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
  for (const worker of workers) {
    // A worker still booting may not listen for messages yet, and has nothing in flight: signal it.
    if (ready.has(worker.id)) worker.send({ type: 'shutdown' } satisfies ToWorker);
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
}

/**
 * A worker's drain. It listens from before the boot: a replacement worker may
 * be told to stop while it starts, and then stops as soon as it is up.
 */
export class WorkerDrain {
  private requested = false;
  private server: Server | undefined;

  constructor(private readonly log: Logger) {
    // The primary drains workers; a direct SIGTERM (one worker) drains too.
    process.on('SIGTERM', () => void this.stop());
    // Ctrl-C in a terminal reaches every process: the primary's drain decides.
    process.on('SIGINT', () => {});
  }

  /** Drains the server and exits 0; before the boot ends, leaves that to `booted`. */
  async stop(): Promise<void> {
    if (this.requested) return;
    this.requested = true;
    if (!this.server) return; // `booted` sees the request and exits
    const drained = await this.server.close();
    if (!drained) this.log.warn('grace period over with requests in flight');
    process.exit(0);
  }

  /** The server is up: a stop asked during the boot closes it and exits now. */
  async booted(server: Server): Promise<void> {
    this.server = server;
    if (!this.requested) return;
    await server.close();
    process.exit(0);
  }
}
