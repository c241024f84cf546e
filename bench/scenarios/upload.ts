/**
 * Scenario 4, uploads: each upload needs a new id and a one-time token, so
 * tokens are issued before each measured run (POST /token, not timed) and the
 * load generator sends one multipart POST /{id}.jpg of the ~1 MB JPEG per
 * token. The run stops after as many uploads as tokens were issued; that
 * count comes from the warm-up's rate, so the run lasts about the set time.
 *
 * What each upload feature costs: three services take turns, one without the
 * summary of GET /{id}.json (METADATA_AT_UPLOAD=false), one with it (the
 * default), and one that also pre-renders two variants after each upload
 * (PRERENDER). Pre-renders run after the 200, at the background priority, so
 * they show as CPU taken from the uploads; after each of that service's runs
 * the scenario waits until every pre-render ended (stored, or dropped while the
 * machine shed) and records how long that took and how they ended.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runAutocannon } from '../lib/load.js';
import { alternate } from '../lib/rounds.js';
import { issueTokens, photoForm, startIaas } from '../lib/service.js';
import type { LoadResult } from '../lib/types.js';
import { started, type BenchContext } from './context.js';

export const UPLOAD = 'upload';
const BOUNDARY = 'iaas-bench-boundary';
/** More tokens than this per run would take longer to issue than to use. */
const MAX_TOKENS = 20_000;
/** The pre-renders of the third contender: a square WebP thumbnail and a large JPEG. */
export const BENCH_PRERENDER = '_320_320.webp?fit=crop,_1024_1024.jpg';
/** How long the pre-renders of one run may take to drain before the scenario gives up waiting. */
const DRAIN_LIMIT_MS = Number(process.env.IAAS_BENCH_DRAIN_MS ?? 300_000);

interface Contender {
  name: string;
  env: Record<string, string>;
  prerenders: number;
}

const CONTENDERS: readonly Contender[] = [
  { name: 'iaas, no metadata', env: { METADATA_AT_UPLOAD: 'false' }, prerenders: 0 },
  { name: 'iaas', env: {}, prerenders: 0 },
  { name: 'iaas + prerender', env: { PRERENDER: BENCH_PRERENDER }, prerenders: BENCH_PRERENDER.split(',').length },
];

/** The cluster's pre-render outcomes so far, from /metrics (workers report every 2 s). */
async function prerenderOutcomes(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const outcomes: Record<string, number> = {};
  for (const match of text.matchAll(/^iaas_prerenders_total\{outcome="(\w+)"\} (\d+(?:\.\d+)?)$/gm)) outcomes[match[1] as string] = Number(match[2]);
  return outcomes;
}

const total = (outcomes: Record<string, number>) => Object.values(outcomes).reduce((sum, n) => sum + n, 0);

export async function runUploadScenario(ctx: BenchContext): Promise<void> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  const connections = s.connections.upload;
  const bodyFile = path.join(ctx.root, 'upload-body.bin');
  writeFileSync(bodyFile, photoForm(ctx.uploadPhoto.bytes, BOUNDARY));
  const services = new Map<string, Awaited<ReturnType<typeof startIaas>>>();
  let serial = 0;
  const ids = (count: number) => Array.from({ length: count }, () => `up-${serial++}`);
  const counts = new Map<string, number[]>();
  const drains: string[] = [];
  try {
    for (const contender of CONTENDERS) {
      progress.step(`starting ${contender.name}`);
      services.set(contender.name, await started(ctx, startIaas({ label: `upload-${services.size}`, root: ctx.root, env: contender.env })));
    }
    for (let r = 0; r < s.rounds; r++) {
      for (const contender of alternate(CONTENDERS, r)) {
        const service = services.get(contender.name);
        if (!service) continue;
        const run = async (count: number): Promise<LoadResult> => {
          const tokens = await issueTokens(service.url, ids(count));
          return runAutocannon({
            url: service.url,
            connections,
            warmupSeconds: 0,
            durationSeconds: 0,
            amount: count,
            plan: { kind: 'upload', tokens, bodyFile, boundary: BOUNDARY },
            successClasses: [2],
          });
        };
        // Pre-renders ended so far, read before a run: those of the run come on top.
        const baseline = async () => (contender.prerenders === 0 ? 0 : total(await prerenderOutcomes(service.url)));
        const drained = async (label: string, before: number, uploads: number) => {
          if (contender.prerenders === 0) return;
          const expected = before + uploads * contender.prerenders;
          const since = performance.now();
          let outcomes = await prerenderOutcomes(service.url);
          while (total(outcomes) < expected && performance.now() - since < DRAIN_LIMIT_MS) {
            progress.step(`${contender.name}: ${total(outcomes)} of ${expected} pre-renders ended`);
            await new Promise((resolve) => setTimeout(resolve, 250));
            outcomes = await prerenderOutcomes(service.url);
          }
          if (label) drains.push(`${label}: ${(performance.now() - since) / 1000 < 0.05 ? 0 : ((performance.now() - since) / 1000).toFixed(1)} s to drain after the last upload; outcomes so far ${JSON.stringify(outcomes)}`);
        };
        progress.step(`${contender.name}: warm-up uploads, round ${r + 1}/${s.rounds}`);
        // The warm-up is a fixed count: its rate sizes the measured run.
        const beforeWarm = await baseline();
        const warm = await run(Math.max(connections * 2, Math.round(s.warmupSeconds * 20)));
        // The pre-renders of the warm-up must not run into the measured uploads.
        await drained('', beforeWarm, warm.statusCodes['200'] ?? warm.requests);
        const count = Math.min(MAX_TOKENS, Math.max(connections * 4, Math.ceil(warm.rps * s.durationSeconds)));
        progress.step(`${contender.name}: ${count} uploads (tokens issued first), round ${r + 1}/${s.rounds}`);
        const beforeRun = await baseline();
        const result = await run(count);
        counts.set(contender.name, [...(counts.get(contender.name) ?? []), count]);
        ctx.collector.add(UPLOAD, contender.name, connections, result);
        progress.step(`${contender.name}: waiting for the pre-renders, round ${r + 1}/${s.rounds}`);
        await drained(`round ${r + 1}, ${count} uploads`, beforeRun, result.statusCodes['200'] ?? count);
      }
    }
  } finally {
    for (const service of services.values()) await resources.release(service);
  }
  for (const contender of CONTENDERS) {
    const notes = [
      `tokens pre-issued before each run (not timed); runs of ${(counts.get(contender.name) ?? []).join(', ')} uploads sized from the warm-up rate`,
      contender.env.METADATA_AT_UPLOAD === 'false'
        ? 'METADATA_AT_UPLOAD=false: no dominant colour, BlurHash or LQIP computed at upload'
        : 'the summary of GET /{id}.json (dominant colour, BlurHash, LQIP) computed at upload',
      ...(contender.prerenders > 0 ? [`PRERENDER=${BENCH_PRERENDER}: rendered after each 200 at the background priority`, ...drains] : []),
    ];
    ctx.collector.annotate(UPLOAD, contender.name, 'autocannon', { bodyBytes: ctx.uploadPhoto.bytes.byteLength, notes });
  }
}
