/**
 * S3 faults: s3rver behind an HTTP front that can answer 503, behind the TCP
 * fault proxy (unreachable, slow). With the render cache on S3 a miss is
 * still served; with originals on S3 an upload is never acknowledged before
 * S3 acknowledged the write.
 */
import t, { type Test } from 'tap';
import { originalKeyOf, originalObjects, variantKeyOf } from '../helpers/stored.js';
import { createS3Storage } from '../../src/storage/s3.js';
import type { ObjectStorage } from '../../src/storage/types.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startS3rver, S3RVER_CREDENTIALS } from '../helpers/s3.js';
import { assertAlive, crashMark } from '../helpers/crashes.js';
import { getBytes, issueToken, type Json, uploadImage } from '../helpers/http.js';
import { serve, type TestServer } from '../helpers/processes.js';
import { type S3Front, startS3Front } from '../helpers/stand-ins.js';
import { sqliteRows } from '../helpers/stores.js';
import { eventually } from '../helpers/timing.js';

let proxy!: FaultProxy;
let front!: S3Front;
/** The bucket seen directly, bypassing every fault. */
let direct!: ObjectStorage;
/** Render cache on S3, originals local. */
let cacheRel!: TestServer;
/** Render cache and originals on S3. */
let originalsRel!: TestServer;
const stored = new Map<string, { rel: TestServer; bytes: Uint8Array }>();

t.before(async () => {
  const s3 = await startS3rver({ bucket: unique('iaas-rel').toLowerCase() });
  t.teardown(() => s3.stop());
  front = await startS3Front(t, { port: s3.port }, 503);
  proxy = await startFaultProxy({ host: '127.0.0.1', port: front.port });
  t.teardown(() => proxy.stop());
  direct = createS3Storage({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey });
  const s3Settings = {
    'aws.bucket': s3.bucket,
    'aws.endpoint': `http://${proxy.host}:${proxy.port}`,
    'aws.access_key': S3RVER_CREDENTIALS.accessKeyId,
    'aws.secret_key': S3RVER_CREDENTIALS.secretAccessKey,
  };
  cacheRel = await serve(t, s3Settings, { captureLogs: true });
  originalsRel = await serve(t, { ...s3Settings, 'aws.store_originals': true }, { captureLogs: true });
});

function cacheKey(rel: TestServer, id: string, width: number, height: number): Promise<string> {
  return variantKeyOf(rel.server, { id, width, height, fit: 'clip', quality: 'auto', blur: 0, format: 'jpeg' });
}

/** A warning that caching `key` failed was logged. */
function loggedCachingFailure(rel: TestServer, key: string): boolean {
  return rel.logs.some((line: Json) => line.level === 'warn' && line.key === key);
}

async function uploadLocal(t: Test, seed: number): Promise<string> {
  const id = unique('s3cache');
  const bytes = photoJpeg(320, 240, 85, seed);
  t.equal((await uploadImage(cacheRel.url, id, bytes)).status, 200, 'the original is uploaded (local originals)');
  stored.set(id, { rel: cacheRel, bytes });
  return id;
}

/** With the fault on, a miss is served; caching it fails and is logged; no row without its object; back to normal, it caches. */
async function missDuringFault(t: Test, label: string, fault: () => void, heal: () => void, seed: number): Promise<void> {
  const mark = crashMark();
  const id = await uploadLocal(t, seed);
  const key = await cacheKey(cacheRel, id, 100, 100);
  fault();
  const miss = await getBytes(`${cacheRel.url}/${id}_100_100.jpg`);
  t.equal(miss.status, 200, `${label}: the miss is rendered and served with 200`);
  t.equal(miss.headers.get('content-type'), 'image/jpeg');
  t.equal(miss.headers.get('x-cache'), 'MISS');
  t.ok(miss.ms < 3_000, `${label}: served in ${miss.ms.toFixed(0)} ms, without waiting for S3`);
  t.ok(await eventually(() => loggedCachingFailure(cacheRel, key), 30_000, 100), `${label}: the skipped caching is logged (warn, with the key)`);
  t.notOk(await direct.exists(key), `${label}: no cache object in the bucket`);
  t.equal(await cacheRel.server.store.getVariant(key), null, `${label}: and no index row pointing at nothing`);
  const again = await getBytes(`${cacheRel.url}/${id}_100_100.jpg`);
  t.equal(again.status, 200, `${label}: asked again during the fault, rendered again (200)`);
  heal();
  // A later request caches normally: the stale attempt above may still be retrying, so give it time.
  t.ok(
    await eventually(async () => {
      const later = await getBytes(`${cacheRel.url}/${id}_100_100.jpg`);
      if (later.status === 303) return true;
      return later.status === 200 && (await eventually(() => direct.exists(key), 5_000, 100));
    }, 30_000, 200),
    `${label}: after healing, a later request stores the variant in the bucket`,
  );
  t.ok(await eventually(async () => (await cacheRel.server.store.getVariant(key)) !== null, 5_000), `${label}: and indexes it`);
  const hit = await getBytes(`${cacheRel.url}/${id}_100_100.jpg`);
  t.equal(hit.status, 303, `${label}: then it is a cache hit (303 to the bucket)`);
  t.equal(hit.headers.get('x-cache'), 'HIT');
  await assertAlive(t, cacheRel.url, mark);
}

t.test('with S3 unreachable (every connection reset), a miss is still served 200, caching is skipped and logged, and a later request caches normally', async (t) => {
  await missDuringFault(
    t,
    'unreachable',
    () => {
      proxy.set('reset');
      proxy.resetAll();
    },
    () => proxy.set('pass'),
    61,
  );
});

t.test('with S3 answering 503 to everything, a miss is still served 200, caching is skipped and logged, and a later request caches normally', async (t) => {
  await missDuringFault(
    t,
    'failing',
    () => {
      front.mode = 'fail';
    },
    () => {
      front.mode = 'pass';
    },
    62,
  );
  t.ok(front.failed > 0, `the front answered ${front.failed} S3 requests with 503`);
});

t.test('with S3 slow (every packet delayed 1.5 s), a miss is served without waiting, and cached once S3 answers', async (t) => {
  const mark = crashMark();
  const id = await uploadLocal(t, 63);
  const key = await cacheKey(cacheRel, id, 100, 100);
  proxy.set('delay', { delayMs: 1_500 });
  proxy.resetAll();
  const miss = await getBytes(`${cacheRel.url}/${id}_100_100.jpg`);
  t.equal(miss.status, 200, 'the miss is served with 200');
  t.ok(miss.ms < 1_500, `in ${miss.ms.toFixed(0)} ms, less than one S3 delay`);
  t.ok(await eventually(() => direct.exists(key), 20_000, 200), 'the slow write lands in the bucket');
  t.ok(await eventually(async () => (await cacheRel.server.store.getVariant(key)) !== null, 5_000), 'and is indexed after it');
  proxy.set('pass');
  await assertAlive(t, cacheRel.url, mark);
});

t.test('with originals on S3, an upload while S3 is unreachable or failing answers 503, stores nothing, and its token uploads once S3 is back', async (t) => {
  const mark = crashMark();
  for (const [label, fault] of [
    [
      'unreachable',
      () => {
        proxy.set('reset');
        proxy.resetAll();
      },
    ],
    [
      'failing with 503',
      () => {
        front.mode = 'fail';
      },
    ],
  ] as const) {
    const id = unique('s3orig');
    const bytes = photoJpeg(200, 150, 85, 70 + label.length);
    const tokenValue = await issueToken(originalsRel.url, id);
    fault();
    const answer = await uploadImage(originalsRel.url, id, bytes, { token: tokenValue });
    t.equal(answer.status, 503, `${label}: the upload answers 503`);
    t.equal(answer.body.code, 'UNAVAILABLE');
    t.ok(answer.ms < 30_000, `${label}: in ${answer.ms.toFixed(0)} ms`);
    t.equal(await originalsRel.server.store.getOriginal(id), null, `${label}: no originals row`);
    t.same(await originalObjects({ originals: direct }, id), [], `${label}: no object in the bucket (listed past the fault)`);
    proxy.set('pass');
    front.mode = 'pass';
    const retry = await uploadImage(originalsRel.url, id, bytes, { token: tokenValue });
    t.equal(retry.status, 200, `${label}: the same token uploads once S3 is back`);
    t.ok(await direct.exists((await originalKeyOf(originalsRel.server, id)) ?? ''), `${label}: the object is in the bucket as soon as the 200 is`);
    stored.set(id, { rel: originalsRel, bytes });
  }
  await assertAlive(t, originalsRel.url, mark);
});

t.test('with originals on S3 and S3 slow, an upload answers 200 only once S3 acknowledged the write', async (t) => {
  const mark = crashMark();
  const id = unique('s3slow');
  const bytes = photoJpeg(200, 150, 85, 80);
  const tokenValue = await issueToken(originalsRel.url, id);
  proxy.set('delay', { delayMs: 700 });
  proxy.resetAll();
  const answer = await uploadImage(originalsRel.url, id, bytes, { token: tokenValue });
  const key = (await originalKeyOf(originalsRel.server, id)) ?? '';
  t.equal(answer.status, 200, `the upload answers 200 (after ${answer.ms.toFixed(0)} ms)`);
  t.ok(answer.ms >= 1_400, 'no sooner than a PUT and its acknowledgement through the delay (2 x 700 ms)');
  t.ok(await direct.exists(key), 'the object is in the bucket when the 200 arrives');
  proxy.set('pass');
  stored.set(id, { rel: originalsRel, bytes });
  await assertAlive(t, originalsRel.url, mark);
});

t.test('after every S3 fault, each upload that got a 200 reads back byte for byte', async (t) => {
  proxy.set('pass');
  front.mode = 'pass';
  for (const [id, { rel, bytes }] of stored) {
    const back = await getBytes(`${rel.url}/${id}.jpg`);
    t.ok(back.status === 200 && back.body.equals(Buffer.from(bytes)), `${id} reads back byte for byte`);
    const rows = sqliteRows<{ used: number; uploaded_at: string | null }>(rel.config.sqlitePath, 'SELECT used, uploaded_at FROM tokens WHERE id = ?', id);
    t.ok(rows.length === 1 && rows[0]?.used === 1 && rows[0].uploaded_at !== null, `${id}: its one token is used and completed`);
  }
});
