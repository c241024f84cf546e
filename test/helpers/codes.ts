/**
 * The error code a piece of work fails with, for asserting on codes: the
 * ImageError's code, undefined when the work succeeds, and a telling string
 * (never a code) when something other than an ImageError is thrown.
 */
import { ImageError } from '../../src/errors.js';

function codeOfError(error: unknown): string {
  return error instanceof ImageError ? error.code : `not an ImageError: ${String(error)}`;
}

/** The code of the ImageError `fn` throws synchronously; undefined when it returns. */
export function thrownCode(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return codeOfError(error);
  }
}

/** The code of the ImageError `work` throws or rejects with; undefined when it resolves. */
export async function rejectionCode(work: () => unknown): Promise<string | undefined> {
  try {
    await work();
    return undefined;
  } catch (error) {
    return codeOfError(error);
  }
}
