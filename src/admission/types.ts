/**
 * The vocabulary of admission: every render on a machine (a miss, an upload's
 * preparation, background work) asks one broker for a slot first. The broker
 * runs in the cluster primary (or in-process when there is no cluster).
 */
import type { ErrorCode } from '../errors.js';

/** Foreground: a client is waiting. Background: work done after an answer (never ahead of foreground). */
export type Priority = 'foreground' | 'background';

/** What a render asks the broker for. */
export interface AdmissionRequest {
  priority: Priority;
  /**
   * The variant key: identical requests render once per machine (single
   * flight), and a key whose render failed is refused at once for a while.
   */
  key?: string;
  /** May this request wait for another's render of the same key instead of rendering? */
  joinable?: boolean;
  /** Who asked (an IP): no client holds more than its share of the slots while others wait. */
  client: string;
  /** Cost class for the wait estimate, e.g. `render:jpeg:20` (format, log2 of output pixels). */
  cost: string;
}

/** How a render that held a slot ended. */
export interface RenderOutcome {
  /** Time the render took on its thread, for the wait estimate. */
  ms: number;
  /** Set when it failed; `remember` puts the key in the negative cache. */
  error?: { code: ErrorCode; remember: boolean };
}

/** How the render another request was waiting for ended. */
export type FlightEnd =
  | { kind: 'stored' }
  | { kind: 'unstored' }
  | { kind: 'failed'; code: ErrorCode };

/** The broker's answer to an admission request. */
export type Admission =
  | { kind: 'granted'; ticket: Ticket }
  | { kind: 'joined'; end: Promise<FlightEnd> }
  | { kind: 'refused'; code: 'OVERLOADED'; retryAfterMs: number; reason: string }
  | { kind: 'failed'; code: ErrorCode };

/** A granted slot. Release it when the render ends; a flight leader settles the flight once the result is stored. */
export interface Ticket {
  release(outcome: RenderOutcome): void;
  /**
   * The result is in the render cache (or could not be stored). Told to the
   * broker only when others joined this render (they then look it up).
   */
  settle(stored: boolean): void;
}

/** The admission point a worker talks to. */
export interface Admitter {
  /** With `signal`, a request still waiting gives up when it aborts. */
  admit(request: AdmissionRequest, signal?: AbortSignal): Promise<Admission>;
  stats(): Promise<AdmissionStats>;
  close(): void;
}

/** Machine-wide numbers for /metrics. */
export interface AdmissionStats {
  slots: number;
  inUse: number;
  queuedForeground: number;
  queuedBackground: number;
  /** What a foreground render arriving now would wait, estimated from recent render times. */
  waitEstimateMs: number;
  granted: number;
  refused: number;
  droppedBackground: number;
  joined: number;
  negativeHits: number;
}

/** The broker's settings (from config.pool). */
export interface BrokerSettings {
  /** Render slots of the machine. */
  slots: number;
  /** Hard cap on foreground renders waiting, machine-wide. */
  queueLimit: number;
  /** A foreground render is refused when it would wait longer than this before starting. */
  queueWaitMs: number;
  /** Background renders waiting beyond this are dropped. */
  backgroundLimit: number;
  /** How long a failed render's key is answered with its error at once. */
  negativeTtlMs: number;
  /** Entries of the negative cache. */
  negativeEntries: number;
}
