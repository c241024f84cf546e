/**
 * Original metadata, LRU first, so a repeated hit makes no database query.
 * Entries expire after a while so that a purge on another instance shows.
 */
import { LRUCache } from 'lru-cache';
import { ImageError } from '../errors.js';
import type { ObjectStorage } from '../storage/types.js';
import type { OriginalRecord, Store } from '../store/types.js';
import { storageKey } from './keys.js';

/** How long a process trusts its memory of an original or a cache location. */
export const LRU_TTL_MS = 60_000;

export class Originals {
  private readonly lru: LRUCache<string, OriginalRecord>;

  constructor(
    private readonly store: Store,
    private readonly storage: ObjectStorage,
    entries: number,
  ) {
    this.lru = new LRUCache({ max: Math.max(1, entries), ttl: LRU_TTL_MS });
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

  /** The stored bytes. A record whose bytes are gone answers NOT_FOUND and is forgotten. */
  async bytes(record: OriginalRecord): Promise<Uint8Array> {
    const data = await this.storage.get(record.storageKey);
    if (!data) {
      this.lru.delete(record.id);
      throw new ImageError('NOT_FOUND', `No image with id ${record.id}`);
    }
    return data;
  }

  /** The storage key for a new original. */
  keyFor(id: string): string {
    return storageKey(this.storage, 'originals', id);
  }

  remember(record: OriginalRecord): void {
    this.lru.set(record.id, record);
  }

  forget(id: string): void {
    this.lru.delete(id);
  }
}
