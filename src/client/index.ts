/**
 * iaas/client: builds image URLs the service accepts, for web and app code.
 * Dependency-free and browser-safe: it imports only the shared URL grammar (and a type).
 *
 *   import { imageInfo, imageUrl, picture, srcset } from 'iaas/client';
 *   imageUrl('https://img.example.com', 'photo', { width: 360, height: 360, scale: 2, fit: 'crop' })
 *   // -> https://img.example.com/photo_360_360_2x.jpg?fit=crop
 *   await imageInfo('https://img.example.com', 'photo')
 *   // -> { id: 'photo', width: 2725, height: 2225, blurhash: 'L…', lqip: 'data:image/webp;base64,…', … }
 *   picture('https://img.example.com', 'photo', { width: 360, height: 240 }).html
 *   // -> <picture><source type="image/avif" srcset="…_360_240.avif 1x, …"><source type="image/webp" …><img …></picture>
 */
import type { ImageInfo } from '../images/info.js';
import {
  checkId,
  EXTENSIONS,
  FORMAT_EXTENSION,
  INFO_EXTENSION,
  MAX_SCALE,
  MAX_URL_FRAMES,
  MAX_URL_SIDE,
  MEDIA_TYPES,
  URL_FITS,
  URL_GRAVITIES,
  type UrlFit,
  type UrlFormat,
  type UrlGravity,
} from '../options/grammar.js';

/** A format by name or by extension: `jpeg` and `jpg` name the same. */
export type ClientFormat = UrlFormat | 'jpg';

export interface ImageUrlOptions {
  /** Box width in CSS pixels. Give both width and height for a sized variant; neither for the original. */
  width?: number;
  height?: number;
  /** Device pixel ratio 1..4, written as `_{n}x`. */
  scale?: number;
  fit?: UrlFit;
  /** Where a `crop` box sits; omitted: the image's focal point, else the centre. */
  gravity?: UrlGravity;
  /** The most frames an animated .webp or .gif keeps; 1 forces a still. */
  frames?: number;
  /** Output format (`jpg` or `jpeg`, `png`, `webp`, `avif`, `gif`); default jpeg. */
  format?: ClientFormat;
  /** 0..100 or 'auto' (the default, omitted from the URL). */
  quality?: number | 'auto';
  blur?: boolean;
}

function fail(what: string, name: string, value: unknown): never {
  throw new TypeError(`Expected ${what} for ${name} but received ${JSON.stringify(value)}`);
}

/** The client's refusal of a malformed id (see checkId in grammar.ts). */
function refuseId(expected: string, id: string): never {
  return fail(expected, 'id', id);
}

/** The format a client names, by the URL grammar's extensions (so `jpg` is `jpeg`). */
function formatOf(name: unknown): UrlFormat {
  const format = typeof name === 'string' && Object.hasOwn(EXTENSIONS, name) ? EXTENSIONS[name] : undefined;
  if (!format) fail(`one of ${Object.keys(EXTENSIONS).join(', ')}`, 'format', name);
  return format as UrlFormat;
}

function checkSide(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_URL_SIDE) {
    fail(`an integer between 1 and ${MAX_URL_SIDE}`, name, value);
  }
  return value as number;
}

/** A URL for one image: `{base}/{id}_{w}_{h}[_{n}x].{ext}[?fit=..&quality=..&blur=true]`. */
export function imageUrl(base: string, id: string, options: ImageUrlOptions = {}): string {
  checkId(id, refuseId);
  const format = formatOf(options.format ?? 'jpeg');
  const sized = options.width !== undefined || options.height !== undefined;
  let name = id;
  if (sized) {
    name += `_${checkSide(options.width, 'width')}_${checkSide(options.height, 'height')}`;
    const scale = options.scale ?? 1;
    if (!Number.isInteger(scale) || scale < 1 || scale > MAX_SCALE) fail(`an integer from 1 to ${MAX_SCALE}`, 'scale', scale);
    if (scale > 1) name += `_${scale}x`;
  } else if (options.scale !== undefined && options.scale !== 1) {
    fail('a width and a height with a scale', 'scale', options.scale);
  }
  const query: string[] = [];
  if (options.fit !== undefined) {
    if (!(URL_FITS as readonly string[]).includes(options.fit)) fail(`one of ${URL_FITS.join(', ')}`, 'fit', options.fit);
    if (options.fit !== 'clip') query.push(`fit=${options.fit}`);
  }
  if (options.quality !== undefined && options.quality !== 'auto') {
    const q = options.quality;
    if (!Number.isInteger(q) || q < 0 || q > 100) fail('an integer between 0 and 100 or auto', 'quality', q);
    query.push(`quality=${q}`);
  }
  if (options.gravity !== undefined) {
    if (!(URL_GRAVITIES as readonly string[]).includes(options.gravity)) fail(`one of ${URL_GRAVITIES.join(', ')}`, 'gravity', options.gravity);
    query.push(`gravity=${options.gravity}`);
  }
  if (options.frames !== undefined) {
    const f = options.frames;
    if (!Number.isInteger(f) || f < 1 || f > MAX_URL_FRAMES) fail(`an integer between 1 and ${MAX_URL_FRAMES}`, 'frames', f);
    query.push(`frames=${f}`);
  }
  if (options.blur) query.push('blur=true');
  const root = base.endsWith('/') ? base.slice(0, -1) : base;
  return `${root}/${name}.${FORMAT_EXTENSION[format]}${query.length ? `?${query.join('&')}` : ''}`;
}

/** `srcset` candidates at 1x, 2x and 3x (or `scales`), in the `_{n}x` form. */
export function srcset(
  base: string,
  id: string,
  options: Omit<ImageUrlOptions, 'scale'> & { width: number; height: number },
  scales: readonly number[] = [1, 2, 3],
): string {
  return scales.map((scale) => `${imageUrl(base, id, { ...options, scale })} ${scale}x`).join(', ');
}

/** One `<source>` of a `<picture>`: its media type and srcset. */
export interface PictureSource {
  type: string;
  srcset: string;
}

/** The parts of a `<picture>` element, and the element itself as HTML. */
export interface Picture {
  /** AVIF first, then WebP: a browser takes the first type it decodes. */
  sources: PictureSource[];
  /** The fallback `<img>`, in `options.format` (default JPEG); width and height in CSS pixels, so the layout is reserved. */
  img: { src: string; srcset: string; width: number; height: number };
  /** `<picture><source …><source …><img …></picture>`, attributes escaped. */
  html: string;
}

/** Formats a `<picture>` offers ahead of its `<img>`, best first. */
const PICTURE_FORMATS: readonly UrlFormat[] = ['avif', 'webp'];

function attribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/**
 * A `<picture>` of one sized image: `<source type="image/avif">` and
 * `<source type="image/webp">` with `srcset` candidates at `scales`, and an
 * `<img>` in `options.format` (default JPEG). For sites (or CDNs that ignore
 * `Vary: Accept`) that prefer markup over content negotiation.
 */
export function picture(
  base: string,
  id: string,
  options: Omit<ImageUrlOptions, 'scale'> & { width: number; height: number; alt?: string },
  scales: readonly number[] = [1, 2, 3],
): Picture {
  const { alt, ...urlOptions } = options;
  const fallback = formatOf(urlOptions.format ?? 'jpeg');
  const sources = PICTURE_FORMATS.filter((format) => format !== fallback).map((format) => ({
    type: MEDIA_TYPES[format],
    srcset: srcset(base, id, { ...urlOptions, format }, scales),
  }));
  const img = { src: imageUrl(base, id, { ...urlOptions, format: fallback }), srcset: srcset(base, id, { ...urlOptions, format: fallback }, scales), width: options.width, height: options.height };
  const html =
    '<picture>' +
    sources.map((source) => `<source type="${source.type}" srcset="${attribute(source.srcset)}">`).join('') +
    `<img src="${attribute(img.src)}" srcset="${attribute(img.srcset)}" width="${img.width}" height="${img.height}" alt="${attribute(alt ?? '')}">` +
    '</picture>';
  return { sources, img, html };
}

/** What `GET /{id}.json` answers (defined with the endpoint, in src/images/info.ts). */
export type { ImageInfo };

/** An error answer of the service: its HTTP status and stable code. */
export class ImageInfoError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(`GET /{id}.json answered ${status} ${code}`);
    this.name = 'ImageInfoError';
  }
}

/** Fetches `{base}/{id}.json`. Rejects with an ImageInfoError (404 NOT_FOUND for an unknown id). */
export async function imageInfo(base: string, id: string, init: { signal?: AbortSignal } = {}): Promise<ImageInfo> {
  checkId(id, refuseId);
  const root = base.endsWith('/') ? base.slice(0, -1) : base;
  const response = await fetch(`${root}/${id}.${INFO_EXTENSION}`, { headers: { Accept: 'application/json' }, ...(init.signal ? { signal: init.signal } : {}) });
  const body = (await response.json().catch(() => ({}))) as Partial<ImageInfo> & { code?: string };
  if (!response.ok) throw new ImageInfoError(response.status, typeof body.code === 'string' ? body.code : 'UNKNOWN');
  return body as ImageInfo;
}
