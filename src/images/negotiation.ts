/**
 * Which format answers an image URL: the URL's own, or (for a JPEG or PNG
 * URL) the best of the configured `formats.auto` that the client's `Accept`
 * names explicitly. Pure. The answer is a list of formats, not a header: the
 * cache key holds the format chosen from it, so however many different
 * `Accept` strings arrive, each URL makes at most one variant per format.
 */
import { acceptsExplicitly } from '../options/accept.js';
import { ALPHA_FORMATS, MEDIA_TYPES, NEGOTIABLE_FORMATS, type AutoFormat, type UrlFormat } from '../options/grammar.js';

/** What negotiation may offer for one request. */
export interface NegotiationRules {
  /** `formats.auto`, best first. */
  auto: readonly AutoFormat[];
  /** The WebP-only case of the original service: `webp.allow_dynamic_switch`, or `allow_opt_in` with `?allow_webp=true`. */
  webpSwitch: boolean;
}

/** The outcome: acceptable formats best first, the URL's own last; `vary` when `Accept` could have changed it. */
export interface Negotiated {
  formats: readonly UrlFormat[];
  vary: boolean;
}

/** The formats that may be offered for a URL of `format`: those that keep alpha when the URL's does. */
function offered(format: UrlFormat, rules: NegotiationRules): UrlFormat[] {
  const formats: UrlFormat[] = [...rules.auto];
  if (rules.webpSwitch && !formats.includes('webp')) formats.push('webp');
  // A PNG may be transparent: never trade it for a format that drops the alpha channel.
  return ALPHA_FORMATS.includes(format) ? formats.filter((candidate) => ALPHA_FORMATS.includes(candidate)) : formats;
}

/**
 * Negotiates the format of a URL of `format` for a client sending `accept`.
 * A bare `*\/*` or `image/*` does not count: a format is served only to a
 * client that names it.
 */
export function negotiate(format: UrlFormat, accept: string, rules: NegotiationRules): Negotiated {
  if (!NEGOTIABLE_FORMATS.includes(format)) return { formats: [format], vary: false };
  const candidates = offered(format, rules).filter((candidate) => candidate !== format);
  if (candidates.length === 0) return { formats: [format], vary: false };
  const accepted = candidates.filter((candidate) => acceptsExplicitly(accept, MEDIA_TYPES[candidate]));
  return { formats: [...accepted, format], vary: true };
}
