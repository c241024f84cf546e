/**
 * Strong ETags of image answers. A variant's is a hash of its bytes, taken
 * when it is rendered and recorded with its row, so a revalidation is
 * answered from the index without reading the bytes. An original's bytes
 * never change under its storage key (a new upload is a new generation and a
 * new key), so its ETag is a hash of that key and its upload time.
 */
import { createHash } from 'node:crypto';
import type { OriginalRecord, VariantRecord } from '../store/types.js';

/** What a 304 or a 200 carries to be revalidated. */
export interface Validators {
  /** A strong ETag, quoted. */
  etag: string;
  lastModified: Date;
}

function tag(prefix: string, hash: ReturnType<typeof createHash>): string {
  // 128 bits: enough that two versions of one URL never share a tag.
  return `"${prefix}${hash.digest('base64url').slice(0, 22)}"`;
}

/** The ETag of rendered bytes. */
export function contentTag(data: Uint8Array): string {
  return tag('v', createHash('sha256').update(data));
}

/** The validators of a stored variant; a row from before ETags were kept gets one from its key and render time. */
export function variantValidators(row: Pick<VariantRecord, 'key' | 'renderedAt' | 'etag'>): Validators {
  const etag = row.etag ?? tag('k', createHash('sha256').update(`${row.key}\n${row.renderedAt.toISOString()}`));
  return { etag, lastModified: row.renderedAt };
}

/** The validators of an original as stored. */
export function originalValidators(original: Pick<OriginalRecord, 'storageKey' | 'uploadedAt'>): Validators {
  return { etag: tag('o', createHash('sha256').update(`${original.storageKey}\n${original.uploadedAt.toISOString()}`)), lastModified: original.uploadedAt };
}
