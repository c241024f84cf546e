/**
 * Small helpers around the addon: library version, libvips' memory numbers,
 * and the raw encode/decode that tests and benchmarks use to make fixtures.
 */
import { toImageError } from '../errors.js';
import { native, type EncodeRawOptions, type RawImage, type VipsStats } from './native.js';

/** The libvips version the addon runs on. */
export function libvipsVersion(): string {
  return native().versions().vips;
}

/** The memory and files libvips tracks in this process. */
export function vipsStats(): VipsStats {
  return native().stats();
}

/** Encodes raw 8-bit pixels (for fixtures): optional EXIF orientation, CMYK, animation pages. */
export function encodeRaw(pixels: Uint8Array, options: EncodeRawOptions): Uint8Array {
  try {
    return new Uint8Array(native().encodeRaw(pixels, options));
  } catch (error) {
    throw toImageError(error);
  }
}

/** Decodes an image to raw 8-bit sRGB pixels as stored (no orientation applied). */
export function decodeRaw(input: Uint8Array): RawImage & { pixels: Uint8Array } {
  try {
    const raw = native().decodeRaw(input);
    return { ...raw, pixels: new Uint8Array(raw.data) };
  } catch (error) {
    throw toImageError(error);
  }
}
