/** The messages between the pool (main thread) and its worker threads. */
import type { ErrorCode } from '../errors.js';
import type { PreparedOriginal, RenderResult, SummarisedOriginal } from './engine.js';
import type { NativeRenderOptions, ProbeResult } from './native.js';
import type { PrepareOptions } from './options.js';

export type WorkerTask =
  | { op: 'render'; input: Uint8Array; options: NativeRenderOptions }
  | { op: 'probe'; input: Uint8Array }
  | { op: 'prepare'; input: Uint8Array; options: PrepareOptions }
  | { op: 'summarise'; input: Uint8Array; options: { maxInputPixels: number; maxPages: number; timeoutMs: number } }
  | { op: 'ping' };

export type WorkerReply =
  | { ok: true; op: 'render'; value: RenderResult }
  | { ok: true; op: 'probe'; value: ProbeResult }
  | { ok: true; op: 'prepare'; value: PreparedOriginal }
  | { ok: true; op: 'summarise'; value: SummarisedOriginal }
  | { ok: true; op: 'ping'; value: null }
  | { ok: false; error: { code: ErrorCode; message: string; detail: string | undefined } };
