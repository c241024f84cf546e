/**
 * Which database failures mean "the database is unavailable" (answer 503 and
 * let the client retry) as opposed to a bug or a constraint violation, which
 * must surface unchanged so it is noticed.
 */
import { ImageError } from '../errors.js';

/** Socket-level failures: the database cannot be reached or dropped us. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs about the server rather than the query: admin or crash
 * shutdown, starting up, too many connections, out of resources, and a
 * statement or lock that ran past its timeout (the server is too busy).
 */
const POSTGRES_STATES = new Set(['57P01', '57P02', '57P03', '53000', '53100', '53200', '53300', '57014', '55P03']);

/**
 * pg reports a dead socket, a pool checkout timeout and its own read timeout
 * with plain Errors that carry no code, so only their fixed text identifies them.
 */
const POSTGRES_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
];

/**
 * SQLite result codes (primary code prefix) meaning the file is locked past
 * busy_timeout, the disk is full or failing, or the file cannot be opened.
 */
const SQLITE_PREFIXES = [
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_FULL',
  'SQLITE_IOERR',
  'SQLITE_CANTOPEN',
  'SQLITE_PROTOCOL',
];

/** True when `error` (or an error it wraps) says the database cannot serve us right now. */
export function isUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 4 || typeof error !== 'object' || error === null) return false;
  const { code, message, errors, cause } = error as {
    code?: unknown;
    message?: unknown;
    errors?: unknown;
    cause?: unknown;
  };
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code) || POSTGRES_STATES.has(code) || code.startsWith('08')) return true;
    if (SQLITE_PREFIXES.some((prefix) => code.startsWith(prefix))) return true;
  }
  if (typeof message === 'string' && POSTGRES_MESSAGES.some((text) => message.startsWith(text))) return true;
  // Node reports a failed connect to every address of a host as an AggregateError.
  if (Array.isArray(errors) && errors.some((inner) => isUnavailable(inner, depth + 1))) return true;
  return isUnavailable(cause, depth + 1);
}

/** The UNAVAILABLE error for a database failure; the driver's text goes to `detail` only. */
export function unavailable(cause: unknown): ImageError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ImageError('UNAVAILABLE', 'The database is unavailable', { detail, cause });
}

/** Maps availability failures to UNAVAILABLE and returns anything else unchanged, to be rethrown. */
export function storeError(error: unknown): unknown {
  if (error instanceof ImageError) return error;
  return isUnavailable(error) ? unavailable(error) : error;
}

/** Thrown by a store used after close(): a shutting-down process answers 503, not 500. */
export function closedError(): ImageError {
  return new ImageError('UNAVAILABLE', 'The database is unavailable', { detail: 'the store is closed' });
}
