/**
 * One HTTP exchange over uWS, with one lifecycle: open → answered → finished.
 * Once answered (or aborted), the body reader stops and every cleanup
 * registered with `onSettle` runs (temp files go); once finished, nothing
 * touches the uWS response again. An answer given while the request body is
 * still arriving lingers: the status goes out at once, the rest of the body is
 * read and thrown away (up to a bound), and only then does the response end,
 * so a client that is still sending can read the answer.
 */
import { STATUS_CODES } from 'node:http';
import { ImageError, publicMessage, toImageError } from '../errors.js';
import type { Logger } from '../log.js';
import { RequestBody, type DiscardBound } from './body.js';
import type { HttpResponse } from './uws.js';

export type HeaderMap = Record<string, string>;

/** Headers every response carries. No cookies are used, so any origin may read the answers. */
const COMMON: HeaderMap = { 'X-Content-Type-Options': 'nosniff', 'Access-Control-Allow-Origin': '*' };

/** How long a refused upload whose body went past the bound is held, unread, before its connection is closed. */
const CLOSE_DELAY_MS = 1_000;

/** The longest path written to a log line: a refused 20 KB path is not logged whole. */
const LOGGED_PATH_CHARS = 256;

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
  /** Refused at the door (oversized or malformed headers): the route does nothing more. */
  oversized = false;
  /** Answered or aborted: body readers stop, cleanups have run. */
  private answered = false;
  /** The uWS response is ended or gone: it must not be touched again. */
  private finished = false;
  private readingPaused = false;
  private readonly started = performance.now();
  /** Extra fields for the request log line (cache outcome, id). */
  readonly logFields: Record<string, unknown> = {};
  private settleHandlers: (() => void)[] = [];
  private body: RequestBody | undefined;
  private discardBound: DiscardBound = { bytes: 0, ms: 0 };
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
      this.finished = true;
      this.body?.stop();
      this.settle();
      this.done(499);
    });
  }

  /** True once answered or aborted: whoever still works on the request should stop. */
  get settled(): boolean {
    return this.answered || this.aborted;
  }

  /**
   * Starts reading the request body (call synchronously in the route). A
   * refusal while it still arrives reads and drops at most `bound` of it.
   */
  acceptBody(bound: DiscardBound): RequestBody {
    this.discardBound = bound;
    this.body ??= new RequestBody(this);
    return this.body;
  }

  /** Runs `handler` once, when the exchange is answered or aborted (stop readers, remove temp files). */
  onSettle(handler: () => void): void {
    if (this.settled) handler();
    else this.settleHandlers.push(handler);
  }

  /** Stops reading the socket; a no-op once the response is finished. */
  pauseReading(): void {
    if (this.finished || this.readingPaused) return;
    this.readingPaused = true;
    this.res.pause();
  }

  resumeReading(): void {
    if (this.finished || !this.readingPaused) return;
    this.readingPaused = false;
    this.res.resume();
  }

  private settle(): void {
    this.answered = true;
    for (const handler of this.settleHandlers.splice(0)) handler();
  }

  private done(status: number): void {
    if (this.doneStatus !== undefined) return;
    this.doneStatus = status;
    this.inflight.leave();
    this.observer?.(this.method, this.path, status);
    const ms = Math.round((performance.now() - this.started) * 10) / 10;
    const path = this.path.length > LOGGED_PATH_CHARS ? `${this.path.slice(0, LOGGED_PATH_CHARS)}…` : this.path;
    this.log.info({ method: this.method, path, status, ms, ...this.logFields }, 'request');
  }

  private doneStatus: number | undefined;

  /**
   * Claims the response for an answer: false when it was answered or is gone.
   * A socket left paused (a body reader's backpressure) is resumed: uWS keeps
   * the pause on the connection, and the next request on it would never be read.
   */
  private claim(): boolean {
    if (this.answered || this.finished) return false;
    this.settle();
    this.resumeReading();
    return true;
  }

  private writeHead(status: number, headers: HeaderMap): void {
    this.res.writeStatus(statusLine(status));
    for (const [name, value] of Object.entries(COMMON)) this.res.writeHeader(name, value);
    for (const [name, value] of Object.entries(headers)) this.res.writeHeader(name, value);
  }

  /** Ends the uWS response; nothing touches it afterwards. */
  private end(status: number, body: string | Uint8Array, closeConnection: boolean): void {
    this.finished = true;
    this.res.cork(() => this.res.end(body, closeConnection));
    this.done(status);
  }

  /** Writes a complete small response. */
  send(status: number, headers: HeaderMap, body: string | Uint8Array = '', closeConnection = false): void {
    if (!this.claim()) return;
    if (this.body && !this.body.done) return this.linger(status, headers, body);
    this.finished = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      this.res.end(body, closeConnection);
    });
    this.done(status);
  }

  /**
   * The answer goes out now, chunked and marked `Connection: close`; the rest of
   * the request body is read and dropped. Once it is all in, the response ends
   * (the client closes, as told); past the bound the connection is closed.
   */
  private linger(status: number, headers: HeaderMap, body: string | Uint8Array): void {
    const requestBody = this.body as RequestBody;
    this.res.cork(() => {
      this.writeHead(status, { ...headers, Connection: 'close' });
      this.res.write(body);
    });
    requestBody.discard(this.discardBound, (reason) => {
      if (this.finished) return;
      if (reason === 'complete') return this.end(status, '', false);
      // Past the bound: stop reading, and close a moment later. Closing with unread bytes
      // resets the connection, and a reset makes the client's kernel drop what it has not
      // read yet: the pause gives the client time to read the answer first.
      this.pauseReading();
      setTimeout(() => {
        if (this.finished) return;
        this.finished = true;
        this.done(status);
        this.res.close();
      }, CLOSE_DELAY_MS);
    });
  }

  /** Headers only (HEAD): the length is reported, no body is sent. */
  sendHead(status: number, headers: HeaderMap, length?: number): void {
    if (!this.claim()) return;
    this.finished = true;
    this.res.cork(() => {
      this.writeHead(status, headers);
      if (length === undefined) this.res.endWithoutBody();
      else this.res.endWithoutBody(length);
    });
    this.done(status);
  }

  /** Streams a body with backpressure: tryEnd, then onWritable for the rest. */
  sendBody(status: number, headers: HeaderMap, body: Uint8Array): void {
    if (!this.claim()) return;
    const total = body.byteLength;
    this.res.cork(() => {
      this.writeHead(status, headers);
      const start = this.res.getWriteOffset();
      const [ok, done] = this.res.tryEnd(body, total);
      if (done) {
        this.finished = true;
        return this.done(status);
      }
      if (!ok) {
        this.res.onWritable((offset) => {
          if (this.aborted) return true;
          const [retryOk, retryDone] = this.res.tryEnd(body.subarray(offset - start), total);
          if (retryDone) {
            this.finished = true;
            this.done(status);
          }
          return retryOk;
        });
      }
    });
  }

  /** Closes the connection without an answer (request smuggling). */
  drop(reason: string): void {
    if (!this.claim()) return;
    this.logFields.code = 'BAD_REQUEST';
    this.logFields.detail = reason;
    this.finished = true;
    this.res.close();
  }

  json(status: number, value: unknown, headers: HeaderMap = {}): void {
    this.send(status, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));
  }

  /** The one place an error becomes a status and a public message. */
  fail(error: unknown, closeConnection = false): void {
    const coded = toImageError(error);
    if (this.settled) return;
    // Shedding load (503/504) is expected: a cheap field on the request line, not a stack trace.
    if (coded.status >= 500 && coded.code !== 'OVERLOADED' && coded.code !== 'UNAVAILABLE' && coded.code !== 'TIMEOUT') {
      this.log.error({ err: error, code: coded.code, detail: coded.detail, path: this.path.slice(0, LOGGED_PATH_CHARS) }, 'request failed');
    }
    this.logFields.code = coded.code;
    if (coded.detail && coded.status < 500) this.logFields.detail = coded.detail;
    const headers: HeaderMap = { 'Content-Type': 'application/json' };
    if (coded.retryAfterSeconds !== undefined) headers['Retry-After'] = String(coded.retryAfterSeconds);
    this.send(coded.status, headers, JSON.stringify({ error: publicMessage(coded), code: coded.code }), closeConnection);
  }
}

export { ImageError };
