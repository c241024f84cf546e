/**
 * Scenario 4, uploads: each upload needs a new id and a one-time token, so
 * tokens are issued before each measured run (POST /token, not timed) and the
 * load generator sends one multipart POST /{id}.jpg of the ~1 MB JPEG per
 * token. The run stops after as many uploads as tokens were issued; that
 * count comes from the warm-up's rate, so the run lasts about the set time.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runAutocannon } from '../lib/load.js';
import { issueTokens, multipartBody, startIaas } from '../lib/service.js';
import type { LoadResult } from '../lib/types.js';
import { started, type BenchContext } from './context.js';

export const UPLOAD = 'upload';
const BOUNDARY = 'iaas-bench-boundary';
/** More tokens than this per run would take longer to issue than to use. */
const MAX_TOKENS = 20_000;

export async function runUploadScenario(ctx: BenchContext): Promise<void> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  const connections = s.connections.upload;
  progress.step('starting iaas');
  const service = await started(ctx, startIaas({ label: 'upload', root: ctx.root }));
  const bodyFile = path.join(ctx.root, 'upload-body.bin');
  writeFileSync(bodyFile, multipartBody(ctx.uploadPhoto.bytes, BOUNDARY));
  let serial = 0;
  const ids = (count: number) => Array.from({ length: count }, () => `up-${serial++}`);
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
  const counts: number[] = [];
  try {
    for (let r = 0; r < s.rounds; r++) {
      progress.step(`warm-up uploads, round ${r + 1}/${s.rounds}`);
      // The warm-up is a fixed count: its rate sizes the measured run.
      const warm = await run(Math.max(connections * 2, Math.round(s.warmupSeconds * 20)));
      const count = Math.min(MAX_TOKENS, Math.max(connections * 4, Math.ceil(warm.rps * s.durationSeconds)));
      progress.step(`${count} uploads (tokens issued first), round ${r + 1}/${s.rounds}`);
      const result = await run(count);
      counts.push(count);
      ctx.collector.add(UPLOAD, 'iaas', connections, result);
    }
  } finally {
    await resources.release(service);
  }
  ctx.collector.annotate(UPLOAD, 'iaas', 'autocannon', {
    bodyBytes: ctx.uploadPhoto.bytes.byteLength,
    notes: [`tokens pre-issued before each run (not timed); runs of ${counts.join(', ')} uploads sized from the warm-up rate`],
  });
}
