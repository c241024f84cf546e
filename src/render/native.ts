/**
 * The typed binding to the native addon (`native/`, built to build/Release).
 * These functions are synchronous and CPU-bound: the service calls them only
 * from pool threads (see pool.ts). They expect options already validated by
 * options.ts and throw errors carrying a `code`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../util/package-root.js';

import type { InputFormat, UrlFit, UrlFormat, UrlGravity } from '../options/grammar.js';

export type { InputFormat } from '../options/grammar.js';
/** Formats the renderer writes (native/vocabulary.h). */
export type OutputFormat = UrlFormat;
/** How an image is fitted into the requested box (native/vocabulary.h). */
export type Fit = UrlFit;
/** Where a crop box sits (native/vocabulary.h). */
export type Gravity = UrlGravity;

/** What `probe` reads from the header, without decoding pixels. */
export interface ProbeResult {
  format: InputFormat;
  /** Width as stored, before EXIF orientation. */
  width: number;
  /** Height of one page as stored, before EXIF orientation. */
  height: number;
  pages: number;
  /** EXIF orientation 1..8. */
  orientation: number;
  hasAlpha: boolean;
  /** A progressive JPEG or interlaced PNG (slow to shrink on load). */
  interlaced: boolean;
  /** The IJG quality the JPEG was saved at, estimated from its tables. */
  jpegQuality?: number;
  /** An animation's frame delays in ms, one per frame. */
  delays?: number[];
  /** An animation's loop count (0: forever). */
  loop?: number;
}

/** Options as the addon reads them: complete and checked. */
export interface NativeRenderOptions {
  width: number;
  height: number;
  fit: Fit;
  gravity: Gravity;
  /** The source's focal point in its displayed pixels, for gravity `focus`; null when it has none. */
  focus: { x: number; y: number } | null;
  /** The most frames an animated WebP or GIF output keeps (1: a still). */
  maxFrames: number;
  format: OutputFormat;
  /** -1 means auto. */
  quality: number;
  /** 0 means no blur. */
  blurSigma: number;
  background: [number, number, number];
  timeoutMs: number;
  maxInputPixels: number;
  maxPages: number;
  /** AVIF encoder effort, 0 (fastest) .. 9. */
  avifEffort: number;
  /** The original's displayed size when the input is a working copy; 0: the input's own. */
  sourceWidth: number;
  sourceHeight: number;
  /** What `auto` quality keeps for a working copy: >= 1 the original's JPEG quality, 0 it was no JPEG, -1 the input's own. */
  sourceQuality: number;
  /** Encode as a working copy. */
  workingCopy: boolean;
}

export interface NativeRenderResult {
  data: ArrayBuffer;
  format: OutputFormat;
  width: number;
  height: number;
}

export interface NativePrepareOptions {
  crop?: { x: number; y: number; width: number; height: number };
  maxPixels: number;
  maxInputPixels: number;
  maxPages: number;
  timeoutMs: number;
  /** False: EXIF, XMP, IPTC and comments are removed from the stored original. */
  keepMetadata: boolean;
  /** True: the result carries the summary of the stored picture. */
  summarise: boolean;
}

/** What the addon summarises of a picture; the BlurHash is encoded from `pixels` (summary.ts). */
export interface NativeSummary {
  /** `#rrggbb`. */
  dominant: string;
  /** RGBA, at most 16 px on the long side, flattened onto white. */
  pixels: ArrayBuffer;
  pixelsWidth: number;
  pixelsHeight: number;
  /** A blurred WebP of at most 32 px, small enough for a data URI under 1 KB. */
  lqip: ArrayBuffer;
}

export interface NativeSummaryOptions {
  maxInputPixels: number;
  maxPages: number;
  timeoutMs: number;
}

export interface NativePrepareResult {
  changed: boolean;
  data?: ArrayBuffer;
  format: InputFormat;
  width: number;
  height: number;
  /** The upload's estimated JPEG quality, when it is a JPEG. */
  jpegQuality?: number;
  /** Pages or frames, as the header declares. */
  frames: number;
  summary?: NativeSummary;
}

/** The memory and files libvips tracks, for metrics. */
export interface VipsStats {
  memory: number;
  memoryHighwater: number;
  allocations: number;
  files: number;
  concurrency: number;
}

export interface RawImage {
  data: ArrayBuffer;
  width: number;
  height: number;
  channels: number;
}

export interface EncodeRawOptions {
  width: number;
  height: number;
  channels: number;
  format: OutputFormat | 'gif' | 'tiff';
  quality?: number;
  orientation?: number;
  cmyk?: boolean;
  /** Convert the sRGB pixels to this built-in profile of libvips (`p3`) and embed it. */
  profile?: 'p3';
  pageHeight?: number;
  /** Frame delays in ms, one per frame (GIF, WebP). */
  delays?: number[];
  /** Loop count of an animation (0: forever). */
  loop?: number;
}

export interface NativeAddon {
  probe(input: Uint8Array): ProbeResult;
  render(input: Uint8Array, options: NativeRenderOptions): NativeRenderResult;
  prepareOriginal(input: Uint8Array, options: NativePrepareOptions): NativePrepareResult;
  summarise(input: Uint8Array, options: NativeSummaryOptions): NativeSummary & { frames: number };
  setConcurrency(threads: number): void;
  stats(): VipsStats;
  versions(): { vips: string };
  encodeRaw(pixels: Uint8Array, options: EncodeRawOptions): ArrayBuffer;
  decodeRaw(input: Uint8Array): RawImage;
  libvipsLoaderFor(input: Uint8Array): string | null;
  /** The addon's own vocabulary, to check it against src/options/grammar.ts. */
  vocabulary(): { fits: string[]; gravities: string[]; outputFormats: string[]; inputFormats: string[] };
}

let addon: NativeAddon | undefined;

/** Loads the addon once per thread. */
export function native(): NativeAddon {
  if (addon) return addon;
  const file = path.join(packageRoot(), 'build', 'Release', 'iaas.node');
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (error) {
    throw new Error(
      `iaas: the native addon could not be loaded from ${file}. Run \`npm ci\` (or \`npm run build\`) to build it. ` +
        `Cause: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return addon;
}
