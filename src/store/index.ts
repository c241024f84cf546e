/**
 * Chooses the store from configuration: PostgreSQL when any connection
 * setting is present, otherwise the embedded SQLite file.
 */
import type { PostgresStoreOptions } from './postgres.js';
import { createSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export type { PostgresStoreOptions } from './postgres.js';
export { createSqliteStore } from './sqlite.js';
export type { SqliteStoreOptions } from './sqlite.js';
export type { FocusPoint, ImageSummary, IssueResult, OriginalRecord, Store, VariantRecord, WorkingCopy } from './types.js';

/** Options of {@link createStore}, as they come from configuration. */
export interface StoreOptions {
  /** A postgres:// URL; its fields win over `postgres`. */
  databaseUrl?: string;
  /** Separate connection fields, for configuration that does not use a URL. */
  postgres?: { user?: string; password?: string; host?: string; port?: number; database?: string };
  /** The SQLite file used when no PostgreSQL setting is present. */
  sqlitePath: string;
  /** PostgreSQL only: the schema every connection uses, created by migrate(). */
  schema?: string;
}

/**
 * Empty strings count as unset: configuration layers commonly map an unset
 * environment variable to ''.
 */
function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

/**
 * PostgreSQL when `databaseUrl` or any `postgres` field is set, else SQLite
 * at `sqlitePath`. Call `migrate()` before use.
 */
export function createStore(options: StoreOptions): Store {
  const postgres = options.postgres ?? {};
  if (isSet(options.databaseUrl) || Object.values(postgres).some(isSet)) {
    const postgresOptions: PostgresStoreOptions = {
      ...postgres,
      connectionString: isSet(options.databaseUrl) ? options.databaseUrl : undefined,
      schema: options.schema,
    };
    // pg loads on first use: workers on the embedded defaults never pay for it.
    return lazyStore('postgres', async () => (await import('./postgres.js')).createPostgresStore(postgresOptions));
  }
  return createSqliteStore({ path: options.sqlitePath });
}

/** A Store whose implementation module is imported when first called. */
export function lazyStore(kind: Store['kind'], load: () => Promise<Store>): Store {
  let store: Promise<Store> | undefined;
  let closed = false;
  const get = () => (store ??= load());
  return {
    kind,
    migrate: async () => (await get()).migrate(),
    ping: async () => (await get()).ping(),
    getOriginal: async (id) => (await get()).getOriginal(id),
    insertOriginal: async (record) => (await get()).insertOriginal(record),
    setCopies: async (id, generation, copies, jpegQuality) => (await get()).setCopies(id, generation, copies, jpegQuality),
    originalsWithoutCopies: async (limit) => (await get()).originalsWithoutCopies(limit),
    deleteOriginal: async (id) => (await get()).deleteOriginal(id),
    issueToken: async (id, digest, expiresAt, now) => (await get()).issueToken(id, digest, expiresAt, now),
    consumeToken: async (id, digest, now) => (await get()).consumeToken(id, digest, now),
    releaseToken: async (id, digest) => (await get()).releaseToken(id, digest),
    completeToken: async (id, digest, at) => (await get()).completeToken(id, digest, at),
    getVariant: async (key) => (await get()).getVariant(key),
    insertVariant: async (record, generation) => (await get()).insertVariant(record, generation),
    setFocus: async (id, generation, focus) => (await get()).setFocus(id, generation, focus),
    setSummary: async (id, generation, frames, summary) => (await get()).setSummary(id, generation, frames, summary),
    deleteVariantsOf: async (id, matches) => (await get()).deleteVariantsOf(id, matches),
    purgeVariantsBefore: async (before, limit) => (await get()).purgeVariantsBefore(before, limit),
    async close() {
      if (closed || !store) return;
      closed = true;
      await (await store).close();
    },
  };
}
