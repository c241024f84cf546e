/**
 * What every scenario is given: the settings, the progress line, a temp
 * folder, the input photos, the collector of measurements, and a registry of
 * the processes started so far, so an error or Ctrl-C stops all of them.
 */
import type { Collector } from '../lib/rounds.js';
import type { Progress } from '../lib/progress.js';
import type { BenchSettings } from '../lib/settings.js';
import type { startNodePeer } from '../peers/launch.js';

/** An input held in memory and written to a file (for child processes). */
export interface Input {
  bytes: Uint8Array;
  file: string;
  describe: string;
}

export interface Stoppable {
  stop(): Promise<void>;
}

/** Processes (and servers) started by the benchmark, stopped in reverse order. */
export class Resources {
  private readonly live: Stoppable[] = [];

  /** Registers something to stop later; returns it. */
  track<T extends Stoppable>(thing: T): T {
    this.live.push(thing);
    return thing;
  }

  /** Stops one tracked thing now. */
  async release(thing: Stoppable): Promise<void> {
    const i = this.live.indexOf(thing);
    if (i !== -1) this.live.splice(i, 1);
    await thing.stop();
  }

  /** Stops everything still running; errors are reported, not thrown. */
  async stopAll(): Promise<void> {
    while (this.live.length > 0) {
      const thing = this.live.pop() as Stoppable;
      await thing.stop().catch((error: unknown) => console.error('stopping a benchmark process failed:', error));
    }
  }
}

export interface BenchContext {
  settings: BenchSettings;
  progress: Progress;
  /** A temp folder for this run, removed at the end. */
  root: string;
  /** The 2725x2225 photo-like JPEG every render starts from. */
  photo: Input;
  /** The ~1 MB JPEG of the upload scenario. */
  uploadPhoto: Input;
  collector: Collector;
  resources: Resources;
  /** Lines for the summary (what was skipped and why, what was chosen). */
  notes: string[];
}

/** Starts something, registers it, and returns it. */
export async function started<T extends Stoppable>(ctx: BenchContext, start: Promise<T>): Promise<T> {
  return ctx.resources.track(await start);
}

/**
 * Waits for every start to finish, then throws the first failure, if any.
 * Starting in parallel saves seconds; waiting for all before throwing makes
 * sure every process that did start is registered, so it will be stopped.
 */
async function settleAll(starts: readonly Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Starts the contenders of a scenario at once (each registered as it comes up),
 * waits for all of them, and returns them by name; throws the first failure once
 * every start has finished. An entry may be `undefined` (a contender this machine lacks).
 */
export async function startContenders<T extends Record<string, Promise<Stoppable | undefined>>>(ctx: BenchContext, starts: T): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
  const tracked = Object.fromEntries(
    Object.entries(starts).map(([name, start]) => [name, start.then((item) => (item === undefined ? undefined : ctx.resources.track(item)))]),
  );
  await settleAll(Object.values(tracked));
  const out: Record<string, unknown> = {};
  for (const [name, start] of Object.entries(tracked)) out[name] = await start;
  return out as { [K in keyof T]: Awaited<T[K]> };
}

/** The Node peer as every scenario starts it: the service's default worker split, the photo (and `originals`, for the corpus). */
export function nodePeerOptions(ctx: BenchContext, originals?: Parameters<typeof startNodePeer>[0]['originals']): Parameters<typeof startNodePeer>[0] {
  return { root: ctx.root, workers: ctx.settings.defaultSplit.workers, photo: ctx.photo.bytes, ...(originals ? { originals } : {}) };
}

