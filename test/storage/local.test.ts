import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import t, { type Test } from 'tap';
import { createLocalStorage } from '../../src/storage/local.js';
import { createStorage } from '../../src/storage/index.js';
import { storageContract } from './contract.js';
import { rejectionCode } from '../helpers/codes.js';

async function tempRoot(t: Test): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'iaas-local-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** Every file below `folder`, recursively, relative to it. */
async function filesBelow(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1));
}

t.test('the local backend keeps the storage contract', async (t) => {
  storageContract(t, async () => {
    const root = await mkdtemp(join(tmpdir(), 'iaas-local-'));
    return { storage: createLocalStorage(root), cleanup: () => rm(root, { recursive: true, force: true }) };
  });
});

t.test('rejects a key that climbs out of the folder with BAD_REQUEST', async (t) => {
  const storage = createLocalStorage(await tempRoot(t));
  for (const key of ['../x', 'a/../../b', '..', 'originals/..', './x']) {
    t.equal(await rejectionCode(() => storage.put(key, Buffer.from('x'), 'image/jpeg')), 'BAD_REQUEST', `put ${key}`);
    t.equal(await rejectionCode(() => storage.get(key)), 'BAD_REQUEST', `get ${key}`);
  }
});

t.test('rejects absolute, empty, hidden and control-character keys with BAD_REQUEST', async (t) => {
  const storage = createLocalStorage(await tempRoot(t));
  const keys = ['/abs', '/etc/passwd', '', 'a//b', 'a/', '.hidden', 'a/.tmp-x', 'nul\0byte', 'back\\slash', 'sp ace', `${'a'.repeat(202)}`];
  for (const key of keys) {
    t.equal(await rejectionCode(() => storage.exists(key)), 'BAD_REQUEST', JSON.stringify(key));
  }
  t.equal(await rejectionCode(() => storage.localPath('../x')), 'BAD_REQUEST', 'localPath validates too');
  t.equal(await rejectionCode(() => storage.delete(['originals/ok', '../x'])), 'BAD_REQUEST', 'delete validates every key');
});

t.test('gives the absolute path of a key inside the folder and no public URL', async (t) => {
  const root = await tempRoot(t);
  const storage = createStorage({ kind: 'local', rootDir: root });
  const path = storage.localPath('cache/photo/720x720-clip-qauto-b0.jpg');
  t.ok(path !== null && isAbsolute(path), 'absolute');
  t.equal(path, join(root, 'cache', 'photo', '720x720-clip-qauto-b0.jpg'));
  t.equal(storage.publicUrl('originals/photo'), null);
  t.equal(storage.kind, 'local');
});

t.test('leaves no temp files behind after puts', async (t) => {
  const root = await tempRoot(t);
  const storage = createLocalStorage(root);
  const source = join(root, 'source.bin');
  await writeFile(source, Buffer.from('from a file'));
  await Promise.all([
    storage.put('originals/photo', Buffer.from('one'), 'image/jpeg'),
    storage.put('originals/photo', Buffer.from('two'), 'image/jpeg'),
    storage.put('cache/photo/a.jpg', Buffer.from('three'), 'image/jpeg'),
    storage.putFile('cache/photo/b.jpg', source, 'image/jpeg'),
  ]);
  t.same((await filesBelow(root)).sort(), ['cache/photo/a.jpg', 'cache/photo/b.jpg', 'originals/photo', 'source.bin']);
});

t.test('fails with UNAVAILABLE when the folder cannot be created because a file is in the way', async (t) => {
  const parent = await tempRoot(t);
  const blocker = join(parent, 'not-a-folder');
  await writeFile(blocker, 'x');
  const storage = createLocalStorage(join(blocker, 'root'));
  t.equal(await rejectionCode(() => storage.put('originals/photo', Buffer.from('x'), 'image/jpeg')), 'UNAVAILABLE');
  t.same(await filesBelow(parent), ['not-a-folder'], 'nothing else was written');
});

t.test('fails with UNAVAILABLE and removes its temp file when the final rename fails', async (t) => {
  const root = await tempRoot(t);
  const storage = createLocalStorage(root);
  // A non-empty folder where the object should go makes the rename fail after the temp file is written.
  await mkdir(join(root, 'originals', 'photo'), { recursive: true });
  await writeFile(join(root, 'originals', 'photo', 'inside'), 'x');
  t.equal(await rejectionCode(() => storage.put('originals/photo', Buffer.from('new'), 'image/jpeg')), 'UNAVAILABLE', 'put');
  const source = join(root, 'source.bin');
  await writeFile(source, 'from a file');
  t.equal(await rejectionCode(() => storage.putFile('originals/photo', source, 'image/jpeg')), 'UNAVAILABLE', 'putFile');
  t.same((await filesBelow(root)).sort(), ['originals/photo/inside', 'source.bin'], 'no temp file and the source is kept');
});

t.test('fails with UNAVAILABLE when the source file of putFile does not exist, leaving no temp file', async (t) => {
  const root = await tempRoot(t);
  const storage = createLocalStorage(root);
  t.equal(await rejectionCode(() => storage.putFile('originals/photo', join(root, 'missing.bin'), 'image/jpeg')), 'UNAVAILABLE');
  t.same(await filesBelow(root), []);
});

t.test('fails with UNAVAILABLE in a read-only folder', { skip: process.getuid?.() === 0 ? 'root ignores permissions' : false }, async (t) => {
  const root = await tempRoot(t);
  await mkdir(join(root, 'originals'), { mode: 0o555 });
  const storage = createLocalStorage(root);
  t.equal(await rejectionCode(() => storage.put('originals/photo', Buffer.from('x'), 'image/jpeg')), 'UNAVAILABLE');
  t.same(await filesBelow(root), []);
});
