/**
 * Validation of render and upload options, at the edge. The addon trusts what
 * leaves this file. Errors read `Expected <what> for <name> but received <value>`
 * and carry the code BAD_OPTION.
 */
import { badOption } from '../errors.js';
import { URL_FITS, URL_FORMATS, URL_GRAVITIES } from '../options/grammar.js';
import type { Fit, Gravity, NativePrepareOptions, NativeRenderOptions, OutputFormat } from './native.js';

/** The largest output side: WebP's limit, and far beyond any sane image request. */
export const MAX_DIMENSION = 16383;
/** The default decode limit: 50 megapixels (all pages counted). */
export const DEFAULT_MAX_INPUT_PIXELS = 50_000_000;
/** The largest blur sigma accepted: beyond it a blur is a denial of service. */
export const MAX_BLUR_SIGMA = 100;

/** The largest page count accepted by default. */
export const DEFAULT_MAX_PAGES = 1000;

export const FITS: readonly Fit[] = URL_FITS;
export const GRAVITIES: readonly Gravity[] = URL_GRAVITIES;
/** The most frames a render keeps of an animation, whatever it asks. */
export const MAX_FRAMES = 100_000;

/** A point in displayed pixels (after EXIF orientation). */
export interface FocalPoint {
  x: number;
  y: number;
}
export const OUTPUT_FORMATS: readonly OutputFormat[] = URL_FORMATS;

/** A colour as `#rrggbb`, `rrggbb`, or `[r, g, b]` with 0..255 channels. */
export type Colour = string | readonly [number, number, number];

/** Options for `render`. Only `format` is needed; the rest have defaults. */
export interface RenderOptions {
  /** Box width in pixels, 1..16383. Omit both sides to convert at the original size. */
  width?: number;
  /** Box height in pixels, 1..16383. */
  height?: number;
  /** How the image fits the box; default `clip`. */
  fit?: Fit;
  /** Where a `crop` box sits; default `centre`. `focus` needs `focus`, else it is `centre`. */
  gravity?: Gravity;
  /** The source's focal point, in its displayed pixels, for gravity `focus`. */
  focus?: FocalPoint;
  /** The most frames an animated GIF or WebP source keeps in a WebP or GIF output; default 1 (a still). */
  frames?: number;
  /** Output format; default `jpeg`. */
  format?: OutputFormat;
  /** 0..100, or `auto` (default): a JPEG from a JPEG keeps its quality. Ignored for PNG. */
  quality?: number | 'auto';
  /** A Gaussian blur after the resize. */
  blur?: { sigma: number };
  /** Canvas and flatten colour; default white. */
  background?: Colour;
  /** A hard deadline inside libvips; 0 or omitted means none. */
  timeoutMs?: number;
  /** Refuse inputs whose header declares more pixels; default 50 megapixels. */
  maxInputPixels?: number;
  /** Refuse inputs whose header declares more pages or frames; default 1000. */
  maxPages?: number;
  /** AVIF encoder effort 0 (fastest, the default) .. 9 (smallest). */
  avifEffort?: number;
  /**
   * The input is a working copy of an original: the original's displayed size
   * (the geometry is planned on it, so the output matches the original's to
   * the pixel) and its JPEG quality (what `auto` keeps; null: it was no JPEG).
   */
  source?: { width: number; height: number; jpegQuality: number | null };
  /** Encode as a working copy: JPEG baseline without chroma subsampling, PNG at zlib level 1. */
  workingCopy?: boolean;
}

/** Options for `prepareOriginal`. */
export interface PrepareOptions {
  /** A crop in displayed coordinates (after EXIF orientation). */
  crop?: { x: number; y: number; width: number; height: number };
  /** Downscale (aspect kept) so the stored original has at most this many pixels. */
  maxPixels: number;
  maxInputPixels?: number;
  /** Refuse inputs whose header declares more pages or frames; default 1000. */
  maxPages?: number;
  timeoutMs?: number;
  /** Keep EXIF, XMP, IPTC and comments; default false (removed, losslessly for JPEG, PNG and WebP). */
  keepMetadata?: boolean;
  /** A focal point in displayed pixels of the image after the crop; scaled with it when it is downscaled. */
  focus?: FocalPoint;
  /** Summarise the stored picture (dominant colour, BlurHash, LQIP); default false. */
  summarise?: boolean;
}

type Bag = Record<string, unknown>;

function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

function optionalInteger(bag: Bag, name: string, min: number, max: number, label = name): number | undefined {
  const value = bag[name];
  if (value === undefined) return undefined;
  if (!isInteger(value) || value < min || value > max) {
    throw badOption(`an integer between ${min} and ${max}`, label, value);
  }
  return value;
}

function optionalBoolean(bag: Bag, name: string): boolean | undefined {
  const value = bag[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw badOption('true or false', name, value);
  return value;
}

function positiveNumber(bag: Bag, name: string, fallback: number): number {
  const value = bag[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw badOption('a positive number', name, value);
  }
  return value;
}

function oneOf<T extends string>(bag: Bag, name: string, allowed: readonly T[], fallback: T): T {
  const value = bag[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw badOption(`one of ${allowed.join(', ')}`, name, value);
  }
  return value as T;
}

function asBag(options: unknown, name: string): Bag {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw badOption('an object', name, options);
  }
  return options as Bag;
}

/** Parses a colour into `[r, g, b]`. */
export function parseColour(value: unknown, name = 'background'): [number, number, number] {
  if (typeof value === 'string') {
    const match = /^#?([0-9a-f]{6})$/i.exec(value);
    if (!match?.[1]) throw badOption('a colour as #rrggbb', name, value);
    const hex = Number.parseInt(match[1], 16);
    return [(hex >> 16) & 255, (hex >> 8) & 255, hex & 255];
  }
  if (Array.isArray(value) && value.length === 3 && value.every((c) => isInteger(c) && c >= 0 && c <= 255)) {
    return [value[0] as number, value[1] as number, value[2] as number];
  }
  throw badOption('a colour as #rrggbb or [r, g, b]', name, value);
}

function parseQuality(value: unknown): number {
  if (value === undefined || value === 'auto') return -1;
  if (!isInteger(value) || value < 0 || value > 100) throw badOption('an integer between 0 and 100 or auto', 'quality', value);
  // libvips' encoders start at 1; 0 asks for the lowest quality there is.
  return Math.max(1, value);
}

function parseBlur(value: unknown): number {
  if (value === undefined || value === false) return 0;
  const sigma = (value as { sigma?: unknown } | null)?.sigma;
  if (typeof sigma !== 'number' || !Number.isFinite(sigma) || sigma <= 0 || sigma > MAX_BLUR_SIGMA) {
    throw badOption(`a sigma above 0 and at most ${MAX_BLUR_SIGMA}`, 'blur.sigma', sigma);
  }
  return sigma;
}

/** Checks a focal point against an image of `width` x `height` displayed pixels. */
export function checkFocus(value: unknown, width: number, height: number, name = 'focus'): FocalPoint {
  const bag = asBag(value, name);
  const x = bag.x;
  const y = bag.y;
  if (!isInteger(x) || x < 0 || x >= width) throw badOption(`an integer between 0 and ${width - 1}`, `${name}.x`, x);
  if (!isInteger(y) || y < 0 || y >= height) throw badOption(`an integer between 0 and ${height - 1}`, `${name}.y`, y);
  return { x, y };
}

function parseRenderFocus(value: unknown): { x: number; y: number } | null {
  if (value === undefined || value === null) return null;
  const bag = asBag(value, 'focus');
  const coordinate = (key: 'x' | 'y') => {
    const v = bag[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw badOption('a number of at least 0', `focus.${key}`, v);
    return v;
  };
  return { x: coordinate('x'), y: coordinate('y') };
}

/** Checks render options and fills defaults, ready for the addon. */
export function normalizeRenderOptions(options: unknown): NativeRenderOptions {
  const bag = asBag(options, 'options');
  return {
    width: optionalInteger(bag, 'width', 1, MAX_DIMENSION) ?? 0,
    height: optionalInteger(bag, 'height', 1, MAX_DIMENSION) ?? 0,
    fit: oneOf(bag, 'fit', FITS, 'clip'),
    gravity: oneOf(bag, 'gravity', GRAVITIES, 'centre'),
    focus: parseRenderFocus(bag.focus),
    maxFrames: optionalInteger(bag, 'frames', 1, MAX_FRAMES) ?? 1,
    format: oneOf(bag, 'format', OUTPUT_FORMATS, 'jpeg'),
    quality: parseQuality(bag.quality),
    blurSigma: parseBlur(bag.blur),
    background: bag.background === undefined ? [255, 255, 255] : parseColour(bag.background),
    timeoutMs: optionalInteger(bag, 'timeoutMs', 0, 2_147_483_647) ?? 0,
    maxInputPixels: positiveNumber(bag, 'maxInputPixels', DEFAULT_MAX_INPUT_PIXELS),
    maxPages: optionalInteger(bag, 'maxPages', 1, 1_000_000) ?? DEFAULT_MAX_PAGES,
    avifEffort: optionalInteger(bag, 'avifEffort', 0, 9) ?? 0,
    ...parseSource(bag.source),
    workingCopy: optionalBoolean(bag, 'workingCopy') ?? false,
  };
}

/** The native fields of `source`: 0 and -1 mean "the input's own". */
function parseSource(value: unknown): { sourceWidth: number; sourceHeight: number; sourceQuality: number } {
  if (value === undefined) return { sourceWidth: 0, sourceHeight: 0, sourceQuality: -1 };
  const bag = asBag(value, 'source');
  const sourceWidth = optionalInteger(bag, 'width', 1, 1_000_000, 'source.width');
  const sourceHeight = optionalInteger(bag, 'height', 1, 1_000_000, 'source.height');
  if (sourceWidth === undefined || sourceHeight === undefined) throw badOption('a width and a height', 'source', value);
  const quality = bag.jpegQuality;
  if (quality !== null && (!isInteger(quality) || quality < 1 || quality > 100)) throw badOption('an integer between 1 and 100, or null', 'source.jpegQuality', quality);
  return { sourceWidth, sourceHeight, sourceQuality: quality === null ? 0 : quality };
}

/**
 * Checks upload options. The crop is checked against the displayed size of
 * the image (`displayWidth` x `displayHeight`, after EXIF orientation).
 */
export function normalizePrepareOptions(
  options: unknown,
  displayWidth: number,
  displayHeight: number,
): NativePrepareOptions {
  const bag = asBag(options, 'options');
  const normalized: NativePrepareOptions = {
    maxPixels: positiveNumber(bag, 'maxPixels', Number.POSITIVE_INFINITY),
    maxInputPixels: positiveNumber(bag, 'maxInputPixels', DEFAULT_MAX_INPUT_PIXELS),
    maxPages: optionalInteger(bag, 'maxPages', 1, 1_000_000) ?? DEFAULT_MAX_PAGES,
    timeoutMs: optionalInteger(bag, 'timeoutMs', 0, 2_147_483_647) ?? 0,
    keepMetadata: optionalBoolean(bag, 'keepMetadata') ?? false,
    summarise: optionalBoolean(bag, 'summarise') ?? false,
  };
  if (!Number.isFinite(normalized.maxPixels)) normalized.maxPixels = 0;
  if (bag.crop !== undefined) {
    const crop = asBag(bag.crop, 'crop');
    const x = optionalInteger(crop, 'x', 0, displayWidth - 1, 'crop.x') ?? 0;
    const y = optionalInteger(crop, 'y', 0, displayHeight - 1, 'crop.y') ?? 0;
    const width = optionalInteger(crop, 'width', 1, displayWidth - x, 'crop.width') ?? displayWidth - x;
    const height = optionalInteger(crop, 'height', 1, displayHeight - y, 'crop.height') ?? displayHeight - y;
    normalized.crop = { x, y, width, height };
  }
  return normalized;
}
