/**
 * Where things live: storage keys of originals and cached variants, and the
 * media types. A cache key holds every option that changes the bytes, and the
 * generation of the original it was rendered from: a render of an earlier
 * upload of an id can never be stored under, or served for, a later one.
 */
import { FORMAT_EXTENSION, MEDIA_TYPES, type UrlFit, type UrlFormat, type UrlGravity } from '../options/grammar.js';
import type { ObjectStorage } from '../storage/types.js';

/** Media types by format name. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = { ...MEDIA_TYPES, tiff: 'image/tiff' };

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
  /** Where a crop box sits, resolved ('centre' for fits that crop nothing, and for `focus` without a focal point). */
  gravity: UrlGravity;
  /** The focal point a `focus` gravity centres on (the original's, in its pixels); null otherwise. */
  focus: { x: number; y: number } | null;
  /** Frames kept of an animated source (1: a still). */
  frames: number;
  /** 'auto' for formats quality does not apply to (PNG), so that they make one variant. */
  quality: number | 'auto';
  /** The blur sigma, 0 for none. */
  blur: number;
  format: UrlFormat;
}

/**
 * The gravity segment of a crop's key: none for `centre` (keys from before
 * gravities stay valid), and the focal point itself for `focus`, so a render
 * made before the point moved is never served after.
 */
function gravitySegment(spec: VariantSpec): string {
  if (spec.fit !== 'crop' || spec.gravity === 'centre') return '';
  if (spec.gravity === 'focus' && spec.focus) return `-gfocus${spec.focus.x}.${spec.focus.y}`;
  return `-g${spec.gravity}`;
}

/**
 * The cache key (without the storage prefix):
 * `{id}/{generation}/{w}x{h}-{fit}[-g{gravity}][-f{frames}]-q{quality}-b{sigma}.{ext}`,
 * without the generation segment for originals from before generations; the
 * gravity only for crops not centred, the frames only for animations.
 */
export function variantKey(spec: VariantSpec): string {
  const sized = spec.width || spec.height ? `${spec.width}x${spec.height}-${spec.fit}${gravitySegment(spec)}` : 'original';
  const size = spec.frames > 1 ? `${sized}-f${spec.frames}` : sized;
  const folder = spec.generation ? `${spec.id}/${spec.generation}` : spec.id;
  return `${folder}/${size}-q${spec.quality}-b${spec.blur}.${STORED_EXTENSION[spec.format] ?? spec.format}`;
}

/** True for the key of a `crop` render (those a new focal point may change). */
export function isCropKey(key: string): boolean {
  return /(^|\/)\d+x\d+-crop-[^/]*$/.test(key);
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
