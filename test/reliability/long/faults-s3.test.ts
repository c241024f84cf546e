/**
 * S3 blackholed (connections accepted, nothing ever answered): every request
 * waits for the S3 client's own timeouts, which is too long for npm test.
 */
import t from 'tap';
import { variantKeyOf } from '../../helpers/stored.js';
import { createS3Storage } from '../../../src/storage/s3.js';
import { photoJpeg, unique } from '../../helpers/fixtures.js';
import { startFaultProxy } from '../../helpers/fault-proxy.js';
import { startS3rver, S3RVER_CREDENTIALS } from '../../helpers/s3.js';
import { assertAlive, crashMark } from '../../helpers/crashes.js';
import { getBytes, issueToken, type Json, uploadImage } from '../../helpers/http.js';
import { serve } from '../../helpers/processes.js';
import { eventually } from '../../helpers/timing.js';
import { runLong, SKIPPED } from './gate.js';

if (!runLong()) {
  t.comment(SKIPPED);
} else {
  t.test('with S3 blackholed, a miss is served at once and its caching is given up and logged; an upload to S3 originals answers 503 in bounded time; both recover', async (t) => {
    const mark = crashMark();
    const s3 = await startS3rver({ bucket: unique('iaas-rel-long').toLowerCase() });
    t.teardown(() => s3.stop());
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: s3.port });
    t.teardown(() => proxy.stop());
    const direct = createS3Storage({ bucket: s3.bucket, endpoint: s3.endpoint, accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey });
    const settings = {
      'aws.bucket': s3.bucket,
      'aws.endpoint': `http://${proxy.host}:${proxy.port}`,
      'aws.access_key': S3RVER_CREDENTIALS.accessKeyId,
      'aws.secret_key': S3RVER_CREDENTIALS.secretAccessKey,
      shutdown_grace_ms: 60_000,
    };
    const cacheRel = await serve(t, settings, { captureLogs: true });
    const originalsRel = await serve(t, { ...settings, 'aws.store_originals': true }, { captureLogs: true });

    const id = unique('blackhole');
    const bytes = photoJpeg(320, 240, 85, 101);
    t.equal((await uploadImage(cacheRel.url, id, bytes)).status, 200);
    const key = await variantKeyOf(cacheRel.server, { id, width: 100, height: 100, fit: 'clip', quality: 'auto', blur: 0, format: 'jpeg' });
    const orphanId = unique('blackhole-up');
    const orphanBytes = photoJpeg(200, 150, 85, 102);
    const orphanToken = await issueToken(originalsRel.url, orphanId);

    proxy.set('blackhole');
    proxy.resetAll();
    const miss = await getBytes(`${cacheRel.url}/${id}_100_100.jpg`);
    t.equal(miss.status, 200, `the miss is served with 200 in ${miss.ms.toFixed(0)} ms`);
    t.ok(miss.ms < 3_000, 'without waiting for S3');
    const uploadStarted = performance.now();
    const refused = await uploadImage(originalsRel.url, orphanId, orphanBytes, { token: orphanToken, timeoutMs: 120_000 });
    const uploadMs = performance.now() - uploadStarted;
    t.equal(refused.status, 503, `the upload to S3 originals answers 503 after ${(uploadMs / 1000).toFixed(1)} s`);
    t.equal(refused.body.code, 'UNAVAILABLE');
    t.ok(uploadMs < 25_000, 'within 25 s: two attempts of the 10 s S3 timeout');
    t.ok(await eventually(() => cacheRel.logs.some((line: Json) => line.level === 'warn' && line.key === key), 60_000, 250), 'the abandoned caching is logged with its key');
    t.equal(await cacheRel.server.store.getVariant(key), null, 'no images row for the variant');
    t.equal(await originalsRel.server.store.getOriginal(orphanId), null, 'no originals row for the refused upload');

    proxy.set('pass');
    t.ok(await eventually(async () => (await getBytes(`${cacheRel.url}/${id}_100_100.jpg`)).status === 303 || (await direct.exists(key)), 30_000, 500), 'back to pass, the variant is cached');
    const retry = await uploadImage(originalsRel.url, orphanId, orphanBytes, { token: orphanToken });
    t.equal(retry.status, 200, 'the refused upload succeeds with the same token');
    const back = await getBytes(`${originalsRel.url}/${orphanId}.jpg`);
    t.ok(back.body.equals(Buffer.from(orphanBytes)), 'and reads back byte for byte');
    await assertAlive(t, cacheRel.url, mark);
  });
}
