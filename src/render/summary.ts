/**
 * The placeholders of an original, from what the addon summarised: the
 * BlurHash (Wolt's `blurhash` package, run on the pool thread) and the LQIP as
 * a data URI. Components follow the aspect ratio, so a wide image gets more
 * across than down (4x3 for a 4:3 photo, 4x2 for 16:9, 4x4 for a square).
 */
import { encode } from 'blurhash';
import type { NativeSummary } from './native.js';

/** What GET /{id}.json reports of an original beyond its size. */
export interface ImageSummary {
  /** The most common colour, `#rrggbb`. */
  dominant: string;
  /** A BlurHash of the picture (transparent areas as white). */
  blurhash: string;
  /** `data:image/webp;base64,…`: a blurred WebP of at most 32 px, the whole URI under 1 KB. */
  lqip: string;
}

/** BlurHash components on the long side; the short side gets its share of them, at least 1. */
const LONG_SIDE_COMPONENTS = 4;

/** The BlurHash components for a picture of `width` x `height`: [across, down]. */
export function blurhashComponents(width: number, height: number): [number, number] {
  const long = Math.max(width, height);
  const short = Math.max(1, Math.min(LONG_SIDE_COMPONENTS, Math.round((LONG_SIDE_COMPONENTS * Math.min(width, height)) / long)));
  return width >= height ? [LONG_SIDE_COMPONENTS, short] : [short, LONG_SIDE_COMPONENTS];
}

/** The summary as stored and served, from the addon's. */
export function toImageSummary(native: NativeSummary): ImageSummary {
  const [across, down] = blurhashComponents(native.pixelsWidth, native.pixelsHeight);
  const pixels = new Uint8ClampedArray(native.pixels);
  return {
    dominant: native.dominant,
    blurhash: encode(pixels, native.pixelsWidth, native.pixelsHeight, across, down),
    lqip: `data:image/webp;base64,${Buffer.from(native.lqip).toString('base64')}`,
  };
}
