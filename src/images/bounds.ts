/**
 * What a request may cost: the rendered box (max_width x max_height), and the
 * output pixels of an AVIF (an encode costs several times a JPEG's). A request
 * beyond them is sent, with a 303, to the largest URL within them that keeps
 * its aspect ratio, fit and options.
 */
import { FORMAT_EXTENSION, type UrlFit, type UrlFormat } from '../options/grammar.js';
import type { VariantRequest } from '../options/parse.js';
import type { OriginalRecord } from '../store/types.js';
import type { ImageReply } from './types.js';

export interface Bounds {
  maxWidth: number;
  maxHeight: number;
  /** Output pixels of an AVIF render. */
  avifMaxPixels: number;
}

/** The pixels a render outputs (before rounding) for a source of w x h fitted into box W x H. */
export function outputPixels(width: number, height: number, boxWidth: number, boxHeight: number, fit: UrlFit): number {
  if (fit === 'crop' || fit === 'canvas') return boxWidth * boxHeight;
  const scale = fit === 'cover' ? Math.max(boxWidth / width, boxHeight / height) : Math.min(boxWidth / width, boxHeight / height);
  return width * scale * height * scale;
}

/**
 * Control characters and spaces in a query are percent-encoded before it is
 * written into a Location header; what is already encoded stays as it is.
 */
export function safeQuery(query: string): string {
  return query.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/g, (char) => encodeURIComponent(char));
}

function redirect(request: VariantRequest, format: UrlFormat, width: number, height: number, query: string, info: string): ImageReply {
  const scale = request.scale > 1 ? `_${request.scale}x` : '';
  return {
    type: 'redirect',
    location: `/${request.id}_${width}_${height}${scale}.${FORMAT_EXTENSION[format]}${query ? `?${safeQuery(query)}` : ''}`,
    headers: { 'X-Redirect-Info': info },
  };
}

/** The redirect for a request beyond the bounds, or undefined when it is within them. */
export function boundsRedirect(request: VariantRequest, original: OriginalRecord, bounds: Bounds, query: string): ImageReply | undefined {
  const { maxWidth, maxHeight, avifMaxPixels } = bounds;
  if (request.kind === 'variant') {
    const width = request.width * request.scale;
    const height = request.height * request.scale;
    if (width > maxWidth || height > maxHeight) {
      const factor = Math.min(maxWidth / width, maxHeight / height);
      return redirect(
        request,
        request.format,
        Math.max(1, Math.floor(request.width * factor)),
        Math.max(1, Math.floor(request.height * factor)),
        query,
        `The requested size ${width}x${height} exceeds the maximum of ${maxWidth}x${maxHeight}`,
      );
    }
  }
  if (request.format !== 'avif') return undefined;
  const pixels =
    request.kind === 'variant'
      ? outputPixels(original.width, original.height, request.width * request.scale, request.height * request.scale, request.fit)
      : original.width * original.height;
  if (pixels <= avifMaxPixels) return undefined;
  const [boxWidth, boxHeight] = request.kind === 'variant' ? [request.width, request.height] : [original.width, original.height];
  // One hop: the target is within the box limits too.
  const factor = Math.min(Math.sqrt(avifMaxPixels / pixels), maxWidth / (boxWidth * request.scale), maxHeight / (boxHeight * request.scale));
  return redirect(
    request,
    'avif',
    Math.max(1, Math.floor(boxWidth * factor)),
    Math.max(1, Math.floor(boxHeight * factor)),
    query,
    `An AVIF of ${Math.round(pixels)} pixels exceeds the AVIF limit of ${avifMaxPixels} pixels`,
  );
}
