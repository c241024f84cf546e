/**
 * The render pool: piscina threads calling the addon, with a bounded queue and
 * two timeouts. The deadline inside libvips (the addon kills the image) is the
 * real one; the pool's abort at timeout + grace replaces a thread that is
 * stuck anyway, so the pool keeps serving.
 *
 * The queue is ours, not piscina's: piscina does not count abortable tasks
 * against its maxQueue, and a task must only be timed from the moment it runs.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { ImageError, toImageError } from '../errors.js';
import type { PreparedOriginal, RenderResult, SummarisedOriginal } from './engine.js';
import type { ProbeResult } from './native.js';
import { normalizeRenderOptions, type PrepareOptions, type RenderOptions } from './options.js';
import type { WorkerReply, WorkerTask } from './protocol.js';

/** Settings for `createRenderPool`; each has a default. */
export interface RenderPoolOptions {
  /** Threads; default: available cores. */
  size?: number;
  /** Renders waiting beyond the running ones before OVERLOADED; default size². */
  queueLimit?: number;
  /** The longest render, ms; default 10 000. 0 means none. */
  timeoutMs?: number;
  /** libvips threads per image; default 1. */
  vipsConcurrency?: number;
  /** How long past timeoutMs the pool waits before replacing a thread; default 1 000. */
  graceMs?: number;
}

/** Live numbers for metrics. */
export interface RenderPoolStats {
  size: number;
  queueLimit: number;
  /** Tasks waiting for a thread. */
  queued: number;
  /** Tasks running on a thread. */
  running: number;
  /** Share of thread time spent on tasks since start, 0..1. */
  utilization: number;
  completed: number;
}

/**
 * A pool of render threads. Inputs that own their whole ArrayBuffer are
 * transferred to the thread (detached afterwards); inputs in a
 * SharedArrayBuffer are shared without a copy; others are copied.
 */
export interface RenderPool {
  readonly options: Readonly<Required<RenderPoolOptions>>;
  /** Resolves once every thread has loaded the addon. */
  ready(): Promise<void>;
  render(input: Uint8Array, options?: RenderOptions): Promise<RenderResult>;
  probe(input: Uint8Array): Promise<ProbeResult>;
  prepareOriginal(input: Uint8Array, options: PrepareOptions): Promise<PreparedOriginal>;
  /** The summary (dominant colour, BlurHash, LQIP) of a stored original. */
  summarise(input: Uint8Array, options: { maxInputPixels: number; maxPages: number; timeoutMs?: number }): Promise<SummarisedOriginal>;
  stats(): RenderPoolStats;
  /** False when a new task would be refused with OVERLOADED right now. */
  hasRoom(): boolean;
  close(): Promise<void>;
}

/** Fills the defaults: size = cores, queueLimit = size², timeout 10 s, one libvips thread. */
export function resolvePoolOptions(options: RenderPoolOptions = {}): Required<RenderPoolOptions> {
  const size = options.size ?? availableParallelism();
  return {
    size,
    queueLimit: options.queueLimit ?? size * size,
    timeoutMs: options.timeoutMs ?? 10_000,
    vipsConcurrency: options.vipsConcurrency ?? 1,
    graceMs: options.graceMs ?? 1_000,
  };
}

function checkPoolOptions(options: Required<RenderPoolOptions>): void {
  const rules: [keyof RenderPoolOptions, number][] = [
    ['size', 1],
    ['queueLimit', 0],
    ['timeoutMs', 0],
    ['vipsConcurrency', 1],
    ['graceMs', 0],
  ];
  for (const [name, min] of rules) {
    const value = options[name];
    if (!Number.isInteger(value) || value < min) {
      throw new ImageError('BAD_OPTION', `Expected an integer of at least ${min} for ${name} but received ${value}`);
    }
  }
}

/**
 * Moves the input to the thread when it owns its whole buffer, shares it when
 * it lives in a SharedArrayBuffer (the caller must not change it until the
 * task settles), and otherwise sends a copy.
 */
function transferable(input: Uint8Array): Uint8Array {
  if (!(input instanceof Uint8Array)) throw new ImageError('BAD_OPTION', `Expected a Uint8Array for input but received ${typeof input}`);
  if (isShared(input)) return input;
  const owns = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
  return owns && input.buffer instanceof ArrayBuffer ? input : input.slice();
}

function isShared(input: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && input.buffer instanceof SharedArrayBuffer;
}

/** A FIFO of tasks waiting for one of `size` slots, refusing beyond `limit` waiters. */
class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly size: number,
    private readonly limit: number,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get full(): boolean {
    return this.running >= this.size && this.waiting.length >= this.limit;
  }

  async acquire(): Promise<void> {
    if (this.running < this.size) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.limit) throw new ImageError('OVERLOADED', 'The render queue is full');
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  // Hands the slot straight to the next waiter, if any.
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

/** Creates a pool of render threads over the native addon. */
export function createRenderPool(options: RenderPoolOptions = {}): RenderPool {
  const settings = Object.freeze(resolvePoolOptions(options));
  checkPoolOptions(settings);
  const piscina = new Piscina({
    filename: new URL('./worker.js', import.meta.url).href,
    minThreads: settings.size,
    maxThreads: settings.size,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: { vipsConcurrency: settings.vipsConcurrency },
  });
  const slots = new Slots(settings.size, settings.queueLimit);
  // Thread start-up (loading the addon and libvips) must not count against a
  // task's backstop: on a busy machine it alone can take longer than a short timeout.
  const warm = Promise.all(Array.from({ length: settings.size }, () => piscina.run({ op: 'ping' } satisfies WorkerTask))).then(() => undefined);
  warm.catch(() => undefined);

  async function dispatch(task: WorkerTask, timeoutMs: number): Promise<WorkerReply> {
    await slots.acquire();
    try {
      await warm;
      // The backstop starts when the task gets a thread, not while it waits.
      const signal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs + settings.graceMs) : undefined;
      const transferList = 'input' in task && !isShared(task.input) ? [task.input.buffer as ArrayBuffer] : [];
      return (await piscina.run(task, { transferList, ...(signal ? { signal } : {}) })) as WorkerReply;
    } catch (error) {
      if ((error as { name?: string } | null)?.name === 'AbortError') {
        throw new ImageError('TIMEOUT', `The render took longer than ${timeoutMs} ms`);
      }
      throw toImageError(error);
    } finally {
      slots.release();
    }
  }

  function unwrap<T>(reply: WorkerReply): T {
    if (!reply.ok) throw new ImageError(reply.error.code, reply.error.message, { detail: reply.error.detail });
    return reply.value as T;
  }

  // A request's own deadline may be shorter than the pool's, never longer.
  function effectiveTimeout(requested: number | undefined): number {
    if (!requested) return settings.timeoutMs;
    return settings.timeoutMs > 0 ? Math.min(requested, settings.timeoutMs) : requested;
  }

  return {
    options: settings,
    ready: () => warm,
    async render(input, renderOptions = {}) {
      const normalized = normalizeRenderOptions(renderOptions);
      normalized.timeoutMs = effectiveTimeout(normalized.timeoutMs);
      const reply = await dispatch({ op: 'render', input: transferable(input), options: normalized }, normalized.timeoutMs);
      return unwrap<RenderResult>(reply);
    },
    async probe(input) {
      return unwrap<ProbeResult>(await dispatch({ op: 'probe', input: transferable(input) }, settings.timeoutMs));
    },
    async prepareOriginal(input, prepareOptions) {
      const timeoutMs = effectiveTimeout(prepareOptions.timeoutMs);
      const task: WorkerTask = { op: 'prepare', input: transferable(input), options: { ...prepareOptions, timeoutMs } };
      return unwrap<PreparedOriginal>(await dispatch(task, timeoutMs));
    },
    async summarise(input, summaryOptions) {
      const timeoutMs = effectiveTimeout(summaryOptions.timeoutMs);
      const task: WorkerTask = { op: 'summarise', input: transferable(input), options: { ...summaryOptions, timeoutMs } };
      return unwrap<SummarisedOriginal>(await dispatch(task, timeoutMs));
    },
    stats() {
      return {
        size: settings.size,
        queueLimit: settings.queueLimit,
        queued: slots.queued,
        running: slots.active,
        utilization: piscina.utilization,
        completed: piscina.completed,
      };
    },
    hasRoom: () => !slots.full,
    async close() {
      await piscina.destroy();
    },
  };
}
