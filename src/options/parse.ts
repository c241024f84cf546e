/**
 * URL -> VariantRequest. Pure: no I/O, never throws anything but a coded
 * ImageError (BAD_OPTION or BAD_REQUEST), and never yields an id that can
 * leave its folder or a size beyond MAX_URL_SIDE.
 */
import { ImageError, badOption } from '../errors.js';
import {
  checkId,
  EXTENSIONS,
  ID_EXPECTED,
  INFO_EXTENSION,
  MAX_ID_LENGTH,
  MAX_SCALE,
  MAX_URL_FRAMES,
  MAX_URL_SIDE,
  QUERY_KEYS,
  URL_FITS,
  URL_GRAVITIES,
  type UrlFit,
  type UrlFormat,
  type UrlGravity,
} from './grammar.js';

export type { UrlFormat } from './grammar.js';

/** A parsed image request. Frozen. */
export interface VariantRequest {
  readonly id: string;
  /** The format the extension names (WebP negotiation may change the served one). */
  readonly format: UrlFormat;
  /** `variant`: a size was given; `original`: `/{id}.{ext}`. */
  readonly kind: 'variant' | 'original';
  /** The box as written in the URL (before the retina factor); 0 for originals. */
  readonly width: number;
  readonly height: number;
  /** The retina factor `_{n}x`, 1 when absent. */
  readonly scale: number;
  /** True when the URL wrote `_{n}x` (then Client Hints never change the density). */
  readonly scaleGiven: boolean;
  readonly fit: UrlFit;
  /** Where a crop box sits; undefined when not given (the original's focal point decides). */
  readonly gravity: UrlGravity | undefined;
  /** The most frames an animated output keeps; undefined when not given (animation.max_frames). */
  readonly frames: number | undefined;
  readonly blur: boolean;
  /** 0..100, or 'auto'. */
  readonly quality: number | 'auto';
  readonly proxy: boolean;
  readonly allowWebp: boolean;
  /** True when blur, quality or frames was given explicitly (an original must then be rendered). */
  readonly hasFilters: boolean;
}

/** The longest path accepted; longer is a 400 before any parsing. */
export const MAX_PATH_LENGTH = MAX_ID_LENGTH + 64;

const SIZE_LIKE = /^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$|^nan$|^[-+]?infinity$/i;
const SCALE_LIKE = /^[-+]?[\d.]+(e[-+]?\d+)?x$/i;

function parseSide(token: string, name: string): number {
  if (!/^\d+$/.test(token)) throw badOption(`an integer between 1 and ${MAX_URL_SIDE}`, name, token);
  const value = Number(token);
  if (value < 1 || value > MAX_URL_SIDE) throw badOption(`an integer between 1 and ${MAX_URL_SIDE}`, name, token);
  return value;
}

function parseScale(token: string): number {
  const digits = token.slice(0, -1);
  const value = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
  if (!(value >= 1 && value <= MAX_SCALE)) throw badOption(`a factor from 1x to ${MAX_SCALE}x`, 'scale', token);
  return value;
}

/** The server's refusal of a malformed id (see checkId in grammar.ts). */
function refuseId(expected: string, id: string): never {
  throw new ImageError('BAD_REQUEST', `Expected ${expected} but received ${JSON.stringify(id.slice(0, 40))}`);
}

/** Reads the query once; a parameter given twice is an error, not a guess. */
function readQuery(query: string): Map<string, string> {
  const params = new URLSearchParams(query);
  const values = new Map<string, string>();
  for (const key of QUERY_KEYS) {
    const all = params.getAll(key);
    if (all.length > 1) throw badOption('one value', key, all);
    if (all.length === 1) values.set(key, all[0] as string);
  }
  return values;
}

function parseBoolean(values: Map<string, string>, key: string): boolean {
  const value = values.get(key);
  if (value === undefined) return false;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw badOption('true or false', key, value);
}

function parseQuality(values: Map<string, string>): number | 'auto' {
  const value = values.get('quality');
  if (value === undefined || value === 'auto') return 'auto';
  if (!/^\d{1,3}$/.test(value) || Number(value) > 100) throw badOption('an integer between 0 and 100 or auto', 'quality', value);
  return Number(value);
}

function parseFit(values: Map<string, string>): UrlFit {
  const value = values.get('fit');
  if (value === undefined) return 'clip';
  if (!(URL_FITS as readonly string[]).includes(value)) throw badOption(`one of ${URL_FITS.join(', ')}`, 'fit', value);
  return value as UrlFit;
}

function parseGravity(values: Map<string, string>): UrlGravity | undefined {
  const value = values.get('gravity');
  if (value === undefined) return undefined;
  if (!(URL_GRAVITIES as readonly string[]).includes(value)) throw badOption(`one of ${URL_GRAVITIES.join(', ')}`, 'gravity', value);
  return value as UrlGravity;
}

function parseFrames(values: Map<string, string>): number | undefined {
  const value = values.get('frames');
  if (value === undefined) return undefined;
  if (!/^\d{1,6}$/.test(value) || Number(value) < 1 || Number(value) > MAX_URL_FRAMES) {
    throw badOption(`an integer between 1 and ${MAX_URL_FRAMES}`, 'frames', value);
  }
  return Number(value);
}

/** Splits `/{name}.{ext}` into its name and format. */
export function splitPath(path: string): { name: string; ext: string; format: UrlFormat } {
  if (path.length > MAX_PATH_LENGTH) throw new ImageError('BAD_REQUEST', `Expected a path of at most ${MAX_PATH_LENGTH} characters`);
  if (!path.startsWith('/') || path.indexOf('/', 1) !== -1) throw new ImageError('BAD_REQUEST', 'Expected a path of the form /{id}.{ext}');
  const dot = path.lastIndexOf('.');
  if (dot <= 1) throw new ImageError('BAD_REQUEST', 'Expected a path of the form /{id}.{ext}');
  const ext = path.slice(dot + 1).toLowerCase();
  const format = EXTENSIONS[ext];
  if (!format) throw badOption(`one of ${Object.keys(EXTENSIONS).join(', ')}`, 'extension', path.slice(dot + 1));
  return { name: path.slice(1, dot), ext, format };
}

/**
 * Parses `/{id}_{w}_{h}[_{n}x].{ext}` or `/{id}.{ext}` and its query. The path
 * is taken raw (not percent-decoded): `%2e%2e%2f` is simply not an id.
 */
export function parseImageRequest(path: string, query = ''): VariantRequest {
  const { name, format } = splitPath(path);
  const parts = name.split('_');
  let scale = 1;
  let scaleGiven = false;
  if (parts.length >= 4 && SCALE_LIKE.test(parts[parts.length - 1] as string)) {
    scale = parseScale(parts.pop() as string);
    scaleGiven = true;
  }
  const h = parts[parts.length - 1] ?? '';
  const w = parts[parts.length - 2] ?? '';
  const isVariant = parts.length >= 3 && SIZE_LIKE.test(w) && SIZE_LIKE.test(h);
  if (scale !== 1 && !isVariant) throw new ImageError('BAD_REQUEST', 'A retina factor needs a width and a height');
  let width = 0;
  let height = 0;
  if (isVariant) {
    width = parseSide(w, 'width');
    height = parseSide(h, 'height');
    parts.length -= 2;
  }
  const id = checkId(parts.join('_'), refuseId);
  const values = readQuery(query);
  const quality = parseQuality(values);
  const blur = parseBoolean(values, 'blur');
  const frames = parseFrames(values);
  return Object.freeze({
    id,
    format,
    kind: isVariant ? 'variant' : 'original',
    width,
    height,
    scale,
    scaleGiven,
    fit: parseFit(values),
    gravity: parseGravity(values),
    frames,
    blur,
    quality,
    proxy: parseBoolean(values, 'proxy'),
    allowWebp: parseBoolean(values, 'allow_webp'),
    hasFilters: blur || values.has('quality') || frames !== undefined,
  });
}

/**
 * Checks an id a new upload or token may take: one whose original URL
 * `/{id}.{ext}` parses back to that same id. `photo_10_20` would be read as
 * `photo` at 10x20, so such an id could be uploaded but never fetched.
 */
export function checkNewId(id: unknown): string {
  if (typeof id !== 'string') throw new ImageError('BAD_REQUEST', `Expected ${ID_EXPECTED} but received ${typeof id}`);
  checkId(id, refuseId);
  let parsed: VariantRequest | undefined;
  try {
    parsed = parseImageRequest(`/${id}.jpg`);
  } catch {
    parsed = undefined;
  }
  if (parsed?.kind !== 'original' || parsed.id !== id) {
    throw new ImageError('BAD_REQUEST', `Expected an id that does not end in a size like _100_100 but received ${JSON.stringify(id.slice(0, 40))}`);
  }
  return id;
}

/** Parses the id of `/{id}` or `/{id}.{ext}` (uploads and DELETE). */
export function parseIdPath(path: string): string {
  if (path.length > MAX_PATH_LENGTH) throw new ImageError('BAD_REQUEST', `Expected a path of at most ${MAX_PATH_LENGTH} characters`);
  if (!path.startsWith('/') || path.indexOf('/', 1) !== -1) throw new ImageError('BAD_REQUEST', 'Expected a path of the form /{id}');
  const dot = path.indexOf('.');
  const name = dot === -1 ? path.slice(1) : path.slice(1, dot);
  if (dot !== -1) splitPath(path);
  return checkId(name, refuseId);
}

/** The id of `GET /{id}.json`, or undefined when the path names no JSON answer. */
export function parseInfoPath(path: string): string | undefined {
  if (!path.toLowerCase().endsWith(`.${INFO_EXTENSION}`)) return undefined;
  if (path.length > MAX_PATH_LENGTH) throw new ImageError('BAD_REQUEST', `Expected a path of at most ${MAX_PATH_LENGTH} characters`);
  if (!path.startsWith('/') || path.indexOf('/', 1) !== -1) throw new ImageError('BAD_REQUEST', 'Expected a path of the form /{id}.json');
  return checkId(path.slice(1, -(INFO_EXTENSION.length + 1)), refuseId);
}
