/**
 * The embedded store: one SQLite file, shared by every process of a cluster.
 *
 * better-sqlite3 is synchronous; the methods wrap it in promises to satisfy
 * the Store interface, and each call is short (indexed single-row statements).
 * Cross-process safety comes from SQLite itself: every write is one statement
 * (atomic, holding the write lock from its first step) or a BEGIN IMMEDIATE
 * transaction, and busy_timeout makes a second writer wait instead of fail.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { copiesFromText, copiesToText } from './copies.js';
import { ORIGINAL_COLUMNS, originalValues } from './original-columns.js';
import { closedError, storeError } from './errors.js';
import { TOKEN_LEASE_MS } from '../images/tokens.js';
import { migrateSqlite } from './migrations.js';
import type { FocusPoint, ImageSummary, IssueResult, OriginalRecord, Store, VariantRecord, WorkingCopy } from './types.js';

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file; its folder is created when missing. */
  path: string;
}

/** How long a writer waits for another process' write lock before failing with UNAVAILABLE. */
const BUSY_TIMEOUT_MS = 5000;

interface OriginalRow {
  id: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  storage_key: string;
  uploaded_at: string;
  generation: string;
  copies: string | null;
  jpeg_quality: number | null;
  frames: number | null;
  focus_x: number | null;
  focus_y: number | null;
  dominant: string | null;
  blurhash: string | null;
  lqip: string | null;
}

interface VariantRow {
  key: string;
  original_id: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
  rendered_at: string;
  etag: string | null;
}

/**
 * Opens (creating when missing) the SQLite database at `options.path`. Throws
 * ImageError('UNAVAILABLE') when the file cannot be opened.
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  const db = open(options.path, 'FULL');
  const inMemory = options.path === ':memory:' || options.path === '';
  // An in-memory database exists only on its own connection: one for everything there.
  return new SqliteStore(db, inMemory ? db : open(options.path, 'NORMAL'));
}

/**
 * `synchronous`: FULL, not NORMAL, for originals and tokens: in WAL mode NORMAL
 * may lose the last commits on power loss, and a lost commit would 404 an
 * upload the client was told succeeded, or make a spent token usable again;
 * the cost is one fsync per write, on the event loop (better-sqlite3 is
 * synchronous). NORMAL for the render index's inserts: losing the last rows
 * costs only a re-render (each object is fsync'd before its row), and the
 * miss path then blocks on no fsync.
 */
function open(file: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  const inMemory = file === ':memory:' || file === '';
  if (!inMemory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  let db: Database.Database | undefined;
  try {
    // The constructor's timeout is sqlite3_busy_timeout; it must be in place
    // before the journal_mode change below, which needs a brief exclusive lock.
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    // WAL lets readers in any process proceed while one process writes.
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    return db;
  } catch (error) {
    db?.close();
    throw storeError(error);
  }
}

function toIso(date: Date): string {
  return date.toISOString();
}

function toOriginal(row: OriginalRow): OriginalRecord {
  return {
    id: row.id,
    format: row.format,
    width: row.width,
    height: row.height,
    bytes: row.bytes,
    storageKey: row.storage_key,
    uploadedAt: new Date(row.uploaded_at),
    generation: row.generation,
    jpegQuality: row.jpeg_quality,
    copies: copiesFromText(row.copies),
    frames: row.frames,
    focus: row.focus_x === null || row.focus_y === null ? null : { x: row.focus_x, y: row.focus_y },
    summary: row.dominant === null || row.blurhash === null || row.lqip === null ? null : { dominant: row.dominant, blurhash: row.blurhash, lqip: row.lqip },
  };
}

function toVariant(row: VariantRow): VariantRecord {
  return {
    key: row.key,
    originalId: row.original_id,
    format: row.format,
    width: row.width,
    height: row.height,
    bytes: row.bytes,
    renderedAt: new Date(row.rendered_at),
    etag: row.etag,
  };
}

class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  /** The render index's writes, without an fsync per commit (see open()). */
  readonly #index: Database.Database;
  /** Prepared lazily: the tables do not exist before the first migrate(). */
  readonly #statements = new Map<string, Database.Statement>();
  readonly #indexStatements = new Map<string, Database.Statement>();
  #closed = false;

  constructor(db: Database.Database, index: Database.Database) {
    this.#db = db;
    this.#index = index;
  }

  #prepare(sql: string, on: 'main' | 'index' = 'main'): Database.Statement {
    const cache = on === 'main' ? this.#statements : this.#indexStatements;
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = (on === 'main' ? this.#db : this.#index).prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }

  async #run<T>(work: () => T): Promise<T> {
    if (this.#closed) throw closedError();
    try {
      return work();
    } catch (error) {
      throw storeError(error);
    }
  }

  migrate(): Promise<void> {
    return this.#run(() => migrateSqlite(this.#db));
  }

  async ping(): Promise<void> {
    await this.#run(() => this.#prepare('SELECT 1').get());
  }

  getOriginal(id: string): Promise<OriginalRecord | null> {
    return this.#run(() => {
      const row = this.#prepare('SELECT * FROM originals WHERE id = ?').get(id) as OriginalRow | undefined;
      return row === undefined ? null : toOriginal(row);
    });
  }

  async insertOriginal(record: OriginalRecord): Promise<void> {
    const placeholders = ORIGINAL_COLUMNS.map(() => '?').join(', ');
    await this.#run(() => this.#prepare(`INSERT INTO originals (${ORIGINAL_COLUMNS.join(', ')}) VALUES (${placeholders})`).run(...originalValues(record, toIso(record.uploadedAt))));
  }

  setCopies(id: string, generation: string, copies: WorkingCopy[] | null, jpegQuality: number | null): Promise<boolean> {
    return this.#run(
      () =>
        this.#prepare('UPDATE originals SET copies = ?, jpeg_quality = ? WHERE id = ? AND generation = ?').run(copiesToText(copies), jpegQuality, id, generation)
          .changes === 1,
    );
  }

  setFocus(id: string, generation: string, focus: FocusPoint | null): Promise<boolean> {
    return this.#run(
      () =>
        this.#prepare('UPDATE originals SET focus_x = ?, focus_y = ? WHERE id = ? AND generation = ?').run(focus?.x ?? null, focus?.y ?? null, id, generation)
          .changes === 1,
    );
  }

  originalsWithoutCopies(limit: number): Promise<{ id: string; generation: string }[]> {
    return this.#run(() => {
      if (!(limit >= 1)) return [];
      return this.#prepare('SELECT id, generation FROM originals WHERE copies IS NULL ORDER BY uploaded_at, id LIMIT ?').all(Math.floor(limit)) as {
        id: string;
        generation: string;
      }[];
    });
  }

  setSummary(id: string, generation: string, frames: number, summary: ImageSummary): Promise<boolean> {
    return this.#run(
      () =>
        this.#prepare('UPDATE originals SET frames = ?, dominant = ?, blurhash = ?, lqip = ? WHERE id = ? AND generation = ?').run(
          frames,
          summary.dominant,
          summary.blurhash,
          summary.lqip,
          id,
          generation,
        ).changes === 1,
    );
  }

  deleteOriginal(id: string): Promise<{ deleted: boolean; variantKeys: string[] }> {
    return this.#run(() =>
      this.#db
        .transaction(() => {
          const keys = this.#prepare('DELETE FROM images WHERE original_id = ? RETURNING key').all(id) as {
            key: string;
          }[];
          this.#prepare('DELETE FROM tokens WHERE id = ?').run(id);
          const removed = this.#prepare('DELETE FROM originals WHERE id = ?').run(id);
          return { deleted: removed.changes > 0, variantKeys: keys.map((row) => row.key).sort() };
        })
        .immediate(),
    );
  }

  issueToken(id: string, tokenDigest: Buffer, expiresAt: Date, now: Date): Promise<IssueResult> {
    return this.#run(() => {
      // One statement, so the originals check and the insert share the write lock. A token that
      // expired unused, or whose upload died and whose lease ran out, gives way to the new one.
      const result = this.#prepare(
        `INSERT INTO tokens (id, digest, expires_at, used, issued_at)
         SELECT @id, @digest, @expiresAt, 0, @now
         WHERE NOT EXISTS (SELECT 1 FROM originals WHERE id = @id)
         ON CONFLICT (id) DO UPDATE SET
           digest = excluded.digest, expires_at = excluded.expires_at, used = 0,
           issued_at = excluded.issued_at, uploaded_at = NULL, consumed_at = NULL
         WHERE tokens.expires_at <= @now AND tokens.uploaded_at IS NULL
           AND (tokens.used = 0 OR tokens.consumed_at IS NULL OR tokens.consumed_at < @leaseStart)`,
      ).run({
        id,
        digest: tokenDigest,
        expiresAt: toIso(expiresAt),
        now: toIso(now),
        leaseStart: toIso(new Date(now.getTime() - TOKEN_LEASE_MS)),
      });
      return result.changes === 1 ? 'issued' : 'exists';
    });
  }

  consumeToken(id: string, tokenDigest: Buffer, now: Date): Promise<boolean> {
    return this.#run(() => {
      // Unused, or used by an upload that never completed and whose lease ran out (a crash).
      const row = this.#prepare(
        `UPDATE tokens SET used = 1, consumed_at = ?
         WHERE id = ? AND digest = ? AND expires_at > ? AND uploaded_at IS NULL
           AND (used = 0 OR consumed_at IS NULL OR consumed_at < ?)
           AND NOT EXISTS (SELECT 1 FROM originals WHERE originals.id = tokens.id)
         RETURNING id`,
      ).get(toIso(now), id, tokenDigest, toIso(now), toIso(new Date(now.getTime() - TOKEN_LEASE_MS)));
      return row !== undefined;
    });
  }

  async releaseToken(id: string, tokenDigest: Buffer): Promise<void> {
    await this.#run(() =>
      this.#prepare('UPDATE tokens SET used = 0 WHERE id = ? AND digest = ? AND uploaded_at IS NULL').run(
        id,
        tokenDigest,
      ),
    );
  }

  async completeToken(id: string, tokenDigest: Buffer, at: Date): Promise<void> {
    // used = 1 too, so a completed token can never be consumed; the first completion time is kept.
    await this.#run(() =>
      this.#prepare(
        'UPDATE tokens SET used = 1, uploaded_at = coalesce(uploaded_at, ?) WHERE id = ? AND digest = ?',
      ).run(toIso(at), id, tokenDigest),
    );
  }

  getVariant(key: string): Promise<VariantRecord | null> {
    return this.#run(() => {
      const row = this.#prepare('SELECT * FROM images WHERE key = ?').get(key) as VariantRow | undefined;
      return row === undefined ? null : toVariant(row);
    });
  }

  insertVariant(record: VariantRecord, generation: string): Promise<boolean> {
    return this.#run(() =>
      this.#index
        .transaction(() => {
          // One write transaction: a delete of the original runs wholly before or after it.
          const current = this.#prepare('SELECT 1 FROM originals WHERE id = ? AND generation = ?', 'index').get(record.originalId, generation);
          if (current === undefined) return false;
          this.#prepare(
            `INSERT INTO images (key, original_id, format, width, height, bytes, rendered_at, etag)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (key) DO NOTHING`,
            'index',
          ).run(record.key, record.originalId, record.format, record.width, record.height, record.bytes, toIso(record.renderedAt), record.etag ?? null);
          return true;
        })
        .immediate(),
    );
  }

  deleteVariantsOf(originalId: string, matches?: (key: string) => boolean): Promise<string[]> {
    return this.#run(() => {
      if (!matches) {
        const rows = this.#prepare('DELETE FROM images WHERE original_id = ? RETURNING key').all(originalId) as {
          key: string;
        }[];
        return rows.map((row) => row.key).sort();
      }
      return this.#db
        .transaction(() => {
          const keys = (this.#prepare('SELECT key FROM images WHERE original_id = ?').all(originalId) as { key: string }[])
            .map((row) => row.key)
            .filter(matches);
          const remove = this.#prepare('DELETE FROM images WHERE key = ?');
          for (const key of keys) remove.run(key);
          return keys.sort();
        })
        .immediate();
    });
  }

  purgeVariantsBefore(before: Date, limit: number): Promise<VariantRecord[]> {
    return this.#run(() => {
      // A negative LIMIT means "no limit" in SQLite; the contract means none.
      if (!(limit >= 1)) return [];
      const rows = this.#prepare(
        `DELETE FROM images WHERE key IN (
           SELECT key FROM images WHERE rendered_at < ? ORDER BY rendered_at, key LIMIT ?
         ) RETURNING *`,
      ).all(toIso(before), Math.min(Math.floor(limit), Number.MAX_SAFE_INTEGER)) as VariantRow[];
      // RETURNING order is unspecified.
      return rows
        .map(toVariant)
        .sort((a, b) => a.renderedAt.getTime() - b.renderedAt.getTime() || (a.key < b.key ? -1 : 1));
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#statements.clear();
    this.#indexStatements.clear();
    if (this.#index !== this.#db) this.#index.close();
    this.#db.close();
  }
}
