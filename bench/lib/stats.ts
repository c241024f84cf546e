/** Small statistics helpers for the benchmarks (percentile is the tests' one, test/helpers/measure.ts). */
import { percentile } from '../../test/helpers/measure.js';
import type { LoadResult } from './types.js';

/** The median of a list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Rounds for display. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/**
 * A LoadResult measured in-process rather than by a load generator (the
 * floor's direct pool calls): no client CPU, no HTTP statuses, every
 * request a success.
 */
export function directResult(latencies: readonly number[], seconds: number, bytesPerSecond: number, nextCursor: number): LoadResult {
  const rps = latencies.length / seconds;
  return {
    client: 'direct',
    rps,
    totalRps: rps,
    requests: latencies.length,
    seconds,
    latency: { p50: percentile(latencies, 50), p97_5: percentile(latencies, 97.5), p99: percentile(latencies, 99), max: Math.max(...latencies) },
    errors: 0,
    timeouts: 0,
    non2xx: 0,
    statusCodes: {},
    bytesPerSecond,
    clientCpuPercent: 0,
    clientBound: false,
    nextCursor,
  };
}
