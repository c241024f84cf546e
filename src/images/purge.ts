/**
 * Purging renders while keeping their originals: one original's variants
 * (a changed focal point), and the gradual purge of old renders (`iaas purge`).
 */
import type { ImageDeps } from './types.js';

/** Drops the rendered variants of one original (those whose key `matches`, or all), keeping the original. */
export async function purgeVariantsOf(deps: Pick<ImageDeps, 'store' | 'cache'>, id: string, matches?: (key: string) => boolean): Promise<number> {
  const keys = await deps.store.deleteVariantsOf(id, matches);
  await deps.cache.delete(keys);
  return keys.length;
}

/**
 * Deletes render-index rows older than `before` (and their objects) in
 * batches, pausing between batches so the instances are not flooded with re-renders.
 */
export async function purgeBefore(
  deps: Pick<ImageDeps, 'store' | 'cache'>,
  options: { before: Date; batch: number; pauseMs: number; onBatch?: (count: number) => void },
): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await deps.store.purgeVariantsBefore(options.before, options.batch);
    if (rows.length === 0) return total;
    await deps.cache.delete(rows.map((row) => row.key));
    total += rows.length;
    options.onBatch?.(rows.length);
    if (rows.length < options.batch) return total;
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
  }
}
