/**
 * Conditional requests (RFC 9110 13): `If-None-Match` (a list of ETags, or
 * `*`) and, only when that is absent, `If-Modified-Since`, judged against the
 * validators of the answer that would be sent. Pure.
 */
import type { Validators } from '../images/etags.js';
import type { HeaderMap } from './exchange.js';

/** The conditional headers of a request, copied out of it synchronously. */
export interface Conditions {
  ifNoneMatch: string;
  ifModifiedSince: string;
}

/** True when `ifNoneMatch` holds `etag` or `*`. Weak comparison, as RFC 9110 asks for If-None-Match: `W/"x"` matches `"x"`. */
export function matchesNone(ifNoneMatch: string, etag: string): boolean {
  const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  return ifNoneMatch.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || (trimmed !== '' && opaque(trimmed) === opaque(etag));
  });
}

/** True when the client holds this version already: answer 304 with no body. */
export function isNotModified(conditions: Conditions, validators: Validators): boolean {
  if (conditions.ifNoneMatch.trim() !== '') return matchesNone(conditions.ifNoneMatch, validators.etag);
  if (conditions.ifModifiedSince === '') return false;
  const since = Date.parse(conditions.ifModifiedSince);
  // HTTP dates have whole seconds: a Last-Modified of 12:00:00.700 was sent as 12:00:00.
  return Number.isFinite(since) && Math.floor(validators.lastModified.getTime() / 1000) <= Math.floor(since / 1000);
}

/** The headers that carry `validators`. */
export function validatorHeaders(validators: Validators): HeaderMap {
  return { ETag: validators.etag, 'Last-Modified': validators.lastModified.toUTCString() };
}

/** The headers a 304 repeats of the 200 it stands for (RFC 9110 15.4.5): no Content-Type, no body. */
export function notModifiedHeaders(headers: HeaderMap): HeaderMap {
  const kept: HeaderMap = {};
  for (const name of ['Cache-Control', 'Expires', 'Vary', 'Accept-CH', 'ETag', 'Last-Modified', 'X-Cache']) {
    const value = headers[name];
    if (value !== undefined) kept[name] = value;
  }
  return kept;
}
