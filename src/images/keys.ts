/**
 * Where things live: storage keys of originals and cached variants, and the
 * media types. A cache key holds every option that changes the bytes, and the
 * generation of the original it was rendered from: a render of an earlier
 * upload of an id can never be stored under, or served for, a later one.
 */
import { FORMAT_EXTENSION, type UrlFit, type UrlFormat } from '../options/grammar.js';
import type { ObjectStorage } from '../storage/types.js';

/** Media types by format name. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
  tiff: 'image/tiff',
};

/** Extensions of stored formats that are not output formats (originals only). */
const STORED_EXTENSION: Readonly<Record<string, string>> = { ...FORMAT_EXTENSION, gif: 'gif', tiff: 'tiff' };

/** The media type of a format; octet-stream for the unknown. */
export function contentTypeOf(format: string): string {
  return CONTENT_TYPES[format] ?? 'application/octet-stream';
}

/** What a rendered variant depends on. */
export interface VariantSpec {
  id: string;
  /** The original's generation ('' for originals uploaded before generations existed). */
  generation: string;
  /** Output size box in pixels (retina factor applied); 0x0 for the original size. */
  width: number;
  height: number;
  fit: UrlFit;
  /** 'auto' for formats quality does not apply to (PNG), so that they make one variant. */
  quality: number | 'auto';
  /** The blur sigma, 0 for none. */
  blur: number;
  format: UrlFormat;
}

/**
 * The cache key (without the storage prefix):
 * `{id}/{generation}/{w}x{h}-{fit}-q{quality}-b{sigma}.{ext}`, without the
 * generation segment for originals from before generations.
 */
export function variantKey(spec: VariantSpec): string {
  const size = spec.width || spec.height ? `${spec.width}x${spec.height}-${spec.fit}` : 'original';
  const folder = spec.generation ? `${spec.id}/${spec.generation}` : spec.id;
  return `${folder}/${size}-q${spec.quality}-b${spec.blur}.${STORED_EXTENSION[spec.format] ?? spec.format}`;
}

/** S3 shares one bucket between originals and the cache, so it needs prefixes; folders do not. */
export function storageKey(storage: ObjectStorage, prefix: 'originals' | 'cache', key: string): string {
  return storage.kind === 's3' ? `${prefix}/${key}` : key;
}

/** The storage key of an original: `{id}.{generation}` (plain `{id}` before generations). */
export function originalKey(storage: ObjectStorage, id: string, generation: string): string {
  return storageKey(storage, 'originals', generation ? `${id}.${generation}` : id);
}

/** The cache key of a variant in `storage`. */
export function cacheKey(storage: ObjectStorage, spec: VariantSpec): string {
  return storageKey(storage, 'cache', variantKey(spec));
}
