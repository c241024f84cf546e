/**
 * The engine's synchronous API: validate, call the addon, give errors a code.
 * These block the calling thread for the whole render; the service runs them
 * on pool threads (pool.ts), never on the event loop.
 */
import { badOption, toImageError } from '../errors.js';
import { native, type InputFormat, type NativeRenderOptions, type OutputFormat, type ProbeResult } from './native.js';
import { checkFocus, DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_PAGES, normalizePrepareOptions, normalizeRenderOptions, type FocalPoint, type PrepareOptions, type RenderOptions } from './options.js';
import { toImageSummary, type ImageSummary } from './summary.js';

/** A rendered image: bytes in a transferable ArrayBuffer. */
export interface RenderResult {
  data: ArrayBuffer;
  format: OutputFormat;
  width: number;
  height: number;
}

/** An upload made ready for storage. */
export interface PreparedOriginal {
  /** The bytes to store: the input itself when nothing changed. */
  data: Uint8Array;
  /** False when the input is stored untouched (no lossy re-encode). */
  changed: boolean;
  format: InputFormat;
  /** Displayed size of the stored original. */
  width: number;
  height: number;
  /** The upload's estimated JPEG quality (what `auto` keeps); null when it is no JPEG. */
  jpegQuality: number | null;
  /** Pages or frames, as the header declares. */
  frames: number;
  /** The focal point in the stored original's pixels (scaled when it was downscaled); undefined when none was given. */
  focus?: FocalPoint;
  /** With `summarise`: the placeholders and dominant colour of the stored picture. */
  summary?: ImageSummary;
}

/** The summary of a stored original, and its frame count. */
export interface SummarisedOriginal {
  frames: number;
  summary: ImageSummary;
}

function checkInput(input: unknown): Uint8Array {
  if (!(input instanceof Uint8Array)) throw badOption('a Uint8Array', 'input', input);
  return input;
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toImageError(error);
  }
}

/** Reads format, size, pages, orientation, alpha and JPEG quality from the header alone. */
export function probe(input: Uint8Array): ProbeResult {
  const bytes = checkInput(input);
  return call(() => native().probe(bytes));
}

/** Renders with options already normalized (the pool's worker path). */
export function renderNormalized(input: Uint8Array, options: NativeRenderOptions): RenderResult {
  return call(() => native().render(input, options));
}

/** Decodes, fits, blurs and encodes an image. */
export function render(input: Uint8Array, options: RenderOptions = {}): RenderResult {
  const bytes = checkInput(input);
  return renderNormalized(bytes, normalizeRenderOptions(options));
}

/**
 * Makes an upload ready to store: applies EXIF orientation, then the crop (in
 * displayed coordinates), then downscales to at most `maxPixels`. Returns the
 * input bytes untouched when none of these changes anything. Always decodes
 * the whole image once, so corrupt uploads fail here.
 */
export function prepareOriginal(input: Uint8Array, options: PrepareOptions): PreparedOriginal {
  const bytes = checkInput(input);
  const header = probe(bytes);
  const swap = header.orientation >= 5;
  const normalized = normalizePrepareOptions(
    options,
    swap ? header.height : header.width,
    swap ? header.width : header.height,
  );
  const pictureWidth = normalized.crop?.width ?? (swap ? header.height : header.width);
  const pictureHeight = normalized.crop?.height ?? (swap ? header.width : header.height);
  const focus = options.focus === undefined ? undefined : checkFocus(options.focus, pictureWidth, pictureHeight);
  const result = call(() => native().prepareOriginal(bytes, normalized));
  return {
    data: result.changed && result.data ? new Uint8Array(result.data) : bytes,
    changed: result.changed,
    format: result.format,
    width: result.width,
    height: result.height,
    jpegQuality: result.jpegQuality ?? null,
    frames: result.frames,
    // A downscale moves the point with its pixel.
    ...(focus ? { focus: scalePoint(focus, pictureWidth, pictureHeight, result.width, result.height) } : {}),
    ...(result.summary ? { summary: toImageSummary(result.summary) } : {}),
  };
}

function scalePoint(point: FocalPoint, fromWidth: number, fromHeight: number, toWidth: number, toHeight: number): FocalPoint {
  if (fromWidth === toWidth && fromHeight === toHeight) return point;
  return {
    x: Math.min(toWidth - 1, Math.floor(((point.x + 0.5) * toWidth) / fromWidth)),
    y: Math.min(toHeight - 1, Math.floor(((point.y + 0.5) * toHeight) / fromHeight)),
  };
}

/** Summarises a stored original (dominant colour, BlurHash, LQIP) from a decode shrunk on load. */
export function summariseOriginal(input: Uint8Array, options: { maxInputPixels?: number; maxPages?: number; timeoutMs?: number } = {}): SummarisedOriginal {
  const bytes = checkInput(input);
  const result = call(() =>
    native().summarise(bytes, {
      maxInputPixels: options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS,
      maxPages: options.maxPages ?? DEFAULT_MAX_PAGES,
      timeoutMs: options.timeoutMs ?? 0,
    }),
  );
  return { frames: result.frames, summary: toImageSummary(result) };
}
