/**
 * One-time upload tokens. Only a SHA-256 digest is stored; secrets are
 * compared in constant time on fixed-length digests.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ImageError } from '../errors.js';
import { checkNewId } from '../options/parse.js';
import type { Store } from '../store/types.js';
import { NO_EVENTS, type ImageEvents } from './types.js';

/**
 * How long a consumed token stays locked to its upload. An upload that never
 * completed (its process died) frees the token after this, never sooner: no
 * live upload takes this long (render and storage timeouts are seconds).
 */
export const TOKEN_LEASE_MS = 5 * 60_000;

/** Tokens are 32 random bytes as 64 lowercase hex characters. */
export const TOKEN_PATTERN = /^[0-9a-f]{64}$/;

/** The stored form of a token. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Constant-time equality of two strings of any length (their digests are compared). */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(tokenDigest(given), tokenDigest(expected));
}

export interface TokenDeps {
  store: Store;
  secret: string | undefined;
  ttlSeconds: number;
  events?: ImageEvents;
  now?: () => Date;
}

/**
 * POST /token: one live token per id, valid `ttlSeconds`; once it expired
 * unused, the id can be asked for again. 401 on a wrong or missing secret
 * (when one is configured), 403 while a token for the id is live or the image exists.
 */
export async function issueToken(deps: TokenDeps, body: { id?: unknown; secret?: unknown }): Promise<string> {
  if (deps.secret !== undefined) {
    const given = typeof body.secret === 'string' ? body.secret : '';
    if (!secretsEqual(given, deps.secret)) throw new ImageError('UNAUTHORIZED', 'A valid secret is required');
  }
  const id = checkNewId(body.id);
  const token = randomBytes(32).toString('hex');
  const now = deps.now?.() ?? new Date();
  const expires = new Date(now.getTime() + deps.ttlSeconds * 1000);
  const outcome = await deps.store.issueToken(id, tokenDigest(token), expires, now);
  if (outcome === 'exists') throw new ImageError('FORBIDDEN', `A token for ${id} is live, or the image exists`);
  (deps.events ?? NO_EVENTS).token('issued');
  return token;
}

/** Checks the shape of an X-Token header before any database work. */
export function checkToken(token: string): string {
  if (!TOKEN_PATTERN.test(token)) throw new ImageError('BAD_TOKEN', 'The upload token is missing or malformed');
  return token;
}
