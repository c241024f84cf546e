/**
 * The request body of one exchange, read from uWS. uWS delivers body chunks
 * only to a handler registered synchronously in the route callback, and keeps
 * delivering them after the response has been answered; this class is the one
 * place that handler lives. It holds chunks while nobody consumes them (the
 * token is still being checked), streams them to a consumer with
 * backpressure, and, once the exchange is answered early, discards the rest
 * up to a bound so the client can finish sending and read the answer.
 */
import type { Exchange } from './exchange.js';

/** What reads the body: `write` returns false when it wants no more for now (call `resume()` later). */
export interface BodySink {
  write(chunk: Buffer, last: boolean): boolean;
}

/** How much of a refused body is read and thrown away before the connection is closed anyway. */
export interface DiscardBound {
  bytes: number;
  ms: number;
}

export class RequestBody {
  private received = 0;
  private complete = false;
  private held: Buffer[] = [];
  private sink: BodySink | undefined;
  private discarding: { bound: DiscardBound; done: (reason: 'complete' | 'bound') => void; timer: NodeJS.Timeout } | undefined;

  constructor(private readonly exchange: Exchange) {
    exchange.res.onData((chunk, last) => this.onChunk(chunk, last));
  }

  /** Bytes received so far. */
  get bytes(): number {
    return this.received;
  }

  /** True once the last chunk of the body has arrived. */
  get done(): boolean {
    return this.complete;
  }

  /** Stops reading from the socket (TCP backpressure) until `resume()`. */
  pause(): void {
    this.exchange.pauseReading();
  }

  resume(): void {
    this.exchange.resumeReading();
  }

  /** Streams the body, including what arrived before, to `sink`. */
  pipe(sink: BodySink): void {
    this.sink = sink;
    const held = this.held;
    this.held = [];
    for (const [i, chunk] of held.entries()) {
      const last = this.complete && i === held.length - 1;
      if (!sink.write(chunk, last) && !last) this.pause();
    }
    if (held.length === 0 && this.complete) sink.write(Buffer.alloc(0), true);
  }

  /**
   * Throws away the rest of the body. `done` runs once it is all in, or once
   * more than `bound.bytes` were received in all or `bound.ms` passed.
   */
  discard(bound: DiscardBound, done: (reason: 'complete' | 'bound') => void): void {
    this.sink = undefined;
    this.held = [];
    if (this.complete) return done('complete');
    if (this.received > bound.bytes) return done('bound');
    const timer = setTimeout(() => this.finishDiscard('bound'), bound.ms);
    this.discarding = { bound, done, timer };
    this.resume();
  }

  private finishDiscard(reason: 'complete' | 'bound'): void {
    const discarding = this.discarding;
    if (!discarding) return;
    this.discarding = undefined;
    clearTimeout(discarding.timer);
    discarding.done(reason);
  }

  /** The client went away: nothing more will come. */
  stop(): void {
    this.sink = undefined;
    this.held = [];
    if (this.discarding) {
      clearTimeout(this.discarding.timer);
      this.discarding = undefined;
    }
  }

  private onChunk(chunk: ArrayBuffer, last: boolean): void {
    this.received += chunk.byteLength;
    if (last) this.complete = true;
    if (this.discarding) {
      if (last) this.finishDiscard('complete');
      else if (this.received > this.discarding.bound.bytes) this.finishDiscard('bound');
      return;
    }
    if (this.exchange.settled) return;
    // The chunk is only valid during this callback: copy it.
    const copy = Buffer.from(new Uint8Array(chunk));
    if (!this.sink) {
      this.held.push(copy);
      return;
    }
    // Never pause after the last chunk: a paused socket is not read, so uWS would
    // not see the client go away while the upload is processed.
    if (!this.sink.write(copy, last) && !last) this.pause();
  }
}
