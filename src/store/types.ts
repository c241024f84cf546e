/**
 * The store: metadata of originals, one-time upload tokens, and the render
 * index (`images`). SQLite (embedded default) and PostgreSQL implement this
 * one interface and pass one contract suite (test/store/contract.ts).
 *
 * Failures reaching the database throw ImageError('UNAVAILABLE'), so the HTTP
 * layer answers 503, never a hang or a 500.
 */
import type { ImageSummary } from '../render/summary.js';

export type { ImageSummary } from '../render/summary.js';

/** A focal point in the stored original's displayed pixels. */
export interface FocusPoint {
  x: number;
  y: number;
}

/** An uploaded original, as recorded after a durable write. */
export interface OriginalRecord {
  id: string;
  /** The stored format: jpeg, png, gif, webp, avif or tiff. */
  format: string;
  /** Displayed size of the stored original. */
  width: number;
  height: number;
  /** Size of the stored bytes. */
  bytes: number;
  /** The key of the bytes in the originals storage. */
  storageKey: string;
  uploadedAt: Date;
  /**
   * Names this upload of the id (random, set at upload; '' for originals from
   * before generations). Every variant key holds it, so nothing rendered from
   * an earlier upload of the id is ever served for a later one.
   */
  generation: string;
  /** Pages or frames its header declares; null when not known yet (recorded before it was kept). */
  frames?: number | null;
  /** Its focal point; null when it has none. */
  focus?: FocusPoint | null;
  /**
   * Dominant colour and placeholders; null until computed (an original from
   * before they were kept, or with metadata.at_upload off: then on the first
   * GET /{id}.json).
   */
  summary?: ImageSummary | null;
  /** The estimated JPEG quality of the upload (what `auto` keeps); null when it is no JPEG, or unknown. */
  jpegQuality: number | null;
  /**
   * The working copies made of it, smallest last; [] when none would help;
   * null when not decided yet (an original from before working copies, or
   * whose copies are still being made).
   */
  copies: WorkingCopy[] | null;
}

/**
 * A copy of an original that decodes fast (upright, sRGB, no metadata), which
 * renders read instead of the original when it has enough pixels.
 */
export interface WorkingCopy {
  /** 1 covers every in-bounds request of any fit; each next level has half the sides. */
  level: number;
  width: number;
  height: number;
  /** Baseline JPEG q95 without chroma subsampling, or PNG for images with alpha. */
  format: 'jpeg' | 'png';
  bytes: number;
  storageKey: string;
}

/** One rendered variant in the render cache. */
export interface VariantRecord {
  /** The cache key; unique. Includes every option that changes the bytes. */
  key: string;
  originalId: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  renderedAt: Date;
  /**
   * The strong ETag of the stored bytes (a hash of them, quoted); null for
   * rows recorded before ETags were kept, undefined when not given.
   */
  etag?: string | null;
}

/** Outcome of asking for a token for an id. */
export type IssueResult = 'issued' | 'exists';

export interface Store {
  /** Which implementation, for logs and health. */
  readonly kind: 'sqlite' | 'postgres';

  /** Creates or migrates the schema. Idempotent; safe to call from one process at a time. */
  migrate(): Promise<void>;

  /** Round-trips to the database; throws UNAVAILABLE when it is unreachable. */
  ping(): Promise<void>;

  getOriginal(id: string): Promise<OriginalRecord | null>;
  /** Records an original. Replaces nothing: a second insert of the same id throws. */
  insertOriginal(record: OriginalRecord): Promise<void>;
  /**
   * Records the working copies (and the JPEG quality) of an original, only
   * while it exists with `generation`. Resolves false when it is gone or replaced.
   */
  setCopies(id: string, generation: string, copies: WorkingCopy[] | null, jpegQuality: number | null): Promise<boolean>;
  /** Ids and generations of up to `limit` originals whose copies are not decided yet, oldest first. */
  originalsWithoutCopies(limit: number): Promise<{ id: string; generation: string }[]>;
  /** Removes the original's row, its tokens and its variants' rows. Returns the variant keys removed. */
  deleteOriginal(id: string): Promise<{ deleted: boolean; variantKeys: string[] }>;

  /**
   * Records a token (only its SHA-256 digest) for an id, valid until `expiresAt`.
   * A token that expired unused (or whose upload died and whose lease ran out)
   * is replaced: expiry releases the id. 'exists' when a live token was issued
   * for the id, or an original exists.
   */
  issueToken(id: string, tokenDigest: Buffer, expiresAt: Date, now: Date): Promise<IssueResult>;
  /**
   * Atomically marks the id's token used when `tokenDigest` matches, it is
   * unused and unexpired at `now`. Exactly one of many concurrent callers wins.
   * The digest comparison is a fixed-length equality in the database.
   */
  consumeToken(id: string, tokenDigest: Buffer, now: Date): Promise<boolean>;
  /** Makes a consumed token usable again (the upload failed or was aborted). */
  releaseToken(id: string, tokenDigest: Buffer): Promise<void>;
  /** Marks the token's upload as completed (sets uploaded_at); it stays used. */
  completeToken(id: string, tokenDigest: Buffer, at: Date): Promise<void>;

  getVariant(key: string): Promise<VariantRecord | null>;
  /**
   * Records a rendered variant, only while its original exists with
   * `generation` (atomically with a concurrent delete). A second insert of the
   * same key is ignored. Resolves false when the original is gone or replaced.
   */
  insertVariant(record: VariantRecord, generation: string): Promise<boolean>;
  /**
   * Changes an original's focal point (null removes it), only while it exists
   * with `generation`. Resolves false when it is gone or replaced.
   */
  setFocus(id: string, generation: string, focus: FocusPoint | null): Promise<boolean>;
  /**
   * Records an original's frame count and summary, only while it exists with
   * `generation`. Resolves false when it is gone or replaced.
   */
  setSummary(id: string, generation: string, frames: number, summary: ImageSummary): Promise<boolean>;
  /** Removes the variant rows of an original (those whose key `matches`, or all); returns their keys. */
  deleteVariantsOf(originalId: string, matches?: (key: string) => boolean): Promise<string[]>;
  /**
   * Removes up to `limit` variant rows rendered before `before` (oldest
   * first) and returns them, so the caller can delete their objects.
   */
  purgeVariantsBefore(before: Date, limit: number): Promise<VariantRecord[]>;

  close(): Promise<void>;
}
