/**
 * One HTTP exchange over uWS: abort tracking (registered before any await),
 * corked writes, backpressure-aware bodies, the error table and the request log line.
 */
import { STATUS_CODES } from 'node:http';
import { ImageError, publicMessage, toImageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HttpResponse } from './uws.js';

export type HeaderMap = Record<string, string>;

/** Headers every response carries. No cookies are used, so any origin may read the answers. */
const COMMON: HeaderMap = { 'X-Content-Type-Options': 'nosniff', 'Access-Control-Allow-Origin': '*' };

function statusLine(status: number): string {
  return `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;
}

/** Counts exchanges in flight, so a drain can wait for them. */
export class InFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.count;
  }

  enter(): void {
    this.count++;
  }

  leave(): void {
    this.count--;
    if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves when nothing is in flight, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

export class Exchange {
  aborted = false;
  /** Refused at the door (oversized headers): the route does nothing more. */
  oversized = false;
  private finished = false;
  private status = 0;
  private readonly started = performance.now();
  /** Extra fields for the request log line (cache outcome, id). */
  readonly logFields: Record<string, unknown> = {};
  private abortHandlers: (() => void)[] = [];
  /** Told of every finished exchange (metrics). */
  observer: ((method: string, path: string, status: number) => void) | undefined;

  constructor(
    readonly res: HttpResponse,
    readonly method: string,
    readonly path: string,
    private readonly log: Logger,
    private readonly inflight: InFlight,
  ) {
    inflight.enter();
    // uWS requires the abort handler before the first await.
    res.onAborted(() => {
      this.aborted = true;
      for (const handler of this.abortHandlers) handler();
      this.done(499);
    });
  }

  onAbort(handler: () => void): void {
    this.abortHandlers.push(handler);
  }

  private done(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.status = status;
    this.inflight.leave();
    this.observer?.(this.method, this.path, status);
    const ms = Math.round((performance.now() - this.started) * 10) / 10;
    this.log.info({ method: this.method, path: this.path, status, ms, ...this.logFields }, 'request');
  }

  private writeHead(status: number, headers: HeaderMap): void {
    this.res.writeStatus(statusLine(status));
    for (const [name, value] of Object.entries(COMMON)) this.res.writeHeader(name, value);
    for (const [name, value] of Object.entries(headers)) this.res.writeHeader(name, value);
  }

  /** Writes a complete small response. */
  send(status: number, headers: HeaderMap, body: string | Uint8Array = '', closeConnection = false): void {
    if (this.aborted || this.finished) return;
    this.res.cork(() => {
      this.writeHead(status, headers);
      this.res.end(body, closeConnection);
    });
    this.done(status);
  }

  /** Headers only (HEAD): the length is reported, no body is sent. */
  sendHead(status: number, headers: HeaderMap, length?: number): void {
    if (this.aborted || this.finished) return;
    this.res.cork(() => {
      this.writeHead(status, headers);
      if (length === undefined) this.res.endWithoutBody();
      else this.res.endWithoutBody(length);
    });
    this.done(status);
  }

  /** Streams a body with backpressure: tryEnd, then onWritable for the rest. */
  sendBody(status: number, headers: HeaderMap, body: Uint8Array): void {
    if (this.aborted || this.finished) return;
    const total = body.byteLength;
    this.res.cork(() => {
      this.writeHead(status, headers);
      const start = this.res.getWriteOffset();
      const [ok, done] = this.res.tryEnd(body, total);
      if (done) return this.done(status);
      if (!ok) {
        this.res.onWritable((offset) => {
          if (this.aborted) return true;
          const [retryOk, retryDone] = this.res.tryEnd(body.subarray(offset - start), total);
          if (retryDone) this.done(status);
          return retryOk;
        });
      }
    });
  }

  /** Closes the connection without an answer (request smuggling). */
  drop(reason: string): void {
    if (this.aborted || this.finished) return;
    this.logFields.code = 'BAD_REQUEST';
    this.logFields.detail = reason;
    this.res.close();
  }

  json(status: number, value: unknown, headers: HeaderMap = {}): void {
    this.send(status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));
  }

  /** The one place an error becomes a status and a public message. */
  fail(error: unknown, closeConnection = false): void {
    const coded = toImageError(error);
    const status = coded.status;
    // Shedding load (503/504) is expected: a cheap field on the request line, not a stack trace.
    if (coded.code === 'INTERNAL') this.log.error({ err: error, code: coded.code, detail: coded.detail, path: this.path }, 'request failed');
    this.logFields.code = coded.code;
    if (coded.detail && coded.code !== 'INTERNAL') this.logFields.detail = coded.detail;
    const headers: HeaderMap = {};
    if (coded.code === 'OVERLOADED' || coded.code === 'UNAVAILABLE') headers['Retry-After'] = '1';
    // After a refused body the connection may hold unread bytes: close it.
    const close = closeConnection || coded.code === 'PAYLOAD_TOO_LARGE';
    if (this.aborted || this.finished) return;
    this.res.cork(() => {
      this.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      this.res.end(JSON.stringify({ error: publicMessage(coded), code: coded.code }), close);
    });
    this.done(status);
  }
}

export { ImageError };
