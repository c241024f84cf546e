/**
 * The behaviour every ObjectStorage backend must share, run against each of
 * them (local folder, s3rver) so the rest of iaas can treat them alike.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { ObjectStorage } from '../../src/storage/types.js';

/** A backend under test and how to dispose of it. */
export interface StorageUnderTest {
  storage: ObjectStorage;
  cleanup(): Promise<void>;
}

function same(actual: Uint8Array | null, expected: Uint8Array): boolean {
  return actual !== null && Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected);
}

/** Registers the contract's subtests on `t`, each with a fresh backend from `make`. */
export function storageContract(t: Test, make: () => Promise<StorageUnderTest>): void {
  async function fresh(t: Test): Promise<ObjectStorage> {
    const { storage, cleanup } = await make();
    t.teardown(cleanup);
    return storage;
  }

  t.test('returns byte-identical data after a put, for small and 3 MB objects', async (t) => {
    const storage = await fresh(t);
    const small = randomBytes(1000);
    const large = randomBytes(3 * 1024 * 1024);
    await storage.put('originals/small', small, 'image/jpeg');
    await storage.put('originals/large', large, 'image/png');
    t.ok(same(await storage.get('originals/small'), small), 'small object round trips');
    t.ok(same(await storage.get('originals/large'), large), '3 MB object round trips');
  });

  t.test('stores an empty object as zero bytes rather than as missing', async (t) => {
    const storage = await fresh(t);
    await storage.put('originals/empty', new Uint8Array(0), 'application/octet-stream');
    t.equal((await storage.get('originals/empty'))?.byteLength, 0);
    t.equal(await storage.exists('originals/empty'), true);
  });

  t.test('uploads a file from disk and leaves the source file in place', async (t) => {
    const storage = await fresh(t);
    const folder = await mkdtemp(join(tmpdir(), 'iaas-contract-'));
    t.teardown(() => rm(folder, { recursive: true, force: true }));
    const source = join(folder, 'upload.bin');
    const bytes = randomBytes(2 * 1024 * 1024 + 17);
    await writeFile(source, bytes);
    await storage.putFile('originals/from-file', source, 'image/jpeg');
    t.ok(same(await storage.get('originals/from-file'), bytes), 'file content round trips');
    t.equal((await stat(source)).size, bytes.length, 'the source file is untouched');
  });

  t.test('overwrites an existing key with the new bytes', async (t) => {
    const storage = await fresh(t);
    await storage.put('originals/photo', Buffer.from('first version, longer than the second'), 'image/jpeg');
    await storage.put('originals/photo', Buffer.from('second'), 'image/jpeg');
    t.ok(same(await storage.get('originals/photo'), Buffer.from('second')));
  });

  t.test('reports whether a key exists', async (t) => {
    const storage = await fresh(t);
    t.equal(await storage.exists('originals/photo'), false, 'absent before the put');
    await storage.put('originals/photo', Buffer.from('x'), 'image/jpeg');
    t.equal(await storage.exists('originals/photo'), true, 'present after the put');
    t.equal(await storage.exists('originals'), false, 'a key prefix is not an object');
  });

  t.test('returns null for a key that was never stored', async (t) => {
    const storage = await fresh(t);
    t.equal(await storage.get('originals/nothing-here'), null);
    t.equal(await storage.get('cache/nothing/deeper/still.jpg'), null);
  });

  t.test('deletes present keys and ignores missing ones', async (t) => {
    const storage = await fresh(t);
    await storage.put('cache/photo/100x100.jpg', Buffer.from('a'), 'image/jpeg');
    await storage.put('cache/photo/200x200.jpg', Buffer.from('b'), 'image/jpeg');
    await storage.put('originals/photo', Buffer.from('c'), 'image/jpeg');
    await storage.delete(['cache/photo/100x100.jpg', 'cache/photo/never-stored.jpg', 'cache/photo/200x200.jpg']);
    t.equal(await storage.get('cache/photo/100x100.jpg'), null);
    t.equal(await storage.exists('cache/photo/200x200.jpg'), false);
    t.equal(await storage.exists('originals/photo'), true, 'other keys stay');
    await storage.delete(['cache/photo/100x100.jpg']);
    await storage.delete([]);
    t.pass('deleting missing keys and an empty list succeeds');
  });

  t.test('lists the keys that start with a prefix, in order, within a limit', async (t) => {
    const storage = await fresh(t);
    for (const key of ['cache/ab/1.jpg', 'cache/ab/g1/2.jpg', 'cache/abc/3.jpg', 'cache/b/4.jpg', 'originals/ab.g1', 'originals/ab', 'originals/abc']) {
      await storage.put(key, Buffer.from(key), 'image/jpeg');
    }
    t.same(await storage.list('cache/ab/'), ['cache/ab/1.jpg', 'cache/ab/g1/2.jpg'], 'a folder and what is below it');
    t.same(await storage.list('cache/ab'), ['cache/ab/1.jpg', 'cache/ab/g1/2.jpg', 'cache/abc/3.jpg'], 'a prefix, not only a folder');
    t.same(await storage.list('originals/ab.'), ['originals/ab.g1']);
    t.same(await storage.list('originals/ab', 2), ['originals/ab', 'originals/ab.g1'], 'at most the limit');
    t.same(await storage.list('nothing/'), []);
  });

  t.test('deletes more keys than fit in one batch', async (t) => {
    const storage = await fresh(t);
    const keys = Array.from({ length: 1005 }, (_, i) => `cache/many/${i}.jpg`);
    await storage.put('cache/many/0.jpg', Buffer.from('first'), 'image/jpeg');
    await storage.put('cache/many/1004.jpg', Buffer.from('last'), 'image/jpeg');
    await storage.delete(keys);
    t.equal(await storage.exists('cache/many/0.jpg'), false, 'in the first batch');
    t.equal(await storage.exists('cache/many/1004.jpg'), false, 'in the second batch');
  });

  t.test('keeps keys in nested folders apart', async (t) => {
    const storage = await fresh(t);
    const keys = ['originals/photo', 'cache/photo/720x720-clip-qauto-b0.jpg', 'cache/photo/720x720-clip-qauto-b0.webp', 'a/b/c/d/e'];
    for (const key of keys) await storage.put(key, Buffer.from(key), 'application/octet-stream');
    for (const key of keys) t.ok(same(await storage.get(key), Buffer.from(key)), key);
  });

  t.test('reports local paths or public URLs, never both', async (t) => {
    const storage = await fresh(t);
    const local = storage.localPath('originals/photo');
    const url = storage.publicUrl('originals/photo');
    t.ok((local === null) !== (url === null), 'exactly one of them');
    t.equal(storage.kind, local === null ? 's3' : 'local');
  });
}
