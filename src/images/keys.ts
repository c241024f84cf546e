/**
 * Where things live: storage keys of originals and cached variants, and the
 * media types. A cache key holds every option that changes the bytes.
 */
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

const EXT: Readonly<Record<string, string>> = { jpeg: 'jpg', png: 'png', webp: 'webp', avif: 'avif', gif: 'gif', tiff: 'tiff' };

/** The media type of a format; octet-stream for the unknown. */
export function contentTypeOf(format: string): string {
  return CONTENT_TYPES[format] ?? 'application/octet-stream';
}

/** What a rendered variant depends on. */
export interface VariantSpec {
  id: string;
  /** Output size box in pixels (retina factor applied); 0x0 for the original size. */
  width: number;
  height: number;
  fit: string;
  quality: number | 'auto';
  /** The blur sigma, 0 for none. */
  blur: number;
  format: string;
}

/** The cache key (without the storage prefix): `{id}/{w}x{h}-{fit}-q{quality}-b{sigma}.{ext}`. */
export function variantKey(spec: VariantSpec): string {
  const size = spec.width || spec.height ? `${spec.width}x${spec.height}-${spec.fit}` : 'original';
  return `${spec.id}/${size}-q${spec.quality}-b${spec.blur}.${EXT[spec.format] ?? spec.format}`;
}

/** S3 shares one bucket between originals and the cache, so it needs prefixes; folders do not. */
export function storageKey(storage: ObjectStorage, prefix: 'originals' | 'cache', key: string): string {
  return storage.kind === 's3' ? `${prefix}/${key}` : key;
}
