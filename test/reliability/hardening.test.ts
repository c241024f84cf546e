/**
 * Regressions of the black-box attack (issue 9), each reproducing what the
 * attacker did: refusals answered while the body still arrives, a DELETE
 * racing renders, AVIF as a denial of service, the frame limit, tokens, the
 * multipart limits, and the low-severity findings (what uWS' parser refuses
 * before any route runs is in parser.test.ts).
 */
import t from 'tap';
import { acceptsExplicitly } from '../../src/options/accept.js';
import { prepareOriginal, probe } from '../../src/index.js';
import { animatedGif, BLUE, jpegWithPrivateMetadata, manyPageTiff, photoJpeg, pngWithPrivateText, RED, solid, unique } from '../helpers/fixtures.js';
import { decode, near } from '../helpers/pixels.js';
import { assertAlive, crashMark } from '../helpers/crashes.js';
import { getBytes, issueToken, jsonOf, requestToken, uploadImage } from '../helpers/http.js';
import { serve, type TestServer } from '../helpers/processes.js';
import { filesIn } from '../helpers/stores.js';
import { eventually } from '../helpers/timing.js';
import { head, multipart, wire, writeAll } from '../helpers/wire.js';

const SECRET = 'hardening-secret';
const LIMIT = 400_000;
/** A body over the limit but within the bound the server drains (twice the limit): a real JPEG followed by padding. */
const oversized = Buffer.concat([Buffer.from(photoJpeg(200, 150, 90, 3)), Buffer.alloc(1.5 * LIMIT, 0x41)]);
const good = photoJpeg(160, 120, 90, 4);
/** Under the limit, but large enough to be still on its way when a refusal is answered. */
const streaming = Buffer.concat([Buffer.from(good), Buffer.alloc(0.8 * LIMIT, 0x42)]);

let rel!: TestServer;

t.before(async () => {
  rel = await serve(t, { max_upload_bytes: LIMIT, blur_sigma: 6 });
});

/** POST /{id}.jpg through fetch with any body and token; the status and the JSON code as fetch reads them. */
async function post(path: string, tokenValue: string, form: FormData | Uint8Array, contentType?: string): Promise<{ status: number | string; code: unknown }> {
  try {
    const response = await fetch(`${rel.url}${path}`, {
      method: 'POST',
      headers: { 'X-Token': tokenValue, ...(contentType ? { 'Content-Type': contentType } : {}) },
      body: form,
      signal: AbortSignal.timeout(15_000),
    });
    return { status: response.status, code: (await jsonOf(response)).code };
  } catch (error) {
    return { status: `fetch failed: ${(error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`, code: undefined };
  }
}

function imageForm(bytes: Uint8Array, parts = 1): FormData {
  const form = new FormData();
  for (let i = 0; i < parts; i++) form.append('image', new Blob([bytes], { type: 'image/jpeg' }), 'a.jpg');
  return form;
}

t.test('a malformed crop query on an upload is refused with 400 while the body streams, and the worker survives', async (t) => {
  const mark = crashMark();
  for (const query of ['x=1', 'x=-5', 'x=abc', 'x=1&y=1&width=2&height=2&x=3']) {
    for (let i = 0; i < 8; i++) {
      // Any well-formed token: the query is judged before the token and before the body.
      const answer = await post(`/${unique('crop')}.jpg?${query}`, 'ab'.repeat(32), imageForm(oversized));
      t.same(answer, { status: 400, code: 'BAD_OPTION' }, `?${query}, try ${i + 1}`);
    }
  }
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), 'no upload-* temp file is left');
  await assertAlive(t, rel.url, mark);
});

t.test('fetch reads the status of every upload refusal, 20 of 20 times each (413, 403, 400)', async (t) => {
  const mark = crashMark();
  const refusals: [string, () => Promise<{ status: number | string; code: unknown }>, number, string][] = [
    ['a body over MAX_UPLOAD_BYTES', async () => post(`/${unique('big')}.jpg`, await issueToken(rel.url, unique('big-t')), imageForm(oversized)), 413, 'PAYLOAD_TOO_LARGE'],
    ['a token never issued', async () => post(`/${unique('unknown')}.jpg`, 'cd'.repeat(32), imageForm(streaming)), 403, 'BAD_TOKEN'],
    ['a malformed token', async () => post(`/${unique('malformed')}.jpg`, 'not-a-token', imageForm(streaming)), 403, 'BAD_TOKEN'],
    ['a token for another id', async () => post(`/${unique('other')}.jpg`, await issueToken(rel.url, unique('mine')), imageForm(good)), 403, 'BAD_TOKEN'],
    ['two image parts', async () => {
      const id = unique('two');
      return post(`/${id}.jpg`, await issueToken(rel.url, id), imageForm(Buffer.concat([Buffer.from(good), Buffer.alloc(150_000)]), 2));
    }, 400, 'BAD_REQUEST'],
    ['a bad crop', async () => {
      const id = unique('badcrop');
      return post(`/${id}.jpg?x=0&y=0&width=0&height=5`, await issueToken(rel.url, id), imageForm(streaming));
    }, 400, 'BAD_OPTION'],
  ];
  for (const [label, send, status, code] of refusals) {
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await send());
    t.same(answers.filter((a) => a.status === status && a.code === code).length, 20, `${label}: ${status} ${code} read 20 of 20 times (${JSON.stringify(answers.find((a) => a.status !== status) ?? 'all')})`);
  }
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 3_000), 'no temp file left');
  await assertAlive(t, rel.url, mark);
});

t.test('a well-formed unknown token is refused before the body is read: no temp file, no bytes beyond the first chunk', async (t) => {
  const mark = crashMark();
  const { body, contentType } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: streaming }]);
  let sawTempFile = false;
  const watcher = setInterval(() => {
    if (filesIn(rel.config.tempDir).length > 0) sawTempFile = true;
  }, 1);
  const answer = await wire(
    rel.port,
    async (socket) => {
      await writeAll(socket, head('POST', `/${unique('unknown')}.jpg`, { 'X-Token': 'ef'.repeat(32), 'Content-Type': contentType, 'Content-Length': body.byteLength }));
      await writeAll(socket, body.subarray(0, 32 * 1024));
    },
    { until: (responses) => responses.length > 0, timeoutMs: 5_000 },
  );
  clearInterval(watcher);
  t.equal(answer.responses[0]?.status, 403, `answered 403 after 32 KB of a ${Math.round(body.byteLength / 1000)} KB body`);
  t.notOk(sawTempFile, 'no temp file was ever created');
  await assertAlive(t, rel.url, mark);
});

t.test('a token that expired unused releases its id: a new token is issued and uploads', async (t) => {
  const short = await serve(t, { token_ttl_seconds: 1 });
  const id = unique('expiry');
  const first = await issueToken(short.url, id);
  t.equal((await requestToken(short.url, id)).status, 403, 'a second token while the first is live is refused');
  let second: string | undefined;
  t.ok(
    await eventually(async () => {
      second = (await requestToken(short.url, id)).token;
      return second !== undefined;
    }, 5_000, 100),
    'once the first expired, a new token is issued for the id',
  );
  t.equal((await uploadImage(short.url, id, good, { token: first })).status, 403, 'the expired token stays refused');
  t.equal((await uploadImage(short.url, id, good, { token: second ?? '' })).status, 200, 'the new one uploads');
});

t.test('a DELETE racing four in-flight misses, then a re-upload: none of 24 later requests gets the old image, in 5 rounds', async (t) => {
  const mark = crashMark();
  const rel = await serve(t, { secret: SECRET, blur_sigma: 6 });
  const sizes = [[500, 400], [600, 480], [700, 560], [800, 640]] as const;
  for (let round = 1; round <= 5; round++) {
    const id = unique(`race${round}`);
    t.equal((await uploadImage(rel.url, id, solid(1600, 1200, [...RED], 'jpeg'), { secret: SECRET })).status, 200, `round ${round}: the red image is uploaded`);
    // Blurred misses: long enough to be caught in flight.
    const misses = sizes.map(([w, h]) => getBytes(`${rel.url}/${id}_${w}_${h}.jpg?blur=true`));
    t.ok(await eventually(async () => (await rel.server.admitter.stats()).inUse > 0, 5_000, 2), `round ${round}: renders are in flight`);
    const deleted = await fetch(`${rel.url}/${id}`, { method: 'DELETE', headers: { 'X-Secret': SECRET } });
    t.equal(deleted.status, 200, `round ${round}: the DELETE answers 200 while they render`);
    t.equal((await uploadImage(rel.url, id, solid(1600, 1200, [...BLUE], 'jpeg'), { secret: SECRET })).status, 200, `round ${round}: a blue image is uploaded under the same id`);
    await Promise.all(misses);
    // The misses' results are stored (or discarded) after their answers: wait for that work to end.
    t.ok(await eventually(() => rel.server.app.inflight.size === 0, 10_000), `round ${round}: the post-answer work is done`);
    const colours: string[] = [];
    for (let i = 0; i < 6; i++) {
      for (const [w, h] of sizes) {
        const answer = await getBytes(`${rel.url}/${id}_${w}_${h}.jpg?blur=true`);
        const centre = answer.status === 200 ? decode(answer.body).at(Math.floor(w / 2), Math.floor((h * 3) / 8)) : [];
        colours.push(answer.status !== 200 ? `status ${answer.status}` : near(centre, BLUE) ? 'blue' : near(centre, RED) ? 'RED (the deleted image)' : `other ${centre.join(',')}`);
      }
    }
    t.same(colours.filter((c) => c !== 'blue'), [], `round ${round}: 24 of 24 requests get the new image`);
  }
  await assertAlive(t, rel.url, mark);
});

t.test('an AVIF beyond AVIF_MAX_MEGAPIXELS is sent to the largest AVIF within it, in one hop; one within it renders', async (t) => {
  const avif = await serve(t, { 'avif.max_megapixels': 1 });
  const id = unique('avif');
  t.equal((await uploadImage(avif.url, id, photoJpeg(1500, 1000, 90, 9))).status, 200);
  const original = await getBytes(`${avif.url}/${id}.avif?quality=40`);
  t.equal(original.status, 303, 'the 1.5 MP original as AVIF redirects');
  const location = original.headers.get('location') ?? '';
  const [, w, h] = /_(\d+)_(\d+)\.avif\?quality=40$/.exec(location) ?? [];
  t.ok(Number(w) * Number(h) <= 1_000_000 && Number(w) / Number(h) === 1.5, `to ${location}: within 1 MP, aspect kept, query kept`);
  t.match(original.headers.get('x-redirect-info') ?? '', /AVIF limit/, 'X-Redirect-Info says why');
  const cover = await getBytes(`${avif.url}/${id}_1000_1000.avif?fit=cover`);
  t.equal(cover.status, 303, 'a cover fit whose output (1500x1000) exceeds the limit redirects too');
  const followed = await getBytes(`${avif.url}${location}`);
  t.equal(followed.status, 200, 'the target renders');
  t.equal(probe(new Uint8Array(followed.body)).format, 'avif');
});

t.test('a render that timed out is answered at once with its error for the negative-cache time, taking no render slot', async (t) => {
  // A small photo upscaled to 12000x9000 and blurred takes seconds: far past a 300 ms timeout.
  const slow = await serve(t, { 'timeout.conversion': 300, 'constraints.max_width': 12_000, 'constraints.max_height': 12_000, blur_sigma: 5, 'pool.negative_cache_seconds': 300 });
  const id = unique('timeout');
  t.equal((await uploadImage(slow.url, id, photoJpeg(400, 300, 90, 12))).status, 200);
  const target = `${slow.url}/${id}_12000_9000.jpg?blur=true`;
  const first = await getBytes(target);
  t.same([first.status, (JSON.parse(first.body.toString()) as { code: string }).code], [504, 'TIMEOUT'], 'the render times out: 504');
  const before = await slow.server.admitter.stats();
  const again = await Promise.all(Array.from({ length: 5 }, () => getBytes(target)));
  t.same(again.map((a) => a.status), [504, 504, 504, 504, 504], 'every repeat answers 504');
  const after = await slow.server.admitter.stats();
  t.equal(after.granted, before.granted, 'no repeat took a render slot');
  t.equal(after.negativeHits - before.negativeHits, 5, 'each was answered from the negative cache');
  t.equal((await getBytes(`${slow.url}/${id}_100_75.jpg`)).status, 200, 'other sizes of the image still render');
});

t.test('the page count is read from the header for every multi-page format and capped: 10,000 frames no longer slip through', async (t) => {
  const mark = crashMark();
  const cases: [string, Uint8Array, string, number][] = [
    ['a GIF of 1,000 frames (the cap)', animatedGif(1000, 8), 'gif', 200],
    ['a GIF of 1,001 frames', animatedGif(1001, 8), 'gif', 413],
    ['a GIF of 10,000 frames', animatedGif(10_000, 4), 'gif', 413],
    ['a TIFF of 3,000 pages', manyPageTiff(3_000), 'tiff', 413],
  ];
  for (const [label, bytes, type, status] of cases) {
    const id = unique('pages');
    const answer = await uploadImage(rel.url, id, bytes, { type: `image/${type}`, filename: `a.${type}` });
    t.equal(answer.status, status, `${label}: ${status}`);
    if (status === 413) t.equal(answer.body.code, 'TOO_MANY_PIXELS', `${label}: TOO_MANY_PIXELS`);
  }
  const tight = await serve(t, { 'constraints.max_input': 0.01 });
  const id = unique('frames-pixels');
  const frames = await uploadImage(tight.url, id, animatedGif(40, 20), { type: 'image/gif', filename: 'a.gif' });
  t.same([frames.status, frames.body.code], [413, 'TOO_MANY_PIXELS'], '40 frames of 20x20 (16,000 pixels) count against a 10,000-pixel limit');
  await assertAlive(t, rel.url, mark);
});

t.test('the multipart limits are the ones the README states: 31 fields and the image pass, 32 fields do not', async (t) => {
  const send = async (fields: number) => {
    const id = unique('fields');
    const form = new FormData();
    for (let i = 0; i < fields; i++) form.append(`field${i}`, 'x');
    form.append('image', new Blob([good], { type: 'image/jpeg' }), 'a.jpg');
    return post(`/${id}.jpg`, await issueToken(rel.url, id), form);
  };
  t.equal((await send(31)).status, 200, '31 fields and the image');
  t.same(await send(32), { status: 400, code: 'BAD_REQUEST' }, '32 fields');
});

t.test('ids that end like a size cannot take a token or an upload, since their original could never be fetched', async (t) => {
  for (const id of ['q_10_20', 'photo_1_1_2x', 'a_nan_5']) {
    const issued = await requestToken(rel.url, id);
    t.same([issued.status, issued.body.code], [400, 'BAD_REQUEST'], `POST /token ${id}`);
    const answer = await post(`/${id}.jpg`, 'ab'.repeat(32), imageForm(good));
    t.same(answer, { status: 400, code: 'BAD_REQUEST' }, `POST /${id}.jpg`);
  }
  const fine = unique('q_10');
  t.equal((await requestToken(rel.url, fine)).status, 200, `${fine} (one number at the end) is a fine id`);
});

t.test('?quality on a PNG output makes one variant, not one per quality', async (t) => {
  const id = unique('pngq');
  t.equal((await uploadImage(rel.url, id, solid(300, 200, [0, 128, 255], 'png'), { type: 'image/png', filename: 'a.png', ext: 'png' })).status, 200);
  for (const quality of [1, 20, 55, 90]) t.equal((await getBytes(`${rel.url}/${id}_100_100.png?quality=${quality}`)).status, 200, `quality=${quality}`);
  await eventually(() => rel.server.app.inflight.size === 0, 5_000);
  const record = await rel.server.store.getOriginal(id);
  const rows = await rel.server.cache.list(`${id}/${record?.generation ?? ''}/`);
  t.equal(rows.length, 1, `one cached PNG (${rows.join(', ')})`);
  t.equal((await getBytes(`${rel.url}/${id}.png?quality=5`)).status, 200, 'a PNG original with only ?quality is the original');
});

t.test('WebP negotiation reads Accept as RFC 9110 does: case-insensitive, q=0 refuses', async (t) => {
  t.ok(acceptsExplicitly('IMAGE/WEBP', 'image/webp'), 'IMAGE/WEBP');
  t.ok(acceptsExplicitly('text/html, image/webp;q=0.8', 'image/webp'), 'with a weight');
  t.notOk(acceptsExplicitly('image/webp;q=0, */*', 'image/webp'), 'q=0 is a refusal');
  t.notOk(acceptsExplicitly('image/*, */*', 'image/webp'), 'wildcards are not explicit');
  t.notOk(acceptsExplicitly('image/webpx', 'image/webp'), 'no prefix match');
  const negotiating = await serve(t, { 'webp.allow_dynamic_switch': true });
  const id = unique('accept');
  t.equal((await uploadImage(negotiating.url, id, good)).status, 200);
  const refused = await getBytes(`${negotiating.url}/${id}_50_50.jpg`, { headers: { Accept: 'image/webp;q=0, image/jpeg' } });
  t.equal(refused.headers.get('content-type'), 'image/jpeg', 'q=0 gets JPEG');
  const upper = await getBytes(`${negotiating.url}/${id}_50_50.jpg`, { headers: { Accept: 'IMAGE/WEBP' } });
  t.equal(upper.headers.get('content-type'), 'image/webp', 'IMAGE/WEBP gets WebP');
});

t.test('a raw control character in the query is percent-encoded in the redirect, never copied into Location', async (t) => {
  const id = unique('ctl');
  t.equal((await uploadImage(rel.url, id, good)).status, 200);
  const answer = await wire(rel.port, [head('GET', `/${id}_5000_5000.jpg?x=\x7f`, { Connection: 'close' })], { until: (r) => r.length > 0 });
  const location = answer.responses[0]?.headers.location ?? '';
  t.equal(answer.responses[0]?.status, 303);
  // eslint-disable-next-line no-control-regex -- the point: no control character may reach the header
  t.notOk(/[\x00-\x20\x7f]/.test(location), `Location has no control character or space: ${JSON.stringify(location)}`);
  t.match(location, /x=%7F/, 'the character is kept, encoded');
});

t.test('a transfer coding other than chunked is answered 501 and the connection closed', async (t) => {
  const answer = await wire(rel.port, [head('POST', '/token', { 'Transfer-Encoding': 'xchunked' }), '0\r\n\r\n'], { timeoutMs: 3_000 });
  t.equal(answer.responses[0]?.status, 501);
  t.not(answer.ended, 'open', 'closed');
});

t.test('a refused 20 KB path is logged cut short, not whole', async (t) => {
  const logged = await serve(t, { 'log.info': true }, { captureLogs: true });
  const path = `/${'a'.repeat(20_000)}.jpg`;
  await wire(logged.port, [head('GET', path, { Connection: 'close' })], { until: (r) => r.length > 0 });
  const line = logged.logs.find((entry) => entry.message === 'request' && typeof entry.path === 'string' && entry.path.startsWith('/aaaa'));
  t.ok(line && (line.path as string).length < 300, `the logged path has ${(line?.path as string | undefined)?.length ?? 'no'} characters`);
});

t.test('a stored original that no longer decodes is a server fault: 500 CORRUPT_ORIGINAL, remembered, never 415', async (t) => {
  // No originals in memory: the damage on disk is what the render reads.
  const rotten = await serve(t, { 'originals.cache_mb': 0 });
  const id = unique('rotten');
  t.equal((await uploadImage(rotten.url, id, photoJpeg(200, 150, 90, 13))).status, 200);
  const record = await rotten.server.store.getOriginal(id);
  await rotten.server.originals.put(record?.storageKey ?? '', Buffer.from('this is not an image any more'), 'image/jpeg');
  const answer = await getBytes(`${rotten.url}/${id}_50_50.jpg`);
  t.same([answer.status, (JSON.parse(answer.body.toString()) as { code: string }).code], [500, 'CORRUPT_ORIGINAL']);
});

t.test('originals are stored without EXIF, XMP, IPTC or comments unless KEEP_ORIGINAL_METADATA; ICC and the pixels stay', async (t) => {
  const jpeg = jpegWithPrivateMetadata();
  const png = pngWithPrivateText();
  for (const [label, { bytes, secret }, type] of [['JPEG', jpeg, 'jpeg'], ['PNG', png, 'png']] as const) {
    const id = unique('meta');
    t.equal((await uploadImage(rel.url, id, bytes, { type: `image/${type}`, filename: `a.${type}`, ext: type === 'jpeg' ? 'jpg' : 'png' })).status, 200);
    const served = await getBytes(`${rel.url}/${id}.${type === 'jpeg' ? 'jpg' : 'png'}`);
    t.notOk(served.body.includes(Buffer.from(secret, 'latin1')), `${label}: the private text is not in the served original`);
    t.same(decode(new Uint8Array(served.body)).at(3, 3), decode(bytes).at(3, 3), `${label}: the same pixels (no re-encode)`);
  }
  const kept = prepareOriginal(jpeg.bytes, { maxPixels: 1e9, keepMetadata: true });
  t.notOk(kept.changed, 'with keepMetadata the upload is stored as it came');
  const webp = prepareOriginal(
    (await import('../../src/index.js')).encodeRaw(new Uint8Array(16 * 16 * 3).fill(90), { width: 16, height: 16, channels: 3, format: 'webp', orientation: 1 }),
    { maxPixels: 1e9 },
  );
  t.ok(webp.changed && !Buffer.from(webp.data).includes(Buffer.from('EXIF', 'latin1')), 'a WebP loses its EXIF chunk');
  t.equal(probe(webp.data).format, 'webp', 'and is still a WebP');
});

t.test('a background render is stored for the next request, and is dropped rather than queued while the machine sheds', async (t) => {
  const bg = await serve(t, { 'pool.size': 1, 'pool.queue_limit': 0, 'constraints.max_width': 12_000, 'constraints.max_height': 12_000, blur_sigma: 5 });
  const id = unique('bg');
  t.equal((await uploadImage(bg.url, id, photoJpeg(400, 300, 90, 71))).status, 200);
  // The upload's own background work (deciding its working copies) takes the one slot for a moment.
  t.ok(await eventually(async () => (await bg.server.store.getOriginal(id))?.copies != null, 5_000), 'the upload\'s working copies are decided');
  const { parseImageRequest } = await import('../../src/options/parse.js');
  t.equal(await bg.server.service.renderInBackground(parseImageRequest(`/${id}_200_150.webp`)), 'stored', 'rendered and stored');
  const hit = await getBytes(`${bg.url}/${id}_200_150.webp`);
  t.equal(hit.headers.get('x-cache'), 'HIT', 'the next request is a cache hit');
  t.equal(await bg.server.service.renderInBackground(parseImageRequest(`/${id}_200_150.webp`)), 'cached', 'a second time: already there');
  // The one slot busy with a slow foreground render, nothing may wait (QUEUE_LIMIT=0): the machine sheds.
  const slow = getBytes(`${bg.url}/${id}_12000_9000.jpg?blur=true`);
  t.ok(await eventually(async () => (await bg.server.admitter.stats()).inUse === 1, 5_000, 2), 'the slot is busy');
  t.equal(await bg.server.service.renderInBackground(parseImageRequest(`/${id}_100_75.png`)), 'dropped', 'a background render is dropped, not queued');
  await slow;
});
