/**
 * Misses from realistic originals: the corpus (12 MP progressive and baseline
 * JPEG, 12 MP PNG, 5 MP AVIF, or --corpus DIR) uploaded to iaas, which makes
 * its working copies, and copied into the Node peer, which decodes the
 * original on every miss. Every request is a new size (160 to 1198 px, the
 * fits in turn), the contenders alternating: the mix over every source at
 * each connection level, and each source alone at a few levels.
 *
 * Then the upload cost: the corpus uploaded again and again to an iaas with
 * working copies and to one without, alternating; with copies, the run also
 * waits until every copy is decided, and that time is reported beside it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateCorpus, readCorpus, type CorpusEntry } from '../lib/corpus.js';
import { runAutocannon } from '../lib/load.js';
import { alternate } from '../lib/rounds.js';
import { issueTokens, photoForm, startIaas, uploadPhoto, type RunningService } from '../lib/service.js';
import type { OriginalsResult } from '../lib/types.js';
import { startNodePeer } from '../peers/launch.js';
import { nodePeerOptions, startContenders, type BenchContext } from './context.js';

/** Measurements are named `originals-<source>-<connections>`, the mix's source being `mix`. */
export const ORIGINALS_PREFIX = 'originals-';
export const ORIGINALS_UPLOAD = 'originals-upload';
export const ORIGINALS_CONTENDERS = ['iaas', 'node-peer'] as const;
const BOUNDARY = 'iaas-bench-corpus';
/** Uploads of a 12 MP PNG are larger than the default MAX_UPLOAD_BYTES. */
const UPLOAD_ENV = { MAX_UPLOAD_BYTES: String(128 * 1024 * 1024) };

/** The cluster's /metrics, summed per series name + labels. */
async function metrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(iaas_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
    if (match) out.set(match[1] as string, (out.get(match[1] as string) ?? 0) + Number(match[2]));
  }
  return out;
}

/** Originals whose copies were decided so far (made, none, dropped or failed), and the copies' bytes. */
async function copyProgress(url: string): Promise<{ decided: number; byOutcome: Record<string, number>; bytes: number }> {
  const all = await metrics(url);
  const byOutcome: Record<string, number> = {};
  for (const [series, value] of all) {
    const outcome = /^iaas_working_copies_total\{outcome="([a-z]+)"\}$/.exec(series)?.[1];
    if (outcome) byOutcome[outcome] = value;
  }
  return { decided: Object.values(byOutcome).reduce((a, b) => a + b, 0), byOutcome, bytes: all.get('iaas_upload_bytes_total{kind="working_copy"}') ?? 0 };
}

/** Waits until `count` originals have their copies decided; the primary refreshes the totals every 2 s. */
async function copiesDecided(url: string, count: number, timeoutMs: number): Promise<Awaited<ReturnType<typeof copyProgress>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress = await copyProgress(url);
    if (progress.decided >= count) return progress;
    if (Date.now() > deadline) throw new Error(`only ${progress.decided} of ${count} originals had their working copies decided after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Uploads the corpus one original at a time, recording what each one's copies cost in storage. */
async function uploadCorpus(service: RunningService, corpus: CorpusEntry[]): Promise<OriginalsResult['corpus']> {
  const out: OriginalsResult['corpus'] = [];
  for (const [i, entry] of corpus.entries()) {
    const before = await copyProgress(service.url);
    await uploadPhoto(service.url, entry.bytes, entry.id);
    const after = await copiesDecided(service.url, i + 1, 120_000);
    out.push({ id: entry.id, describe: entry.describe, width: entry.width, height: entry.height, bytes: entry.bytes.byteLength, copyBytes: after.bytes - before.bytes });
  }
  return out;
}

async function missRuns(ctx: BenchContext, urls: Record<string, string>, levels: number[], rounds: number, ids: string[], scenario: string, cursors: Map<string, number>): Promise<void> {
  const s = ctx.settings.originals;
  for (const connections of levels) {
    for (let r = 0; r < rounds; r++) {
      for (const contender of alternate(ORIGINALS_CONTENDERS, r)) {
        ctx.progress.step(`${scenario}: ${connections} connections, ${contender}, round ${r + 1}/${rounds}`);
        const result = await runAutocannon({
          url: urls[contender] as string,
          connections,
          warmupSeconds: s.warmupSeconds,
          durationSeconds: s.durationSeconds,
          plan: { kind: 'corpus', start: cursors.get(contender) ?? 0, ids },
          successClasses: [2],
        });
        cursors.set(contender, result.nextCursor ?? 0);
        ctx.collector.add(`${ORIGINALS_PREFIX}${scenario}-${connections}`, contender, connections, result);
      }
    }
  }
}

/** Uploads/s of the corpus with and without working copies, alternating. */
async function uploadRuns(ctx: BenchContext, corpus: CorpusEntry[]): Promise<OriginalsResult['uploads']> {
  const s = ctx.settings.originals;
  const bodies = corpus.map((entry) => {
    const file = path.join(ctx.root, `upload-${entry.id}.bin`);
    writeFileSync(file, photoForm(entry.bytes, BOUNDARY));
    return file;
  });
  const services = await startContenders(ctx, {
    copies: startIaas({ label: 'upload-copies', root: ctx.root, env: UPLOAD_ENV }),
    'no-copies': startIaas({ label: 'upload-plain', root: ctx.root, env: { ...UPLOAD_ENV, WORKING_COPIES: 'false' } }),
  });
  const settle: number[] = [];
  const outcomes: Record<string, number> = {};
  let serial = 0;
  let uploaded = 0;
  try {
    for (let r = 0; r < s.rounds; r++) {
      for (const variant of alternate(['copies', 'no-copies'] as const, r)) {
        ctx.progress.step(`uploads ${variant === 'copies' ? 'with' : 'without'} working copies, round ${r + 1}/${s.rounds}`);
        const service = services[variant];
        const tokens = await issueTokens(service.url, Array.from({ length: s.uploads }, () => `up-${serial++}`));
        const started = performance.now();
        const result = await runAutocannon({
          url: service.url,
          connections: ctx.settings.connections.upload,
          warmupSeconds: 0,
          durationSeconds: 0,
          amount: s.uploads,
          plan: { kind: 'upload', tokens, bodyFile: bodies, boundary: BOUNDARY },
          successClasses: [2],
        });
        ctx.collector.add(ORIGINALS_UPLOAD, variant, ctx.settings.connections.upload, result);
        if (variant === 'copies') {
          uploaded += s.uploads;
          const progress = await copiesDecided(service.url, uploaded, 600_000);
          settle.push((performance.now() - started) / 1000);
          Object.assign(outcomes, progress.byOutcome);
        }
      }
    }
  } finally {
    await ctx.resources.release(services.copies);
    await ctx.resources.release(services['no-copies']);
  }
  return { perRun: s.uploads, copiesSettledSeconds: settle, outcomes };
}

export async function runOriginalsScenario(ctx: BenchContext): Promise<OriginalsResult> {
  const s = ctx.settings;
  ctx.progress.step(s.corpusDir ? `reading the corpus in ${s.corpusDir}` : 'generating the corpus from the photo');
  const corpus = s.corpusDir ? readCorpus(s.corpusDir, ctx.root) : await generateCorpus(ctx.photo.bytes, ctx.root);
  ctx.progress.step('starting iaas and the Node peer');
  const { service, peer } = await startContenders(ctx, { service: startIaas({ label: 'originals', root: ctx.root, env: UPLOAD_ENV }), peer: startNodePeer(nodePeerOptions(ctx, corpus)) });
  let stored: OriginalsResult['corpus'];
  try {
    ctx.progress.step('uploading the corpus; waiting for its working copies');
    stored = await uploadCorpus(service, corpus);
    const urls = { iaas: service.url, 'node-peer': peer.url };
    const ids = corpus.map((entry) => entry.id);
    // One cursor per contender over every run: no size is requested twice of an original.
    const cursors = new Map<string, number>(ORIGINALS_CONTENDERS.map((c) => [c, 0]));
    await missRuns(ctx, urls, s.originals.levels, s.originals.rounds, ids, 'mix', cursors);
    for (const id of ids) await missRuns(ctx, urls, s.originals.sourceLevels, s.originals.sourceRounds, [id], id, cursors);
  } finally {
    await ctx.resources.release(peer);
    await ctx.resources.release(service);
  }
  const uploads = await uploadRuns(ctx, corpus);
  return { corpus: stored, levels: [...s.originals.levels], sourceLevels: [...s.originals.sourceLevels], uploads };
}
