/**
 * What every scenario is given: the settings, the progress line, a temp
 * folder, the input photos, the collector of measurements, and a registry of
 * the processes started so far, so an error or Ctrl-C stops all of them.
 */
import type { Collector } from '../lib/rounds.js';
import type { Progress } from '../lib/progress.js';
import type { BenchSettings } from '../lib/settings.js';

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
export async function settleAll(starts: readonly Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
