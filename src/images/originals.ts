/**
 * Originals: their records, LRU first, so a repeated hit makes no database
 * query; and the bytes of recently rendered ones, kept in memory so a run of
 * misses of one image reads it once. Records expire after a while so that a
 * purge on another instance shows. Bytes are keyed by the storage key, which
 * names the upload's generation, so they never outlive their upload.
 */
import { LRUCache } from 'lru-cache';
import { ImageError } from '../errors.js';
import type { ObjectStorage } from '../storage/types.js';
import type { OriginalRecord, Store, WorkingCopy } from '../store/types.js';

/** How long a process trusts its memory of an original or a cache location. */
export const LRU_TTL_MS = 60_000;

/**
 * Copies `data` into memory shared with the render threads: the pool then
 * hands it to a thread without a copy, and the cached bytes never change.
 */
/** A copy of `data` in a SharedArrayBuffer: several pool tasks can read it without one detaching it. */
export function shared(data: Uint8Array): Uint8Array {
  const copy = new Uint8Array(new SharedArrayBuffer(data.byteLength));
  copy.set(data);
  return copy;
}

export class Originals {
  private readonly lru: LRUCache<string, OriginalRecord>;
  private readonly bytesLru: LRUCache<string, Uint8Array> | undefined;

  constructor(
    private readonly store: Store,
    private readonly storage: ObjectStorage,
    entries: number,
    /** Bytes of originals kept in memory; 0 reads every miss from storage. */
    cacheBytes = 0,
  ) {
    this.lru = new LRUCache({ max: Math.max(1, entries), ttl: LRU_TTL_MS });
    this.bytesLru =
      cacheBytes > 0
        ? new LRUCache({ maxSize: cacheBytes, sizeCalculation: (value) => Math.max(1, value.byteLength), maxEntrySize: Math.max(1, Math.floor(cacheBytes / 4)) })
        : undefined;
  }

  /** The original's record, or NOT_FOUND. */
  async get(id: string): Promise<OriginalRecord> {
    const cached = this.lru.get(id);
    if (cached) return cached;
    const record = await this.store.getOriginal(id);
    if (!record) throw new ImageError('NOT_FOUND', `No image with id ${id}`);
    this.lru.set(id, record);
    return record;
  }

  /**
   * The stored bytes (from memory when they were read lately; then in a
   * SharedArrayBuffer that must not be changed). A record whose bytes are
   * gone answers NOT_FOUND and is forgotten.
   */
  async bytes(record: OriginalRecord): Promise<Uint8Array> {
    const cached = this.bytesLru?.get(record.storageKey);
    if (cached) return cached;
    const data = await this.storage.get(record.storageKey);
    if (!data) {
      this.lru.delete(record.id);
      throw new ImageError('NOT_FOUND', `No image with id ${record.id}`);
    }
    if (!this.bytesLru) return data;
    const kept = shared(data);
    this.bytesLru.set(record.storageKey, kept);
    return kept;
  }

  /** The bytes of a working copy (from memory when read lately); NOT_FOUND when it is gone. */
  async copyBytes(copy: WorkingCopy): Promise<Uint8Array> {
    const cached = this.bytesLru?.get(copy.storageKey);
    if (cached) return cached;
    const data = await this.storage.get(copy.storageKey);
    if (!data) throw new ImageError('NOT_FOUND', `The working copy ${copy.storageKey} is gone`);
    if (!this.bytesLru) return data;
    const kept = shared(data);
    this.bytesLru.set(copy.storageKey, kept);
    return kept;
  }

  remember(record: OriginalRecord): void {
    this.lru.set(record.id, record);
  }

  forget(id: string): void {
    const record = this.lru.get(id);
    this.lru.delete(id);
    if (record) this.bytesLru?.delete(record.storageKey);
    for (const copy of record?.copies ?? []) this.bytesLru?.delete(copy.storageKey);
  }
}
