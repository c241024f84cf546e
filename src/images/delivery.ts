/**
 * How one image request is delivered before any cache is consulted: the
 * formats it may be answered in (negotiated by `Accept`), the box in pixels
 * it renders at (the URL's, or the one Client Hints ask for), and the `Vary`
 * and `Accept-CH` headers that say which request headers chose them. Pure.
 */
import type { Config } from '../config/types.js';
import type { UrlFormat } from '../options/grammar.js';
import type { VariantRequest } from '../options/parse.js';
import type { OriginalRecord } from '../store/types.js';
import { outputPixels } from './bounds.js';
import { ACCEPT_CH, HINT_VARY, hintedBox, type ClientHints } from './client-hints.js';
import { negotiate } from './negotiation.js';
import type { Headers } from './types.js';

/** The delivery of one request. */
export interface Delivery {
  /** Acceptable formats, best first; the URL's own last. */
  formats: readonly UrlFormat[];
  /** The output box in pixels (0x0 for an original). */
  width: number;
  height: number;
  /** `Vary` and `Accept-CH`, where they apply. */
  headers: Headers;
}

/** The box Client Hints ask for, kept within the configured bounds with its aspect ratio. */
function boundedHintedBox(request: VariantRequest, hints: ClientHints, config: Config): { width: number; height: number } {
  const box = hintedBox(request.width, request.height, hints);
  const factor = Math.min(1, config.constraints.maxWidth / box.width, config.constraints.maxHeight / box.height);
  if (factor >= 1) return box;
  return { width: Math.max(1, Math.floor(box.width * factor)), height: Math.max(1, Math.floor(box.height * factor)) };
}

/** True when `format` may be rendered for this box: an AVIF must stay within avif.max_megapixels (a negotiated one is skipped, never redirected). */
function withinLimits(format: UrlFormat, box: { width: number; height: number }, request: VariantRequest, original: OriginalRecord, config: Config): boolean {
  if (format !== 'avif' || request.format === 'avif') return true;
  const pixels = box.width ? outputPixels(original.width, original.height, box.width, box.height, request.fit) : original.width * original.height;
  return pixels <= config.avif.maxPixels;
}

/** Decides the delivery of `request` from its `Accept` and hints, under `config`. */
export function deliveryOf(config: Config, request: VariantRequest, original: OriginalRecord, accept: string, hints: ClientHints): Delivery {
  const hinted = config.clientHints && request.kind === 'variant' && !request.scaleGiven;
  const box =
    request.kind !== 'variant'
      ? { width: 0, height: 0 }
      : hinted
        ? boundedHintedBox(request, hints, config)
        : { width: request.width * request.scale, height: request.height * request.scale };
  const { allowDynamicSwitch, allowOptIn } = config.webp;
  const negotiated = negotiate(request.format, accept, {
    auto: config.formats.auto,
    webpSwitch: allowDynamicSwitch || (allowOptIn && request.allowWebp),
  });
  const vary = [...(negotiated.vary ? ['Accept'] : []), ...(hinted ? [HINT_VARY] : [])];
  return {
    formats: negotiated.formats.filter((format) => withinLimits(format, box, request, original, config)),
    ...box,
    headers: {
      ...(vary.length > 0 ? { Vary: vary.join(', ') } : {}),
      ...(config.clientHints ? { 'Accept-CH': ACCEPT_CH } : {}),
    },
  };
}
