/**
 * Storage keys and the URLs of objects: what a key may look like in every
 * backend, and where a public object of the S3 backend is found.
 */
import { ImageError } from '../errors.js';

/** One `/`-separated segment of a key; the leading character rules out `.`, `..` and our `.tmp-` files. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$/;

/**
 * Rejects a key that is not a plain relative path of safe segments, with
 * ImageError('BAD_REQUEST'). Keys come from iaas itself; this is defence in
 * depth, shared by every backend so a key valid in one is valid in all.
 */
export function assertValidKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
    throw new ImageError('BAD_REQUEST', 'Invalid storage key', { detail: `key: ${String(key).slice(0, 64)}` });
  }
  for (const segment of key.split('/')) {
    if (segment === '.' || segment === '..' || !SEGMENT.test(segment)) {
      throw new ImageError('BAD_REQUEST', 'Invalid storage key', { detail: `key: ${JSON.stringify(key.slice(0, 64))}` });
    }
  }
}

/** Public base URL of S3 objects: the CDN when given, else the bucket's own URL. */
export function s3PublicBase(options: { bucket: string; region?: string; endpoint?: string; cacheHost?: string }): string {
  const trim = (url: string) => url.replace(/\/+$/, '');
  const region = options.region ?? 'us-east-1';
  return trim(options.cacheHost ?? (options.endpoint ? `${trim(options.endpoint)}/${options.bucket}` : `https://${options.bucket}.s3.${region}.amazonaws.com`));
}

/** The URL of the object at `key` under a public base; valid keys are URL-safe ([A-Za-z0-9_.-/]), so no escaping is needed. */
export function objectUrl(base: string, key: string): string {
  return `${base}/${key}`;
}
