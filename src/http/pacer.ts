/**
 * Paces refusals. A client told 503 (the machine sheds renders) that asks
 * again at once, again and again, turns the refusals themselves into the
 * load: thousands a second, each parsed, looked up and answered, on the cores
 * that should be rendering. Each client (by address) gets its refusals at once
 * up to a small rate; beyond it, the next refusal is held for a second before
 * it is sent, which slows exactly the clients that ignore Retry-After.
 */
import { LRUCache } from 'lru-cache';

/** Refusals a client gets at once, in a burst and per second after it. */
export const IMMEDIATE_REFUSALS = 200;
/** How long a refusal beyond that rate is held before it is sent. */
export const HELD_REFUSAL_MS = 1_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class RefusalPacer {
  private readonly buckets = new LRUCache<string, Bucket>({ max: 10_000 });

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** How long to hold this client's refusal before sending it: 0, or HELD_REFUSAL_MS. */
  delayFor(client: string): number {
    const now = this.now();
    const bucket = this.buckets.get(client) ?? { tokens: IMMEDIATE_REFUSALS, at: now };
    bucket.tokens = Math.min(IMMEDIATE_REFUSALS, bucket.tokens + ((now - bucket.at) / 1000) * IMMEDIATE_REFUSALS);
    bucket.at = now;
    this.buckets.set(client, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return HELD_REFUSAL_MS;
  }
}
