/**
 * Uploads under contention and clients that walk away: one token raced by
 * fifty uploads, and aborts mid-upload, mid-processing and mid-render.
 */
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { originalKeyOf, originalObjects, variantKeyOf } from '../helpers/stored.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { assertAlive, crashMark } from '../helpers/crashes.js';
import { getBytes, issueToken, uploadImage } from '../helpers/http.js';
import { runLimited, tally } from '../helpers/measure.js';
import { serve, settled, type TestServer } from '../helpers/processes.js';
import { filesIn, tree } from '../helpers/stores.js';
import { eventually, sleep, stays } from '../helpers/timing.js';
import { head, multipart, writeAll } from '../helpers/wire.js';

const good = photoJpeg(64, 48, 85, 3);

let rel!: TestServer;

t.before(async () => {
  rel = await serve(t, {
    'constraints.max_width': 4000,
    'constraints.max_height': 4000,
    // Large uploads are downscaled and re-encoded: processing takes long enough to abort during it.
    'constraints.max_on_disk': 1,
    blur_sigma: 5,
  });
});


async function raceOneToken(t: Test, target: TestServer, round: number): Promise<void> {
  const id = unique(`race${round}`);
  const tokenValue = await issueToken(target.url, id);
  const images = Array.from({ length: 50 }, (_, i) => photoJpeg(48, 32, 80, 100 + i));
  const answers = await Promise.all(images.map((bytes) => uploadImage(target.url, id, bytes, { token: tokenValue })));
  const statuses = answers.map((answer) => answer.status);
  t.same(tally(statuses), { 200: 1, 403: 49 }, `round ${round}: exactly one 200, the other 49 answer 403`);
  t.ok(
    answers.every((answer) => answer.status === 200 || answer.body.code === 'BAD_TOKEN'),
    'every refusal is BAD_TOKEN',
  );
  const winner = statuses.indexOf(200);
  const key = await originalKeyOf(target.server, id);
  const stored = key === undefined ? null : await target.server.originals.get(key);
  t.ok(stored !== null && winner >= 0 && Buffer.from(stored).equals(Buffer.from(images[winner] ?? [])), "the one stored original is the winner's bytes");
  t.ok((await target.server.store.getOriginal(id)) !== null, 'one originals row');
  t.equal((await uploadImage(target.url, id, good, { token: tokenValue })).status, 403, 'the token is spent afterwards');
  const back = await getBytes(`${target.url}/${id}.jpg`);
  t.ok(back.body.equals(Buffer.from(images[winner] ?? [])), 'GET /{id}.jpg serves exactly what the winner sent');
}

t.test('fifty parallel uploads with one token: exactly one 200 and one stored original, the others 403', async (t) => {
  const mark = crashMark();
  for (let round = 1; round <= 3; round++) await raceOneToken(t, rel, round);
  t.same(filesIn(rel.config.tempDir), [], 'no temp file left');
  await assertAlive(t, rel.url, mark);
});

/** A raw connection to the server, and whether any answer byte has arrived on it. */
async function openRaw(port: number): Promise<{ socket: Socket; answered: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let answered = false;
  socket.on('data', () => {
    answered = true;
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, answered: () => answered };
}

/** Opens an upload, sends `sendBytes` of its body, waits for `until`, then vanishes. */
async function abandonUpload(id: string, tokenValue: string, bytes: Uint8Array, sendBytes: number | 'all', until: () => boolean | Promise<boolean>): Promise<boolean> {
  const { body, contentType } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: bytes }]);
  const { socket, answered } = await openRaw(rel.port);
  await writeAll(socket, head('POST', `/${id}.jpg`, { 'X-Token': tokenValue, 'Content-Type': contentType, 'Content-Length': body.byteLength }));
  await writeAll(socket, sendBytes === 'all' ? body : body.subarray(0, sendBytes));
  const reached = await eventually(until, 5_000, 2);
  socket.resetAndDestroy();
  return reached && !answered();
}

t.test('a client aborting mid-upload leaves no temp file and nothing stored, and its token uploads afterwards', async (t) => {
  const mark = crashMark();
  const bytes = photoJpeg(800, 600, 95, 21);
  for (const fraction of [0.1, 0.5, 0.9]) {
    const id = unique('abort-body');
    const tokenValue = await issueToken(rel.url, id);
    const { body } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: bytes }]);
    const beforeAbort = await abandonUpload(id, tokenValue, bytes, Math.floor(body.byteLength * fraction), () => filesIn(rel.config.tempDir).length > 0);
    t.ok(beforeAbort, `${fraction * 100}% of the body sent: the temp file existed, no answer yet, then the client vanished`);
    t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), 'the temp file is removed');
    t.ok(await stays(async () => (await originalObjects(rel.server, id)).length === 0 && (await rel.server.store.getOriginal(id)) === null, 1_000), 'nothing is stored, for a second after');
    t.equal((await uploadImage(rel.url, id, good, { token: tokenValue })).status, 200, 'the same token then uploads with 200');
  }
  await assertAlive(t, rel.url, mark);
});

t.test('a client aborting while its upload is processed gets nothing written after the abort, and its token is freed', async (t) => {
  const mark = crashMark();
  const big = photoJpeg(2400, 1800, 92, 22);
  t.comment(`a ${(big.byteLength / 1024).toFixed(0)} KB 4.3-megapixel JPEG, re-encoded at 1 megapixel when stored`);
  const id = unique('abort-processing');
  const tokenValue = await issueToken(rel.url, id);
  // The whole body is sent; the client vanishes once the render pool is busy with it.
  const beforeAnswer = await abandonUpload(id, tokenValue, big, 'all', () => rel.server.pool.stats().running > 0);
  t.ok(beforeAnswer, 'the client vanished while the pool prepared the original, before any answer');
  t.ok(await eventually(() => rel.server.pool.stats().running === 0, 10_000), 'the preparation finished');
  t.ok(
    await stays(async () => (await originalObjects(rel.server, id)).length === 0 && (await rel.server.store.getOriginal(id)) === null, 2_000),
    'no original object and no row appear, for 2 s after',
  );
  t.same(tree(rel.config.originalsDir).filter((entry) => entry.includes(id) || path.basename(entry).startsWith('.tmp-')), [], 'not even a half-written file');
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), 'the temp file is removed');
  t.equal((await uploadImage(rel.url, id, good, { token: tokenValue })).status, 200, 'the same token then uploads with 200');
  await assertAlive(t, rel.url, mark);
});

t.test('a client aborting mid-render leaves no cache object and no index row, and the pool keeps serving', async (t) => {
  const mark = crashMark();
  const id = unique('abort-render');
  t.equal((await uploadImage(rel.url, id, photoJpeg(400, 300, 90, 23))).status, 200);
  // A slow render: a small photo upscaled to 2000x2000 and blurred (sigma 5).
  const width = 2000;
  const height = 2000;
  const key = await variantKeyOf(rel.server, { id, width, height, fit: 'clip', quality: 'auto', blur: 5, format: 'jpeg' });
  const { socket, answered } = await openRaw(rel.port);
  socket.write(head('GET', `/${id}_${width}_${height}.jpg?blur=true`, {}));
  t.ok(await eventually(() => rel.server.pool.stats().running > 0, 5_000, 2), 'the render is running');
  socket.resetAndDestroy();
  t.notOk(answered(), 'aborted before any answer');
  t.ok(await eventually(() => rel.server.pool.stats().running === 0, 20_000), 'the render finished in the pool');
  t.ok(
    await stays(async () => !(await rel.server.cache.exists(key)) && (await rel.server.store.getVariant(key)) === null, 2_000),
    'no cache object and no index row appear, for 2 s after the render ended',
  );
  t.same(filesIn(path.join(rel.config.cacheDir, id)), [], 'the cache folder holds nothing of it');
  const next = await getBytes(`${rel.url}/${id}_64_64.jpg`);
  t.equal(next.status, 200, 'the next render is served');
  await settled(rel.server); // its caching runs after the response
  await assertAlive(t, rel.url, mark);
});

t.test('twenty uploads abandoned at random points leave no temp files, and every token still works', async (t) => {
  const mark = crashMark();
  const bytes = photoJpeg(600, 400, 90, 24);
  const { body } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: bytes }]);
  const ids = Array.from({ length: 20 }, () => unique('scatter'));
  const tokens = await Promise.all(ids.map((id) => issueToken(rel.url, id)));
  let seed = 7;
  const next = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  await Promise.all(
    ids.map(async (id, i) => {
      const socket = connect(rel.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const whole = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: bytes }]);
      await writeAll(socket, head('POST', `/${id}.jpg`, { 'X-Token': tokens[i] ?? '', 'Content-Type': whole.contentType, 'Content-Length': whole.body.byteLength }));
      await writeAll(socket, whole.body.subarray(0, Math.floor(next() * body.byteLength)));
      await sleep(Math.floor(next() * 300));
      socket.resetAndDestroy();
    }),
  );
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 3_000), 'DATA_DIR/tmp is empty');
  // Two at a time: the pool (one thread, one queued) would rightly shed more with 503.
  const retries = await runLimited(ids.length, 2, (i) => uploadImage(rel.url, ids[i] ?? '', good, { token: tokens[i] ?? '' }));
  t.same(tally(retries.map((answer) => answer.status)), { 200: 20 }, 'every token then uploads with 200');
  await assertAlive(t, rel.url, mark);
});
