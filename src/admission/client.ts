/**
 * The requester's side of the channel: `admit` asks the broker and resolves
 * with a slot (at once or once queued), a flight to wait for, a refusal or a
 * remembered failure. The broker's later messages may arrive before the code
 * that waits for them runs, so each request keeps its state until it is used.
 */
import { ImageError } from '../errors.js';
import type { Decision } from './broker.js';
import { BrokerHost } from './host.js';
import type { FromBroker, Port, ToBroker } from './protocol.js';
import type { Admission, AdmissionRequest, AdmissionStats, Admitter, BrokerSettings, FlightEnd, RenderOutcome, Ticket } from './types.js';

interface Pending {
  decision?: (decision: Decision) => void;
  granted: boolean;
  grant?: () => void;
  flightEnd?: FlightEnd;
  flight?: (end: FlightEnd) => void;
  stats?: (stats: AdmissionStats) => void;
}

function aborted(): ImageError {
  return new ImageError('BAD_REQUEST', 'The client went away while its render waited');
}

/** A granted render's state, kept until the broker can no longer ask it to settle. */
interface Held {
  /** The broker said others wait for this render. */
  followed: boolean;
  /** How storing ended, once it has. */
  stored?: boolean;
  settled: boolean;
  /** When the slot was released: a `followed` comes within moments of that, or never. */
  releasedAt?: number;
}

/** How long after its release a render waits for a `followed` that may still be on its way. */
const HELD_MS = 10_000;

export class AdmissionClient implements Admitter {
  private next = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly held = new Map<number, Held>();
  private closed = false;

  constructor(private readonly port: Port<ToBroker, FromBroker>) {
    port.listen((message) => this.receive(message));
  }

  private receive(message: FromBroker): void {
    if (message.type === 'adm:followed') return this.followed(message.id);
    const pending = this.pending.get(message.id);
    if (!pending) return;
    switch (message.type) {
      case 'adm:decision':
        return pending.decision?.(message.decision);
      case 'adm:grant':
        pending.granted = true;
        return pending.grant?.();
      case 'adm:flight':
        pending.flightEnd = message.end;
        return pending.flight?.(message.end);
      case 'adm:stats':
        this.pending.delete(message.id);
        return pending.stats?.(message.stats);
    }
  }

  /** The broker says others joined a render that has ended: settle it once its store did. */
  private followed(id: number): void {
    const held = this.held.get(id);
    if (!held) return;
    held.followed = true;
    this.settleIfDue(id, held);
  }

  private settleIfDue(id: number, held: Held): void {
    if (held.settled || !held.followed || held.stored === undefined) return;
    held.settled = true;
    this.held.delete(id);
    this.port.send({ type: 'adm:settle', id, stored: held.stored });
  }

  /** Forgets renders no `followed` came for in time (most: nobody joined them). */
  private sweepHeld(now: number): void {
    for (const [id, held] of this.held) {
      if (!held.followed && held.releasedAt !== undefined && now - held.releasedAt > HELD_MS) this.held.delete(id);
    }
  }

  /** Asks for a slot. With `signal`, a request still waiting gives up when it aborts. */
  async admit(request: AdmissionRequest, signal?: AbortSignal): Promise<Admission> {
    if (this.closed) throw new ImageError('UNAVAILABLE', 'The render admission is closed');
    const id = this.next++;
    const pending: Pending = { granted: false };
    this.pending.set(id, pending);
    const decision = await new Promise<Decision>((resolve) => {
      pending.decision = resolve;
      this.port.send({ type: 'adm:acquire', id, request });
    });
    switch (decision.kind) {
      case 'granted':
        this.pending.delete(id);
        return { kind: 'granted', ticket: this.ticket(id) };
      case 'queued':
        await this.waitForGrant(id, pending, signal);
        this.pending.delete(id);
        return { kind: 'granted', ticket: this.ticket(id) };
      case 'joined':
        return { kind: 'joined', end: this.waitForFlight(id, pending, signal) };
      case 'refused':
        this.pending.delete(id);
        return { kind: 'refused', code: 'OVERLOADED', retryAfterMs: decision.retryAfterMs, reason: decision.reason };
      case 'failed':
        this.pending.delete(id);
        return { kind: 'failed', code: decision.code };
    }
  }

  private waitForGrant(id: number, pending: Pending, signal: AbortSignal | undefined): Promise<void> {
    if (pending.granted) return Promise.resolve();
    // A grant already on its way when the client gives up finds no pending request and is
    // ignored; the broker frees that slot on the cancel.
    return this.waitUnlessAborted(id, signal, (resolve) => (pending.grant = () => resolve()));
  }

  private waitForFlight(id: number, pending: Pending, signal: AbortSignal | undefined): Promise<FlightEnd> {
    const done = (end: FlightEnd) => {
      this.pending.delete(id);
      return end;
    };
    if (pending.flightEnd) return Promise.resolve(done(pending.flightEnd));
    return this.waitUnlessAborted<FlightEnd>(id, signal, (resolve) => (pending.flight = (end) => resolve(done(end))));
  }

  /** Waits for what `arm` hands its callback; an abort first cancels the request at the broker. */
  private waitUnlessAborted<T>(id: number, signal: AbortSignal | undefined, arm: (resolve: (value: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        this.port.send({ type: 'adm:cancel', id });
        this.pending.delete(id);
        reject(aborted());
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      arm((value) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      });
    });
  }

  private ticket(id: number): Ticket {
    let released = false;
    const held: Held = { followed: false, settled: false };
    this.held.set(id, held);
    return {
      release: (outcome: RenderOutcome) => {
        if (released) return;
        released = true;
        held.releasedAt = performance.now();
        // A failure ends the flight in the broker; nothing is left to settle.
        if (outcome.error) this.held.delete(id);
        this.port.send({ type: 'adm:release', id, outcome });
        this.sweepHeld(held.releasedAt);
      },
      settle: (stored: boolean) => {
        if (held.stored !== undefined) return;
        held.stored = stored;
        this.settleIfDue(id, held);
      },
    };
  }

  stats(): Promise<AdmissionStats> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, { granted: false, stats: resolve });
      this.port.send({ type: 'adm:stats', id });
    });
  }

  close(): void {
    this.closed = true;
  }
}

/** A broker of its own, in this process: for a single process (tests, tools), or the cluster primary. */
export function localAdmitter(settings: BrokerSettings): Admitter & { host: BrokerHost } {
  const host = new BrokerHost(settings);
  let deliver: (message: FromBroker) => void = () => {};
  host.attach('local', (message) => deliver(message));
  const client = new AdmissionClient({
    send: (message) => host.receive('local', message),
    listen: (handler) => {
      deliver = handler;
    },
  });
  return Object.assign(client, { host });
}
