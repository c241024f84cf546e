import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import t from 'tap';
import { createPostgresStore, type PostgresStoreOptions } from '../../src/store/postgres.js';
import { outcomeCode, storeContract, VERSIONS } from './contract.js';

const url = process.env.IAAS_TEST_DATABASE_URL;

if (url === undefined || url === '') {
  t.comment('PostgreSQL tests skipped: set IAAS_TEST_DATABASE_URL');
  t.skip('PostgreSQL tests skipped: set IAAS_TEST_DATABASE_URL', () => {});
} else {
  suite(url);
}

function suite(url: string): void {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  /** Tags this run's sessions, so terminating them never touches anyone else's. */
  const applicationName = `iaas_test_${schema}`;
  const connectionString = withApplicationName(url, applicationName);
  const options: PostgresStoreOptions = { connectionString, schema };

  /** A plain client outside the store: raw SQL, locks and terminations. */
  const admin = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  admin.on('error', () => {});
  t.before(() => admin.connect());
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  storeContract(
    t,
    async () => createPostgresStore(options),
    async (text) => {
      const result = await admin.query(text);
      return { rows: result.rows as Record<string, unknown>[], changes: result.rowCount ?? 0 };
    },
  );

  t.test('creates the schema and migrates from 4 stores at once', async (t) => {
    const fresh = `t_${randomBytes(6).toString('hex')}`;
    t.teardown(() => admin.query(`DROP SCHEMA IF EXISTS ${fresh} CASCADE`));
    const stores = Array.from({ length: 4 }, () => createPostgresStore({ connectionString, schema: fresh }));
    t.teardown(() => Promise.all(stores.map((store) => store.close())));
    await Promise.all(stores.map((store) => store.migrate()));
    const { rows } = await admin.query(`SELECT version FROM ${fresh}.schema_migrations ORDER BY version`);
    t.same(
      rows.map((row: { version: number }) => row.version),
      VERSIONS,
    );
  });

  t.test('refuses a schema name that is not a plain identifier', async (t) => {
    for (const schema of ['x; DROP TABLE y', 'Upper', '1abc', 'a'.repeat(64)]) {
      t.equal(await outcomeCode((async () => createPostgresStore({ connectionString, schema }))()), 'BAD_OPTION', schema);
    }
  });

  t.test('recovers by itself after the server terminates its connections', async (t) => {
    const store = createPostgresStore({ ...options, max: 4 });
    t.teardown(() => store.close());
    await store.migrate();
    // Fill the pool with idle connections, the ones a restart would kill.
    await Promise.all(Array.from({ length: 4 }, () => store.ping()));
    const killed = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName],
    );
    t.ok((killed.rowCount ?? 0) >= 1, `terminated ${killed.rowCount} sessions`);
    const immediate = await outcomeCode(store.getOriginal('x'));
    t.ok(['resolved', 'UNAVAILABLE'].includes(immediate), `the next query resolves or is UNAVAILABLE (${immediate})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await t.resolves(store.ping(), 'a query shortly after succeeds');
    await t.resolves(
      Promise.all(Array.from({ length: 8 }, () => store.getOriginal('x'))),
      'the whole pool works again',
    );
  });

  t.test('survives a connection terminated in the middle of a transaction', async (t) => {
    const store = createPostgresStore({ ...options, max: 1 });
    t.teardown(() => store.close());
    await store.migrate();
    // Hold the images table so deleteOriginal's transaction waits on it, then kill that session.
    await admin.query('BEGIN');
    await admin.query('LOCK TABLE images IN ACCESS EXCLUSIVE MODE');
    const pending = outcomeCode(store.deleteOriginal('x'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
      applicationName,
    ]);
    await admin.query('ROLLBACK');
    t.equal(await pending, 'UNAVAILABLE');
    await t.resolves(store.deleteOriginal('x'), 'the next transaction runs on a new connection');
  });

  t.test('reports UNAVAILABLE when a statement waits past the statement timeout', async (t) => {
    const store = createPostgresStore(options);
    t.teardown(() => store.close());
    await store.migrate();
    await admin.query('BEGIN');
    await admin.query('LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE');
    const started = Date.now();
    const digest = createHash('sha256').update('token').digest();
    const code = await outcomeCode(store.consumeToken('x', digest, new Date()));
    await admin.query('ROLLBACK');
    t.equal(code, 'UNAVAILABLE');
    const elapsed = Date.now() - started;
    t.ok(elapsed >= 4_500 && elapsed < 8_000, `gave up after ${elapsed} ms`);
    await t.resolves(store.consumeToken('x', digest, new Date()), 'works once the lock is gone');
  });

  t.test('reports UNAVAILABLE within the connect timeout when nothing listens', async (t) => {
    const store = createPostgresStore({ host: '127.0.0.1', port: 1, user: 'nobody', database: 'none' });
    t.teardown(() => store.close());
    const started = Date.now();
    t.equal(await outcomeCode(store.ping()), 'UNAVAILABLE');
    t.equal(await outcomeCode(store.migrate()), 'UNAVAILABLE');
    t.ok(Date.now() - started < 5_000, 'no hang');
  });
}

function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}
