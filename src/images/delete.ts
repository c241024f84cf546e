/**
 * DELETE /{id}: the original, its working copies and every rendered size go;
 * the index rows first, so a crash leaves only orphan objects.
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
