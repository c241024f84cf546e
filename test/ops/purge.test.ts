/**
 * Removing images, and proving the bytes are really gone: DELETE /{id} on
 * local folders and on S3 (s3rver), its authorisation, and the CLI's gradual
 * `iaas purge --before` and `iaas purge --id`, run as a child process on the
 * same data folder as a running server.
 */
import { originalKeyOf } from '../helpers/stored.js';
import http from 'node:http';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { startS3rver, S3RVER_CREDENTIALS } from '../helpers/s3.js';
import { errorOf, get, requestToken, uploadImage } from '../helpers/http.js';
import { runCli, startCluster, startTestServer, type CliRun, type TestServer } from '../helpers/processes.js';
import { eventually } from '../helpers/timing.js';

const SECRET = 'purge-test-secret';

/** Every file below `dir` (relative paths), or [] when it does not exist. */
async function filesUnder(dir: string): Promise<string[]> {
  try {
    const files: string[] = [];
    for (const entry of await readdir(dir, { recursive: true })) {
      const info = await stat(path.join(dir, entry)).catch(() => undefined);
      if (info?.isFile()) files.push(entry);
    }
    return files;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Files of one id in the local render cache (keys are `{id}/...`). */
async function cachedFiles(server: TestServer, id: string): Promise<string[]> {
  return (await filesUnder(server.config.cacheDir)).filter((file) => file.startsWith(`${id}${path.sep}`));
}

/** Files of one id among local originals. */
async function originalFiles(server: TestServer, id: string): Promise<string[]> {
  return (await filesUnder(server.config.originalsDir)).filter((file) => file === id || file.startsWith(`${id}.`) || file.startsWith(`${id}${path.sep}`));
}

/** Box sizes of distinct variants. */
const SIZES: readonly [number, number][] = [
  [40, 30],
  [80, 60],
  [120, 90],
  [160, 120],
  [200, 150],
];

/** Renders `count` distinct variants and waits until the render index holds each of them. */
async function renderVariants(t: Test, server: TestServer, id: string, count: number): Promise<void> {
  for (const [width, height] of SIZES.slice(0, count)) {
    const response = await get(`${server.url}/${id}_${width}_${height}.jpg`);
    t.equal(response.status, 200, `the ${width}x${height} variant renders`);
    await response.arrayBuffer();
  }
  // Variants are stored after their response: wait for every one to be a hit.
  for (const [width, height] of SIZES.slice(0, count)) {
    const stored = await eventually(async () => {
      const response = await get(`${server.url}/${id}_${width}_${height}.jpg`);
      await response.arrayBuffer();
      return response.headers.get('x-cache') === 'HIT';
    }, 20_000);
    t.ok(stored, `the ${width}x${height} variant is stored`);
  }
}

async function upload(t: Test, server: TestServer, id: string, secret?: string): Promise<void> {
  const answer = await uploadImage(server.url, id, photoJpeg(320, 240), secret === undefined ? {} : { secret });
  t.equal(answer.status, 200, 'the upload is stored');
}

function deleteImage(server: TestServer, id: string, secret?: string): Promise<Response> {
  return fetch(`${server.url}/${id}`, { method: 'DELETE', headers: secret === undefined ? {} : { 'X-Secret': secret } });
}

t.test('DELETE on local storage removes the original and every variant file, and the id can be uploaded again', async (t) => {
  const server = await startTestServer({ secret: SECRET });
  t.teardown(() => server.stop());
  const id = unique('del');
  await upload(t, server, id, SECRET);
  await renderVariants(t, server, id, 3);
  t.equal((await cachedFiles(server, id)).length, 3, 'three variant files are in DATA_DIR/cache');
  t.equal((await originalFiles(server, id)).length, 1, 'the original is in DATA_DIR/originals');

  const noSecret = await deleteImage(server, id);
  t.equal(noSecret.status, 401, 'no X-Secret is 401');
  t.equal((await errorOf(noSecret)).code, 'UNAUTHORIZED');
  const wrong = await deleteImage(server, id, `${SECRET}x`);
  t.equal(wrong.status, 401, 'a wrong X-Secret is 401');
  t.equal((await errorOf(wrong)).code, 'UNAUTHORIZED');
  t.equal((await cachedFiles(server, id)).length, 3, 'a refused delete leaves the variants');
  t.equal((await originalFiles(server, id)).length, 1, 'a refused delete leaves the original');

  const deleted = await deleteImage(server, id, SECRET);
  t.equal(deleted.status, 200, 'the right X-Secret deletes');
  t.match(await deleted.json(), { id, variants: 3 }, 'the answer counts the variants');
  t.same(await cachedFiles(server, id), [], 'no variant file is left in DATA_DIR/cache');
  t.same(await originalFiles(server, id), [], 'the original file is gone from DATA_DIR/originals');

  const original = await get(`${server.url}/${id}.jpg`);
  t.equal(original.status, 404, 'the original answers 404');
  t.equal((await errorOf(original)).code, 'NOT_FOUND');
  const variant = await get(`${server.url}/${id}_${SIZES[0]?.[0]}_${SIZES[0]?.[1]}.jpg`);
  t.equal(variant.status, 404, 'a variant answers 404');
  t.equal((await errorOf(variant)).code, 'NOT_FOUND');

  const again = await requestToken(server.url, id, { secret: SECRET });
  t.equal(again.status, 200, 'a new token can be issued for the id');
  const reupload = await uploadImage(server.url, id, photoJpeg(64, 48), { token: String(again.body.token) });
  t.equal(reupload.status, 200, 'and the id can be uploaded again');
  t.match(reupload.body, { original_width: 64, original_height: 48 }, 'the new original replaces the old one');

  const unknown = await deleteImage(server, unique('never'), SECRET);
  t.equal(unknown.status, 404, 'deleting an unknown id is 404');
  t.equal((await errorOf(unknown)).code, 'NOT_FOUND');
});

t.test('DELETE is refused with 403 when no secret is configured', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const id = unique('nosecret');
  await upload(t, server, id);
  for (const secret of [undefined, '', 'anything']) {
    const response = await deleteImage(server, id, secret);
    t.equal(response.status, 403, `DELETE with ${secret === undefined ? 'no' : JSON.stringify(secret)} X-Secret is 403`);
    t.equal((await errorOf(response)).code, 'FORBIDDEN');
  }
  t.equal((await originalFiles(server, id)).length, 1, 'the original stays');
  t.equal((await get(`${server.url}/${id}.jpg`)).status, 200, 'and is still served');
});

t.test('DELETE on S3 removes the original and every cached object from the bucket', async (t) => {
  const s3 = await startS3rver({ bucket: unique('iaas-purge') });
  t.teardown(() => s3.stop());
  const server = await startTestServer({
    secret: SECRET,
    'aws.bucket': s3.bucket,
    'aws.endpoint': s3.endpoint,
    'aws.access_key': S3RVER_CREDENTIALS.accessKeyId,
    'aws.secret_key': S3RVER_CREDENTIALS.secretAccessKey,
    'aws.region': S3RVER_CREDENTIALS.region,
    'aws.store_originals': true,
  });
  t.teardown(() => server.stop());
  t.equal(server.server.cache.kind, 's3', 'the render cache is S3');
  t.equal(server.server.originals.kind, 's3', 'originals are in S3');
  const id = unique('s3del');
  await upload(t, server, id, SECRET);
  for (const [width, height] of SIZES.slice(0, 3)) {
    const response = await get(`${server.url}/${id}_${width}_${height}.jpg`);
    t.equal(response.status, 200, `the ${width}x${height} variant renders`);
    await response.arrayBuffer();
  }
  // A stored variant is a 303 to the bucket: collect every object URL.
  const locations: string[] = [];
  for (const [width, height] of SIZES.slice(0, 3)) {
    let location = '';
    const stored = await eventually(async () => {
      const response = await get(`${server.url}/${id}_${width}_${height}.jpg`);
      await response.arrayBuffer();
      location = response.headers.get('location') ?? '';
      return response.status === 303;
    }, 20_000);
    t.ok(stored, `the ${width}x${height} variant is a 303 to the bucket`);
    locations.push(location);
  }
  const prefix = `${s3.endpoint}/${s3.bucket}/`;
  const keys = locations.map((location) => (location.startsWith(prefix) ? decodeURIComponent(location.slice(prefix.length)) : location));
  t.ok(keys.every((key) => key.startsWith(`cache/${id}/`)), 'every variant lives under cache/{id}/ in the bucket');
  const originalKey = (await originalKeyOf(server.server, id)) ?? '';
  t.ok(originalKey.startsWith(`originals/${id}.`), `the original lives at originals/{id}.{generation} (${originalKey})`);
  for (const key of keys) t.ok(await server.server.cache.exists(key), `${key} exists before the delete`);
  t.ok(await server.server.originals.exists(originalKey), 'the original exists before the delete');
  for (const location of locations) t.equal((await fetch(location)).status, 200, 'the bucket serves the variant before the delete');

  const refused = await deleteImage(server, id, 'wrong');
  t.equal(refused.status, 401, 'a wrong X-Secret is 401');
  t.equal((await errorOf(refused)).code, 'UNAUTHORIZED');
  t.ok(await server.server.originals.exists(originalKey), 'a refused delete leaves the original in the bucket');

  const deleted = await deleteImage(server, id, SECRET);
  t.equal(deleted.status, 200, 'the right X-Secret deletes');
  t.match(await deleted.json(), { id, variants: 3 }, 'the answer counts the variants');
  for (const key of keys) t.notOk(await server.server.cache.exists(key), `${key} is gone from the bucket`);
  t.notOk(await server.server.originals.exists(originalKey), 'the original is gone from the bucket');
  for (const location of locations) {
    const response = await fetch(location);
    await response.arrayBuffer();
    t.equal(response.status, 404, 'a direct GET of the variant object is 404');
  }
  const head = await fetch(`${prefix}${originalKey}`, { method: 'HEAD' });
  t.equal(head.status, 404, 'a direct HEAD of the original object is 404');

  t.equal((await get(`${server.url}/${id}.jpg`)).status, 404, 'the original answers 404');
  t.equal((await get(`${server.url}/${id}_40_30.jpg`)).status, 404, 'a variant answers 404');
  t.equal((await requestToken(server.url, id, { secret: SECRET })).status, 200, 'a new token can be issued for the id');
});

/** Runs `iaas <args>` on `dataDir`, with an empty config folder and nothing else of this machine's environment. */
function runPurgeCli(args: string[], dataDir: string, configDir: string): Promise<CliRun> {
  return runCli(args, { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: dataDir, NODE_CONFIG_DIR: configDir, LOG_INFO: 'false' });
}

/** The `purged a batch of N` lines of a purge run. */
function batches(run: CliRun): number[] {
  return [...run.stdout.matchAll(/^purged a batch of (\d+)$/gm)].map((match) => Number(match[1]));
}

t.test('iaas purge --before deletes old variants in batches, rows and files, and keeps the originals', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const configDir = await mkdtemp(path.join(tmpdir(), 'iaas-purge-config-'));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));
  const id = unique('old');
  await upload(t, server, id);
  await renderVariants(t, server, id, 5);
  const files = await cachedFiles(server, id);
  t.equal(files.length, 5, 'five variant files are in DATA_DIR/cache');
  const keys = files.map((file) => file.split(path.sep).join('/'));
  for (const key of keys) t.ok(await server.server.store.getVariant(key), `${key} is in the render index`);

  const past = await runPurgeCli(['purge', '--before', '2000-01-01T00:00:00Z', '--batch', '2', '--pause-ms', '0'], server.dataDir, configDir);
  t.equal(past.code, 0, 'a purge before a date in the past exits 0');
  t.same(batches(past), [], 'and purges no batch');
  t.equal((await cachedFiles(server, id)).length, 5, 'every variant file stays');
  for (const key of keys) t.ok(await server.server.store.getVariant(key), `${key} stays in the render index`);

  const future = new Date(Date.now() + 60_000).toISOString();
  const started = Date.now();
  const purged = await runPurgeCli(['purge', '--before', future, '--batch', '2', '--pause-ms', '200'], server.dataDir, configDir);
  t.equal(purged.code, 0, 'a purge of everything rendered before now exits 0');
  t.same(batches(purged), [2, 2, 1], 'five variants with --batch 2 are purged in three batches');
  t.ok(Date.now() - started >= 400, 'the purge pauses between batches');
  t.same(await cachedFiles(server, id), [], 'no variant file is left');
  for (const key of keys) t.equal(await server.server.store.getVariant(key), null, `${key} is gone from the render index`);
  t.equal((await originalFiles(server, id)).length, 1, 'the original stays');

  const original = await get(`${server.url}/${id}.jpg`);
  t.equal(original.status, 200, 'the original is still served');
  await original.arrayBuffer();

  const bad = await runPurgeCli(['purge', '--before', 'yesterday'], server.dataDir, configDir);
  t.equal(bad.code, 2, 'a date that is not ISO is a usage error');
  const both = await runPurgeCli(['purge', '--before', future, '--id', id], server.dataDir, configDir);
  t.equal(both.code, 2, '--before with --id is a usage error');
  const zero = await runPurgeCli(['purge', '--before', future, '--batch', '0'], server.dataDir, configDir);
  t.equal(zero.code, 2, '--batch 0 is a usage error');
});

t.test('iaas purge --id drops every variant of one original and keeps it and other images', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const configDir = await mkdtemp(path.join(tmpdir(), 'iaas-purge-config-'));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));
  const id = unique('one');
  const other = unique('other');
  await upload(t, server, id);
  await upload(t, server, other);
  await renderVariants(t, server, id, 3);
  await renderVariants(t, server, other, 2);
  const keys = (await cachedFiles(server, id)).map((file) => file.split(path.sep).join('/'));
  t.equal(keys.length, 3, 'three variant files of the id are cached');

  const run = await runPurgeCli(['purge', '--id', id], server.dataDir, configDir);
  t.equal(run.code, 0, 'purge --id exits 0');
  t.match(run.stdout, /\b3\b/, 'it reports three purged variants');
  t.same(await cachedFiles(server, id), [], 'no variant file of the id is left');
  for (const key of keys) t.equal(await server.server.store.getVariant(key), null, `${key} is gone from the render index`);
  t.equal((await originalFiles(server, id)).length, 1, 'the original stays on disk');
  t.ok(await server.server.store.getOriginal(id), 'and in the index');
  t.equal((await cachedFiles(server, other)).length, 2, 'variants of another image stay');

  const original = await get(`${server.url}/${id}.jpg`);
  t.equal(original.status, 200, 'the original is still served');
  await original.arrayBuffer();

  const unknown = await runPurgeCli(['purge', '--id', unique('never')], server.dataDir, configDir);
  t.equal(unknown.code, 0, 'purging an id without variants exits 0');
});

t.test('a running server renders a variant again after iaas purge deleted it', async (t) => {
  const server = await startTestServer();
  t.teardown(() => server.stop());
  const configDir = await mkdtemp(path.join(tmpdir(), 'iaas-purge-config-'));
  t.teardown(() => rm(configDir, { recursive: true, force: true }));
  const id = unique('big');
  const answer = await uploadImage(server.url, id, photoJpeg(1200, 900));
  t.equal(answer.status, 200, 'the upload is stored');
  // A PNG of a photo this size is larger than the 1 MiB the server keeps in memory per file.
  const url = `${server.url}/${id}_1200_900.png`;
  const first = await get(url);
  t.equal(first.status, 200, 'the variant renders');
  t.ok((await first.arrayBuffer()).byteLength > 1024 * 1024, 'it is larger than 1 MiB');
  const hit = await eventually(async () => {
    const response = await get(url);
    await response.arrayBuffer();
    return response.headers.get('x-cache') === 'HIT';
  }, 20_000);
  t.ok(hit, 'the variant is cached and served as a hit');

  const run = await runPurgeCli(['purge', '--id', id], server.dataDir, configDir);
  t.equal(run.code, 0, 'purge --id exits 0');
  t.same(await cachedFiles(server, id), [], 'the cached file is gone');
  const after = await get(url);
  await after.arrayBuffer();
  t.equal(after.status, 200, 'the purged variant is rendered again');
});

/** The status of one request over its own connection, so the kernel may hand it to either worker. */
function freshStatus(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, agent: false, headers: { Connection: 'close', ...headers } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.setTimeout(30_000, () => request.destroy(new Error(`no answer from ${url}`)));
    request.on('error', reject);
    request.end();
  });
}

t.test('in a cluster, after DELETE every worker answers 404 for the original and its variants', async (t) => {
  const cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1', SECRET }, { timeoutMs: 60_000 });
  t.teardown(() => cluster.stop());
  const id = unique('cluster-del');
  const answer = await uploadImage(cluster.url, id, photoJpeg(320, 240), { secret: SECRET });
  t.equal(answer.status, 200, 'the upload is stored');
  // Both workers serve (and remember) the original and a variant.
  const deadline = Date.now() + 60_000;
  let rounds = 0;
  while ((cluster.servingPids().length < 2 || rounds < 10) && Date.now() < deadline) {
    await freshStatus(`${cluster.url}/${id}.jpg`);
    await freshStatus(`${cluster.url}/${id}_50_50.jpg`);
    rounds++;
  }
  t.equal(cluster.servingPids().length, 2, 'both workers served the image');
  t.equal(await freshStatus(`${cluster.url}/${id}`, 'DELETE', { 'X-Secret': SECRET }), 200, 'the delete succeeds');
  const statuses = new Set<number>();
  for (let i = 0; i < 20; i++) {
    statuses.add(await freshStatus(`${cluster.url}/${id}.jpg`));
    statuses.add(await freshStatus(`${cluster.url}/${id}_50_50.jpg`));
  }
  t.same([...statuses], [404], 'every request after the delete is 404, whichever worker answers');
});
