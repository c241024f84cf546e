/**
 * Scenario 5, cluster splits: the miss path on several WORKERS x POOL_SIZE
 * splits of this machine's cores (all render threads in one process, one per
 * process, twice the cores), all running at once and measured in alternating
 * order, so the default the service picks is justified by numbers.
 */
import { alternate } from '../lib/rounds.js';
import { startIaas, uploadPhoto, type RunningService } from '../lib/service.js';
import { splitName } from '../lib/settings.js';
import type { SplitResult } from '../lib/types.js';
import { startContenders, type BenchContext } from './context.js';
import { measureMiss } from './miss.js';

export const SPLIT_PREFIX = 'split-';

export async function runSplitsScenario(ctx: BenchContext): Promise<{ results: SplitResult[]; winner: string; defaultSplit: string }> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  const services = new Map<string, RunningService>();
  try {
    progress.step(`starting iaas as ${s.splits.map(splitName).join(', ')} (WORKERS x POOL_SIZE)`);
    const running = await startContenders(
      ctx,
      Object.fromEntries(s.splits.map((split) => [splitName(split), startIaas({ label: `split-${splitName(split)}`, root: ctx.root, workers: split.workers, pool: split.pool })])),
    );
    for (const [name, service] of Object.entries(running)) services.set(name, service);
    for (const service of services.values()) await uploadPhoto(service.url, ctx.photo.bytes);
    const names = s.splits.map(splitName);
    const cursors = new Map(names.map((n) => [n, 0]));
    for (let r = 0; r < s.rounds; r++) {
      for (const name of alternate(names, r)) {
        progress.step(`${name}, round ${r + 1}/${s.rounds}`);
        const service = services.get(name) as RunningService;
        const { result, peakRss } = await measureMiss(ctx, service.url, service.pid, cursors.get(name) ?? 0);
        cursors.set(name, result.nextCursor ?? 0);
        ctx.collector.add(`${SPLIT_PREFIX}${name}`, 'iaas', s.connections.miss, result);
        ctx.collector.annotate(`${SPLIT_PREFIX}${name}`, 'iaas', 'autocannon', { peakRssBytes: peakRss });
      }
    }
  } finally {
    for (const service of services.values()) await resources.release(service);
  }
  const measurements = ctx.collector.measurements();
  const results: SplitResult[] = s.splits.map((split) => {
    const measurement = measurements.find((m) => m.scenario === `${SPLIT_PREFIX}${splitName(split)}`);
    if (!measurement) throw new Error(`no measurement of split ${splitName(split)}`);
    return { ...split, isDefault: split.workers === s.defaultSplit.workers && split.pool === s.defaultSplit.pool, measurement };
  });
  const best = [...results].sort((a, b) => b.measurement.summary.rps - a.measurement.summary.rps)[0] as SplitResult;
  return { results, winner: splitName(best), defaultSplit: splitName(s.defaultSplit) };
}
