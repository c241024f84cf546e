/**
 * The PostgreSQL store, for clusters of hosts. A pg.Pool holds the
 * connections; it replaces dead ones by itself, so nothing here caches a
 * client beyond one call.
 *
 * Every multi-row change is either one statement or one transaction, and
 * token consumption is a single conditional UPDATE: row locking makes exactly
 * one of many concurrent callers see `used = false`.
 */
import pg from 'pg';
import { copiesFromText, copiesToText } from './copies.js';
import { ORIGINAL_COLUMNS, originalValues } from './original-columns.js';
import { closedError, storeError } from './errors.js';
import { TOKEN_LEASE_MS } from '../images/tokens.js';
import { migratePostgres, quoteIdentifier } from './migrations.js';
import type { FocusPoint, ImageSummary, IssueResult, OriginalRecord, Store, VariantRecord, WorkingCopy } from './types.js';

/** Options of {@link createPostgresStore}. Fields of `connectionString` win over the separate fields. */
export interface PostgresStoreOptions {
  connectionString?: string;
  user?: string;
  password?: string;
  host?: string;
  port?: number;
  database?: string;
  /** Every connection uses this schema (search_path); migrate() creates it. Must match /^[a-z_][a-z0-9_]{0,62}$/. */
  schema?: string;
  /** Pool size; 10 by default. */
  max?: number;
}

/** A database that does not accept a connection this fast is reported UNAVAILABLE. */
const CONNECT_TIMEOUT_MS = 2000;
/** The server cancels a statement running longer (a lock wait, an overloaded server). */
const STATEMENT_TIMEOUT_MS = 5000;
/**
 * The client gives up a little later than the server, so the server's clean
 * cancellation normally wins and this only fires when the network is silent.
 */
const QUERY_TIMEOUT_MS = 6000;
/** A process frozen mid-transaction must not hold row or advisory locks for long. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;

interface OriginalRow {
  id: string;
  format: string;
  width: number;
  height: number;
  /** bigint arrives as a string. */
  bytes: string;
  storage_key: string;
  uploaded_at: Date;
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
  bytes: string;
  rendered_at: Date;
  etag: string | null;
}

/**
 * Creates the pool (connections open lazily, on first use). Throws
 * ImageError('BAD_OPTION') for an invalid schema name.
 */
export function createPostgresStore(options: PostgresStoreOptions): Store {
  const schema = options.schema;
  // The name goes into a startup option and into CREATE SCHEMA, so validate it now.
  if (schema !== undefined) quoteIdentifier(schema);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    user: options.user,
    password: options.password,
    host: options.host,
    port: options.port,
    database: options.database,
    max: options.max ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    // Detects a peer that vanished without closing the socket.
    keepAlive: true,
    // Lets a DBA tell iaas' sessions apart; an application_name in the URL wins.
    application_name: 'iaas',
    // A startup option applies before the first query on every new connection,
    // unlike a SET issued from the pool's 'connect' event.
    options: schema === undefined ? undefined : `-c search_path=${schema}`,
  });
  // An idle client whose server session ends (restart, pg_terminate_backend)
  // emits 'error'; the pool has already dropped it and opens a fresh one on
  // next use. Without a listener, that event would crash the process.
  pool.on('error', () => {});
  return new PostgresStore(pool, schema);
}

function toOriginal(row: OriginalRow): OriginalRecord {
  return {
    id: row.id,
    format: row.format,
    width: row.width,
    height: row.height,
    bytes: Number(row.bytes),
    storageKey: row.storage_key,
    uploadedAt: row.uploaded_at,
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
    bytes: Number(row.bytes),
    renderedAt: row.rendered_at,
    etag: row.etag,
  };
}

class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #schema: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(pool: pg.Pool, schema: string | undefined) {
    this.#pool = pool;
    this.#schema = schema;
  }

  async #query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    if (this.#closing) throw closedError();
    try {
      return await this.#pool.query<R>(text, values);
    } catch (error) {
      throw storeError(error);
    }
  }

  /** Runs `work` between BEGIN and COMMIT on one connection, rolling back on any error. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closing) throw closedError();
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw storeError(error);
    }
    // The pool detaches its own 'error' listener while a client is checked
    // out; a session killed mid-transaction would otherwise crash the process.
    // The failure itself still reaches us through the pending query.
    const ignore = (): void => {};
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        // Releasing with an error makes the pool destroy the connection instead of reusing it.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw storeError(error);
    } finally {
      client.release(broken);
      client.removeListener('error', ignore);
    }
  }

  migrate(): Promise<void> {
    return migratePostgres((work) => this.#transaction(work), this.#schema);
  }

  async ping(): Promise<void> {
    await this.#query('SELECT 1');
  }

  async getOriginal(id: string): Promise<OriginalRecord | null> {
    const { rows } = await this.#query<OriginalRow>('SELECT * FROM originals WHERE id = $1', [id]);
    return rows[0] === undefined ? null : toOriginal(rows[0]);
  }

  async insertOriginal(record: OriginalRecord): Promise<void> {
    const placeholders = ORIGINAL_COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
    await this.#query(`INSERT INTO originals (${ORIGINAL_COLUMNS.join(', ')}) VALUES (${placeholders})`, originalValues(record, record.uploadedAt));
  }

  async setCopies(id: string, generation: string, copies: WorkingCopy[] | null, jpegQuality: number | null): Promise<boolean> {
    const result = await this.#query('UPDATE originals SET copies = $3, jpeg_quality = $4 WHERE id = $1 AND generation = $2', [id, generation, copiesToText(copies), jpegQuality]);
    return result.rowCount === 1;
  }

  async originalsWithoutCopies(limit: number): Promise<{ id: string; generation: string }[]> {
    if (!(limit >= 1)) return [];
    const { rows } = await this.#query<{ id: string; generation: string }>(
      'SELECT id, generation FROM originals WHERE copies IS NULL ORDER BY uploaded_at, id COLLATE "C" LIMIT $1',
      [Math.floor(limit)],
    );
    return rows;
  }

  async setFocus(id: string, generation: string, focus: FocusPoint | null): Promise<boolean> {
    const result = await this.#query('UPDATE originals SET focus_x = $1, focus_y = $2 WHERE id = $3 AND generation = $4', [
      focus?.x ?? null,
      focus?.y ?? null,
      id,
      generation,
    ]);
    return result.rowCount === 1;
  }

  async setSummary(id: string, generation: string, frames: number, summary: ImageSummary): Promise<boolean> {
    const result = await this.#query(
      'UPDATE originals SET frames = $1, dominant = $2, blurhash = $3, lqip = $4 WHERE id = $5 AND generation = $6',
      [frames, summary.dominant, summary.blurhash, summary.lqip, id, generation],
    );
    return result.rowCount === 1;
  }

  deleteOriginal(id: string): Promise<{ deleted: boolean; variantKeys: string[] }> {
    return this.#transaction(async (client) => {
      // The original's row first: it is what a concurrent insertVariant locks (FOR SHARE), so
      // that insert either commits before this (and its row is deleted below) or sees no original.
      const removed = await client.query('DELETE FROM originals WHERE id = $1', [id]);
      const variants = await client.query<{ key: string }>(
        'DELETE FROM images WHERE original_id = $1 RETURNING key',
        [id],
      );
      await client.query('DELETE FROM tokens WHERE id = $1', [id]);
      return { deleted: removed.rowCount !== 0, variantKeys: variants.rows.map((row) => row.key).sort() };
    });
  }

  async issueToken(id: string, tokenDigest: Buffer, expiresAt: Date, now: Date): Promise<IssueResult> {
    // ON CONFLICT makes a concurrent second insert for the id wait for the first, then replace
    // it only if it expired unused (or its upload died and the lease ran out); the casts type
    // the SELECT's parameters.
    const result = await this.#query(
      `INSERT INTO tokens (id, digest, expires_at, used, issued_at)
       SELECT $1, $2::bytea, $3::timestamptz, false, $4::timestamptz
       WHERE NOT EXISTS (SELECT 1 FROM originals WHERE id = $1)
       ON CONFLICT (id) DO UPDATE SET
         digest = excluded.digest, expires_at = excluded.expires_at, used = false,
         issued_at = excluded.issued_at, uploaded_at = NULL, consumed_at = NULL
       WHERE tokens.expires_at <= $4::timestamptz AND tokens.uploaded_at IS NULL
         AND (NOT tokens.used OR tokens.consumed_at IS NULL OR tokens.consumed_at < $5::timestamptz)`,
      [id, tokenDigest, expiresAt, now, new Date(now.getTime() - TOKEN_LEASE_MS)],
    );
    return result.rowCount === 1 ? 'issued' : 'exists';
  }

  async consumeToken(id: string, tokenDigest: Buffer, now: Date): Promise<boolean> {
    // A concurrent caller blocks on the row lock, then re-checks `NOT used`
    // against the committed row and matches nothing.
    // Unused, or used by an upload that never completed and whose lease ran out (a crash).
    const result = await this.#query(
      `UPDATE tokens SET used = true, consumed_at = $3
       WHERE id = $1 AND digest = $2 AND expires_at > $3 AND uploaded_at IS NULL
         AND (NOT used OR consumed_at IS NULL OR consumed_at < $4)
         AND NOT EXISTS (SELECT 1 FROM originals WHERE originals.id = tokens.id)
       RETURNING id`,
      [id, tokenDigest, now, new Date(now.getTime() - TOKEN_LEASE_MS)],
    );
    return result.rowCount === 1;
  }

  async releaseToken(id: string, tokenDigest: Buffer): Promise<void> {
    await this.#query('UPDATE tokens SET used = false WHERE id = $1 AND digest = $2 AND uploaded_at IS NULL', [
      id,
      tokenDigest,
    ]);
  }

  async completeToken(id: string, tokenDigest: Buffer, at: Date): Promise<void> {
    // used = true too, so a completed token can never be consumed; the first completion time is kept.
    await this.#query(
      'UPDATE tokens SET used = true, uploaded_at = coalesce(uploaded_at, $3) WHERE id = $1 AND digest = $2',
      [id, tokenDigest, at],
    );
  }

  async getVariant(key: string): Promise<VariantRecord | null> {
    const { rows } = await this.#query<VariantRow>('SELECT * FROM images WHERE key = $1', [key]);
    return rows[0] === undefined ? null : toVariant(rows[0]);
  }

  async insertVariant(record: VariantRecord, generation: string): Promise<boolean> {
    // FOR SHARE locks the original's row: a concurrent delete (which deletes that row first)
    // either finishes before this reads it, or waits for this commit and then deletes the row
    // inserted here. The CTE tells a missing original apart from a key already present.
    const result = await this.#query<{ current: boolean }>(
      `WITH original AS (
         SELECT 1 FROM originals WHERE id = $2 AND generation = $8 FOR SHARE
       ), inserted AS (
         INSERT INTO images (key, original_id, format, width, height, bytes, rendered_at, etag)
         SELECT $1, $2, $3, $4, $5, $6, $7, $9 FROM original
         ON CONFLICT (key) DO NOTHING
       )
       SELECT EXISTS (SELECT 1 FROM original) AS current`,
      [record.key, record.originalId, record.format, record.width, record.height, record.bytes, record.renderedAt, generation, record.etag ?? null],
    );
    return result.rows[0]?.current === true;
  }

  async deleteVariantsOf(originalId: string, matches?: (key: string) => boolean): Promise<string[]> {
    if (!matches) {
      const { rows } = await this.#query<{ key: string }>('DELETE FROM images WHERE original_id = $1 RETURNING key', [
        originalId,
      ]);
      return rows.map((row) => row.key).sort();
    }
    return this.#transaction(async (client) => {
      const { rows } = await client.query<{ key: string }>('SELECT key FROM images WHERE original_id = $1 FOR UPDATE', [originalId]);
      const keys = rows.map((row) => row.key).filter(matches).sort();
      if (keys.length > 0) await client.query('DELETE FROM images WHERE key = ANY($1::text[])', [keys]);
      return keys;
    });
  }

  async purgeVariantsBefore(before: Date, limit: number): Promise<VariantRecord[]> {
    if (!(limit >= 1)) return [];
    // SKIP LOCKED lets purgers in several processes take disjoint batches
    // instead of queueing behind each other; RETURNING has no order, hence the
    // outer SELECT. COLLATE "C" breaks ties in byte order, as SQLite does.
    const { rows } = await this.#query<VariantRow>(
      `WITH doomed AS (
         SELECT key FROM images WHERE rendered_at < $1
         ORDER BY rendered_at, key COLLATE "C" LIMIT $2 FOR UPDATE SKIP LOCKED
       ), deleted AS (
         DELETE FROM images WHERE key IN (SELECT key FROM doomed) RETURNING *
       )
       SELECT * FROM deleted ORDER BY rendered_at, key COLLATE "C"`,
      [before, Math.min(Math.floor(limit), Number.MAX_SAFE_INTEGER)],
    );
    return rows.map(toVariant);
  }

  close(): Promise<void> {
    // pool.end() throws when called twice; later calls share the first one's promise.
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }
}
