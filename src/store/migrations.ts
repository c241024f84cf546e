/**
 * Versioned schema migrations for both dialects. Each migration runs once, in
 * its own transaction, and is recorded in `schema_migrations(version,
 * applied_at)`; a migration that fails leaves no trace and is retried on the
 * next start. Several processes may start at once, so every run is serialized
 * in the database itself (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory
 * lock held until commit).
 *
 * Append new migrations; never edit one that has shipped.
 *
 * SQLite stores timestamps as ISO-8601 text from Date#toISOString (fixed
 * width, UTC, so text order is time order). Text rather than epoch numbers
 * because the original service documented `DELETE FROM images WHERE
 * rendered_at < '<date>'` as its purge: in SQLite every integer sorts before
 * every text, so that statement against epoch numbers would delete every row.
 */
import type { Database } from 'better-sqlite3';
import type { PoolClient } from 'pg';
import { badOption } from '../errors.js';

/** One schema change, written once per dialect. */
export interface Migration {
  /** Applied in ascending order; never reused. */
  readonly version: number;
  readonly name: string;
  readonly sqlite: string;
  readonly postgres: string;
}

/** Every migration, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'originals, tokens and the images render index',
    // STRICT makes SQLite refuse a value of the wrong type instead of storing it.
    sqlite: `
      CREATE TABLE originals (
        id TEXT PRIMARY KEY NOT NULL,
        format TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        storage_key TEXT NOT NULL,
        uploaded_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE tokens (
        id TEXT PRIMARY KEY NOT NULL,
        digest BLOB NOT NULL CHECK (length(digest) = 32),
        expires_at TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
        issued_at TEXT NOT NULL,
        uploaded_at TEXT
      ) STRICT;
      CREATE TABLE images (
        key TEXT PRIMARY KEY NOT NULL,
        original_id TEXT NOT NULL,
        format TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        rendered_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX images_original_id ON images (original_id);
      CREATE INDEX images_rendered_at ON images (rendered_at);
    `,
    postgres: `
      CREATE TABLE originals (
        id text PRIMARY KEY,
        format text NOT NULL,
        width integer NOT NULL,
        height integer NOT NULL,
        bytes bigint NOT NULL,
        storage_key text NOT NULL,
        uploaded_at timestamptz NOT NULL
      );
      CREATE TABLE tokens (
        id text PRIMARY KEY,
        digest bytea NOT NULL CHECK (octet_length(digest) = 32),
        expires_at timestamptz NOT NULL,
        used boolean NOT NULL DEFAULT false,
        issued_at timestamptz NOT NULL,
        uploaded_at timestamptz
      );
      CREATE TABLE images (
        key text PRIMARY KEY,
        original_id text NOT NULL,
        format text NOT NULL,
        width integer NOT NULL,
        height integer NOT NULL,
        bytes bigint NOT NULL,
        rendered_at timestamptz NOT NULL
      );
      CREATE INDEX images_original_id ON images (original_id);
      CREATE INDEX images_rendered_at ON images (rendered_at);
    `,
  },
  {
    version: 2,
    name: 'when a token was consumed, so an upload cut short by a crash can be retried',
    sqlite: `ALTER TABLE tokens ADD COLUMN consumed_at TEXT;`,
    postgres: `ALTER TABLE tokens ADD COLUMN consumed_at timestamptz;`,
  },
  {
    version: 3,
    name: 'the generation of each original, named by every variant key rendered from it',
    // Originals from before keep '' and with it their keys without a generation.
    sqlite: `ALTER TABLE originals ADD COLUMN generation TEXT NOT NULL DEFAULT '';`,
    postgres: `ALTER TABLE originals ADD COLUMN generation text NOT NULL DEFAULT '';`,
  },
  {
    version: 4,
    name: 'working copies of each original (JSON, NULL until decided) and its JPEG quality',
    // Originals from before get NULL: their copies are made on their first miss, or by `iaas working-copies`.
    sqlite: `ALTER TABLE originals ADD COLUMN copies TEXT;
             ALTER TABLE originals ADD COLUMN jpeg_quality INTEGER;`,
    postgres: `ALTER TABLE originals ADD COLUMN copies text;
               ALTER TABLE originals ADD COLUMN jpeg_quality integer;`,
  },
  // Version 5 belongs to another change; versions need not be contiguous.
  {
    version: 6,
    name: 'focal points, frame counts and placeholders of originals',
    // Nothing is back-filled here: an original from before gets its frames and summary on its
    // first GET /{id}.json, so the migration is instant however many originals there are.
    sqlite: `
      ALTER TABLE originals ADD COLUMN frames INTEGER;
      ALTER TABLE originals ADD COLUMN focus_x INTEGER;
      ALTER TABLE originals ADD COLUMN focus_y INTEGER;
      ALTER TABLE originals ADD COLUMN dominant TEXT;
      ALTER TABLE originals ADD COLUMN blurhash TEXT;
      ALTER TABLE originals ADD COLUMN lqip TEXT;
    `,
    postgres: `
      ALTER TABLE originals ADD COLUMN frames integer;
      ALTER TABLE originals ADD COLUMN focus_x integer;
      ALTER TABLE originals ADD COLUMN focus_y integer;
      ALTER TABLE originals ADD COLUMN dominant text;
      ALTER TABLE originals ADD COLUMN blurhash text;
      ALTER TABLE originals ADD COLUMN lqip text;
    `,
  },
  {
    version: 7,
    name: 'the content hash of each rendered variant, its strong ETag',
    // Rows from before keep NULL: their ETag is derived from their key and render time instead.
    sqlite: `ALTER TABLE images ADD COLUMN etag TEXT;`,
    postgres: `ALTER TABLE images ADD COLUMN etag text;`,
  },
];

/** Applies pending migrations to a SQLite database. */
export function migrateSqlite(db: Database): void {
  for (const migration of MIGRATIONS) {
    // IMMEDIATE takes the write lock before reading schema_migrations, so a
    // second process waits (busy_timeout) and then sees the version applied.
    db.transaction(() => {
      db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY NOT NULL,
        applied_at TEXT NOT NULL
      ) STRICT`);
      const applied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(migration.version);
      if (applied !== undefined) return;
      db.exec(migration.sqlite);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(
        migration.version,
        new Date().toISOString(),
      );
    }).immediate();
  }
}

/** Runs `work` in a PostgreSQL transaction on one pooled connection. */
export type PostgresTransaction = <T>(work: (client: PoolClient) => Promise<T>) => Promise<T>;

/** Any constant works; it only has to be the same in every iaas process ('iaasmigr' in ASCII). */
const MIGRATION_LOCK = '7593457595108124530';

/**
 * Applies pending migrations to PostgreSQL, creating `schema` first when
 * given. The advisory lock also covers CREATE SCHEMA / CREATE TABLE IF NOT
 * EXISTS, which race with each other (unique violation) when run concurrently.
 */
export async function migratePostgres(transaction: PostgresTransaction, schema: string | undefined): Promise<void> {
  for (const migration of MIGRATIONS) {
    await transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK]);
      if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const applied = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
      if (applied.rowCount !== 0) return;
      await client.query(migration.postgres);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
    });
  }
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Validates a PostgreSQL identifier (a schema name) and returns it quoted.
 * Identifiers cannot be bound as parameters, so only names matching
 * /^[a-z_][a-z0-9_]{0,62}$/ ever reach SQL text.
 */
export function quoteIdentifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw badOption('a schema name matching /^[a-z_][a-z0-9_]{0,62}$/', 'schema', name);
  return `"${name}"`;
}
