/**
 * The originals table's columns in insert order, and a record's values for
 * them: both stores insert the same row, and only the driver's placeholders
 * and time type differ.
 */
import { copiesToText } from './copies.js';
import type { OriginalRecord } from './types.js';

export const ORIGINAL_COLUMNS = [
  'id',
  'format',
  'width',
  'height',
  'bytes',
  'storage_key',
  'uploaded_at',
  'generation',
  'jpeg_quality',
  'copies',
  'frames',
  'focus_x',
  'focus_y',
  'dominant',
  'blurhash',
  'lqip',
] as const;

/** `record`'s values in ORIGINAL_COLUMNS order; `uploadedAt` as the driver takes a time. */
export function originalValues(record: OriginalRecord, uploadedAt: unknown): unknown[] {
  return [
    record.id,
    record.format,
    record.width,
    record.height,
    record.bytes,
    record.storageKey,
    uploadedAt,
    record.generation,
    record.jpegQuality,
    copiesToText(record.copies),
    record.frames ?? null,
    record.focus?.x ?? null,
    record.focus?.y ?? null,
    record.summary?.dominant ?? null,
    record.summary?.blurhash ?? null,
    record.summary?.lqip ?? null,
  ];
}
