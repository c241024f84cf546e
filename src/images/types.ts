/** What the use cases need (interfaces only) and what they answer. */
import type { Config } from '../config/types.js';
import type { ClientHints } from './client-hints.js';
import type { Validators } from './etags.js';
import type { Logger } from '../log.js';
import type { Renders } from './renders.js';
import type { ObjectStorage } from '../storage/types.js';
import type { Store } from '../store/types.js';

/** Counters the use cases report; metrics.ts implements them with prom-client. */
export interface ImageEvents {
  cache(outcome: 'hit' | 'miss' | 'redirect'): void;
  render(format: string, fit: string, seconds: number): void;
  upload(bytes: number): void;
  token(event: 'issued' | 'consumed'): void;
  /** A background render was dropped (the machine sheds, or its queue is full). */
  backgroundDropped(): void;
  /** What a render read: the original, or the working copy of a level. */
  renderSource(source: 'original' | `copy-${number}`): void;
  /** The copies of an original were decided: made (with their bytes), none needed, dropped under load, or failed. */
  workingCopies(outcome: 'made' | 'none' | 'dropped' | 'failed', bytes: number): void;
  /** A pre-render after an upload ended so. */
  prerender(outcome: 'stored' | 'cached' | 'dropped' | 'failed'): void;
}

export const NO_EVENTS: ImageEvents = { cache() {}, render() {}, upload() {}, token() {}, backgroundDropped() {}, renderSource() {}, workingCopies() {}, prerender() {} };

export interface ImageDeps {
  config: Config;
  store: Store;
  /** Where originals live (a folder, or S3 with aws.store_originals). */
  originals: ObjectStorage;
  /** The render cache (a folder, or S3). */
  cache: ObjectStorage;
  /** Renders under the machine's admission. */
  renders: Renders;
  log: Logger;
  events?: ImageEvents;
  now?: () => Date;
}

/** Headers for an image answer; the HTTP layer adds the common ones. */
export type Headers = Record<string, string>;

/**
 * What the HTTP layer writes for an image request. `after` runs once the
 * response is out (a 304 included): storing a miss, queueing a deferred AVIF.
 */
export type ImageReply =
  | { type: 'redirect'; location: string; headers: Headers; after?: () => Promise<void> }
  | { type: 'file'; path: string; size: number; contentType: string; headers: Headers; validators?: Validators; stale?: () => Promise<ImageReply>; after?: () => Promise<void> }
  | {
      type: 'bytes';
      data: Uint8Array;
      contentType: string;
      headers: Headers;
      validators?: Validators;
      after?: () => Promise<void>;
      /** Runs instead of `after` when the client went away before the answer. */
      abandon?: () => void;
    }
  | { type: 'head'; contentType: string; size?: number; headers: Headers; validators?: Validators; after?: () => Promise<void> };

/** The per-request facts the use cases need, copied out of the HTTP request. */
export interface RequestContext {
  method: 'GET' | 'HEAD';
  accept: string;
  /** Client Hints read at the edge (only used with client_hints on). */
  hints?: ClientHints;
  freshnessToken: string;
  /** The raw query string, kept for redirects. */
  query: string;
  /** Who asked (an IP), for fair admission to the render slots. */
  client: string;
  /** Aborts when the client goes away: a render still waiting for a slot gives up. */
  signal?: AbortSignal;
}
