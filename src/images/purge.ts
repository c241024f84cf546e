/**
 * Removing images: DELETE /{id} (the original and every rendered size), and
 * the gradual purge of old renders (`iaas purge`).
 */
import { ImageError } from '../errors.js';
import { secretsEqual } from './tokens.js';
import type { ImageDeps } from './types.js';
import type { Originals } from './originals.js';
import { copyKey } from './working-copies.js';

/** DELETE /{id}: authorised by the configured secret, sent as X-Secret. */
export async function deleteImage(deps: ImageDeps, originals: Originals, id: string, secret: string): Promise<{ variants: number }> {
  const expected = deps.config.secret;
  if (expected === undefined) throw new ImageError('FORBIDDEN', 'Deleting is disabled: no secret is configured');
  if (!secretsEqual(secret, expected)) throw new ImageError('UNAUTHORIZED', 'A valid X-Secret is required');
  const record = await deps.store.getOriginal(id);
  const { deleted, variantKeys } = await deps.store.deleteOriginal(id);
  if (!deleted && !record) throw new ImageError('NOT_FOUND', `No image with id ${id}`);
  // Index rows are gone first: a crash now leaves only orphan objects, never a row pointing at nothing.
  await deps.cache.delete(variantKeys);
  // The working copies go with their original (recorded or not, by their key).
  if (record) await deps.originals.delete([record.storageKey, ...(record.copies ?? []).map((copy) => copy.storageKey), copyKey(record.storageKey, 1), copyKey(record.storageKey, 2)]);
  originals.forget(id);
  return { variants: variantKeys.length };
}

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
