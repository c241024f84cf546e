/**
 * bench:compare judges each ratio in its own direction: a ceiling (a slowdown,
 * failure counts, memory growth) improves by falling, a floor by rising.
 */
import t from 'tap';
import { compareRatios } from '../../bench/compare.js';
import type { BenchResult, RatioResult } from '../../bench/lib/types.js';

function result(ratios: Array<Pick<RatioResult, 'id' | 'value' | 'status'>>): BenchResult {
  return { ratios: ratios.map((r) => ({ label: r.id, target: '', required: 1, lowerBound: false, ...r })) } as unknown as BenchResult;
}

t.test('a slowdown ratio that falls is an improvement, not a regression', async (t) => {
  const [change] = compareRatios(result([{ id: 'avif-flood', value: 6.9, status: 'MISSED' }]), result([{ id: 'avif-flood', value: 1.14, status: 'MET' }]));
  t.ok((change?.better ?? 0) > 0, `better by ${change?.better}`);
  t.equal(change?.regression, false);
});

t.test('a throughput ratio that falls by more than 10% is a regression', async (t) => {
  const [change] = compareRatios(result([{ id: 'miss-vs-peer', value: 1.9, status: 'MET' }]), result([{ id: 'miss-vs-peer', value: 1.5, status: 'MET' }]));
  t.equal(change?.regression, true);
});

t.test('a slowdown ratio that grows by more than 10% is a regression', async (t) => {
  const [change] = compareRatios(result([{ id: 'avif-flood', value: 1.1, status: 'MET' }]), result([{ id: 'avif-flood', value: 1.5, status: 'MET' }]));
  t.equal(change?.regression, true);
});
