/**
 * `npm run bench`: the native comparison, the HTTP scenarios against the
 * service and its peers, and the targets, in one summary. Every process it
 * needs (the service, the Node peer, nginx, s3rver, load generators) is
 * started and stopped here, each on a free port with its own folders.
 *
 *   npm run bench [-- --quick] [-- --save] [-- --only miss,hit] [-- --input PHOTO.jpg] [-- --corpus DIR]
 *
 * --quick   every scenario for a few seconds, one round (a smoke test, < 2 min);
 *           its JSON goes to bench/results/tmp/ and latest.svg is left alone
 * --save    with --quick or --only: write bench/results/latest.svg anyway
 * --only    run only these scenarios: native, sweep, originals, miss, avif-flood, avif-deferred, hit, revalidate, redirect, upload, splits, memory
 * --input   a real photo instead of the synthesized 2725x2225 one (for every scenario)
 * --corpus  real originals (any format) for the realistic-originals scenario, instead of
 *           the 12 MP JPEGs and PNG and the 5 MP AVIF generated from the photo
 *
 * A full run writes bench/results/<ISO date>-<git sha>.json and latest.svg.
 * Exit status 1 when a scenario failed to run; a missed target is reported,
 * not an error (the numbers of a shared 2-core machine are noisy).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo, resultStamp } from './lib/machine.js';
import { benchInput, synthesizePhoto } from './lib/photo.js';
import { Progress } from './lib/progress.js';
import { formatSummary } from './lib/report.js';
import { Collector } from './lib/rounds.js';
import { configRecord, estimateSeconds, resolveSettings, SCENARIOS, type ScenarioName } from './lib/settings.js';
import { renderSvg, renderSweepSvg } from './lib/svg.js';
import { computeRatios } from './lib/targets.js';
import type { AvifDeferredResult, AvifFloodResult, BenchResult, MemoryResult, OriginalsResult, SweepResult } from './lib/types.js';
import { runNativeBench, type NativeReport } from './native.js';
import { Resources, type BenchContext, type Input } from './scenarios/context.js';
import { runHitScenario } from './scenarios/hit.js';
import { runMemoryScenario } from './scenarios/memory.js';
import { runMissScenario } from './scenarios/miss.js';
import { runRedirectScenario } from './scenarios/redirect.js';
import { runRevalidateScenario } from './scenarios/revalidate.js';
import { runSplitsScenario } from './scenarios/splits.js';
import { runSweepScenario } from './scenarios/sweep.js';
import { runAvifDeferredScenario } from './scenarios/avif-deferred.js';
import { runAvifFloodScenario } from './scenarios/avif-flood.js';
import { runOriginalsScenario } from './scenarios/originals.js';
import { runUploadScenario } from './scenarios/upload.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** bench/results in the source tree (this file runs from <outDir>/bench). */
export const RESULTS_DIR = path.resolve(here, '..', '..', 'bench', 'results');

function parseOnly(values: string[] | undefined): ScenarioName[] | null {
  if (!values?.length) return null;
  const names = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const name of names) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--only: unknown scenario ${name}; one of ${SCENARIOS.join(', ')}`);
  }
  return names as ScenarioName[];
}

function input(root: string, name: string, bytes: Uint8Array, describe: string): Input {
  const file = path.join(root, name);
  writeFileSync(file, bytes);
  return { bytes, file, describe };
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        save: { type: 'boolean', default: false },
        only: { type: 'string', multiple: true },
        input: { type: 'string' },
        corpus: { type: 'string' },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\nusage: npm run bench [-- --quick] [-- --save] [-- --only ${SCENARIOS.join(',')}] [-- --input PHOTO.jpg] [-- --corpus DIR]`);
    return 2;
  }
  let only: ScenarioName[] | null;
  try {
    only = parseOnly(values.only);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  const settings = resolveSettings({ quick: !!values.quick, save: !!values.save, only, corpusDir: values.corpus });
  const selected = SCENARIOS.filter((name) => !settings.only || settings.only.includes(name));
  const progress = new Progress(selected.map((name) => ({ name, estimate: estimateSeconds(name, settings) })));
  progress.note(`iaas bench${settings.quick ? ' --quick' : ''}: ${selected.length} scenarios (${selected.join(', ')}), about ${progress.secondsLeft()} s`);

  const root = mkdtempSync(path.join(tmpdir(), 'iaas-bench-'));
  const resources = new Resources();
  const interrupt = (signal: string) => {
    process.stderr.write(`\n${signal}: stopping every process the benchmark started\n`);
    void resources.stopAll().finally(() => {
      rmSync(root, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', () => interrupt('SIGINT'));
  process.once('SIGTERM', () => interrupt('SIGTERM'));

  progress.note(values.input ? `reading ${values.input}; synthesizing the upload photo` : 'synthesizing the input photos');
  const chosen = benchInput(values.input);
  const ctx: BenchContext = {
    settings,
    progress,
    root,
    photo: input(root, 'photo.jpg', chosen.bytes, chosen.name),
    // About 1 MB: the same generator at ~3 megapixels.
    uploadPhoto: input(root, 'upload.jpg', synthesizePhoto(2000, 1520, 90, 7), 'synthesized 2000x1520 photo-like JPEG q90'),
    collector: new Collector(),
    resources,
    notes: [],
  };
  let native: NativeReport | undefined;
  let splits: BenchResult['splits'];
  let memory: MemoryResult | undefined;
  let sweep: SweepResult | undefined;
  let avifFlood: AvifFloodResult | undefined;
  let avifDeferred: AvifDeferredResult | undefined;
  let originals: OriginalsResult | undefined;
  const skipped = new Map<string, string>();
  let failed = 0;
  for (const name of SCENARIOS) {
    if (!selected.includes(name)) {
      skipped.set(name, 'scenario not run (--only)');
      continue;
    }
    progress.begin(name);
    try {
      if (name === 'native') {
        native = await runNativeBench({
          quick: settings.quick,
          ms: settings.native.ms,
          tasks: settings.native.tasks,
          inflights: settings.native.inflights,
          inputBytes: { bytes: ctx.photo.bytes, name: ctx.photo.describe },
          // Its own estimate of the time left is dropped: the progress line has the run's.
          onProgress: (m) => progress.step(m.replace(/ \(~\d+ s left\)$/, '')),
        });
      }
      if (name === 'sweep') sweep = await runSweepScenario(ctx);
      if (name === 'originals') originals = await runOriginalsScenario(ctx);
      if (name === 'miss') await runMissScenario(ctx);
      if (name === 'avif-flood') avifFlood = await runAvifFloodScenario(ctx);
      if (name === 'avif-deferred') avifDeferred = await runAvifDeferredScenario(ctx);
      if (name === 'hit') await runHitScenario(ctx);
      if (name === 'revalidate') await runRevalidateScenario(ctx);
      if (name === 'redirect') await runRedirectScenario(ctx);
      if (name === 'upload') await runUploadScenario(ctx);
      if (name === 'splits') splits = await runSplitsScenario(ctx);
      if (name === 'memory') memory = await runMemoryScenario(ctx);
    } catch (error) {
      failed++;
      const message = (error as Error).message.split('\n')[0] ?? String(error);
      skipped.set(name, `scenario failed: ${message}`);
      ctx.notes.push(`${name} failed: ${message}`);
      console.error(error);
      await resources.stopAll();
    }
  }
  if (settings.native.tasks) ctx.notes.push(`native: only the target task (${settings.native.tasks.join(', ')}, ${settings.native.inflights?.join(', ')} in flight) in --quick, ${settings.native.ms} ms per run`);
  if (memory?.scaledDown) ctx.notes.push(`memory: --quick renders ${memory.firstRenders} then ${memory.totalRenders} instead of 1000 then 10000`);
  if (!settings.wrk) ctx.notes.push('wrk not installed: apt-get install wrk');
  else if (settings.wrkWarmupSeconds === 0) ctx.notes.push('wrk: no warm-up run of its own in --quick; the autocannon run just before it on the same server and path is the warm-up');
  if (selected.some((n) => n === 'miss' || n === 'splits' || n === 'memory')) {
    ctx.notes.push('miss path: every request a size never rendered before (box width 300..900 px, box height >= 1000 only to make the key unique)');
  }
  if (selected.some((n) => n === 'miss' || n === 'hit' || n === 'redirect')) ctx.notes.push('every image URL asks for `?quality=80`, so all contenders encode the same JPEG q80');
  if (selected.includes('upload')) ctx.notes.push('upload: tokens are pre-issued before each measured run (POST /token is not timed); each request is one multipart POST of a new id');
  const refused = ctx.collector
    .measurements()
    .filter((m) => m.contender === 'iaas')
    .map((m) => [m.scenario, m.summary.statusCodes['503'] ?? 0] as const)
    .filter(([, count]) => count > 0);
  if (refused.length) {
    const d = settings.defaultSplit;
    ctx.notes.push(
      `iaas answered 503 (shedding) in ${refused.map(([scenario, count]) => `${scenario}: ${count}`).join(', ')}: ` +
        `a render is refused when the machine-wide queue (${d.workers} workers, ${d.pool} slots) would keep it waiting past QUEUE_WAIT_MS, or past QUEUE_LIMIT ${d.queueLimit} waiting; refused requests do not count as throughput`,
    );
  }
  const missing = new Map<string, string>();
  if (!settings.wrk) missing.set('wrk', 'wrk not installed: apt-get install wrk');
  if (!settings.nginx) missing.set('nginx', 'nginx not installed: apt-get install nginx libnginx-mod-http-image-filter');
  const measurements = ctx.collector.measurements();
  const result: BenchResult = {
    kind: 'http-bench',
    version: 1,
    machine: machineInfo(),
    config: configRecord(settings, { photo: ctx.photo.describe, photoBytes: ctx.photo.bytes.byteLength, uploadBytes: ctx.uploadPhoto.bytes.byteLength }),
    ...(native ? { native } : {}),
    measurements,
    ...(splits ? { splits } : {}),
    ...(memory ? { memory } : {}),
    ...(sweep ? { sweep } : {}),
    ...(avifFlood ? { avifFlood } : {}),
    ...(avifDeferred ? { avifDeferred } : {}),
    ...(originals ? { originals } : {}),
    ratios: computeRatios({
      measurements,
      ...(native ? { native } : {}),
      ...(memory ? { memory } : {}),
      ...(sweep ? { sweep } : {}),
      ...(avifFlood ? { avifFlood } : {}),
      ...(originals ? { originals } : {}),
      skipped,
      missing,
    }),
    notes: ctx.notes,
    durationSeconds: Math.round(progress.elapsed()),
  };
  await resources.stopAll();
  rmSync(root, { recursive: true, force: true });

  console.log(formatSummary(result));
  const stamp = resultStamp(result.machine);
  const jsonDir = settings.quick ? path.join(RESULTS_DIR, 'tmp') : RESULTS_DIR;
  mkdirSync(jsonDir, { recursive: true });
  const jsonFile = path.join(jsonDir, `${stamp}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nsaved ${path.relative(process.cwd(), jsonFile)} (${result.durationSeconds} s)`);
  // A partial or quick run does not replace the chart of the last full run unless asked to.
  if ((!settings.quick && !settings.only) || settings.save) {
    const svgFile = path.join(RESULTS_DIR, 'latest.svg');
    writeFileSync(svgFile, renderSvg(result));
    console.log(`saved ${path.relative(process.cwd(), svgFile)}`);
    if (result.sweep) {
      const sweepFile = path.join(RESULTS_DIR, 'sweep.svg');
      writeFileSync(sweepFile, renderSweepSvg(result));
      console.log(`saved ${path.relative(process.cwd(), sweepFile)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
