/**
 * Local storage faults: a full disk under DATA_DIR (a 3 MB tmpfs), and a
 * failure between an object write and its index insert, proved by
 * construction with a store and storages that fail on purpose.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Renders } from '../../src/images/renders.js';
import { originalObjects, variantKeyOf } from '../helpers/stored.js';
import { createImageService } from '../../src/images/service.js';
import { createLogger } from '../../src/log.js';
import { parseImageRequest } from '../../src/options/parse.js';
import type { ObjectStorage } from '../../src/storage/types.js';
import type { Store } from '../../src/store/types.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { assertAlive, crashMark } from '../helpers/crashes.js';
import { getBytes, issueToken, requestToken, uploadImage } from '../helpers/http.js';
import { serve, settled, type TestServer } from '../helpers/processes.js';
import { filesIn, sqliteRows } from '../helpers/stores.js';
import { eventually, sleep } from '../helpers/timing.js';

/** Fills the file system holding `dir` until ENOSPC; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = path.join(dir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (const size of [256 * 1024, 4 * 1024, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

t.test('with the data folder\'s disk full, an upload answers 503, its temp file goes, and cached hits keep being served', async (t) => {
  const root = await mkdtemp(path.join(tmpdir(), 'iaas-rel-disk-'));
  const mount = path.join(root, 'data');
  await mkdir(mount);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount], { stdio: 'pipe' });
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    t.comment(`disk-full test skipped: cannot mount a tmpfs here (${(error as Error).message.split('\n')[0]})`);
    return;
  }
  const mark = crashMark();
  const rel = await serve(t, { data_dir: mount });
  t.teardown(async () => {
    await rel.stop();
    try {
      execFileSync('umount', [mount], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mount], { stdio: 'pipe' });
    }
    await rm(root, { recursive: true, force: true });
  });

  const keptId = unique('kept');
  const kept = photoJpeg(160, 120, 85, 91);
  t.equal((await uploadImage(rel.url, keptId, kept)).status, 200, 'an original is stored before the disk fills');
  t.equal((await getBytes(`${rel.url}/${keptId}_64_64.jpg`)).status, 200);
  t.ok(await eventually(async () => (await getBytes(`${rel.url}/${keptId}_64_64.jpg`)).headers.get('x-cache') === 'HIT', 3_000), 'and one variant is cached');
  const small = { id: unique('full-small'), bytes: photoJpeg(64, 48, 85, 92) };
  const large = { id: unique('full-large'), bytes: photoJpeg(640, 480, 95, 93) };
  const tokens = { small: await issueToken(rel.url, small.id), large: await issueToken(rel.url, large.id) };

  const filler = fillDisk(mount);
  t.comment(`filled the 3 MB tmpfs (filler ${(Number(execFileSync('stat', ['-c', '%s', filler], { encoding: 'utf8' })) / 1024).toFixed(0)} KB)`);

  for (const [label, item, tokenValue] of [
    ['a small upload', small, tokens.small],
    ['a 640x480 upload', large, tokens.large],
  ] as const) {
    const answer = await uploadImage(rel.url, item.id, item.bytes, { token: tokenValue, timeoutMs: 15_000 }).catch((error: Error) => ({ status: `no answer (${error.name})`, body: {} as Record<string, unknown>, ms: 0 }));
    t.equal(answer.status, 503, `${label}: 503`);
    t.equal(answer.body.code, 'UNAVAILABLE', `${label}: UNAVAILABLE`);
    t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), `${label}: no temp file left (${filesIn(rel.config.tempDir).join(', ')})`);
    t.equal(filesIn(rel.config.originalsDir).filter((name) => name.startsWith('.tmp-') || name === item.id).length, 0, `${label}: nothing half-written in the originals folder`);
  }
  const hit = await getBytes(`${rel.url}/${keptId}_64_64.jpg`);
  t.equal(hit.status, 200, 'the cached hit is served');
  t.equal(hit.headers.get('x-cache'), 'HIT');
  const original = await getBytes(`${rel.url}/${keptId}.jpg`);
  t.ok(original.status === 200 && original.body.equals(Buffer.from(kept)), 'the stored original is served byte for byte');
  const miss = await getBytes(`${rel.url}/${keptId}_48_48.jpg`);
  t.equal(miss.status, 200, 'a new size is still rendered and served (its caching fails quietly)');
  const issued = await requestToken(rel.url, unique('full-token'));
  t.ok(issued.status === 200 || issued.status === 503, `POST /token answers 200 or 503, never 500 (got ${issued.status})`);
  await assertAlive(t, rel.url, mark);

  await rm(filler);
  await sleep(100);
  for (const [label, item, tokenValue] of [
    ['the small upload', small, tokens.small],
    ['the 640x480 upload', large, tokens.large],
  ] as const) {
    const retry = await uploadImage(rel.url, item.id, item.bytes, { token: tokenValue });
    t.equal(retry.status, 200, `space freed: ${label} succeeds with the same token`);
    const back = await getBytes(`${rel.url}/${item.id}.jpg`);
    t.ok(back.body.equals(Buffer.from(item.bytes)), `${label} reads back byte for byte`);
  }
  await assertAlive(t, rel.url, mark);
});

/** A store whose chosen methods throw, as a process dying at that point would leave things. */
function failing(store: Store, methods: (keyof Store)[]): Store & { calls: string[] } {
  const calls: string[] = [];
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'calls') return calls;
      const value = Reflect.get(target, name, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(name));
        if (methods.includes(name as keyof Store)) return Promise.reject(new Error(`simulated crash in ${String(name)}`));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as Store & { calls: string[] };
}

/** A storage whose writes throw. */
function failingWrites(storage: ObjectStorage): ObjectStorage {
  const fail = () => Promise.reject(new Error('simulated crash in the object write'));
  return { ...storage, kind: storage.kind, put: fail, putFile: fail, get: storage.get.bind(storage), exists: storage.exists.bind(storage), delete: storage.delete.bind(storage), list: storage.list.bind(storage), localPath: storage.localPath.bind(storage), publicUrl: storage.publicUrl.bind(storage) };
}

/** Every originals row and every images row has its object. */
async function everyRowHasItsObject(t: Test, rel: TestServer): Promise<void> {
  const originals = sqliteRows<{ id: string; storage_key: string }>(rel.config.sqlitePath, 'SELECT id, storage_key FROM originals');
  const images = sqliteRows<{ key: string }>(rel.config.sqlitePath, 'SELECT key FROM images');
  const missing: string[] = [];
  for (const row of originals) if (!(await rel.server.originals.exists(row.storage_key))) missing.push(`original ${row.id}`);
  for (const row of images) if (!(await rel.server.cache.exists(row.key))) missing.push(`variant ${row.key}`);
  t.same(missing, [], `all ${originals.length} originals rows and ${images.length} images rows have their objects`);
}

t.test('a crash between the object write and the index insert leaves at most an orphan object, never a row pointing at nothing', async (t) => {
  const mark = crashMark();
  const rel = await serve(t, {});
  const log = createLogger({ debug: false, info: false, warn: false, error: false });
  const parts = { config: rel.config, originals: rel.server.originals, cache: rel.server.cache, renders: new Renders(rel.server.pool, rel.server.admitter), log };
  const folder = await mkdtemp(path.join(tmpdir(), 'iaas-rel-crash-'));
  t.teardown(() => rm(folder, { recursive: true, force: true }));

  // Upload: the original is written, then insertOriginal dies.
  const id = unique('crash-upload');
  const bytes = photoJpeg(120, 90, 85, 94);
  const file = path.join(folder, 'upload.jpg');
  await writeFile(file, bytes);
  const tokenValue = await issueToken(rel.url, id);
  const dying = failing(rel.server.store, ['insertOriginal']);
  const service = createImageService({ ...parts, store: dying });
  await t.rejects(service.upload({ id, token: tokenValue, receive: async () => ({ file }) }), 'the upload fails at insertOriginal');
  t.ok(dying.calls.includes('insertOriginal'), 'it got as far as the index insert');
  t.comment(`orphan original object: ${(await originalObjects(rel.server, id)).length > 0 ? 'present (allowed)' : 'absent'}`);
  t.equal(await rel.server.store.getOriginal(id), null, 'no originals row');
  t.equal((await getBytes(`${rel.url}/${id}.jpg`)).status, 404, 'the id answers 404, not a broken original');
  t.equal((await uploadImage(rel.url, id, bytes, { token: tokenValue })).status, 200, 'the token was freed: the real server then stores it');

  // Upload: the object write itself dies: insertOriginal is never reached.
  const id2 = unique('crash-write');
  const token2 = await issueToken(rel.url, id2);
  const writeDies = failing(rel.server.store, []);
  const service2 = createImageService({ ...parts, store: writeDies, originals: failingWrites(rel.server.originals) });
  await t.rejects(service2.upload({ id: id2, token: token2, receive: async () => ({ file }) }), 'the upload fails at the object write');
  t.notOk(writeDies.calls.includes('insertOriginal'), 'no index insert was attempted');
  t.equal(await rel.server.store.getOriginal(id2), null, 'no originals row');
  t.equal((await uploadImage(rel.url, id2, bytes, { token: token2 })).status, 200, 'the token was freed');

  // Render: the variant is written, then insertVariant dies.
  const renderStore = failing(rel.server.store, ['insertVariant']);
  const service3 = createImageService({ ...parts, store: renderStore });
  const request = parseImageRequest(`/${id}_50_50.jpg`);
  const reply = await service3.get(request, { method: 'GET', accept: '', freshnessToken: '', query: '', client: 'test' });
  t.equal(reply.type, 'bytes', 'the miss is rendered');
  if (reply.type === 'bytes') await reply.after?.();
  t.ok(renderStore.calls.includes('insertVariant'), 'the index insert was attempted after the object write');
  const variant = await variantKeyOf(rel.server, { id, width: 50, height: 50, fit: 'clip', quality: 'auto', blur: 0, format: 'jpeg' });
  t.comment(`orphan cache object: ${(await rel.server.cache.exists(variant)) ? 'present (allowed)' : 'absent'}`);
  t.equal(await rel.server.store.getVariant(variant), null, 'no images row');

  // Render: the cache write dies: no index row is attempted.
  const cacheStore = failing(rel.server.store, []);
  const service4 = createImageService({ ...parts, store: cacheStore, cache: failingWrites(rel.server.cache) });
  const reply4 = await service4.get(parseImageRequest(`/${id}_40_40.jpg`), { method: 'GET', accept: '', freshnessToken: '', query: '', client: 'test' });
  if (reply4.type === 'bytes') await reply4.after?.();
  t.notOk(cacheStore.calls.includes('insertVariant'), 'no images row is inserted when the object write failed');

  const served = await getBytes(`${rel.url}/${id}_50_50.jpg`);
  t.equal(served.status, 200, 'the real server serves the size (rendering it again: it was never indexed)');
  await settled(rel.server); // it is stored and indexed after the response
  await everyRowHasItsObject(t, rel);
  await assertAlive(t, rel.url, mark);
});
