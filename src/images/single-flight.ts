/** Identical concurrent work in one process runs once; every caller gets its result. */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Runs `work` for `key` unless it is already running, in which case it joins it. */
  run(key: string, work: () => Promise<T>): { promise: Promise<T>; leader: boolean } {
    const existing = this.inflight.get(key);
    if (existing) return { promise: existing, leader: false };
    const promise = work().finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return { promise, leader: true };
  }
}
