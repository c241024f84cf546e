/**
 * The storage entry point: one factory that picks the backend from
 * configuration, so the rest of iaas only ever sees `ObjectStorage`.
 */
import { s3PublicBase } from './keys.js';
import { lazyS3Storage } from './lazy.js';
import { createLocalStorage } from './local.js';
import type { S3StorageOptions } from './s3.js';
import type { ObjectStorage } from './types.js';

export type { ObjectStorage } from './types.js';
export type { S3StorageOptions } from './s3.js';
export { assertValidKey } from './keys.js';
export { createLocalStorage } from './local.js';

/** Which backend to use and its options. */
export type StorageOptions = { kind: 'local'; rootDir: string } | ({ kind: 's3' } & S3StorageOptions);

/** Creates the configured backend. */
export function createStorage(options: StorageOptions): ObjectStorage {
  switch (options.kind) {
    case 'local':
      return createLocalStorage(options.rootDir);
    case 's3': {
      const { kind: _kind, ...s3 } = options;
      return lazyS3Storage(async () => (await import('./s3.js')).createS3Storage(s3), s3PublicBase(s3));
    }
  }
}
