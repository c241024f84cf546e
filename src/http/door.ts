/**
 * The door check: what makes a request refused before any route looks at it
 * (headers too large, or framed in a way that smells of request smuggling).
 */
import { ImageError } from '../errors.js';
import type { HttpRequest } from './uws.js';

/** Request headers beyond this many bytes are refused: uWS itself accepts up to its buffer size. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Why a request must be refused at the door, if it must; `drop` when it smells of smuggling. */
export function doorCheck(req: HttpRequest): { error: ImageError; drop: boolean } | undefined {
  let total = 0;
  const lengths = new Set<string>();
  let lengthHeaders = 0;
  const encodings: string[] = [];
  req.forEach((key, value) => {
    total += key.length + value.length + 4;
    if (key === 'content-length') {
      lengthHeaders++;
      lengths.add(value.trim());
    } else if (key === 'transfer-encoding') encodings.push(value.trim().toLowerCase());
  });
  const bad = (reason: string) => new ImageError('BAD_REQUEST', reason);
  if (total > MAX_HEADER_BYTES) return { error: bad(`Request headers larger than ${MAX_HEADER_BYTES} bytes`), drop: false };
  // RFC 9112: differing Content-Length values, or both framings, are request smuggling.
  if (lengths.size > 1) return { error: bad('Conflicting Content-Length headers'), drop: true };
  if (encodings.length > 0 && lengthHeaders > 0) return { error: bad('Both Transfer-Encoding and Content-Length'), drop: true };
  for (const length of lengths) {
    if (!/^\d{1,15}$/.test(length)) return { error: bad(`Expected a Content-Length of digits but received ${JSON.stringify(length.slice(0, 20))}`), drop: false };
  }
  // RFC 9112 6.1: a transfer coding the server does not understand is 501, and the body cannot be framed.
  if (encodings.length > 0 && (encodings.length > 1 || encodings[0] !== 'chunked')) {
    return { error: new ImageError('NOT_IMPLEMENTED', `Transfer-Encoding ${JSON.stringify(encodings.join(', ').slice(0, 40))} is not supported; only chunked is`), drop: false };
  }
  return undefined;
}
