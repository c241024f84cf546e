/**
 * The AVIF miss path, deferred against in-request: a service negotiating
 * AVIF and WebP (AUTO_FORMATS=avif,webp) is asked, one request at a time
 * with Chromium's Accept, for JPEG URLs never rendered before. Deferred, each
 * is answered in WebP and its AVIF rendered in the background; in-request
 * (AVIF_DEFERRED=false), each waits for its AVIF. The time to the first byte
 * of each answer is compared, at each AVIF effort listed.
 */
import { request } from 'node:http';
import { missPath } from '../lib/plan.js';
import { startIaas, uploadPhoto } from '../lib/service.js';
import { percentile } from '../../test/helpers/measure.js';
import type { AvifDeferredResult } from '../lib/types.js';
import { started, type BenchContext } from './context.js';

/** What Chromium sends for an <img>. */
const CHROMIUM_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
/** Misses before the measured ones: the first renders load the addon and warm the caches. */
const WARMUP = 2;

/** One GET; resolves with the time to its response head and the format answered, once the body is read. */
function firstByte(base: string, path: string): Promise<{ ms: number; type: string }> {
  const url = new URL(base);
  const begun = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers: { Accept: CHROMIUM_ACCEPT } }, (res) => {
      const ms = performance.now() - begun;
      const type = String(res.headers['content-type'] ?? res.statusCode);
      res.resume();
      res.on('end', () => resolve({ ms, type }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The p50 time to first byte of `count` misses, and the formats they were answered in. */
async function measure(ctx: BenchContext, effort: number, deferred: boolean, count: number): Promise<{ p50: number; formats: Record<string, number> }> {
  const label = `avif-${deferred ? 'deferred' : 'immediate'}-${effort}`;
  ctx.progress.step(`AVIF effort ${effort}, ${deferred ? 'deferred' : 'in the request'}: ${count} misses`);
  const service = await started(
    ctx,
    startIaas({ label, root: ctx.root, env: { AUTO_FORMATS: 'avif,webp', AVIF_DEFERRED: String(deferred), AVIF_EFFORT: String(effort) } }),
  );
  try {
    await uploadPhoto(service.url, ctx.photo.bytes);
    const times: number[] = [];
    const formats: Record<string, number> = {};
    for (let n = 0; n < WARMUP + count; n++) {
      const answer = await firstByte(service.url, missPath(n));
      if (n < WARMUP) continue;
      times.push(answer.ms);
      formats[answer.type] = (formats[answer.type] ?? 0) + 1;
    }
    return { p50: percentile(times, 50), formats };
  } finally {
    await ctx.resources.release(service);
  }
}

export async function runAvifDeferredScenario(ctx: BenchContext): Promise<AvifDeferredResult> {
  const { requests, efforts } = ctx.settings.avifDeferred;
  const result: AvifDeferredResult = { requests, efforts: [] };
  for (const effort of efforts) {
    const deferred = await measure(ctx, effort, true, requests);
    const immediate = await measure(ctx, effort, false, requests);
    const ratio = deferred.p50 / immediate.p50;
    result.efforts.push({ effort, deferredP50: deferred.p50, immediateP50: immediate.p50, ratio, deferredFormats: deferred.formats, immediateFormats: immediate.formats });
    ctx.notes.push(
      `avif-deferred: effort ${effort}, first-byte p50 of ${requests} AVIF-capable misses ${deferred.p50.toFixed(0)} ms deferred (${JSON.stringify(deferred.formats)}) vs ${immediate.p50.toFixed(0)} ms in the request (${JSON.stringify(immediate.formats)}): ratio ${ratio.toFixed(3)}`,
    );
  }
  return result;
}
