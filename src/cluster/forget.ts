/**
 * The fan-out of a delete across the cluster: the deleting worker asks the
 * primary, the primary asks every other worker to forget the id, and the
 * deleter hears back once all of them have, so no later request in any
 * worker sees the deleted image (or the old focal point).
 */
import cluster, { type Worker } from 'node:cluster';
import type { ForgetMessage, ToPrimary, ToWorker } from './protocol.js';

/** A worker that never answers must not hold the DELETE forever. */
const FORGET_TIMEOUT_MS = 2_000;

/** The primary's side: which deleter waits for which workers' answers. */
export class ForgetRelay {
  private readonly waiting = new Map<string, { origin: Worker; owed: Set<number> }>();

  /** `workers` lists the cluster's workers (the tests pass their own). */
  constructor(private readonly workers: () => readonly Worker[] = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w)) {}

  /** `origin` deleted an id: the other live workers forget it, then `origin` hears back. */
  forget(origin: Worker, message: ForgetMessage): void {
    const others = this.workers().filter((other) => other.id !== origin.id && other.isConnected());
    this.waiting.set(message.key, { origin, owed: new Set(others.map((other) => other.id)) });
    for (const other of others) other.send(message satisfies ToWorker);
    if (others.length === 0) this.settle(message.key);
  }

  /** `from` has forgotten the id of `key`. */
  forgotten(from: Worker, key: string): void {
    const entry = this.waiting.get(key);
    if (!entry) return;
    entry.owed.delete(from.id);
    if (entry.owed.size === 0) this.settle(key);
  }

  /**
   * `worker` exited: it owes no answer any more (a dead worker remembers nothing),
   * and nobody waits for the answers owed to it, so no entry outlives the workers it names.
   */
  exited(worker: Worker): void {
    for (const [key, entry] of this.waiting) {
      if (entry.origin.id === worker.id) this.waiting.delete(key);
      else if (entry.owed.delete(worker.id) && entry.owed.size === 0) this.settle(key);
    }
  }

  /** Deletes still waiting for answers: 0 whenever the cluster is quiet. */
  get pending(): number {
    return this.waiting.size;
  }

  private settle(key: string): void {
    const entry = this.waiting.get(key);
    this.waiting.delete(key);
    if (entry?.origin.isConnected()) entry.origin.send({ type: 'iaas:forgotten', key } satisfies ToWorker);
  }
}

/** A worker's side: its own deletes waiting for the others. */
export class ForgetRequests {
  private readonly acks = new Map<string, () => void>();
  private seq = 0;

  /** Resolves once every other worker forgot `id` (or after a timeout; at once outside a cluster). */
  everywhere(id: string): Promise<void> {
    return new Promise<void>((resolve) => {
      if (!process.send) return resolve();
      const key = `${process.pid}:${this.seq++}`;
      const acks = this.acks;
      const timer = setTimeout(done, FORGET_TIMEOUT_MS);
      function done() {
        clearTimeout(timer);
        acks.delete(key);
        resolve();
      }
      acks.set(key, done);
      process.send({ type: 'iaas:forget', id, key } satisfies ToPrimary);
    });
  }

  /** The primary says every other worker forgot the id of `key`. */
  acknowledged(key: string): void {
    this.acks.get(key)?.();
  }
}
