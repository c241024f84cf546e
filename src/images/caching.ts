/**
 * How long an image answer may be kept: a year for what is stored under a
 * key that holds every option (its bytes never change), briefly for an
 * answer standing in for a deferred AVIF; and the hook that runs work once an
 * answer is out.
 */
import type { Headers, ImageReply } from './types.js';

const YEAR_SECONDS = 365 * 24 * 3600;

/** Headers of a freshly rendered or cached image: cache forever. */
export function immutableHeaders(now: Date): Headers {
  return {
    'Cache-Control': `public, max-age=${YEAR_SECONDS}`,
    Expires: new Date(now.getTime() + YEAR_SECONDS * 1000).toUTCString(),
  };
}

/**
 * Headers of an answer given in place of a deferred AVIF: cacheable briefly
 * (or revalidated every time), so browsers and CDNs come back for the AVIF.
 */
export function deferredHeaders(now: Date, maxAge: number): Headers {
  return {
    'Cache-Control': maxAge > 0 ? `public, max-age=${maxAge}` : 'no-cache',
    Expires: new Date(now.getTime() + maxAge * 1000).toUTCString(),
  };
}

/** `reply` with `extra` run after its own `after`, once the answer is out. */
export function withAfter(reply: ImageReply, extra: () => Promise<void>): ImageReply {
  const own = reply.after;
  return { ...reply, after: async () => (await own?.(), await extra()) };
}
