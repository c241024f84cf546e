/**
 * What the HTTP scenarios request, in one place so the service, the peers, the
 * floor and the load generator all do the same work.
 *
 * Every URL asks for `quality=80` explicitly: with `auto` iaas would keep the
 * input's q90 while the peers encode q80, and the bytes would not be the same job.
 */
import { URL_FITS } from '../../src/options/grammar.js';

/** The id the photo is uploaded (or copied) under, in every contender. */
export const PHOTO_ID = 'photo';
/** The query of every image request. */
export const IMAGE_QUERY = 'quality=80';
/** The JPEG quality every contender encodes with. */
export const JPEG_QUALITY = 80;

/** The hit-path variants: a thumbnail (~4 KB) and a 720 px image (~67 KB). */
export const HIT_SIZES = [
  { name: 'thumb', width: 120, height: 120 },
  { name: '720', width: 720, height: 720 },
] as const;

export type HitSizeName = (typeof HIT_SIZES)[number]['name'];

/** The path of a fixed variant of the photo, e.g. `/photo_120_120.jpg?quality=80`. */
export function variantPath(width: number, height: number, id = PHOTO_ID): string {
  return `/${id}_${width}_${height}.jpg?${IMAGE_QUERY}`;
}

const MIN_WIDTH = 300;
const WIDTHS = 601; // 300..900; a prime, so any stride below it visits every width once per cycle
const STRIDE = 263;
const BASE_HEIGHT = 1000;
/** The service's default MAX_HEIGHT: boxes beyond it would be redirected, not rendered. */
const MAX_BOX_HEIGHT = 2048;

/** Distinct sizes available before the sequence would repeat or leave the bounds. */
export const MISS_SEQUENCE_LENGTH = WIDTHS * (MAX_BOX_HEIGHT - BASE_HEIGHT + 1);

/**
 * The n-th miss-path box. The width runs over 300..900 in a scrambled order
 * (so cost does not drift with n); the box height is at least 1000, taller
 * than any 900-wide rendition of the 2725x2225 photo (735 px), so the width
 * alone decides the output (300..900 px wide) and the height only makes the
 * cache key unique: it steps by one after each full cycle of widths.
 */
export function missSize(n: number): { width: number; height: number } {
  if (!Number.isInteger(n) || n < 0 || n >= MISS_SEQUENCE_LENGTH) throw new RangeError(`miss sequence number out of range: ${n}`);
  return { width: MIN_WIDTH + ((n * STRIDE) % WIDTHS), height: BASE_HEIGHT + Math.floor(n / WIDTHS) };
}

/** The n-th miss-path URL path (with its query). */
export function missPath(n: number, id = PHOTO_ID): string {
  const { width, height } = missSize(n);
  return variantPath(width, height, id);
}

/** A description of the sequence for the result file. */
export const MISS_SIZES_DESCRIPTION =
  'box (w, h): w = 300 + (n*263 mod 601), h = 1000 + floor(n/601); output w x round(w*2225/2725), 300..900 px wide; every n used once per contender';

/** The fits the realistic-originals scenario takes in turn: every fit the URL grammar has. */
export const CORPUS_FITS = URL_FITS;
const CORPUS_MIN_SIDE = 160;
const CORPUS_SIDES = 1039; // 160..1198; a prime, so both strides visit every side once per cycle

/**
 * The n-th request of the realistic-originals scenario: the original
 * `ids[n mod ids.length]`, a box with both sides from 160 to 1198 px, and the
 * fits in turn. No (width, height) pair repeats within 1039 x 1039 requests,
 * so every request is a miss.
 */
export function corpusPath(n: number, ids: readonly string[]): string {
  if (!Number.isInteger(n) || n < 0 || n >= CORPUS_SIDES * CORPUS_SIDES) throw new RangeError(`corpus sequence number out of range: ${n}`);
  const id = ids[n % ids.length] as string;
  const width = CORPUS_MIN_SIDE + ((n * 263) % CORPUS_SIDES);
  const height = CORPUS_MIN_SIDE + ((n * 379 + Math.floor(n / CORPUS_SIDES)) % CORPUS_SIDES);
  const fit = CORPUS_FITS[Math.floor(n / ids.length) % CORPUS_FITS.length] as string;
  return `/${id}_${width}_${height}.jpg?${IMAGE_QUERY}&fit=${fit}`;
}

/** A description of the sequence for the result file. */
export const CORPUS_SIZES_DESCRIPTION =
  'original ids[n mod k]; box w = 160 + (n*263 mod 1039), h = 160 + ((n*379 + floor(n/1039)) mod 1039); fit clip, crop, cover, canvas in turn; every n used once per contender';
