/**
 * Scenario 3, the redirect hit path: the render cache is S3 (s3rver, started
 * here), so a cached variant is answered with a 303 to the bucket URL, from
 * the worker's in-process LRU. The 303 is the success here. Both sizes of the
 * hit path, both clients; no peer (the original service had no such mode).
 */
import { startS3rver } from '../../test/helpers/s3.js';
import { HIT_SIZES, variantPath } from '../lib/plan.js';
import { primeCache, startIaas, uploadPhoto } from '../lib/service.js';
import { started, type BenchContext } from './context.js';
import { measureFixed } from './hit.js';

export async function runRedirectScenario(ctx: BenchContext): Promise<void> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  progress.step('starting s3rver and iaas with an S3 render cache');
  const s3 = await started(ctx, startS3rver({ bucket: 'iaas-bench' }));
  try {
    const service = await started(
      ctx,
      startIaas({
        label: 'redirect',
        root: ctx.root,
        env: {
          S3_BUCKET: s3.bucket,
          S3_ENDPOINT: s3.endpoint,
          AWS_ACCESS_KEY_ID: 'S3RVER',
          AWS_SECRET_ACCESS_KEY: 'S3RVER',
          AWS_REGION: 'us-east-1',
        },
      }),
    );
    try {
      await uploadPhoto(service.url, ctx.photo.bytes);
      const bodies: Record<string, number> = {};
      for (const size of HIT_SIZES) bodies[size.name] = await primeCache(service.url, variantPath(size.width, size.height), 'redirect');
      for (const size of HIT_SIZES) {
        const scenario = `redirect-${size.name}`;
        for (let r = 0; r < s.rounds; r++) {
          progress.step(`${size.width}x${size.height}: iaas 303, autocannon${s.wrk ? ' then wrk' : ''}, round ${r + 1}/${s.rounds}`);
          await measureFixed(ctx, scenario, 'iaas', service.url, variantPath(size.width, size.height), [2, 3]);
        }
        for (const client of ['autocannon', 'wrk'] as const) {
          ctx.collector.annotate(scenario, 'iaas', client, { bodyBytes: bodies[size.name] ?? 0, notes: ['3xx counts as success'] });
        }
      }
    } finally {
      await resources.release(service);
    }
  } finally {
    await resources.release(s3);
  }
}
