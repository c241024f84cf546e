/** The refusal pacer: a client's refusals go out at once up to a rate; beyond it they are held. */
import t from 'tap';
import { HELD_REFUSAL_MS, IMMEDIATE_REFUSALS, RefusalPacer } from '../../src/http/pacer.js';

t.test('answers a burst of refusals at once, then holds the rest of a client that keeps asking', async (t) => {
  let now = 0;
  const pacer = new RefusalPacer(() => now);
  const delays = Array.from({ length: IMMEDIATE_REFUSALS + 5 }, () => pacer.delayFor('flood'));
  t.equal(delays.filter((d) => d === 0).length, IMMEDIATE_REFUSALS, `the first ${IMMEDIATE_REFUSALS} at once`);
  t.same(delays.slice(IMMEDIATE_REFUSALS), [HELD_REFUSAL_MS, HELD_REFUSAL_MS, HELD_REFUSAL_MS, HELD_REFUSAL_MS, HELD_REFUSAL_MS], 'the rest held');
  t.equal(pacer.delayFor('another'), 0, 'another client is not held for it');
  now += 1000 / IMMEDIATE_REFUSALS;
  t.equal(pacer.delayFor('flood'), 0, 'the allowance comes back at its rate');
  t.equal(pacer.delayFor('flood'), HELD_REFUSAL_MS);
  now += 1000;
  t.equal(Array.from({ length: IMMEDIATE_REFUSALS }, () => pacer.delayFor('flood')).filter((d) => d === 0).length, IMMEDIATE_REFUSALS, 'after a quiet second, a whole burst again');
});
