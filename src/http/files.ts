/**
 * Cached files are immutable (their key holds every option), so the hottest
 * ones are kept in memory: a hit then costs no file system call.
 */
import { readFile } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { LRU_TTL_MS } from '../images/originals.js';

export class HotFiles {
  private readonly lru: LRUCache<string, Uint8Array>;

  constructor(maxBytes: number, private readonly maxEntryBytes = 1024 * 1024) {
    // Entries expire like the other per-process memories, so a purge by another process shows within a minute.
    this.lru = new LRUCache<string, Uint8Array>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (value) => Math.max(1, value.byteLength),
      ttl: LRU_TTL_MS,
    });
  }

  /** The file's bytes, from memory when possible; null when the file is gone. */
  async read(path: string): Promise<Uint8Array | null> {
    const cached = this.lru.get(path);
    if (cached) return cached;
    try {
      const data = new Uint8Array(await readFile(path));
      if (data.byteLength <= this.maxEntryBytes) this.lru.set(path, data);
      return data;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  forget(prefix: string): void {
    for (const key of this.lru.keys()) if (key.startsWith(prefix)) this.lru.delete(key);
  }
}
