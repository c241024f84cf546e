/**
 * The engine's synchronous API: validate, call the addon, give errors a code.
 * These block the calling thread for the whole render; the service runs them
 * on pool threads (pool.ts), never on the event loop.
 */
import { badOption, toImageError } from '../errors.js';
import { native, type InputFormat, type NativeRenderOptions, type OutputFormat, type ProbeResult } from './native.js';
import { normalizePrepareOptions, normalizeRenderOptions, type PrepareOptions, type RenderOptions } from './options.js';

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
  const result = call(() => native().prepareOriginal(bytes, normalized));
  return {
    data: result.changed && result.data ? new Uint8Array(result.data) : bytes,
    changed: result.changed,
    format: result.format,
    width: result.width,
    height: result.height,
    jpegQuality: result.jpegQuality ?? null,
  };
}
