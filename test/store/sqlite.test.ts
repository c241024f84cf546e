import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import t from 'tap';
import { createSqliteStore, createStore } from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { outcomeCode, storeContract, VERSIONS, type RawSql } from './contract.js';

const run = promisify(execFile);
const folder = mkdtempSync(path.join(tmpdir(), 'iaas-store-'));
t.teardown(() => rmSync(folder, { recursive: true, force: true }));

/** The compiled store module, for child processes (they run plain JavaScript). */
const storeModule = new URL('../../src/store/sqlite.js', import.meta.url).href;

/** A separate connection to `file`, opened on first use (the store creates the file). */
function rawSql(file: string): RawSql {
  let db: Database.Database | undefined;
  return async (text) => {
    if (db === undefined) {
      const opened = (db = new Database(file, { timeout: 5000 }));
      t.teardown(() => void opened.close());
    }
    const statement = db.prepare(text);
    if (statement.reader) return { rows: statement.all() as Record<string, unknown>[], changes: 0 };
    return { rows: [], changes: statement.run().changes };
  };
}

/** Runs `script` (an ES module body) in `count` separate node processes and returns their stdout. */
async function inProcesses(count: number, script: string, args: string[]): Promise<string[]> {
  const results = await Promise.all(
    Array.from({ length: count }, () =>
      run(process.execPath, ['--input-type=module', '-e', script, '--', storeModule, ...args], { timeout: 60_000 }),
    ),
  );
  return results.map((result) => result.stdout.trim());
}

const contractFile = path.join(folder, 'contract', 'iaas.db');
storeContract(t, async () => createSqliteStore({ path: contractFile }), rawSql(contractFile));

t.test('creates the parent folder and opens the file in WAL mode', async (t) => {
  const file = path.join(folder, 'a', 'b', 'c', 'iaas.db');
  const store = createSqliteStore({ path: file });
  t.teardown(() => store.close());
  await store.migrate();
  t.ok(existsSync(file));
  const { rows } = await rawSql(file)('PRAGMA journal_mode');
  t.equal(rows[0]?.journal_mode, 'wal');
});

t.test('reports UNAVAILABLE when the file cannot be opened', async (t) => {
  t.equal(await outcomeCode((async () => createSqliteStore({ path: folder }))()), 'UNAVAILABLE');
});

t.test('gives exactly one of 50 consumers on two connections to the same file the token', async (t) => {
  const file = path.join(folder, 'two.db');
  const first = createSqliteStore({ path: file });
  const second = createSqliteStore({ path: file });
  t.teardown(() => Promise.all([first.close(), second.close()]));
  await first.migrate();
  await second.migrate();
  const digest = createHash('sha256').update('token').digest();
  t.equal(await first.issueToken('shared', digest, new Date(Date.now() + 60_000), new Date()), 'issued');
  t.equal(await second.issueToken('shared', digest, new Date(Date.now() + 60_000), new Date()), 'exists');
  const now = new Date();
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? first : second).consumeToken('shared', digest, now)),
  );
  t.equal(results.filter(Boolean).length, 1);
});

t.test('gives exactly one of 5 processes racing 10 times each the token', async (t) => {
  const file = path.join(folder, 'processes.db');
  const store = createSqliteStore({ path: file });
  t.teardown(() => store.close());
  await store.migrate();
  const digest = createHash('sha256').update('token').digest();
  t.equal(await store.issueToken('raced', digest, new Date(Date.now() + 60_000), new Date()), 'issued');
  // Each process waits for the same start instant, so their attempts interleave.
  const script = `
    const [moduleUrl, file, id, digestHex, startAt] = process.argv.slice(1);
    const { createSqliteStore } = await import(moduleUrl);
    const store = createSqliteStore({ path: file });
    const digest = Buffer.from(digestHex, 'hex');
    await new Promise((resolve) => setTimeout(resolve, Number(startAt) - Date.now()));
    let wins = 0;
    for (let i = 0; i < 10; i++) if (await store.consumeToken(id, digest, new Date())) wins++;
    await store.close();
    process.stdout.write(String(wins));
  `;
  const startAt = String(Date.now() + 1500);
  const wins = await inProcesses(5, script, [file, 'raced', digest.toString('hex'), startAt]);
  t.equal(wins.reduce((sum, value) => sum + Number(value), 0), 1, `wins per process: ${wins.join(', ')}`);
});

t.test('migrates a new file from 4 processes at once', async (t) => {
  const file = path.join(folder, 'migrate-race', 'iaas.db');
  const script = `
    const [moduleUrl, file, startAt] = process.argv.slice(1);
    const { createSqliteStore } = await import(moduleUrl);
    await new Promise((resolve) => setTimeout(resolve, Number(startAt) - Date.now()));
    const store = createSqliteStore({ path: file });
    await store.migrate();
    await store.close();
    process.stdout.write('ok');
  `;
  const outputs = await inProcesses(4, script, [file, String(Date.now() + 1500)]);
  t.same(outputs, ['ok', 'ok', 'ok', 'ok']);
  const { rows } = await rawSql(file)('SELECT version FROM schema_migrations ORDER BY version');
  t.same(
    rows.map((row) => row.version),
    VERSIONS,
  );
});

t.test('migration 6 leaves the originals recorded before it without a summary, to be computed on first request', async (t) => {
  const file = path.join(folder, 'before-6.db');
  // The schema as a release before migration 6 left it, with one original recorded.
  const old = new Database(file);
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL) STRICT');
  for (const migration of MIGRATIONS.filter((m) => m.version < 6)) {
    old.exec(migration.sqlite);
    old.prepare('INSERT INTO schema_migrations VALUES (?, ?)').run(migration.version, new Date().toISOString());
  }
  old.prepare("INSERT INTO originals (id, format, width, height, bytes, storage_key, uploaded_at, generation) VALUES ('old', 'jpeg', 30, 20, 99, 'old.g', '2025-01-01T00:00:00.000Z', 'g')").run();
  old.close();
  const store = createSqliteStore({ path: file });
  t.teardown(() => store.close());
  await store.migrate();
  const record = await store.getOriginal('old');
  t.match(record, { id: 'old', width: 30, height: 20, frames: null, focus: null, summary: null }, 'nothing is back-filled by the migration');
  const summary = { dominant: '#000000', blurhash: 'L00000fQfQfQfQfQfQfQfQfQfQfQ', lqip: 'data:image/webp;base64,AA==' };
  t.equal(await store.setSummary('old', 'g', 1, summary), true, 'the first request can store it');
  t.same((await store.getOriginal('old'))?.summary, summary);
});

t.test('reports UNAVAILABLE when another connection holds the write lock past the busy timeout', async (t) => {
  const file = path.join(folder, 'locked.db');
  const store = createSqliteStore({ path: file });
  t.teardown(() => store.close());
  await store.migrate();
  const holder = new Database(file);
  t.teardown(() => void holder.close());
  holder.exec('BEGIN IMMEDIATE');
  const started = Date.now();
  const variant = { key: 'k', originalId: 'o', format: 'png', width: 1, height: 1, bytes: 1, renderedAt: new Date() };
  t.equal(await outcomeCode(store.insertVariant(variant, '')), 'UNAVAILABLE');
  t.ok(Date.now() - started >= 4_500, 'it waited for the busy timeout first');
  holder.exec('ROLLBACK');
  await t.resolves(store.insertVariant(variant, ''), 'works once the lock is released');
});

t.test('createStore picks PostgreSQL for any connection setting and SQLite otherwise', async (t) => {
  const sqlitePath = path.join(folder, 'chosen.db');
  const stores = [
    createStore({ sqlitePath }),
    createStore({ sqlitePath, databaseUrl: '', postgres: { host: '', user: undefined } }),
    createStore({ sqlitePath, databaseUrl: 'postgres://nobody@127.0.0.1:1/none' }),
    createStore({ sqlitePath, postgres: { port: 1 } }),
  ];
  // Closing without a query: pg pools connect lazily, so nothing is contacted.
  t.teardown(() => Promise.all(stores.map((store) => store.close())));
  t.same(
    stores.map((store) => store.kind),
    ['sqlite', 'sqlite', 'postgres', 'postgres'],
  );
});
