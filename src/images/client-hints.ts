/**
 * Client Hints: the density (`Sec-CH-DPR`, legacy `DPR`) and layout width
 * (`Sec-CH-Width`, legacy `Width`) a browser announces, turned into the box a
 * sized URL without `_Nx` is rendered at. Both are rounded up to a short
 * ladder, so the cache holds a few variants per URL however varied the
 * devices are. Pure.
 */

/** The request headers read, lower case, modern first; and what `Accept-CH` asks browsers for. */
export const HINT_HEADERS = { dpr: ['sec-ch-dpr', 'dpr'], width: ['sec-ch-width', 'width'] } as const;
export const ACCEPT_CH = 'Sec-CH-DPR, Sec-CH-Width, DPR, Width';
/** What a response varies by when a hint could have changed it. */
export const HINT_VARY = 'Sec-CH-DPR, DPR, Sec-CH-Width, Width';

/** Densities a hint is rounded up to; above the last, the last. */
export const DENSITIES = [1, 1.5, 2, 3, 4] as const;
/** Widths in device pixels a width hint is rounded up to; above the last, the last. */
export const WIDTH_LADDER = [160, 240, 320, 480, 640, 768, 960, 1080, 1280, 1536, 1920, 2048, 2560, 3200, 3840] as const;

const MAX_DENSITY = 4;
const MAX_WIDTH = 3840;

/** The hints of one request, as numbers; a hint absent or malformed is left out (hints are advice: never an error). */
export interface ClientHints {
  dpr?: number;
  width?: number;
}

const NUMBER = /^\d{1,5}(\.\d{1,6})?$/;

/** Reads the first well-formed value of `names` through `header` (the uWS request's getter). */
function read(header: (name: string) => string, names: readonly string[], integer: boolean): number | undefined {
  for (const name of names) {
    const raw = header(name).trim();
    if (!NUMBER.test(raw) || (integer && raw.includes('.'))) continue;
    const value = Number(raw);
    if (value > 0) return value;
  }
  return undefined;
}

/** The hints of a request; call synchronously in the route with the request's header getter. */
export function readHints(header: (name: string) => string): ClientHints {
  const dpr = read(header, HINT_HEADERS.dpr, false);
  const width = read(header, HINT_HEADERS.width, true);
  return { ...(dpr !== undefined ? { dpr } : {}), ...(width !== undefined ? { width } : {}) };
}

/** The density a hint of `dpr` renders at: the next of DENSITIES at or above it. */
export function densityFor(dpr: number): number {
  return DENSITIES.find((density) => density >= dpr) ?? MAX_DENSITY;
}

/** The width a hint of `width` caps a render at: the next of WIDTH_LADDER at or above it. */
export function widthCapFor(width: number): number {
  return WIDTH_LADDER.find((step) => step >= width) ?? MAX_WIDTH;
}

/**
 * The box in pixels a URL box of `width` x `height` (CSS pixels) renders at
 * under `hints`: scaled by the density (fractional ones round the pixel size,
 * never below 1 px), then narrowed to the width cap keeping its aspect ratio.
 */
export function hintedBox(width: number, height: number, hints: ClientHints): { width: number; height: number } {
  const density = hints.dpr === undefined ? 1 : densityFor(hints.dpr);
  let boxWidth = Math.max(1, Math.round(width * density));
  let boxHeight = Math.max(1, Math.round(height * density));
  if (hints.width !== undefined) {
    const cap = widthCapFor(hints.width);
    if (boxWidth > cap) {
      boxHeight = Math.max(1, Math.round((boxHeight * cap) / boxWidth));
      boxWidth = cap;
    }
  }
  return { width: boxWidth, height: boxHeight };
}
