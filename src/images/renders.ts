/**
 * Renders under the machine's admission: every render takes a slot from the
 * broker first (whichever process received the request), runs on this
 * process' pool, and gives the slot back with its time (for the wait
 * estimate) and, on failure, whether its key should be refused for a while.
 * The input is read only once a slot is granted: a refused render costs no I/O.
 */
import { ImageError, toImageError, type ErrorCode } from '../errors.js';
import type { Admitter, FlightEnd, Priority } from '../admission/types.js';
import type { PreparedOriginal, RenderResult, SummarisedOriginal } from '../render/engine.js';
import type { RenderPool } from '../render/pool.js';
import type { PrepareOptions, RenderOptions } from '../render/options.js';

/**
 * Failures a repeat of the same render would meet again: answered at once for a while.
 * ENCODE_FAILED is among them although it is the service's failure, not the input's: the
 * realistic cause is a format's own limit (WebP holds 16383 px a side), which the same
 * render meets every time, and decoding a large original again and again to learn that
 * is the kind of repeatable cost a client must not be able to buy.
 */
const REMEMBERED: ReadonlySet<ErrorCode> = new Set(['TIMEOUT', 'TOO_MANY_PIXELS', 'CORRUPT_IMAGE', 'CORRUPT_ORIGINAL', 'UNSUPPORTED_FORMAT', 'ENCODE_FAILED']);

/** What admission needs to know of a render. */
export interface RenderJob {
  priority: Priority;
  /** Who asked, for fairness. */
  client: string;
  /** The cost class (see {@link costClass}). */
  cost: string;
  /** The variant key, for single flight and the negative cache; none for fresh renders. */
  key?: string;
  /** Whether this job may wait for another process' render of the key. */
  joinable?: boolean;
  /** The client went away: a job still waiting gives up. */
  signal?: AbortSignal;
  /** False: a failure is not put in the negative cache (a render from a working copy that may be broken). */
  remember?: boolean;
}

/** A render that ran here; `settle` tells those who joined that its result is stored (or not). */
export interface Rendered {
  kind: 'rendered';
  result: RenderResult;
  settle(stored: boolean): void;
}

/** Another process rendered this key; its outcome. */
export interface Joined {
  kind: 'joined';
  end: FlightEnd;
}

/** The cost class of a render: its kind, format and the order of magnitude of its output pixels. */
export function costClass(kind: string, format: string, pixels: number): string {
  return `${kind}:${format}:${Math.max(0, Math.ceil(Math.log2(Math.max(1, pixels))))}`;
}

function refusal(retryAfterMs: number, reason: string): ImageError {
  return new ImageError('OVERLOADED', 'The render queue is full', { detail: reason, retryAfterSeconds: Math.ceil(retryAfterMs / 1000) });
}

/** A remembered failure: the same code, without doing the work again. */
function remembered(code: ErrorCode): ImageError {
  return new ImageError(code, `This render failed recently (${code}); it is not tried again for a while`);
}

export class Renders {
  constructor(
    private readonly pool: RenderPool,
    private readonly admitter: Admitter,
  ) {}

  /** Renders `input()` with `options` once admitted, or reports that another process rendered the key. */
  async render(input: () => Promise<Uint8Array>, options: RenderOptions, job: RenderJob, mapError?: (error: ImageError) => ImageError): Promise<Rendered | Joined> {
    const admission = await this.admitter.admit(
      { priority: job.priority, client: job.client, cost: job.cost, ...(job.key !== undefined ? { key: job.key, joinable: job.joinable ?? true } : {}) },
      job.signal,
    );
    switch (admission.kind) {
      case 'refused':
        throw refusal(admission.retryAfterMs, admission.reason);
      case 'failed':
        throw remembered(admission.code);
      case 'joined':
        return { kind: 'joined', end: await admission.end };
      case 'granted':
        break;
    }
    const { ticket } = admission;
    const started = performance.now();
    try {
      const result = await this.pool.render(await input(), options);
      ticket.release({ ms: performance.now() - started });
      return { kind: 'rendered', result, settle: (stored) => ticket.settle(stored) };
    } catch (error) {
      const coded = mapError ? mapError(toImageError(error)) : toImageError(error);
      ticket.release({ ms: performance.now() - started, error: { code: coded.code, remember: job.remember !== false && REMEMBERED.has(coded.code) } });
      throw coded;
    }
  }

  /**
   * Runs `work` on the pool under one background slot (for work that is not
   * one render, such as making working copies). `key` makes it once per
   * machine: 'joined' when another process is doing it. Refused while the
   * machine sheds: throws OVERLOADED.
   */
  async runInBackground<T>(job: { cost: string; key: string }, work: (pool: RenderPool) => Promise<T>): Promise<T | 'joined'> {
    const admission = await this.admitter.admit({ priority: 'background', client: 'background', cost: job.cost, key: job.key, joinable: true });
    if (admission.kind === 'refused') throw refusal(admission.retryAfterMs, admission.reason);
    if (admission.kind === 'joined') {
      await admission.end;
      return 'joined';
    }
    if (admission.kind === 'failed') throw remembered(admission.code);
    const started = performance.now();
    try {
      const result = await work(this.pool);
      admission.ticket.release({ ms: performance.now() - started });
      admission.ticket.settle(true);
      return result;
    } catch (error) {
      admission.ticket.release({ ms: performance.now() - started, error: { code: toImageError(error).code, remember: false } });
      throw error;
    }
  }

  /** Checks and prepares an upload in the pool, under a foreground slot. */
  prepareOriginal(input: Uint8Array, options: PrepareOptions, job: { client: string }): Promise<PreparedOriginal> {
    return this.unkeyed('prepare', input.byteLength, job.client, () => this.pool.prepareOriginal(input, options));
  }

  /** Summarises a stored original in the pool (its first GET /{id}.json), under a foreground slot. */
  summarise(input: () => Promise<Uint8Array>, options: { maxInputPixels: number; maxPages: number; timeoutMs: number }, job: { client: string; bytes: number }): Promise<SummarisedOriginal> {
    return this.unkeyed('summarise', job.bytes, job.client, async () => this.pool.summarise(await input(), options));
  }

  /** Pool work that no other request can share (no key): admitted, run, released. */
  private async unkeyed<T>(kind: string, bytes: number, client: string, work: () => Promise<T>): Promise<T> {
    const admission = await this.admitter.admit({ priority: 'foreground', client, cost: costClass(kind, 'any', bytes * 8) });
    if (admission.kind === 'refused') throw refusal(admission.retryAfterMs, admission.reason);
    if (admission.kind !== 'granted') throw new ImageError('INTERNAL', `An unkeyed admission was ${admission.kind}`);
    const started = performance.now();
    try {
      const done = await work();
      admission.ticket.release({ ms: performance.now() - started });
      return done;
    } catch (error) {
      admission.ticket.release({ ms: performance.now() - started, error: { code: toImageError(error).code, remember: false } });
      throw error;
    }
  }
}
