/**
 * Memory: the service's RSS (all its processes) after 1 000 renders against
 * after 10 000 must stay flat (within 10%). Renders are miss-path requests,
 * each a new size, with one connection per render thread so the render queue
 * never refuses one; only successful renders are counted. The readings are
 * taken after a short idle pause so that work in flight does not count, one
 * after every `first` renders.
 * A --quick run scales the counts down and says so: a smoke test, no verdict.
 */
import { runAutocannon } from '../lib/load.js';
import { startRssSampler, treeRssBytes } from '../lib/proc.js';
import { sleep } from '../../test/helpers/timing.js';
import { startIaas, uploadPhoto, type RunningService } from '../lib/service.js';
import type { MemoryResult } from '../lib/types.js';
import { started, type BenchContext } from './context.js';

/** Idle time before a reading: stores after the responses and GC settle (shorter in --quick). */
const SETTLE_MS = 1_500;
const QUICK_SETTLE_MS = 500;
/** Runs allowed to make up for refused or failed renders before giving up. */
const MAX_RUNS = 5;

/** Renders until `target` successful ones are done (from sequence number `cursor` on). */
async function renderUntil(ctx: BenchContext, service: RunningService, state: { done: number; cursor: number; failed: number }, target: number): Promise<void> {
  const connections = ctx.settings.defaultSplit.workers * ctx.settings.defaultSplit.pool;
  for (let run = 0; run < MAX_RUNS && state.done < target; run++) {
    const result = await runAutocannon({
      url: service.url,
      connections,
      warmupSeconds: 0,
      durationSeconds: 0,
      amount: Math.max(connections, target - state.done),
      plan: { kind: 'miss', start: state.cursor },
      successClasses: [2],
    });
    state.cursor = result.nextCursor ?? state.cursor + target;
    state.done += result.statusCodes['200'] ?? 0;
    state.failed += result.errors + result.non2xx;
  }
}

export async function runMemoryScenario(ctx: BenchContext): Promise<MemoryResult> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  const { first, total, scaledDown } = s.memory;
  const settle = () => sleep(s.quick ? QUICK_SETTLE_MS : SETTLE_MS);
  progress.step('starting iaas');
  const service = await started(ctx, startIaas({ label: 'memory', root: ctx.root }));
  const sampler = startRssSampler(service.pid, 500);
  const began = performance.now();
  const state = { done: 0, cursor: 0, failed: 0 };
  try {
    await uploadPhoto(service.url, ctx.photo.bytes);
    progress.step(`${first} renders`);
    await renderUntil(ctx, service, state, first);
    await settle();
    const rssAtFirst = treeRssBytes(service.pid);
    const renderedFirst = state.done;
    const series = [{ renders: renderedFirst, rssBytes: rssAtFirst }];
    progress.step(`${total - first} more renders (RSS after ${renderedFirst}: ${(rssAtFirst / 2 ** 20).toFixed(0)} MiB)`);
    // Readings along the way tell a plateau (warm-up) from a steady climb (a leak).
    for (let target = 2 * first; state.done < total; target = Math.min(total, target + first)) {
      await renderUntil(ctx, service, state, target);
      await settle();
      series.push({ renders: state.done, rssBytes: treeRssBytes(service.pid) });
      if (state.done < target) break;
    }
    const rssAtTotal = series[series.length - 1]?.rssBytes ?? rssAtFirst;
    return {
      firstRenders: first,
      totalRenders: total,
      rendered: [renderedFirst, state.done],
      rssAtFirstBytes: rssAtFirst,
      rssAtTotalBytes: rssAtTotal,
      series,
      change: rssAtTotal / rssAtFirst - 1,
      peakRssBytes: sampler.stop(),
      scaledDown,
      seconds: (performance.now() - began) / 1000,
      errors: state.failed,
    };
  } finally {
    sampler.stop();
    await resources.release(service);
  }
}
