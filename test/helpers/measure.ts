/**
 * Measurements: percentiles, tallies, a bounded-concurrency runner and a
 * check that memory stays flat over many repetitions. The bench takes its
 * `percentile` from here, so both read p the same way (0..100).
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Test } from 'tap';

/** The p-th percentile, `p` in 0..100, by nearest rank; NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/**
 * Runs `fn(i, lane)` for i in 0..count-1 with at most `concurrency` at once
 * (`lane` is the runner, 0..concurrency-1: one lane never runs twice at
 * once); resolves with the results in order.
 */
export async function runLimited<T>(count: number, concurrency: number, fn: (i: number, lane: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async (_, lane) => {
      while (next < count) {
        const i = next++;
        results[i] = await fn(i, lane);
      }
    }),
  );
  return results;
}

/** Tally of values, for one readable assertion over many answers. */
export function tally(values: (string | number)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[String(value)] = (counts[String(value)] ?? 0) + 1;
  return counts;
}

/** One mebibyte, for memory readings. */
export const MB = 1024 * 1024;

let collector: (() => void) | undefined;

/** A full garbage collection, so RSS is compared without garbage the collector has not reached yet. */
export function collectGarbage(): void {
  if (!collector) {
    v8.setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as () => void;
  }
  collector();
  collector();
}

const WARM_UP = 50;

/**
 * Runs `fn` `reps` times (`concurrency` at once; uploads reusing a token need
 * a token per lane, since only one request at a time can hold a token) after a warm-up of 50,
 * and asserts every answer is `expected` and this process' RSS grew less than 50 MB.
 */
export async function memoryFlat(
  t: Test,
  label: string,
  reps: number,
  expected: number | string,
  fn: (i: number, lane: number) => Promise<number | string>,
  concurrency = 1,
  warmUp = WARM_UP,
): Promise<void> {
  // The first uses grow the allocator's arenas (pool thread, libuv threads) and the JS heap: warm up before measuring.
  const warm = await runLimited(warmUp, concurrency, (i, lane) => fn(-1 - i, lane));
  collectGarbage();
  const before = process.memoryUsage();
  const answers = await runLimited(reps, concurrency, fn);
  collectGarbage();
  const afterUsage = process.memoryUsage();
  const after = afterUsage.rss;
  const delta = (key: 'heapTotal' | 'external' | 'arrayBuffers') => ((afterUsage[key] - before[key]) / MB).toFixed(1);
  t.comment(`${label}: RSS ${(before.rss / MB).toFixed(0)} -> ${(after / MB).toFixed(0)} MB; JS heap ${delta('heapTotal')} MB, external ${delta('external')} MB, ArrayBuffers ${delta('arrayBuffers')} MB`);
  t.same(tally([...warm, ...answers]), { [String(expected)]: reps + warmUp }, `${label}: all ${reps + warmUp} repetitions answer ${expected}`);
  const grown = (after - before.rss) / MB;
  t.ok(grown < 50, `${label}: RSS grew ${grown.toFixed(1)} MB over ${reps} repetitions (limit 50 MB)`);
}
