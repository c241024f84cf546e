/**
 * Object storage for originals and the render cache: a local folder or an S3
 * bucket (any S3-compatible endpoint). Keys are produced by iaas itself
 * (`originals/<id>`, `cache/<id>/<variant>`), never taken raw from a URL.
 *
 * Failures reaching the storage throw ImageError('UNAVAILABLE').
 */

export interface ObjectStorage {
  /** 'local' or 's3', for logs and decisions (redirect vs serve). */
  readonly kind: 'local' | 's3';

  /**
   * Writes durably before resolving: local = temp file, fsync, rename, fsync
   * of the folder; S3 = an acknowledged PUT. Overwrites an existing key.
   */
  put(key: string, data: Uint8Array, contentType: string): Promise<void>;

  /** Like put, from a file on local disk (a streamed upload's temp file). */
  putFile(key: string, file: string, contentType: string): Promise<void>;

  /** The bytes, or null when the key does not exist. */
  get(key: string): Promise<Uint8Array | null>;

  /** True when the key exists. */
  exists(key: string): Promise<boolean>;

  /** Deletes keys; missing keys are not an error. */
  delete(keys: string[]): Promise<void>;

  /**
   * Keys that start with `prefix` (any string, not only a folder), sorted,
   * at most `limit`. For audits and tools: every other path knows its keys.
   */
  list(prefix: string, limit?: number): Promise<string[]>;

  /**
   * For local storage, the absolute file path of a key (to stream it);
   * null for S3.
   */
  localPath(key: string): string | null;

  /**
   * For S3, the public URL of a key under `cacheHost` (for 303 redirects);
   * null for local storage.
   */
  publicUrl(key: string): string | null;
}
