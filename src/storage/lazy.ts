/**
 * A storage or store whose implementation module loads on first use. The AWS
 * SDK and pg take most of a worker's boot time; a worker on the embedded
 * defaults never loads them, and a replacement worker starts serving sooner.
 */
import { objectUrl } from './keys.js';
import type { ObjectStorage } from './types.js';

/** An S3 ObjectStorage that imports the SDK when first called. */
export function lazyS3Storage(load: () => Promise<ObjectStorage>, publicBase: string): ObjectStorage {
  let storage: Promise<ObjectStorage> | undefined;
  const get = () => (storage ??= load());
  return {
    kind: 's3',
    put: async (key, data, contentType) => (await get()).put(key, data, contentType),
    putFile: async (key, file, contentType) => (await get()).putFile(key, file, contentType),
    get: async (key) => (await get()).get(key),
    exists: async (key) => (await get()).exists(key),
    delete: async (keys) => (await get()).delete(keys),
    list: async (prefix, limit) => (await get()).list(prefix, limit),
    localPath: () => null,
    publicUrl: (key) => objectUrl(publicBase, key),
  };
}
