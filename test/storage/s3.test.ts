import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { createS3Storage } from '../../src/storage/s3.js';
import { createStorage } from '../../src/storage/index.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { S3RVER_CREDENTIALS, startS3rver } from '../helpers/s3.js';
import { storageContract } from './contract.js';
import { rejectionCode } from '../helpers/codes.js';

const credentials = { accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey };

t.test('the S3 backend keeps the storage contract against s3rver', async (t) => {
  storageContract(t, async () => {
    const server = await startS3rver();
    const storage = createStorage({ kind: 's3', ...credentials, region: S3RVER_CREDENTIALS.region, endpoint: server.endpoint, bucket: server.bucket });
    return { storage, cleanup: () => server.stop() };
  });
});

t.test('builds public URLs under cacheHost, the endpoint or the AWS bucket host', async (t) => {
  const key = 'cache/photo/720x720-clip-qauto-b0.jpg';
  t.equal(createS3Storage({ bucket: 'b', cacheHost: 'https://cdn.example.com/' }).publicUrl(key), `https://cdn.example.com/${key}`);
  t.equal(createS3Storage({ bucket: 'b', endpoint: 'http://127.0.0.1:9000' }).publicUrl(key), `http://127.0.0.1:9000/b/${key}`);
  t.equal(createS3Storage({ bucket: 'b', region: 'eu-west-3' }).publicUrl(key), `https://b.s3.eu-west-3.amazonaws.com/${key}`);
  t.equal(createS3Storage({ bucket: 'b' }).localPath(key), null);
  t.equal(await rejectionCode(() => createS3Storage({ bucket: 'b' }).publicUrl('../x')), 'BAD_REQUEST');
});

t.test('rejects an invalid key with BAD_REQUEST before any request', async (t) => {
  // Nothing listens on port 9: a request would fail with UNAVAILABLE instead.
  const storage = createS3Storage({ bucket: 'b', endpoint: 'http://127.0.0.1:9', ...credentials, timeoutMs: 200 });
  t.equal(await rejectionCode(() => storage.put('../x', Buffer.from('x'), 'image/jpeg')), 'BAD_REQUEST');
  t.equal(await rejectionCode(() => storage.delete(['ok', 'a/../b'])), 'BAD_REQUEST');
});

t.test('fails with UNAVAILABLE when nothing listens at the endpoint', async (t) => {
  const storage = createS3Storage({ bucket: 'b', endpoint: 'http://127.0.0.1:9', ...credentials, timeoutMs: 500 });
  t.equal(await rejectionCode(() => storage.get('originals/photo')), 'UNAVAILABLE', 'get');
  t.equal(await rejectionCode(() => storage.exists('originals/photo')), 'UNAVAILABLE', 'exists');
  t.equal(await rejectionCode(() => storage.delete(['originals/photo'])), 'UNAVAILABLE', 'delete');
});

t.test('fails with UNAVAILABLE when the bucket does not exist', async (t) => {
  const server = await startS3rver();
  t.teardown(() => server.stop());
  const storage = createS3Storage({ bucket: 'no-such-bucket', endpoint: server.endpoint, ...credentials });
  t.equal(await rejectionCode(() => storage.put('originals/photo', Buffer.from('x'), 'image/jpeg')), 'UNAVAILABLE', 'put');
  t.equal(await rejectionCode(() => storage.get('originals/photo')), 'UNAVAILABLE', 'get');
});

t.test('fails fast with UNAVAILABLE through network faults and recovers when they clear', async (t) => {
  const server = await startS3rver();
  t.teardown(() => server.stop());
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port });
  t.teardown(() => proxy.stop());
  const storage = createS3Storage({ bucket: server.bucket, endpoint: `http://127.0.0.1:${proxy.port}`, ...credentials, timeoutMs: 500 });
  const bytes = randomBytes(10_000);
  const folder = await mkdtemp(join(tmpdir(), 'iaas-s3-faults-'));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  const file = join(folder, 'upload.bin');
  await writeFile(file, bytes);

  await storage.put('originals/before', bytes, 'image/jpeg');
  t.pass('a put succeeds through the proxy, leaving a keep-alive connection open');

  proxy.set('blackhole');
  let started = Date.now();
  t.equal(await rejectionCode(() => storage.put('originals/blackholed', bytes, 'image/jpeg')), 'UNAVAILABLE', 'put into a blackhole');
  t.ok(Date.now() - started < 3000, `a blackholed put gives up in bounded time (${Date.now() - started} ms)`);
  started = Date.now();
  t.equal(await rejectionCode(() => storage.get('originals/before')), 'UNAVAILABLE', 'get from a blackhole');
  t.ok(Date.now() - started < 3000, 'a blackholed get gives up in bounded time');
  started = Date.now();
  t.equal(await rejectionCode(() => storage.putFile('originals/blackholed', file, 'image/jpeg')), 'UNAVAILABLE', 'putFile into a blackhole');
  t.ok(Date.now() - started < 3000, 'a blackholed putFile gives up in bounded time, retries included');

  proxy.set('reset');
  t.equal(await rejectionCode(() => storage.put('originals/reset', bytes, 'image/jpeg')), 'UNAVAILABLE', 'put on reset connections');
  t.equal(await rejectionCode(() => storage.exists('originals/before')), 'UNAVAILABLE', 'exists on reset connections');
  t.equal(await rejectionCode(() => storage.putFile('originals/reset', file, 'image/jpeg')), 'UNAVAILABLE', 'putFile on reset connections');

  proxy.set('pass');
  await storage.put('originals/after', bytes, 'image/jpeg');
  const back = await storage.get('originals/after');
  t.ok(back !== null && Buffer.from(back).equals(bytes), 'puts and gets work again once the network is back');
  await storage.putFile('originals/after-file', file, 'image/jpeg');
  t.equal(await storage.exists('originals/after-file'), true, 'putFile works again too');
});

t.test('survives a delayed network within the timeout', async (t) => {
  const server = await startS3rver();
  t.teardown(() => server.stop());
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port });
  t.teardown(() => proxy.stop());
  const storage = createS3Storage({ bucket: server.bucket, endpoint: `http://127.0.0.1:${proxy.port}`, ...credentials, timeoutMs: 1000 });
  proxy.set('delay', { delayMs: 100 });
  await storage.put('originals/slow', Buffer.from('slow but fine'), 'image/jpeg');
  t.equal(Buffer.from((await storage.get('originals/slow')) ?? []).toString(), 'slow but fine');
});
