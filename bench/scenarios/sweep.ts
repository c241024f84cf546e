/**
 * The concurrency sweep of the miss path: iaas and the Node peer at 1 to 128
 * connections, every request a size never rendered before, the contenders
 * alternating within each level. At the overload level a probe checks, while
 * the load runs, that /_health keeps answering 200 and that every 503 of a
 * miss carries Retry-After.
 */
import { runAutocannon } from '../lib/load.js';
import { MISS_SEQUENCE_LENGTH, missPath } from '../lib/plan.js';
import { waitForQuiet } from '../lib/proc.js';
import { alternate } from '../lib/rounds.js';
import { startIaas, uploadPhoto } from '../lib/service.js';
import type { SweepProbe, SweepResult } from '../lib/types.js';
import { startNodePeer } from '../peers/launch.js';
import { checkRenders } from './miss.js';
import { nodePeerOptions, startContenders, type BenchContext } from './context.js';

/** Measurements of the sweep are named `sweep-<connections>`. */
export const SWEEP_PREFIX = 'sweep-';
export const SWEEP_CONTENDERS = ['iaas', 'node-peer'] as const;

/**
 * While `until` is pending: GET /_health and a far-away miss, one after the
 * other, counting statuses and whether each 503 carried Retry-After.
 */
async function probe(url: string, until: Promise<unknown>): Promise<SweepProbe> {
  const result: SweepProbe = { health: {}, miss503: 0, miss503WithRetryAfter: 0 };
  let done = false;
  void until.finally(() => (done = true));
  // Sizes from the end of the sequence: never requested by the load.
  let n = MISS_SEQUENCE_LENGTH - 2;
  const bump = (bag: Record<string, number>, key: string) => (bag[key] = (bag[key] ?? 0) + 1);
  while (!done) {
    try {
      const health = await fetch(`${url}/_health`, { signal: AbortSignal.timeout(10_000) });
      await health.arrayBuffer();
      bump(result.health, String(health.status));
      const miss = await fetch(`${url}${missPath(n--)}`, { signal: AbortSignal.timeout(30_000) });
      await miss.arrayBuffer();
      if (miss.status === 503) {
        result.miss503++;
        if (miss.headers.get('retry-after')) result.miss503WithRetryAfter++;
      }
    } catch (error) {
      bump(result.health, `error ${(error as Error).name}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return result;
}

/** Probes of a level's rounds, added up. */
function mergeProbes(a: SweepProbe | undefined, b: SweepProbe): SweepProbe {
  if (!a) return b;
  const health = { ...a.health };
  for (const [status, n] of Object.entries(b.health)) health[status] = (health[status] ?? 0) + n;
  return { health, miss503: a.miss503 + b.miss503, miss503WithRetryAfter: a.miss503WithRetryAfter + b.miss503WithRetryAfter };
}

export async function runSweepScenario(ctx: BenchContext): Promise<SweepResult> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  progress.step('starting iaas and the Node peer');
  const { service, peer } = await startContenders(ctx, { service: startIaas({ label: 'sweep', root: ctx.root }), peer: startNodePeer(nodePeerOptions(ctx)) });
  const urls: Record<(typeof SWEEP_CONTENDERS)[number], string> = { iaas: service.url, 'node-peer': peer.url };
  const pids: Record<(typeof SWEEP_CONTENDERS)[number], number> = { iaas: service.pid, 'node-peer': peer.pid };
  const probes: Record<number, SweepProbe> = {};
  try {
    await uploadPhoto(service.url, ctx.photo.bytes);
    await checkRenders(service.url, 'iaas', true);
    await checkRenders(peer.url, 'node peer', true);
    // Each contender walks the size sequence from 0: the same sizes for both, none twice.
    const cursors = new Map<string, number>(SWEEP_CONTENDERS.map((c) => [c, 0]));
    for (const connections of s.sweep.levels) {
      for (let r = 0; r < s.sweep.rounds; r++) {
        for (const contender of alternate(SWEEP_CONTENDERS, r)) {
          progress.step(`${connections} connections, ${contender}, round ${r + 1}/${s.sweep.rounds}`);
          const run = runAutocannon({
            url: urls[contender],
            connections,
            warmupSeconds: s.sweep.warmupSeconds,
            durationSeconds: s.sweep.durationSeconds,
            plan: { kind: 'miss', start: cursors.get(contender) ?? 0 },
            successClasses: [2],
          });
          const watching = contender === 'iaas' && connections >= s.sweep.overloadAt ? probe(urls.iaas, run) : undefined;
          const result = await run;
          if (watching) probes[connections] = mergeProbes(probes[connections], await watching);
          cursors.set(contender, result.nextCursor ?? 0);
          // Neither contender is measured while the other still works off a backlog of its last round.
          const settledMs = await waitForQuiet(pids[contender]);
          if (settledMs > 5_000) ctx.notes.push(`sweep-${connections}: ${contender} kept working ${(settledMs / 1000).toFixed(0)} s after its round ${r + 1} ended (the next round waited for it)`);
          ctx.collector.add(`${SWEEP_PREFIX}${connections}`, contender, connections, result);
        }
      }
    }
  } finally {
    await resources.release(peer);
    await resources.release(service);
  }
  return { levels: [...s.sweep.levels], overloadAt: s.sweep.overloadAt, probes };
}
