/**
 * The working copies of an original as both stores keep them: one JSON text
 * column, NULL while they are not decided. Read back strictly: a row that
 * does not hold what was written is treated as undecided, so its copies are
 * made again rather than trusted.
 */
import type { WorkingCopy } from './types.js';

/** The column's text for `copies`; null stays NULL. */
export function copiesToText(copies: WorkingCopy[] | null): string | null {
  return copies === null ? null : JSON.stringify(copies.map(({ level, width, height, format, bytes, storageKey }) => ({ level, width, height, format, bytes, storageKey })));
}

function isCopy(value: unknown): value is WorkingCopy {
  const c = value as Partial<WorkingCopy> | null;
  return (
    !!c &&
    Number.isInteger(c.level) &&
    Number.isInteger(c.width) &&
    Number.isInteger(c.height) &&
    (c.format === 'jpeg' || c.format === 'png') &&
    Number.isInteger(c.bytes) &&
    typeof c.storageKey === 'string' &&
    c.storageKey.length > 0
  );
}

/** The copies a column holds; null when NULL or not a list of copies. */
export function copiesFromText(text: string | null): WorkingCopy[] | null {
  if (text === null) return null;
  try {
    const parsed = JSON.parse(text) as unknown;
    return Array.isArray(parsed) && parsed.every(isCopy) ? parsed : null;
  } catch {
    return null;
  }
}
