/**
 * What the service stored, looked at from outside: a fresh PostgreSQL
 * database per test file, rows of a SQLite file, and the files of a local
 * storage folder.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Test } from 'tap';

// ---------------------------------------------------------------------------
// PostgreSQL

/** The server the PostgreSQL tests use (`IAAS_TEST_DATABASE_URL`); '' when none is configured. */
export const PG_ADMIN_URL = process.env.IAAS_TEST_DATABASE_URL ?? '';

/** A database of its own for one test file, on the server of `adminUrl`. */
export interface FreshDatabase {
  /** `adminUrl` with the fresh database's name. */
  url: string;
  name: string;
  /** Drops the database, ending any session still in it. */
  drop(): Promise<void>;
}

/** Databases of test files are named `iaas_t_<creation time, base 36>_<random>`. */
const DATABASE_NAME = /^iaas_t_([0-9a-z]{6,10})_[0-9a-f]{12}$/;
/** Older than this, a test database outlived its file (tap's timeout is 180 s): a crashed run left it. */
const STALE_DATABASE_MS = 10 * 60_000;

/**
 * Creates `iaas_t_<time>_<random>` with a client on `adminUrl`; drop() removes
 * it `WITH (FORCE)`. Also drops test databases that crashed runs left behind.
 */
export async function freshDatabase(adminUrl: string): Promise<FreshDatabase> {
  const name = `iaas_t_${Date.now().toString(36)}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'iaas\\_t\\_%'");
    for (const { datname } of rows) {
      const created = DATABASE_NAME.exec(datname)?.[1];
      if (created !== undefined && Date.now() - parseInt(created, 36) > STALE_DATABASE_MS) {
        await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
      }
    }
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A fresh database on PG_ADMIN_URL, dropped at `t`'s teardown; undefined when PostgreSQL is not configured. */
export async function pgDatabase(t: Test): Promise<{ url: string; name: string } | undefined> {
  if (PG_ADMIN_URL === '') return undefined;
  const database = await freshDatabase(PG_ADMIN_URL);
  t.teardown(() => database.drop());
  return { url: database.url, name: database.name };
}

// ---------------------------------------------------------------------------
// SQLite

/** Rows of a SQLite database file (a second connection; fine beside a running server in WAL mode). */
export function sqliteRows<T>(file: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(file, { fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------
// Local storage folders

/** Every path below `dir`, relative, sorted; folders end in `/`. */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string, prefix: string) => {
    let entries: string[];
    try {
      entries = readdirSync(at);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      const full = path.join(at, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      if (statSync(full).isDirectory()) {
        out.push(`${rel}/`);
        walk(full, rel);
      } else out.push(rel);
    }
  };
  walk(dir, '');
  return out;
}

/** Files in a folder (not below it); [] when it does not exist. */
export function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Half-written files of the local storage (`.tmp-*`) anywhere below `dir`. */
export function halfWritten(dir: string): string[] {
  return tree(dir).filter((entry) => path.basename(entry).startsWith('.tmp-'));
}
