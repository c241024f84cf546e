/**
 * The admission broker's rules, on a fake clock: one budget and one FIFO
 * queue for the machine, fairness between clients, two priorities, shedding
 * by expected wait, single flight, the negative cache, and what a dead
 * process gives back.
 */
import t from 'tap';
import { Broker, HEAVY_FLOOR_MS, HEAVY_MS, HEAVY_RATIO, LIGHT_WINDOW_MS, type BrokerEvent } from '../../src/admission/broker.js';
import type { AdmissionRequest, BrokerSettings } from '../../src/admission/types.js';

const SETTINGS: BrokerSettings = { slots: 2, queueLimit: 1000, queueWaitMs: 2000, backgroundLimit: 10, negativeTtlMs: 60_000, negativeEntries: 100 };

function harness(settings: Partial<BrokerSettings> = {}) {
  let clock = 0;
  const events: BrokerEvent[] = [];
  const broker = new Broker({ ...SETTINGS, ...settings }, (event) => events.push(event), () => clock);
  const grants = () => events.filter((e) => e.kind === 'grant').map((e) => `${e.owner}#${e.id}`);
  return {
    broker,
    events,
    grants,
    advance(ms: number) {
      clock += ms;
    },
    fg(overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
      return { priority: 'foreground', client: 'a', cost: 'render:jpeg:18', ...overrides };
    },
    bg(overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
      return { priority: 'background', client: 'bg', cost: 'render:avif:20', ...overrides };
    },
  };
}

t.test('grants as many renders as the machine has slots, whichever process asks, and queues the rest FIFO', async (t) => {
  const h = harness();
  t.equal(h.broker.acquire('w1', 1, h.fg()).kind, 'granted');
  t.equal(h.broker.acquire('w2', 1, h.fg()).kind, 'granted', 'a second process gets the second slot');
  t.equal(h.broker.acquire('w1', 2, h.fg()).kind, 'queued');
  t.equal(h.broker.acquire('w2', 2, h.fg()).kind, 'queued');
  t.equal(h.broker.acquire('w1', 3, h.fg()).kind, 'queued');
  h.broker.release('w2', 1, { ms: 50 });
  t.same(h.grants(), ['w1#2'], 'the oldest waiter, from the process that did not release');
  h.broker.release('w1', 1, { ms: 50 });
  h.broker.release('w1', 2, { ms: 50 });
  t.same(h.grants(), ['w1#2', 'w2#2', 'w1#3'], 'FIFO across processes');
  t.equal(h.broker.stats().inUse, 2);
});

t.test('makes a client holding more than its share of the slots yield to another client waiting', async (t) => {
  const h = harness();
  h.broker.acquire('w1', 1, h.fg({ client: 'flood' }));
  h.broker.acquire('w1', 2, h.fg({ client: 'flood' }));
  h.broker.acquire('w1', 3, h.fg({ client: 'flood' }));
  h.broker.acquire('w1', 4, h.fg({ client: 'flood' }));
  h.broker.acquire('w2', 1, h.fg({ client: 'ordinary' }));
  h.broker.release('w1', 1, { ms: 50 });
  t.same(h.grants(), ['w2#1'], 'the ordinary client goes before the flood queued ahead of it');
  h.broker.release('w1', 2, { ms: 50 });
  t.same(h.grants(), ['w2#1', 'w1#3'], 'then the flood again, in its own order');
});

t.test('never starts a background render while a foreground one waits, and keeps one slot for the foreground', async (t) => {
  const h = harness();
  t.equal(h.broker.acquire('w1', 1, h.bg()).kind, 'granted', 'a background render may use an idle machine');
  t.equal(h.broker.acquire('w1', 2, h.bg()).kind, 'queued', 'but never the last slot');
  t.equal(h.broker.acquire('w2', 1, h.fg()).kind, 'granted', 'a foreground render finds that slot free');
  t.equal(h.broker.acquire('w2', 2, h.fg()).kind, 'queued');
  h.broker.release('w1', 1, { ms: 500 });
  t.same(h.grants(), ['w2#2'], 'the freed slot goes to the waiting foreground render, not to the older background one');
  h.broker.release('w2', 1, { ms: 50 });
  h.broker.release('w2', 2, { ms: 50 });
  t.same(h.grants(), ['w2#2', 'w1#2'], 'the background render runs once no foreground waits');
});

t.test('drops background work beyond its queue, and while the machine sheds', async (t) => {
  const h = harness({ slots: 1, backgroundLimit: 2, queueWaitMs: 100 });
  h.broker.acquire('w1', 1, h.fg());
  t.equal(h.broker.acquire('w1', 2, h.bg()).kind, 'queued');
  t.equal(h.broker.acquire('w1', 3, h.bg()).kind, 'queued');
  t.equal(h.broker.acquire('w1', 4, h.bg()).kind, 'refused', 'the third waiting background render is dropped');
  for (let i = 10; i < 13; i++) h.broker.acquire('w1', i, h.fg());
  t.ok(h.broker.shedding, 'three foreground renders of about 100 ms wait on one slot: more than 100 ms');
  h.broker.cancel('w1', 2);
  t.equal(h.broker.acquire('w1', 5, h.bg()).kind, 'refused', 'a background render is dropped while shedding, even with room in its queue');
  t.equal(h.broker.stats().droppedBackground, 2);
});

t.test('sheds by expected wait: thumbnails queue by the hundred, slow renders a few', async (t) => {
  const h = harness({ queueWaitMs: 2000 });
  // Teach the broker the two classes' render times.
  for (let i = 0; i < 20; i++) {
    h.broker.acquire('w1', i, h.fg({ cost: 'thumb' }));
    h.broker.release('w1', i, { ms: 20 });
    h.broker.acquire('w1', 100 + i, h.fg({ cost: 'huge' }));
    h.broker.release('w1', 100 + i, { ms: 2000 });
  }
  let thumbs = 0;
  for (let i = 0; i < 1000 && h.broker.acquire('w2', i, h.fg({ cost: 'thumb' })).kind !== 'refused'; i++) thumbs++;
  t.ok(thumbs >= 150 && thumbs <= 250, `about 2000 ms x 2 slots / 20 ms = 200 thumbnails admitted (${thumbs})`);
  const g = harness({ queueWaitMs: 2000 });
  for (let i = 0; i < 20; i++) {
    g.broker.acquire('w1', i, g.fg({ cost: 'huge' }));
    g.broker.release('w1', i, { ms: 2000 });
  }
  let huge = 0;
  for (let i = 0; i < 100 && g.broker.acquire('w2', i, g.fg({ cost: 'huge' })).kind !== 'refused'; i++) huge++;
  t.ok(huge >= 3 && huge <= 5, `2 running and about 2 waiting renders of 2 s (${huge})`);
  const refusal = g.broker.acquire('w2', 999, g.fg({ cost: 'huge' }));
  t.equal(refusal.kind, 'refused');
  if (refusal.kind === 'refused') t.ok(refusal.retryAfterMs >= 1000, `Retry-After follows the wait (${refusal.retryAfterMs} ms)`);
});

t.test('refuses beyond the hard cap whatever the estimate', async (t) => {
  const h = harness({ slots: 1, queueLimit: 3, queueWaitMs: 1_000_000 });
  const kinds = Array.from({ length: 6 }, (_, i) => h.broker.acquire('w1', i, h.fg()).kind);
  t.same(kinds, ['granted', 'queued', 'queued', 'queued', 'refused', 'refused']);
});

t.test('renders identical keyed requests once per machine, and tells the others when the result is stored', async (t) => {
  const h = harness();
  t.equal(h.broker.acquire('w1', 1, h.fg({ key: 'k' })).kind, 'granted');
  t.equal(h.broker.acquire('w2', 1, h.fg({ key: 'k' })).kind, 'joined', 'another process joins');
  t.equal(h.broker.acquire('w2', 2, h.fg({ key: 'k', joinable: false })).kind, 'granted', 'unless it may not');
  h.broker.release('w1', 1, { ms: 40 });
  t.same(h.events.filter((e) => e.kind === 'flight'), [], 'nothing yet: the result is not stored');
  h.broker.settle('w1', 1, true);
  t.same(h.events.filter((e) => e.kind === 'flight'), [{ kind: 'flight', owner: 'w2', id: 1, end: { kind: 'stored' } }]);
  t.equal(h.broker.acquire('w2', 3, h.fg({ key: 'k' })).kind, 'granted', 'a later request renders again (the cache answers it first in practice)');
});

t.test('remembers a render that failed on its input and refuses its key at once until the time is up', async (t) => {
  const h = harness({ negativeTtlMs: 300_000 });
  h.broker.acquire('w1', 1, h.fg({ key: 'slow' }));
  h.broker.acquire('w2', 1, h.fg({ key: 'slow' }));
  h.broker.release('w1', 1, { ms: 10_000, error: { code: 'TIMEOUT', remember: true } });
  t.same(h.events.filter((e) => e.kind === 'flight'), [{ kind: 'flight', owner: 'w2', id: 1, end: { kind: 'failed', code: 'TIMEOUT' } }], 'the joined request fails alike');
  t.same(h.broker.acquire('w2', 2, h.fg({ key: 'slow' })), { kind: 'failed', code: 'TIMEOUT' }, 'a repeat is answered at once');
  t.equal(h.broker.stats().inUse, 0, 'and takes no slot');
  h.advance(300_001);
  t.equal(h.broker.acquire('w2', 3, h.fg({ key: 'slow' })).kind, 'granted', 'after the negative cache time it is tried again');
  h.broker.release('w2', 3, { ms: 10, error: { code: 'OVERLOADED', remember: false } });
  t.equal(h.broker.acquire('w2', 4, h.fg({ key: 'slow' })).kind, 'granted', 'a transient failure is not remembered');
});

t.test('keeps the last slot for short renders while they keep coming, so a flood of heavy ones cannot hold the machine', async (t) => {
  const h = harness();
  // Teach the broker that AVIF at this size is heavy.
  h.broker.acquire('w1', 0, h.fg({ cost: 'avif' }));
  h.broker.release('w1', 0, { ms: HEAVY_MS * 3 });
  t.equal(h.broker.acquire('w1', 1, h.fg({ cost: 'jpeg', client: 'ordinary' })).kind, 'granted', 'a short render arrives');
  h.broker.release('w1', 1, { ms: 40 });
  t.equal(h.broker.acquire('w2', 1, h.fg({ cost: 'avif', client: 'flood' })).kind, 'granted', 'one heavy render runs');
  t.equal(h.broker.acquire('w2', 2, h.fg({ cost: 'avif', client: 'flood' })).kind, 'queued', 'a second waits although a slot is free');
  t.equal(h.broker.acquire('w1', 2, h.fg({ cost: 'jpeg', client: 'ordinary' })).kind, 'granted', 'the short render takes the free slot at once');
  h.broker.release('w1', 2, { ms: 40 });
  t.same(h.grants(), [], 'the heavy one still waits: short renders came within the window');
  h.advance(LIGHT_WINDOW_MS + 1);
  h.broker.release('w2', 1, { ms: HEAVY_MS * 3 });
  t.same(h.grants(), ['w2#2'], 'it runs when the heavy one before it ends');
  t.equal(h.broker.acquire('w2', 3, h.fg({ cost: 'avif', client: 'flood' })).kind, 'granted', 'no short render for a while: heavy ones may use every slot');
});

t.test('lets a heavy render run beside short ones, but never lets heavy ones hold every slot while short ones arrive', async (t) => {
  const h = harness();
  h.broker.acquire('w1', 0, h.fg({ cost: 'avif' }));
  h.broker.release('w1', 0, { ms: HEAVY_MS * 3 });
  t.equal(h.broker.acquire('w1', 1, h.fg({ cost: 'jpeg', client: 'ordinary' })).kind, 'granted', 'a short render runs');
  t.equal(h.broker.acquire('w2', 1, h.fg({ cost: 'avif', client: 'flood' })).kind, 'granted', 'a heavy one starts beside it');
  t.equal(h.broker.acquire('w2', 2, h.fg({ cost: 'avif', client: 'flood' })).kind, 'queued', 'a second heavy one waits');
  t.equal(h.broker.acquire('w1', 2, h.fg({ cost: 'jpeg', client: 'ordinary' })).kind, 'queued', 'so does a short one: both slots are busy');
  h.broker.release('w1', 1, { ms: 40 });
  t.same(h.grants(), ['w1#2'], 'the freed slot goes to the short one, though the heavy one waited longer');
});

t.test('judges heaviness against the lightest renders arriving, so a fast machine is protected too', async (t) => {
  const h = harness();
  const light = 20;
  const avif = Math.max(HEAVY_FLOOR_MS, HEAVY_RATIO * light) + 30;
  t.ok(avif < HEAVY_MS, `an AVIF of ${avif} ms is under the absolute ${HEAVY_MS} ms`);
  h.broker.acquire('w1', 0, h.fg({ cost: 'avif' }));
  h.broker.release('w1', 0, { ms: avif });
  h.broker.acquire('w1', 1, h.fg({ cost: 'jpeg', client: 'ordinary' }));
  h.broker.release('w1', 1, { ms: light });
  t.equal(h.broker.heavyThresholdMs(), Math.max(HEAVY_FLOOR_MS, HEAVY_RATIO * light), 'the threshold follows the light renders');
  t.equal(h.broker.acquire('w2', 1, h.fg({ cost: 'avif', client: 'flood' })).kind, 'granted');
  t.equal(h.broker.acquire('w2', 2, h.fg({ cost: 'avif', client: 'flood' })).kind, 'queued', 'it is heavy here: the second slot stays for the short ones');
  t.equal(h.broker.acquire('w1', 2, h.fg({ cost: 'jpeg', client: 'ordinary' })).kind, 'granted', 'and an ordinary miss takes it at once');
  h.advance(LIGHT_WINDOW_MS + 1);
  t.equal(h.broker.heavyThresholdMs(), HEAVY_MS, 'once nothing arrived for a window, only the absolute bound is left');
});

t.test('never calls a render heavy that takes under the floor, however light the others', async (t) => {
  const h = harness();
  h.broker.acquire('w1', 0, h.fg({ cost: 'tiny' }));
  h.broker.release('w1', 0, { ms: 1 });
  h.broker.acquire('w1', 1, h.fg({ cost: 'small' }));
  h.broker.release('w1', 1, { ms: HEAVY_FLOOR_MS - 5 });
  h.broker.acquire('w1', 2, h.fg({ cost: 'tiny' }));
  t.equal(h.broker.heavyThresholdMs(), HEAVY_FLOOR_MS);
  t.equal(h.broker.acquire('w1', 3, h.fg({ cost: 'small' })).kind, 'granted', 'a short render beside the tiny ones takes the last slot');
});

t.test('gives back everything a dead process held: slots, waiters and the flights it led', async (t) => {
  const h = harness();
  h.broker.acquire('w1', 1, h.fg({ key: 'x' }));
  h.broker.acquire('w1', 2, h.fg());
  h.broker.acquire('w1', 3, h.fg());
  h.broker.acquire('w2', 1, h.fg({ key: 'x' }));
  h.broker.acquire('w2', 2, h.fg());
  h.broker.dropOwner('w1');
  t.same(h.grants(), ['w2#2'], "w1's queued render is gone, w2's waiter gets a slot");
  t.same(h.events.filter((e) => e.kind === 'flight'), [{ kind: 'flight', owner: 'w2', id: 1, end: { kind: 'unstored' } }], 'the flight w1 led ends: w2 renders for itself');
  t.equal(h.broker.stats().inUse, 1, 'only w2 holds a slot');
  t.equal(h.broker.acquire('w3', 1, h.fg()).kind, 'granted', 'the machine budget is whole again');
});

t.test('takes back a slot whose grant crossed its requester\'s cancel, so no slot leaks', async (t) => {
  const h = harness({ slots: 1 });
  h.broker.acquire('w1', 1, h.fg());
  h.broker.acquire('w1', 2, h.fg());
  h.broker.release('w1', 1, { ms: 10 });
  t.same(h.grants(), ['w1#2'], 'the waiter is granted (the grant is on its way)');
  h.broker.cancel('w1', 2);
  t.equal(h.broker.stats().inUse, 0, 'its cancel, arriving after, frees the slot');
  t.equal(h.broker.acquire('w2', 1, h.fg()).kind, 'granted', 'the next request gets it');
});

t.test('forgets a waiter whose client went away', async (t) => {
  const h = harness({ slots: 1 });
  h.broker.acquire('w1', 1, h.fg());
  h.broker.acquire('w1', 2, h.fg({ key: 'k' }));
  h.broker.acquire('w2', 1, h.fg({ key: 'k' }));
  h.broker.acquire('w2', 2, h.fg());
  h.broker.cancel('w1', 2);
  t.same(h.events, [{ kind: 'flight', owner: 'w2', id: 1, end: { kind: 'unstored' } }], 'the cancelled leader ends its flight');
  h.broker.release('w1', 1, { ms: 10 });
  t.same(h.grants(), ['w2#2'], 'the cancelled waiter is skipped');
});
