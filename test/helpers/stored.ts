/**
 * What a server stored, found the way the service finds it: through the
 * original's record (its storage key and generation), so tests never spell
 * out the key layout.
 */
import { cacheKey, type VariantSpec } from '../../src/images/keys.js';
import type { Server } from '../../src/server.js';

/** A variant's options; the generation comes from the original's record; gravity, focus and frames default to a centred still. */
export type SpecOf = Omit<VariantSpec, 'generation' | 'gravity' | 'focus' | 'frames'> & Partial<Pick<VariantSpec, 'gravity' | 'focus' | 'frames'>>;

/** The storage key of `id`'s original, from its record; undefined when there is none. */
export async function originalKeyOf(server: Pick<Server, 'store'>, id: string): Promise<string | undefined> {
  return (await server.store.getOriginal(id))?.storageKey;
}

/** The cache key of a variant of `spec.id`'s current upload. Throws when the id has no original. */
export async function variantKeyOf(server: Pick<Server, 'store' | 'cache'>, spec: SpecOf): Promise<string> {
  const record = await server.store.getOriginal(spec.id);
  if (!record) throw new Error(`no original recorded for ${spec.id}`);
  return cacheKey(server.cache, { gravity: 'centre', focus: null, frames: 1, ...spec, generation: record.generation });
}

/** Every object of `id`'s originals (any generation) in the server's originals storage. */
export async function originalObjects(server: Pick<Server, 'originals'>, id: string): Promise<string[]> {
  const prefix = server.originals.kind === 's3' ? `originals/${id}` : id;
  return (await server.originals.list(prefix)).filter((key) => key === prefix || key.startsWith(`${prefix}.`));
}

/** Every cached object of `id` (any generation) in the server's render cache. */
export async function cachedObjects(server: Pick<Server, 'cache'>, id: string): Promise<string[]> {
  return server.cache.list(server.cache.kind === 's3' ? `cache/${id}/` : `${id}/`);
}
