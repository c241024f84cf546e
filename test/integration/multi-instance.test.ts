/**
 * Two instances (separate data folders) on one PostgreSQL database and one S3
 * bucket with originals in S3: what one stores, the other serves.
 */
import t from 'tap';
import { probe } from '../../src/index.js';
import { originalKeyOf, variantKeyOf } from '../helpers/stored.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { startS3rver } from '../helpers/s3.js';
import { get, requestToken, uploadImage } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';
import { freshDatabase } from '../helpers/stores.js';
import { eventually } from '../helpers/timing.js';

const url = process.env.IAAS_TEST_DATABASE_URL;

if (url === undefined || url === '') {
  t.comment('multi-instance suite skipped: set IAAS_TEST_DATABASE_URL');
} else {
  const adminUrl = url;
  let a!: TestServer;
  let b!: TestServer;

  t.before(async () => {
    const database = await freshDatabase(adminUrl);
    t.teardown(() => database.drop());
    const s3 = await startS3rver({ bucket: unique('iaas-multi') });
    t.teardown(() => s3.stop());
    const shared = {
      database_url: database.url,
      'aws.bucket': s3.bucket,
      'aws.endpoint': s3.endpoint,
      'aws.access_key': 'S3RVER',
      'aws.secret_key': 'S3RVER',
      'aws.store_originals': true,
    };
    a = await startTestServer(shared);
    t.teardown(() => a.stop());
    b = await startTestServer(shared);
    t.teardown(() => b.stop());
  });

  t.test('the instances keep separate data folders', async (t) => {
    t.not(a.dataDir, b.dataDir);
    t.not(a.url, b.url);
    t.equal(a.server.store.kind, 'postgres');
    t.equal(a.server.originals.kind, 's3');
  });

  t.test('serves through B an upload made through A, and both redirect the cache hit to the same S3 key', async (t) => {
    const id = unique('shared');
    const bytes = photoJpeg(400, 300, 90, 21);
    const upload = await uploadImage(a.url, id, bytes);
    t.equal(upload.status, 200, 'uploaded through A');
    t.ok(await b.server.originals.exists((await originalKeyOf(b.server, id)) ?? ''), 'B sees the original in S3 right after the 200');

    const original = await get(`${b.url}/${id}.jpg`);
    t.equal(original.status, 200, 'B serves the original');
    t.ok(Buffer.from(await original.arrayBuffer()).equals(Buffer.from(bytes)), 'byte for byte');

    const miss = await get(`${b.url}/${id}_120_120.jpg`);
    t.equal(miss.status, 200, 'B renders the variant');
    t.equal(miss.headers.get('x-cache'), 'MISS');
    const rendered = new Uint8Array(await miss.arrayBuffer());
    const header = probe(rendered);
    t.same([header.width, header.height], [120, 90]);

    const key = await variantKeyOf(b.server, { id, width: 120, height: 120, fit: 'clip', quality: 'auto', blur: 0, format: 'jpeg' });
    t.ok(
      await eventually(async () => (await a.server.store.getVariant(key)) !== null && (await a.server.cache.exists(key))),
      'the variant stored by B is in the shared index and bucket',
    );

    const fromB = await get(`${b.url}/${id}_120_120.jpg`);
    const fromA = await get(`${a.url}/${id}_120_120.jpg`);
    await fromB.arrayBuffer();
    await fromA.arrayBuffer();
    t.equal(fromB.status, 303, 'B redirects the hit');
    t.equal(fromA.status, 303, 'A redirects the hit it never rendered');
    const location = fromB.headers.get('location');
    t.equal(fromA.headers.get('location'), location, 'both to the same key');
    t.equal(location, `${b.config.s3?.endpoint}/${b.config.s3?.bucket}/${key}`);
    t.equal(fromA.headers.get('cache-control'), 'max-age=86400');
    const target = await fetch(location ?? '');
    t.equal(target.status, 200, 'the key exists in the bucket');
    t.ok(Buffer.from(await target.arrayBuffer()).equals(Buffer.from(rendered)), 'holding the bytes B rendered');
  });

  t.test('shares tokens: an id requested through A is refused through B', async (t) => {
    const id = unique('token');
    t.equal((await requestToken(a.url, id)).status, 200);
    const again = await requestToken(b.url, id);
    t.equal(again.status, 403);
    t.equal(again.body.code, 'FORBIDDEN');
  });
}
