/**
 * The revalidation path: a browser or CDN that holds a variant asks again
 * with its ETag and gets `304 Not Modified`, judged from the worker's memory
 * of the render index, without reading the file. Measured with wrk (the hit
 * path is beyond autocannon on 2 cores), both hit sizes; a 304 is the success.
 */
import { HIT_SIZES, variantPath } from '../lib/plan.js';
import { runWrk } from '../lib/load.js';
import { primeCache, startIaas, uploadPhoto } from '../lib/service.js';
import { started, type BenchContext } from './context.js';

/** The ETag of a cached variant, checked to revalidate to a 304. */
async function etagOf(base: string, pathAndQuery: string): Promise<string> {
  const etag = (await fetch(`${base}${pathAndQuery}`)).headers.get('etag');
  if (!etag) throw new Error(`${pathAndQuery} carries no ETag`);
  const again = await fetch(`${base}${pathAndQuery}`, { headers: { 'If-None-Match': etag } });
  if (again.status !== 304) throw new Error(`${pathAndQuery} with If-None-Match answered ${again.status}, not 304`);
  return etag;
}

export async function runRevalidateScenario(ctx: BenchContext): Promise<void> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  if (!s.wrk) {
    ctx.notes.push('revalidate: not run, it needs wrk (apt-get install wrk)');
    return;
  }
  progress.step('starting iaas');
  const service = await started(ctx, startIaas({ label: 'revalidate', root: ctx.root }));
  try {
    await uploadPhoto(service.url, ctx.photo.bytes);
    for (const size of HIT_SIZES) {
      const path = variantPath(size.width, size.height);
      await primeCache(service.url, path, 'hit');
      const etag = await etagOf(service.url, path);
      const scenario = `revalidate-${size.name}`;
      for (let r = 0; r < s.rounds; r++) {
        progress.step(`${size.width}x${size.height}: If-None-Match → 304, wrk, round ${r + 1}/${s.rounds}`);
        const connections = s.connections.hit;
        const result = await runWrk({
          wrk: s.wrk,
          scriptDir: ctx.root,
          url: service.url,
          pathAndQuery: path,
          connections,
          threads: s.wrkThreads,
          warmupSeconds: s.wrkWarmupSeconds,
          durationSeconds: s.wrkDurationSeconds,
          headers: { 'If-None-Match': etag },
        });
        ctx.collector.add(scenario, 'iaas', connections, result);
      }
      ctx.collector.annotate(scenario, 'iaas', 'wrk', { bodyBytes: 0, notes: ['304 counts as success', `If-None-Match: ${etag}`] });
    }
  } finally {
    await resources.release(service);
  }
}
