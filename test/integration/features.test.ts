/**
 * The image features over HTTP, on the embedded defaults (SQLite, local
 * folders): gravity and focal points (upload, PATCH), animation, GET /{id}.json
 * with its placeholders (computed at upload, or on first request for an
 * original recorded without them), and pre-rendering after an upload. Every
 * fixture is generated; assertions are on statuses, codes, headers and decoded
 * pixels.
 */
import { decode as decodeBlurhash } from 'blurhash';
import t, { type Test } from 'tap';
import { imageInfo, ImageInfoError } from '../../src/client/index.js';
import { probe } from '../../src/index.js';
import { createLogger } from '../../src/log.js';
import { NO_EVENTS, type ImageEvents } from '../../src/images/types.js';
import { alphaPng, animatedGif, photoJpeg, subjectPng, unique } from '../helpers/fixtures.js';
import { decode, subjectPixels } from '../helpers/pixels.js';
import { bytesOf, errorOf, get, type Json, uploadImage } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';
import { variantKeyOf } from '../helpers/stored.js';

const SECRET = 'focus-secret';

async function upload(ts: TestServer, id: string, bytes: Uint8Array, ext: string, query = ''): Promise<Json> {
  const answer = await uploadImage(ts.url, id, bytes, { ext, type: `image/${ext}`, filename: `${id}.${ext}`, secret: SECRET, ...(query ? { query } : {}) });
  if (answer.status !== 200) throw new Error(`upload of ${id} answered ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** PATCH /{id}; a null secret sends no X-Secret. */
function patch(ts: TestServer, id: string, body: unknown, secret: string | null = SECRET): Promise<Response> {
  return fetch(`${ts.url}/${id}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json', ...(secret !== null ? { 'X-Secret': secret } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Waits until the server's events report `count` pre-renders, or fails after `timeoutMs`. */
function prerenderEvents(): { events: ImageEvents; outcomes: string[]; reached(count: number, timeoutMs?: number): Promise<void> } {
  const outcomes: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  return {
    outcomes,
    events: {
      ...NO_EVENTS,
      prerender(outcome) {
        outcomes.push(outcome);
        for (const waiter of waiters.filter((w) => outcomes.length >= w.count)) waiter.resolve();
      },
    },
    reached(count, timeoutMs = 30_000) {
      if (outcomes.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${outcomes.length} of ${count} pre-renders ended`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

const toLinear = (value: number) => {
  const v = value / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};
const toSrgb = (value: number) => 255 * (value <= 0.0031308 ? value * 12.92 : 1.055 * value ** (1 / 2.4) - 0.055);

/** The mean colour in linear light, as 0..255 sRGB (a BlurHash's DC term); transparent as white. */
function linearMean(pixels: ArrayLike<number>, channels: number): number[] {
  const sum = [0, 0, 0];
  for (let i = 0; i < pixels.length; i += channels) {
    const alpha = channels === 4 ? (pixels[i + 3] ?? 255) / 255 : 1;
    for (let c = 0; c < 3; c++) sum[c] = (sum[c] ?? 0) + toLinear((pixels[i + c] ?? 0) * alpha + 255 * (1 - alpha));
  }
  return sum.map((value) => toSrgb(value / (pixels.length / channels)));
}

function meanOfImage(bytes: Uint8Array): number[] {
  const image = decode(bytes);
  const pixels: number[] = [];
  for (let y = 0; y < image.height; y++) for (let x = 0; x < image.width; x++) pixels.push(...image.at(x, y));
  return linearMean(pixels, image.channels);
}

let main!: TestServer;
t.before(async () => {
  main = await startTestServer({ secret: SECRET, 'animation.max_frames': 10 });
});
t.teardown(() => main?.stop());

t.test('a crop renders by the gravity asked for, and the gravity is in the cache key', async (t) => {
  const id = unique('gravity');
  await upload(main, id, subjectPng(400, 200, 330, 80, 40), 'png');
  const url = (query: string) => `${main.url}/${id}_100_100.png?fit=crop${query}`;
  const centre = await get(url(''));
  t.equal(centre.headers.get('x-cache'), 'MISS');
  t.equal(subjectPixels(await bytesOf(centre)), 0, 'centre cuts the subject off-centre');
  const attention = await get(url('&gravity=attention'));
  t.equal(attention.headers.get('x-cache'), 'MISS', 'another gravity is another variant, not the centred one from the cache');
  t.ok(subjectPixels(await bytesOf(attention)) > 300, 'attention keeps the subject');
  const east = await get(url('&gravity=east'));
  t.equal(east.headers.get('x-cache'), 'MISS');
  t.ok(subjectPixels(await bytesOf(east)) > 300, 'east keeps the subject at the east edge');
  const centreKey = await variantKeyOf(main.server, { id, width: 100, height: 100, fit: 'crop', quality: 'auto', blur: 0, format: 'png' });
  const eastKey = await variantKeyOf(main.server, { id, width: 100, height: 100, fit: 'crop', gravity: 'east', quality: 'auto', blur: 0, format: 'png' });
  t.not(centreKey, eastKey, 'the keys differ');
  t.ok(await eventuallyStored(main, eastKey), 'the east render is stored under its own key');
  const again = await get(url('&gravity=east'));
  t.equal(again.headers.get('x-cache'), 'HIT', 'and found there');
  await again.arrayBuffer();
  const explicit = await get(url('&gravity=centre'));
  t.equal(explicit.headers.get('x-cache'), 'HIT', 'gravity=centre is the default, one variant');
  await explicit.arrayBuffer();
});

async function eventuallyStored(ts: TestServer, key: string): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if ((await ts.server.store.getVariant(key)) !== null) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

t.test('an unknown gravity or frames value is 400 BAD_OPTION', async (t) => {
  const id = unique('badgravity');
  await upload(main, id, photoJpeg(64, 48), 'jpg');
  for (const query of ['fit=crop&gravity=middle', 'fit=crop&gravity=', 'fit=crop&gravity=north&gravity=south', 'frames=0', 'frames=two']) {
    const answer = await get(`${main.url}/${id}_10_10.jpg?${query}`);
    t.equal(answer.status, 400, query);
    t.equal((await errorOf(answer)).code, 'BAD_OPTION', query);
  }
});

t.test('an upload focus keeps its point in crops, and PATCH moves it and drops the crop renders', async (t) => {
  const id = unique('focus');
  // The subject sits near the bottom left corner of a square; the crops are wide strips.
  const source = subjectPng(400, 400, 8, 352, 40);
  await upload(main, id, source, 'png', 'focus=28,372');
  const info = (await (await get(`${main.url}/${id}.json`)).json()) as Json;
  t.same(info.focus, { x: 28, y: 372 }, 'the focus is stored with the original');
  const strip = `${main.url}/${id}_100_40.png?fit=crop`;
  const first = await get(strip);
  t.equal(first.headers.get('x-cache'), 'MISS');
  t.ok(subjectPixels(await bytesOf(first)) > 0, 'without a gravity, a crop keeps the focal point');
  const clip = `${main.url}/${id}_50_50.png`;
  await (await get(clip)).arrayBuffer();
  const cropKey = await variantKeyOf(main.server, { id, width: 100, height: 40, fit: 'crop', gravity: 'focus', focus: { x: 28, y: 372 }, quality: 'auto', blur: 0, format: 'png' });
  const clipKey = await variantKeyOf(main.server, { id, width: 50, height: 50, fit: 'clip', quality: 'auto', blur: 0, format: 'png' });
  t.ok(await eventuallyStored(main, cropKey), 'the crop is stored');
  t.ok(await eventuallyStored(main, clipKey), 'the clip is stored');
  const hit = await get(strip);
  t.equal(hit.headers.get('x-cache'), 'HIT');
  await hit.arrayBuffer();

  const moved = await patch(main, id, { focus: { x: 380, y: 20 } });
  t.equal(moved.status, 200, 'PATCH answers 200');
  const body = (await moved.json()) as Json;
  t.same(body.focus, { x: 380, y: 20 }, 'with the new point');
  t.ok((body.variants as number) >= 1, 'and the crop renders it dropped');
  t.equal(await main.server.store.getVariant(cropKey), null, 'the crop render is gone from the index');
  t.not(await main.server.store.getVariant(clipKey), null, 'a render that crops nothing stays');
  const second = await get(strip);
  t.equal(second.headers.get('x-cache'), 'MISS', 'the next crop renders anew');
  t.equal(subjectPixels(await bytesOf(second)), 0, 'around the new point, away from the subject');
  t.same(((await (await get(`${main.url}/${id}.json`)).json()) as Json).focus, { x: 380, y: 20 }, 'the JSON shows the new point');

  const removed = await patch(main, id, { focus: null });
  t.equal(removed.status, 200, 'focus null removes the point');
  t.equal(((await removed.json()) as Json).focus, null);
  const centred = await get(strip);
  t.equal(subjectPixels(await bytesOf(centred)), 0, 'crops are centred again');
});

t.test('PATCH refuses a missing secret, a bad body, a point outside the image and an unknown id', async (t) => {
  const id = unique('patchbad');
  await upload(main, id, photoJpeg(64, 48), 'jpg');
  const cases: [string, unknown, string | null, number, string][] = [
    ['no secret', { focus: { x: 1, y: 1 } }, null, 401, 'UNAUTHORIZED'],
    ['a wrong secret', { focus: { x: 1, y: 1 } }, 'nope', 401, 'UNAUTHORIZED'],
    ['x outside the image', { focus: { x: 64, y: 1 } }, SECRET, 400, 'BAD_OPTION'],
    ['a negative y', { focus: { x: 1, y: -1 } }, SECRET, 400, 'BAD_OPTION'],
    ['another field', { focus: null, width: 3 }, SECRET, 400, 'BAD_OPTION'],
    ['no focus field', {}, SECRET, 400, 'BAD_OPTION'],
    ['not JSON', 'focus', SECRET, 400, 'BAD_REQUEST'],
  ];
  for (const [label, body, secret, status, code] of cases) {
    const answer = await patch(main, id, body, secret);
    t.equal(answer.status, status, label);
    t.equal((await errorOf(answer)).code, code, label);
  }
  const unknown = await patch(main, unique('nobody'), { focus: null });
  t.equal(unknown.status, 404, 'an unknown id');
  t.equal((await errorOf(unknown)).code, 'NOT_FOUND');
  const refused = await uploadImage(main.url, unique('outside'), photoJpeg(64, 48), { secret: SECRET, query: 'focus=64,10' });
  t.equal(refused.status, 400, 'an upload focus outside the image');
  t.equal(refused.body.code, 'BAD_OPTION');
});

t.test('a .gif upload is served as the original and renders animated to .webp and .gif', async (t) => {
  const id = unique('anim');
  const delays = [120, 240, 360, 480];
  const gif = animatedGif(4, 40, { delays, loop: 2 });
  const body = await upload(main, id, gif, 'gif');
  t.same([body.original_width, body.original_height], [40, 40]);
  const original = await get(`${main.url}/${id}.gif`);
  t.equal(original.headers.get('content-type'), 'image/gif');
  t.equal(probe(await bytesOf(original)).pages, 4, 'the original keeps every frame');
  const webp = probe(await bytesOf(await get(`${main.url}/${id}_20_20.webp`)));
  t.same([webp.format, webp.pages, webp.width, webp.height], ['webp', 4, 20, 20], 'a .webp keeps the 4 frames, each fitted');
  t.same(webp.delays, delays, 'and their delays');
  t.equal(webp.loop, 2, 'and the loop count');
  const asGif = probe(await bytesOf(await get(`${main.url}/${id}_20_20.gif?fit=crop`)));
  t.same([asGif.format, asGif.pages], ['gif', 4], 'a .gif keeps them too');
  const still = probe(await bytesOf(await get(`${main.url}/${id}_20_20.webp?frames=1`)));
  t.equal(still.pages, 1, '?frames=1 forces a still');
  const two = probe(await bytesOf(await get(`${main.url}/${id}_20_20.webp?frames=2`)));
  t.equal(two.pages, 2, '?frames=2 keeps two');
  const jpeg = probe(await bytesOf(await get(`${main.url}/${id}_20_20.jpg`)));
  t.same([jpeg.format, jpeg.pages], ['jpeg', 1], 'a JPEG takes the first frame');
  const stillOriginal = probe(await bytesOf(await get(`${main.url}/${id}.gif?frames=1`)));
  t.equal(stillOriginal.pages, 1, 'the original with ?frames=1 is rendered as a still');
});

t.test('with the default animation.max_frames an animation renders its first frame only', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  const id = unique('animdefault');
  const answer = await uploadImage(ts.url, id, animatedGif(3, 30), { ext: 'gif', type: 'image/gif' });
  t.equal(answer.status, 200, 'POST /{id}.gif is accepted');
  const webp = probe(await bytesOf(await get(`${ts.url}/${id}_20_20.webp`)));
  t.equal(webp.pages, 1, 'one frame');
});

t.test('a GIF whose frames total more than the pixel limit is refused at upload, before decoding', async (t) => {
  // 30 frames of 20x20 = 12,000 pixels against a limit of 10,000.
  const ts = await startTestServer({ 'constraints.max_input': 0.01 });
  t.teardown(() => ts.stop());
  const answer = await uploadImage(ts.url, unique('toomany'), animatedGif(30, 20), { ext: 'gif', type: 'image/gif' });
  t.equal(answer.status, 413);
  t.equal(answer.body.code, 'TOO_MANY_PIXELS');
});

/** Checks every field of GET /{id}.json and its placeholders against the uploaded bytes. */
async function checkInfo(t: Test, ts: TestServer, id: string, source: Uint8Array, expected: { width: number; height: number; format: string; frames: number }, mean: number[]): Promise<void> {
  const answer = await get(`${ts.url}/${id}.json`);
  t.equal(answer.status, 200);
  t.equal(answer.headers.get('content-type'), 'application/json');
  t.match(answer.headers.get('cache-control') ?? '', /max-age=\d{6,}/, 'a long Cache-Control');
  const etag = answer.headers.get('etag') ?? '';
  t.match(etag, /^"[^"]+"$/, 'an ETag');
  const info = (await answer.json()) as Json;
  t.same(Object.keys(info).sort(), ['blurhash', 'bytes', 'dominant', 'focus', 'format', 'frames', 'height', 'id', 'lqip', 'uploaded_at', 'width'], 'every field');
  t.match(info, { id, width: expected.width, height: expected.height, format: expected.format, frames: expected.frames, focus: null });
  t.equal(info.bytes, (await ts.server.store.getOriginal(id))?.bytes, 'the stored bytes');
  t.ok(!Number.isNaN(Date.parse(info.uploaded_at as string)), 'uploaded_at is a date');
  t.match(info.dominant, /^#[0-9a-f]{6}$/);
  const decoded = decodeBlurhash(info.blurhash as string, 32, 32);
  const hashMean = linearMean(decoded, 4);
  for (let c = 0; c < 3; c++) t.ok(Math.abs((hashMean[c] ?? 0) - (mean[c] ?? 0)) <= 10, `the BlurHash's mean, channel ${c}, is within 10/255 of the original's`);
  const lqip = info.lqip as string;
  t.ok(lqip.startsWith('data:image/webp;base64,'), 'the LQIP is a WebP data URI');
  t.ok(lqip.length <= 1024, `of at most 1 KB (${lqip.length})`);
  const lqipHeader = probe(new Uint8Array(Buffer.from(lqip.split(',')[1] ?? '', 'base64')));
  t.ok(Math.max(lqipHeader.width, lqipHeader.height) <= 32, 'that decodes to at most 32 px');
  const revalidated = await get(`${ts.url}/${id}.json`, { 'If-None-Match': etag });
  t.equal(revalidated.status, 304, 'If-None-Match with the ETag is a 304');
  await revalidated.arrayBuffer();
  void source;
}

t.test('GET /{id}.json answers every field for a JPEG, a PNG with alpha and an animated GIF', async (t) => {
  const jpeg = photoJpeg(480, 360, 90, 8);
  const png = alphaPng();
  const gif = animatedGif(3, 40);
  const cases: [string, Uint8Array, string, { width: number; height: number; format: string; frames: number }, number[]][] = [
    ['jpeg', jpeg, 'jpg', { width: 480, height: 360, format: 'jpeg', frames: 1 }, meanOfImage(jpeg)],
    ['png', png, 'png', { width: 40, height: 40, format: 'png', frames: 1 }, meanOfImage(png)],
    ['gif', gif, 'gif', { width: 40, height: 40, format: 'gif', frames: 3 }, [255, 0, 0]],
  ];
  for (const [label, bytes, ext, expected, mean] of cases) {
    await t.test(label, async (t) => {
      const id = unique(`info-${label}`);
      await upload(main, id, bytes, ext);
      await checkInfo(t, main, id, bytes, expected, mean);
    });
  }
  const viaClient = await imageInfo(main.url, (await upload(main, unique('client'), gif, 'gif')).id as string);
  t.match(viaClient, { width: 40, height: 40, frames: 3, format: 'gif' }, 'imageInfo reads the same JSON');
  await t.rejects(imageInfo(main.url, unique('nobody')), new ImageInfoError(404, 'NOT_FOUND'), 'imageInfo rejects an unknown id with its status and code');
  const missing = await get(`${main.url}/${unique('nobody')}.json`);
  t.equal(missing.status, 404, 'an unknown id is 404');
  t.equal((await errorOf(missing)).code, 'NOT_FOUND');
});

t.test('an original recorded without placeholders (before the migration) gets them on its first GET /{id}.json, and keeps them', async (t) => {
  const id = unique('before');
  const jpeg = photoJpeg(300, 200, 90, 9);
  // What migration 6 leaves of an original uploaded before it: a record without frames or summary.
  const key = `${id}.0123456789ab`;
  await main.server.originals.put(key, jpeg, 'image/jpeg');
  await main.server.store.insertOriginal({ id, format: 'jpeg', width: 300, height: 200, bytes: jpeg.byteLength, storageKey: key, uploadedAt: new Date(), generation: '0123456789ab', jpegQuality: null, copies: null });
  t.equal((await main.server.store.getOriginal(id))?.summary, null, 'no summary before');
  await checkInfo(t, main, id, jpeg, { width: 300, height: 200, format: 'jpeg', frames: 1 }, meanOfImage(jpeg));
  const after = await main.server.store.getOriginal(id);
  t.ok(after?.summary?.blurhash, 'the summary is stored with the record');
  t.equal(after?.frames, 1, 'and the frame count');
});

t.test('with metadata.at_upload off an upload computes no summary, and the first GET /{id}.json does', async (t) => {
  const ts = await startTestServer({ 'metadata.at_upload': false });
  t.teardown(() => ts.stop());
  const id = unique('lazy');
  const jpeg = photoJpeg(200, 100, 90, 3);
  t.equal((await uploadImage(ts.url, id, jpeg)).status, 200);
  t.equal((await ts.server.store.getOriginal(id))?.summary, null, 'nothing computed at upload');
  await checkInfo(t, ts, id, jpeg, { width: 200, height: 100, format: 'jpeg', frames: 1 }, meanOfImage(jpeg));
});

t.test('pre-rendering: each listed variant becomes a cache hit without a client request, and none starts before the 200', async (t) => {
  const lines: Json[] = [];
  const log = createLogger({ debug: false, info: true, warn: true, error: true }, { destination: { write: (line: string) => void lines.push(JSON.parse(line) as Json) } });
  const watch = prerenderEvents();
  const ts = await startTestServer({ prerender: '_40_40.webp?fit=crop,_64_64.jpg' }, {}, { log, events: watch.events });
  t.teardown(() => ts.stop());
  const id = unique('pre');
  const answer = await uploadImage(ts.url, id, photoJpeg(320, 240, 90, 6));
  t.equal(answer.status, 200);
  await watch.reached(2);
  t.same(watch.outcomes.sort(), ['stored', 'stored'], 'both were rendered and stored');
  const answered = lines.findIndex((line) => line.message === 'request' && line.method === 'POST' && line.status === 200);
  const started = lines.findIndex((line) => line.message === 'prerender started' && line.id === id);
  t.ok(answered !== -1 && started !== -1, 'both are logged');
  t.ok(answered < started, 'the upload was answered before any pre-render started');
  for (const suffix of ['_40_40.webp?fit=crop', '_64_64.jpg']) {
    const hit = await get(`${ts.url}/${id}${suffix}`);
    t.equal(hit.status, 200, suffix);
    t.equal(hit.headers.get('x-cache'), 'HIT', `${suffix} is a cache hit on its first request`);
    await hit.arrayBuffer();
  }
});

t.test('pre-renders queued at a clean shutdown finish before it completes', async (t) => {
  const watch = prerenderEvents();
  const ts = await startTestServer({ prerender: '_48_48.webp,_24_24.png?fit=crop' }, {}, { events: watch.events });
  t.teardown(() => ts.stop());
  const id = unique('shutdown');
  t.equal((await uploadImage(ts.url, id, photoJpeg(320, 240, 90, 7))).status, 200);
  const keys = [
    await variantKeyOf(ts.server, { id, width: 48, height: 48, fit: 'clip', quality: 'auto', blur: 0, format: 'webp' }),
    await variantKeyOf(ts.server, { id, width: 24, height: 24, fit: 'crop', quality: 'auto', blur: 0, format: 'png' }),
  ];
  // At once: the drain waits for what is in flight, pre-renders included.
  t.equal(await ts.server.close(), true, 'the drain finished within the grace period');
  t.equal(watch.outcomes.length, 2, 'both pre-renders ended before the shutdown did');
  for (const key of keys) t.ok(await ts.server.cache.exists(key), `${key} is in the cache`);
});

t.test('an upload whose whole body arrived while its token was being checked is read, not lost', async (t) => {
  const ts = await startTestServer();
  t.teardown(() => ts.stop());
  // A slow token check (a remote PostgreSQL): the body is all in by the time it is read.
  const store = ts.server.store as { consumeToken: (...args: never[]) => Promise<boolean> };
  const consume = store.consumeToken.bind(store);
  store.consumeToken = async (...args: never[]) => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    return consume(...args);
  };
  const answer = await uploadImage(ts.url, unique('slowtoken'), photoJpeg(120, 90));
  t.equal(answer.status, 200, JSON.stringify(answer.body));
});
