/**
 * Chooses the store from configuration: PostgreSQL when any connection
 * setting is present, otherwise the embedded SQLite file.
 */
import { createPostgresStore } from './postgres.js';
import { createSqliteStore } from './sqlite.js';
import type { Store } from './types.js';

export { createPostgresStore } from './postgres.js';
export type { PostgresStoreOptions } from './postgres.js';
export { createSqliteStore } from './sqlite.js';
export type { SqliteStoreOptions } from './sqlite.js';
export type { IssueResult, OriginalRecord, Store, VariantRecord } from './types.js';

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
    return createPostgresStore({
      ...postgres,
      connectionString: isSet(options.databaseUrl) ? options.databaseUrl : undefined,
      schema: options.schema,
    });
  }
  return createSqliteStore({ path: options.sqlitePath });
}
