/**
 * The admission broker: one render budget and one queue for a whole machine.
 * Pure bookkeeping (no I/O, no timers): the cluster primary drives it over IPC
 * (host.ts), a single process drives it directly (local.ts).
 *
 * - Slots: at most `slots` renders run at once, whichever process asked.
 * - Foreground waits FIFO across the machine, except that a client (an IP)
 *   holding more than its share of the slots yields to the others waiting.
 * - Background runs only when no foreground render waits, on at most
 *   slots - 1 slots (so a foreground arrival finds a slot soon), and is
 *   dropped rather than queued without bound, or while the machine sheds.
 * - Shedding is by expected wait: a foreground render is refused only when
 *   the work ahead of it (estimated from recent render times of its cost
 *   class) would keep it waiting longer than `queueWaitMs`, or when the hard
 *   cap `queueLimit` is reached.
 * - Heavy renders (a cost class that takes HEAVY_RATIO times as long as the
 *   lightest one arriving, at least HEAVY_FLOOR_MS, and always from HEAVY_MS,
 *   such as a large AVIF) hold at most slots - 1 slots while short renders
 *   keep arriving: a flood of expensive requests cannot make an ordinary miss
 *   wait for one, on a slow machine or a fast one.
 * - Identical keyed requests render once (single flight); a key whose render
 *   failed in a way worth remembering is refused at once for `negativeTtlMs`.
 */
import type { ErrorCode } from '../errors.js';
import type { AdmissionRequest, AdmissionStats, BrokerSettings, FlightEnd, RenderOutcome } from './types.js';

/** What the broker decides at once for a request. */
export type Decision =
  | { kind: 'granted' }
  | { kind: 'queued' }
  | { kind: 'joined' }
  | { kind: 'refused'; retryAfterMs: number; reason: string }
  | { kind: 'failed'; code: ErrorCode };

/** What the broker tells a requester later. */
export type BrokerEvent =
  | { kind: 'grant'; owner: string; id: number }
  | { kind: 'flight'; owner: string; id: number; end: FlightEnd }
  /** Others wait for this leader's result: it must settle the flight once the result is stored. */
  | { kind: 'followed'; owner: string; id: number };

interface Entry {
  owner: string;
  id: number;
  client: string;
  cost: string;
  priority: AdmissionRequest['priority'];
  key: string | undefined;
  /** When it started running (performance.now()), for the remaining-time estimate. */
  startedAt: number;
}

interface Flight {
  leader: string;
  followers: { owner: string; id: number }[];
}

/** A render whose cost class was never seen is assumed to take this long. */
const DEFAULT_ESTIMATE_MS = 100;
/** A cost class estimated to take this long or more is always heavy. */
export const HEAVY_MS = 250;
/** A cost class this many times as slow as the lightest one arriving is heavy too... */
export const HEAVY_RATIO = 4;
/** ...unless it takes less than this: renders this short never crowd anyone out. */
export const HEAVY_FLOOR_MS = 50;
/** Short renders seen this recently keep heavy ones to all slots but one (and set what is heavy). */
export const LIGHT_WINDOW_MS = 2_000;
/** Weight of the newest render time in the moving average of its class. */
const EWMA_WEIGHT = 0.2;

function slotId(owner: string, id: number): string {
  return `${owner}#${id}`;
}

export class Broker {
  private readonly running = new Map<string, Entry>();
  private readonly foreground: Entry[] = [];
  private readonly background: Entry[] = [];
  private readonly flights = new Map<string, Flight>();
  /** Which flight each leader leads. */
  private readonly leading = new Map<string, string>();
  private readonly negative = new Map<string, { code: ErrorCode; until: number }>();
  private readonly estimates = new Map<string, number>();
  private overall = DEFAULT_ESTIMATE_MS;
  private lastLightArrival = Number.NEGATIVE_INFINITY;
  /** When each cost class last arrived in the foreground: the lightest recent one sets what is heavy. */
  private readonly arrivals = new Map<string, number>();
  private readonly counters = { granted: 0, refused: 0, droppedBackground: 0, joined: 0, negativeHits: 0 };

  constructor(
    readonly settings: Readonly<BrokerSettings>,
    private readonly notify: (event: BrokerEvent) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Decides on a request; a queued request gets a `grant` event later, a joined one a `flight` event. */
  acquire(owner: string, id: number, request: AdmissionRequest): Decision {
    const entry: Entry = { owner, id, client: request.client, cost: request.cost, priority: request.priority, key: request.key, startedAt: 0 };
    if (request.key !== undefined) {
      const remembered = this.remembered(request.key);
      if (remembered) {
        this.counters.negativeHits++;
        return { kind: 'failed', code: remembered };
      }
      const flight = this.flights.get(request.key);
      if (flight && request.joinable !== false) {
        flight.followers.push({ owner, id });
        this.counters.joined++;
        return { kind: 'joined' };
      }
    }
    const decision = request.priority === 'foreground' ? this.admitForeground(entry) : this.admitBackground(entry);
    // Only a request that will render leads a flight others may join.
    if (decision.kind !== 'refused' && request.key !== undefined && request.joinable !== false && !this.flights.has(request.key)) {
      this.flights.set(request.key, { leader: slotId(owner, id), followers: [] });
      this.leading.set(slotId(owner, id), request.key);
    }
    return decision;
  }

  private admitForeground(entry: Entry): Decision {
    this.arrived(entry.cost);
    const threshold = this.heavyThresholdMs();
    if (!this.isHeavy(entry, threshold)) this.lastLightArrival = this.now();
    // A free slot no waiter may take (heavy ones waiting while heavy ones hold their share) goes to this one.
    if (this.running.size < this.settings.slots && this.mayStart(entry, threshold) && !this.foreground.some((waiting) => this.mayStart(waiting, threshold))) {
      return this.start(entry);
    }
    if (this.foreground.length >= this.settings.queueLimit) {
      return this.refuse(`${this.foreground.length} renders are waiting (QUEUE_LIMIT ${this.settings.queueLimit})`);
    }
    const wait = this.waitEstimateMs();
    if (wait > this.settings.queueWaitMs) {
      return this.refuse(`a render would wait about ${Math.round(wait)} ms (QUEUE_WAIT_MS ${this.settings.queueWaitMs})`, wait);
    }
    this.foreground.push(entry);
    return { kind: 'queued' };
  }

  private admitBackground(entry: Entry): Decision {
    if (this.foreground.length === 0 && this.running.size < this.settings.slots && this.backgroundRunning() < this.backgroundMax()) {
      return this.start(entry);
    }
    if (this.background.length >= this.settings.backgroundLimit || this.shedding) {
      this.counters.droppedBackground++;
      return { kind: 'refused', retryAfterMs: 0, reason: this.shedding ? 'the machine is shedding load' : 'the background queue is full' };
    }
    this.background.push(entry);
    return { kind: 'queued' };
  }

  private refuse(reason: string, waitMs = this.waitEstimateMs()): Decision {
    this.counters.refused++;
    return { kind: 'refused', retryAfterMs: Math.max(1000, Math.min(60_000, Math.ceil(waitMs / 1000) * 1000)), reason };
  }

  private start(entry: Entry): Decision {
    entry.startedAt = this.now();
    this.running.set(slotId(entry.owner, entry.id), entry);
    this.counters.granted++;
    return { kind: 'granted' };
  }

  /** A render that held a slot ended: the slot goes to the next waiter; a failure ends its flight. */
  release(owner: string, id: number, outcome: RenderOutcome): void {
    const slot = slotId(owner, id);
    const entry = this.running.get(slot);
    if (!entry) return;
    this.running.delete(slot);
    this.learn(entry.cost, outcome.ms);
    if (outcome.error) {
      if (outcome.error.remember && entry.key !== undefined) this.remember(entry.key, outcome.error.code);
      this.endFlight(slot, outcome.error.remember ? { kind: 'failed', code: outcome.error.code } : { kind: 'unstored' });
    } else {
      // Rendered. Nobody waits: the flight ends here (a request arriving now renders again,
      // having just missed the cache). Someone waits: the leader settles once it stored.
      const key = this.leading.get(slot);
      const flight = key === undefined ? undefined : this.flights.get(key);
      if (flight && flight.followers.length > 0) this.notify({ kind: 'followed', owner, id });
      else this.endFlight(slot, { kind: 'unstored' });
    }
    this.dispatch();
  }

  /** The leader's result is stored (or could not be): those waiting for it may look it up now. */
  settle(owner: string, id: number, stored: boolean): void {
    this.endFlight(slotId(owner, id), { kind: stored ? 'stored' : 'unstored' });
  }

  /**
   * A waiting request gave up (its client went away): it leaves the queue, or
   * stops waiting for a flight. If its grant was already on its way, the
   * requester will never use that slot (it ignores a grant after cancelling):
   * the slot returns here.
   */
  cancel(owner: string, id: number): void {
    const slot = slotId(owner, id);
    for (const queue of [this.foreground, this.background]) {
      const at = queue.findIndex((e) => e.owner === owner && e.id === id);
      if (at === -1) continue;
      queue.splice(at, 1);
      // A queued leader will never render: those waiting for it must render themselves.
      this.endFlight(slot, { kind: 'unstored' });
    }
    for (const flight of this.flights.values()) {
      const at = flight.followers.findIndex((f) => f.owner === owner && f.id === id);
      if (at !== -1) flight.followers.splice(at, 1);
    }
    if (this.running.delete(slot)) {
      this.endFlight(slot, { kind: 'unstored' });
      this.dispatch();
    }
  }

  /** A process died: its slots return to the machine, its waiters vanish, its flights end unstored. */
  dropOwner(owner: string): void {
    const mine = (e: { owner: string }) => e.owner === owner;
    for (const queue of [this.foreground, this.background]) {
      for (let i = queue.length - 1; i >= 0; i--) if (mine(queue[i] as Entry)) queue.splice(i, 1);
    }
    for (const flight of this.flights.values()) flight.followers = flight.followers.filter((f) => !mine(f));
    for (const [slot, entry] of [...this.running]) if (mine(entry)) this.running.delete(slot);
    for (const slot of [...this.leading.keys()]) if (slot.startsWith(`${owner}#`)) this.endFlight(slot, { kind: 'unstored' });
    this.dispatch();
  }

  private endFlight(leaderSlot: string, end: FlightEnd): void {
    const key = this.leading.get(leaderSlot);
    if (key === undefined) return;
    this.leading.delete(leaderSlot);
    const flight = this.flights.get(key);
    this.flights.delete(key);
    for (const follower of flight?.followers ?? []) this.notify({ kind: 'flight', owner: follower.owner, id: follower.id, end });
  }

  /** Hands free slots to waiters: foreground first (fairly), then background. */
  private dispatch(): void {
    while (this.running.size < this.settings.slots && this.foreground.length > 0) {
      const at = this.nextForeground();
      if (at === -1) break;
      const next = this.foreground.splice(at, 1)[0] as Entry;
      this.start(next);
      this.notify({ kind: 'grant', owner: next.owner, id: next.id });
    }
    while (
      this.foreground.length === 0 &&
      this.background.length > 0 &&
      this.running.size < this.settings.slots &&
      this.backgroundRunning() < this.backgroundMax()
    ) {
      const next = this.background.shift() as Entry;
      this.start(next);
      this.notify({ kind: 'grant', owner: next.owner, id: next.id });
    }
  }

  private arrived(cost: string): void {
    this.arrivals.delete(cost);
    this.arrivals.set(cost, this.now());
    // Oldest first: classes not seen for a window no longer count, and the map stays small.
    const horizon = this.now() - LIGHT_WINDOW_MS;
    for (const [old, at] of this.arrivals) {
      if (at >= horizon && this.arrivals.size <= 1000) break;
      this.arrivals.delete(old);
    }
  }

  /** How long a render must take to be heavy: relative to the lightest class that arrived lately. */
  heavyThresholdMs(): number {
    const horizon = this.now() - LIGHT_WINDOW_MS;
    let lightest = Number.POSITIVE_INFINITY;
    for (const [cost, at] of this.arrivals) if (at >= horizon) lightest = Math.min(lightest, this.estimate(cost));
    return Math.min(HEAVY_MS, Math.max(HEAVY_FLOOR_MS, HEAVY_RATIO * lightest));
  }

  private isHeavy(entry: Entry, threshold: number): boolean {
    return this.estimate(entry.cost) >= threshold;
  }

  /** Heavy renders hold at most slots - 1 slots while short renders keep arriving; else any slot. */
  private mayStart(entry: Entry, threshold: number): boolean {
    if (this.settings.slots < 2 || !this.isHeavy(entry, threshold)) return true;
    if (this.now() - this.lastLightArrival > LIGHT_WINDOW_MS) return true;
    let heavyRunning = 0;
    for (const running of this.running.values()) if (running.priority === 'foreground' && this.isHeavy(running, threshold)) heavyRunning++;
    return heavyRunning + 1 < this.settings.slots;
  }

  /**
   * The oldest waiter that may start whose client holds less than its share;
   * else the oldest that may start; -1 when none may (heavy ones wait for the reserved slot).
   */
  private nextForeground(): number {
    const runningBy = new Map<string, number>();
    const clients = new Set<string>();
    for (const entry of this.running.values()) {
      if (entry.priority !== 'foreground') continue;
      runningBy.set(entry.client, (runningBy.get(entry.client) ?? 0) + 1);
      clients.add(entry.client);
    }
    for (const entry of this.foreground) clients.add(entry.client);
    const share = Math.max(1, Math.floor(this.settings.slots / clients.size));
    const threshold = this.heavyThresholdMs();
    const fair = this.foreground.findIndex((entry) => (runningBy.get(entry.client) ?? 0) < share && this.mayStart(entry, threshold));
    return fair !== -1 ? fair : this.foreground.findIndex((entry) => this.mayStart(entry, threshold));
  }

  private backgroundRunning(): number {
    let count = 0;
    for (const entry of this.running.values()) if (entry.priority === 'background') count++;
    return count;
  }

  private backgroundMax(): number {
    return Math.max(1, this.settings.slots - 1);
  }

  private estimate(cost: string): number {
    return this.estimates.get(cost) ?? this.overall;
  }

  private learn(cost: string, ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    const previous = this.estimates.get(cost);
    this.estimates.set(cost, previous === undefined ? ms : previous + EWMA_WEIGHT * (ms - previous));
    this.overall += EWMA_WEIGHT * (ms - this.overall);
    // The classes seen are few (formats x size buckets); this only guards against a flood of made-up ones.
    if (this.estimates.size > 1000) this.estimates.delete(this.estimates.keys().next().value as string);
  }

  /** The wait of a foreground render arriving now: the work ahead of it, spread over the slots. */
  waitEstimateMs(): number {
    const now = this.now();
    let work = 0;
    for (const entry of this.running.values()) work += Math.max(0, this.estimate(entry.cost) - (now - entry.startedAt));
    for (const entry of this.foreground) work += this.estimate(entry.cost);
    // Nothing waits and a slot is free: no wait at all.
    if (this.running.size < this.settings.slots && this.foreground.length === 0) return 0;
    return work / this.settings.slots;
  }

  /** True while a foreground render arriving now would be refused. */
  get shedding(): boolean {
    if (this.running.size < this.settings.slots && this.foreground.length === 0) return false;
    return this.foreground.length >= this.settings.queueLimit || this.waitEstimateMs() > this.settings.queueWaitMs;
  }

  private remembered(key: string): ErrorCode | undefined {
    const entry = this.negative.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.negative.delete(key);
      return undefined;
    }
    return entry.code;
  }

  private remember(key: string, code: ErrorCode): void {
    if (this.settings.negativeTtlMs <= 0) return;
    this.negative.delete(key);
    this.negative.set(key, { code, until: this.now() + this.settings.negativeTtlMs });
    while (this.negative.size > this.settings.negativeEntries) this.negative.delete(this.negative.keys().next().value as string);
  }

  stats(): AdmissionStats {
    return {
      slots: this.settings.slots,
      inUse: this.running.size,
      queuedForeground: this.foreground.length,
      queuedBackground: this.background.length,
      waitEstimateMs: Math.round(this.waitEstimateMs()),
      ...this.counters,
    };
  }
}
