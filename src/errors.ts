/**
 * Every failure the service can report, each with a stable `code`. The HTTP
 * layer maps each code to exactly one status here, and clients see only the
 * public message: libvips' own text stays in logs (`detail`).
 */

/** The stable error codes. Tests assert on these, never on message text. */
export const ERROR_STATUS = {
  BAD_OPTION: 400,
  BAD_REQUEST: 400,
  NO_IMAGE_PART: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  BAD_TOKEN: 403,
  NOT_FOUND: 404,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_PIXELS: 413,
  UNSUPPORTED_FORMAT: 415,
  CORRUPT_IMAGE: 415,
  INTERNAL: 500,
  CORRUPT_ORIGINAL: 500,
  ENCODE_FAILED: 500,
  NOT_IMPLEMENTED: 501,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** What a client is told for each code; the specific message adds detail where it is safe. */
const PUBLIC_MESSAGE: Record<ErrorCode, string> = {
  BAD_OPTION: 'Bad option',
  BAD_REQUEST: 'Bad request',
  NO_IMAGE_PART: 'The upload has no image part',
  UNAUTHORIZED: 'Unauthorized',
  FORBIDDEN: 'Forbidden',
  BAD_TOKEN: 'The upload token is missing, invalid, expired or used',
  NOT_FOUND: 'Not found',
  PAYLOAD_TOO_LARGE: 'The upload is too large',
  TOO_MANY_PIXELS: 'The image has too many pixels',
  UNSUPPORTED_FORMAT: 'The input is not a supported image format',
  CORRUPT_IMAGE: 'The image is corrupt or truncated',
  INTERNAL: 'Internal error',
  CORRUPT_ORIGINAL: 'The stored original cannot be decoded',
  ENCODE_FAILED: 'The image could not be encoded',
  NOT_IMPLEMENTED: 'Not implemented',
  OVERLOADED: 'The service is overloaded, retry later',
  UNAVAILABLE: 'A backing service is unavailable, retry later',
  TIMEOUT: 'The render took too long',
};

/** Codes whose own message is written by us (never by libvips) and safe to show. */
const SHOW_MESSAGE = new Set<ErrorCode>([
  'BAD_OPTION',
  'BAD_REQUEST',
  'NO_IMAGE_PART',
  'PAYLOAD_TOO_LARGE',
  'TOO_MANY_PIXELS',
  'NOT_FOUND',
  'NOT_IMPLEMENTED',
]);

/** An error with a stable code, thrown by every layer of iaas. */
export class ImageError extends Error {
  readonly code: ErrorCode;
  /** Internal detail (for example libvips' text), for logs only. */
  readonly detail: string | undefined;
  /** For refusals worth retrying (503): the `Retry-After` in seconds. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: { detail?: string; cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImageError';
    this.code = code;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds ?? (code === 'OVERLOADED' || code === 'UNAVAILABLE' ? 1 : undefined);
  }

  /** The HTTP status for this error's code. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

/** True for a known code. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_STATUS, value);
}

/** The HTTP status of a code. */
export function statusOf(code: ErrorCode): number {
  return ERROR_STATUS[code];
}

/** The message a client may see for an error: ours, never libvips'. */
export function publicMessage(error: ImageError): string {
  return SHOW_MESSAGE.has(error.code) ? error.message : PUBLIC_MESSAGE[error.code];
}

/** Wraps anything thrown into an ImageError, keeping a known code. */
export function toImageError(error: unknown): ImageError {
  if (error instanceof ImageError) return error;
  const candidate = error as { code?: unknown; message?: unknown; detail?: unknown } | null;
  if (candidate && isErrorCode(candidate.code)) {
    return new ImageError(candidate.code, String(candidate.message ?? candidate.code), {
      detail: typeof candidate.detail === 'string' ? candidate.detail : undefined,
      cause: error,
    });
  }
  return new ImageError('INTERNAL', 'Internal error', {
    detail: error instanceof Error ? error.message : String(error),
    cause: error,
  });
}

/** The house format for parameter errors: `Expected <what> for <name> but received <value>`. */
export function badOption(what: string, name: string, value: unknown): ImageError {
  return new ImageError('BAD_OPTION', `Expected ${what} for ${name} but received ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  try {
    const json = JSON.stringify(value);
    return json.length > 64 ? `${json.slice(0, 64)}…` : json;
  } catch {
    return typeof value;
  }
}
