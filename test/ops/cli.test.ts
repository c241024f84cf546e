/**
 * The `iaas` command as an operator runs it, as a child process: help and
 * usage errors of every subcommand, `migrate` on a fresh data folder, `token`
 * working for an upload, `working-copies` back-filling an old original, and
 * `start` serving until SIGTERM.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { cli } from '../../src/cli/iaas.js';
import { render } from '../../src/index.js';
import { postImage, uploadImage } from '../helpers/http.js';
import { runCli, spawnCli, startTestServer } from '../helpers/processes.js';

const SUBCOMMANDS = ['start', 'migrate', 'purge', 'token', 'working-copies'] as const;

/** A fresh data folder and an empty config folder, removed when the test ends. */
async function folders(t: Test): Promise<{ dataDir: string; configDir: string }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'iaas-cli-data-'));
  const configDir = await mkdtemp(path.join(tmpdir(), 'iaas-cli-config-'));
  t.teardown(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(configDir, { recursive: true, force: true })]));
  return { dataDir, configDir };
}

/** The environment of a CLI run: nothing of this machine's but PATH and HOME. */
function cliEnv(dataDir: string, configDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
    DATA_DIR: dataDir,
    NODE_CONFIG_DIR: configDir,
    ...extra,
  };
}

/**
 * Runs `cli(argv)` in this process, capturing what it prints: cheap enough
 * for the whole matrix of help and usage errors. DATA_DIR and NODE_CONFIG_DIR
 * of this process point at throwaway folders (see below), never at the repository.
 */
async function runInProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...values: unknown[]) => void out.push(values.map(String).join(' '));
  console.error = (...values: unknown[]) => void err.push(values.map(String).join(' '));
  try {
    const code = await cli(argv);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

// The in-process runs read their config from this process' environment: point it at throwaway folders.
const inProcessData = await mkdtemp(path.join(tmpdir(), 'iaas-cli-inproc-data-'));
const inProcessConfig = await mkdtemp(path.join(tmpdir(), 'iaas-cli-inproc-config-'));
process.env.DATA_DIR = inProcessData;
process.env.NODE_CONFIG_DIR = inProcessConfig;
t.teardown(() => Promise.all([rm(inProcessData, { recursive: true, force: true }), rm(inProcessConfig, { recursive: true, force: true })]));

t.test('iaas --help lists every subcommand and exits 0; an unknown command exits 2 naming it', async (t) => {
  const { dataDir, configDir } = await folders(t);
  const env = cliEnv(dataDir, configDir);
  const [help, unknown] = await Promise.all([runCli(['--help'], env), runCli(['frobnicate'], env)]);
  t.equal(help.code, 0, '--help exits 0');
  for (const name of SUBCOMMANDS) t.match(help.stdout, `iaas ${name}`, `the help lists ${name}`);
  t.equal(unknown.code, 2, 'an unknown command exits 2');
  t.match(unknown.stderr, 'frobnicate', 'the message names the unknown command');
  const none = await runInProcess([]);
  t.equal(none.code, 2, 'no command is a usage error');
  t.match(none.stdout, 'iaas start', 'and prints the help');
});

t.test('an unknown flag of a subcommand exits 2 with a message naming the flag', async (t) => {
  const { dataDir, configDir } = await folders(t);
  const bad = await runCli(['purge', '--no-such-flag'], cliEnv(dataDir, configDir));
  t.equal(bad.code, 2, 'the process exits 2');
  t.match(bad.stderr, '--no-such-flag', 'stderr names the flag');
  t.match(bad.stderr, 'iaas purge', 'and shows the usage');
  t.equal(bad.stdout, '', 'nothing goes to stdout');
  t.notOk(existsSync(path.join(dataDir, 'iaas.sqlite')), 'a usage error touches no database');
});

for (const name of SUBCOMMANDS) {
  t.test(`iaas ${name} --help prints its usage and exits 0, and an unknown flag exits 2 naming the flag`, async (t) => {
    for (const flag of ['--help', '-h']) {
      const help = await runInProcess([name, flag]);
      t.equal(help.code, 0, `${flag} exits 0`);
      t.match(help.stdout, `iaas ${name}`, `${flag} prints the usage of ${name}`);
      t.equal(help.stderr, '', `${flag} writes nothing to stderr`);
    }
    const bad = await runInProcess([name, '--no-such-flag']);
    t.equal(bad.code, 2, 'an unknown flag exits 2');
    t.match(bad.stderr, '--no-such-flag', 'the message names the flag');
    t.match(bad.stderr, `iaas ${name}`, 'and shows the usage');
    t.notOk(existsSync(path.join(inProcessData, 'iaas.sqlite')), 'a usage error touches no database');
  });
}

t.test('iaas purge and iaas token refuse bad arguments, and a bad setting exits 2', async (t) => {
  const usage = [
    ['purge'],
    ['purge', '--batch', '2'],
    ['purge', '--before', 'not-a-date'],
    ['purge', '--before', '2020-01-01', '--batch', 'x'],
    ['purge', '--before', '2020-01-01', '--batch', '0'],
    ['purge', '--before', '2020-01-01', '--pause-ms', '-1'],
    ['purge', '--before', '2020-01-01', '--id', 'photo'],
    ['purge', '--before'],
    ['token'],
    ['token', 'a', 'b'],
    ['migrate', 'extra'],
  ];
  for (const args of usage) t.equal((await runInProcess(args)).code, 2, `${args.join(' ')} exits 2`);
  const { dataDir, configDir } = await folders(t);
  const badConfig = await runCli(['migrate'], cliEnv(dataDir, configDir, { PORT: 'many' }));
  t.equal(badConfig.code, 2, 'a bad setting exits 2');
  t.match(badConfig.stderr, 'PORT', 'the message names the variable');
  t.notOk(existsSync(path.join(dataDir, 'iaas.sqlite')), 'and nothing is migrated');
});

t.test('iaas migrate creates the SQLite schema in a fresh DATA_DIR, and is idempotent', async (t) => {
  const { dataDir, configDir } = await folders(t);
  const env = cliEnv(dataDir, configDir);
  const sqlite = path.join(dataDir, 'iaas.sqlite');
  t.notOk(existsSync(sqlite), 'the data folder starts empty');
  const first = await runCli(['migrate'], env);
  t.equal(first.code, 0, 'migrate exits 0');
  t.ok(existsSync(sqlite), 'the SQLite file is created in DATA_DIR');

  // better-sqlite3 is a dependency of iaas; it is CommonJS, so it is loaded through require.
  const require = createRequire(import.meta.url);
  const Database = require('better-sqlite3') as new (file: string, options: { readonly: boolean }) => {
    prepare(sql: string): { all(): unknown[] };
    close(): void;
  };
  const db = new Database(sqlite, { readonly: true });
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
  db.close();
  for (const table of ['originals', 'tokens', 'images', 'schema_migrations']) t.ok(tables.includes(table), `the schema has the ${table} table`);

  const second = await runCli(['migrate'], env);
  t.equal(second.code, 0, 'a second migrate exits 0 too');
});

t.test('iaas token prints 64 hex characters that work once for an upload through a server on the same DATA_DIR', async (t) => {
  const { dataDir, configDir } = await folders(t);
  const env = cliEnv(dataDir, configDir);
  t.equal((await runCli(['migrate'], env)).code, 0, 'migrate exits 0');
  const id = unique('cli');
  const issued = await runCli(['token', id], env);
  t.equal(issued.code, 0, 'token exits 0');
  const token = issued.stdout.trim();
  t.match(token, /^[0-9a-f]{64}$/, 'the token is 64 hex characters');

  const again = await runCli(['token', id], env);
  t.equal(again.code, 1, 'a second token for the same id is refused');

  // A server (with a secret, which the CLI does not need) on the same data folder.
  const server = await startTestServer({ data_dir: dataDir, secret: 'cli-secret' });
  t.teardown(() => server.stop());
  const uploaded = await postImage(server.url, id, token, photoJpeg(96, 64));
  t.equal(uploaded.status, 200, 'the token works for an upload');
  t.match(await uploaded.json(), { id, original_width: 96, original_height: 64 });
  const image = await fetch(`${server.url}/${id}_48_32.jpg`);
  t.equal(image.status, 200, 'the uploaded image renders');
  t.equal(image.headers.get('content-type'), 'image/jpeg');
  await image.arrayBuffer();
  const reused = await postImage(server.url, id, token, photoJpeg(96, 64));
  t.equal(reused.status, 403, 'the token works only once');
  t.equal(((await reused.json()) as { code?: string }).code, 'BAD_TOKEN');

  const badId = await runCli(['token', '../etc'], env);
  t.equal(badId.code, 1, 'an id the service would refuse is refused');
});

t.test('iaas working-copies --batch 1 makes the copies of an original from before copies, then has nothing to do', async (t) => {
  const { dataDir, configDir } = await folders(t);
  const env = cliEnv(dataDir, configDir);
  // Small bounds: a 1600x1200 progressive JPEG then gets copies of 533x400 and 267x200.
  const bounds = { 'constraints.max_width': 400, 'constraints.max_height': 400 };
  const server = await startTestServer({ data_dir: dataDir, ...bounds, 'working_copy.enabled': false });
  const id = unique('old');
  const progressive = new Uint8Array(render(photoJpeg(1600, 1200), { format: 'jpeg', quality: 90 }).data);
  t.equal((await uploadImage(server.url, id, progressive)).status, 200, 'uploaded while copies were off');
  t.equal((await server.server.store.getOriginal(id))?.copies, null, 'no copies decided');
  await server.stop();
  const boundsEnv = { ...env, MAX_WIDTH: '400', MAX_HEIGHT: '400' };
  const first = await runCli(['working-copies', '--batch', '1'], boundsEnv);
  t.equal(first.code, 0, `exits 0 (${first.stderr})`);
  t.match(first.stdout, /working copies: 1 made/, 'one original got its copies');
  const again = await runCli(['working-copies'], boundsEnv);
  t.match(again.stdout, /working copies: nothing to do/, 'a second run has nothing to do');
  const after = await startTestServer({ data_dir: dataDir, ...bounds });
  t.teardown(() => after.stop());
  t.same((await after.server.store.getOriginal(id))?.copies?.map((c) => [c.level, c.width, c.height]), [[1, 533, 400], [2, 267, 200]], 'the copies are recorded');
});

t.test('iaas start serves /_health, then drains and exits 0 on SIGTERM', async (t) => {
  const { dataDir, configDir } = await folders(t);
  const child = spawnCli(['start'], cliEnv(dataDir, configDir, { PORT: '0', LISTEN_ADDRESS: '127.0.0.1', WORKERS: '1', POOL_SIZE: '1', LOG_INFO: 'true' }));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines: Record<string, unknown>[] = [];
  const listening = new Promise<number>((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => reject(new Error(`iaas start did not listen within 60 s; stderr: ${stderr.slice(-2000)}`)), 60_000);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const text = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        lines.push(line);
        if (line.message === 'iaas listening') {
          clearTimeout(timer);
          resolve(Number(line.port));
        }
      }
    });
    void exited.then(([code]) => {
      clearTimeout(timer);
      reject(new Error(`iaas start exited with ${code} before listening; stderr: ${stderr.slice(-2000)}`));
    });
  });
  const port = await listening;
  t.ok(port > 0, 'the cluster listens on a port');
  const health = await fetch(`http://127.0.0.1:${port}/_health`);
  t.equal(health.status, 200, '/_health answers 200');
  t.equal(await health.text(), 'OK');
  t.ok(existsSync(path.join(dataDir, 'iaas.sqlite')), 'start migrated the schema first');

  child.kill('SIGTERM');
  const [code, signal] = await exited;
  t.equal(signal, null, 'it is not killed by the signal');
  t.equal(code, 0, 'it exits 0 on SIGTERM');
  t.ok(lines.some((line) => line.message === 'draining workers'), 'it drained its workers');
  await t.rejects(fetch(`http://127.0.0.1:${port}/_health`), 'nothing listens afterwards');
});
