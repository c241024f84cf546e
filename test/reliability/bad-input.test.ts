/**
 * Bad input, in process: decompression bombs, corrupt and hostile files,
 * lying Content-Types, malformed multipart bodies, hostile ids, bad tokens and
 * bad options. Each gets its exact status, the process stays alive, memory
 * stays flat over 200 repetitions, and nothing is stored or touched.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { probe, vipsStats } from '../../src/index.js';
import { originalKey } from '../../src/images/keys.js';
import { originalObjects } from '../helpers/stored.js';
import { native } from '../../src/render/native.js';
import { animatedGif, corruptHeaderJpeg, hostile, photoJpeg, pngDeclaring, solid, tiffDeclaring, truncated, unique } from '../helpers/fixtures.js';
import { assertAlive, crashesSince, crashMark } from '../helpers/crashes.js';
import { getBytes, healthStatus, issueToken, jsonOf, uploadImage, type UploadOptions } from '../helpers/http.js';
import { memoryFlat, tally } from '../helpers/measure.js';
import { serve, settled, type TestServer } from '../helpers/processes.js';
import { startSpy } from '../helpers/stand-ins.js';
import { filesIn, tree } from '../helpers/stores.js';
import { eventually, sleep } from '../helpers/timing.js';
import { followUp, head, multipart, parseResponses, rawStatus, wire } from '../helpers/wire.js';

const good = photoJpeg(64, 48, 85, 3);

/** Nothing of `id` is stored: no row, no original object, no temp file. */
async function nothingStored(t: Test, rel: TestServer, id: string): Promise<void> {
  t.equal(await rel.server.store.getOriginal(id), null, `no originals row for ${id}`);
  t.same(await originalObjects(rel.server, id), [], `no original object for ${id}`);
  // The temp file goes right after the answer is written.
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), `no temp file left in DATA_DIR/tmp (${filesIn(rel.config.tempDir).join(', ')})`);
}

/** The same token then uploads a good image. */
async function tokenStillWorks(t: Test, rel: TestServer, id: string, tokenValue: string): Promise<void> {
  const retry = await uploadImage(rel.url, id, good, { token: tokenValue });
  t.equal(retry.status, 200, 'the same token then uploads a good image with 200');
}

/**
 * 200 refused uploads of `bytes` (after a warm-up), four at a time, each lane
 * reusing its own token (a refusal frees it): every answer is `expected`,
 * memory stays flat, and nothing is stored for any lane's id.
 */
async function refusedBatch(
  t: Test,
  rel: TestServer,
  label: string,
  bytes: Uint8Array | ((i: number) => Uint8Array),
  expected: number,
  options: UploadOptions = {},
  warmUp?: number,
): Promise<void> {
  const lanes = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const id = unique('lane');
      return { id, token: await issueToken(rel.url, id) };
    }),
  );
  await memoryFlat(
    t,
    label,
    200,
    expected,
    async (i, lane) => {
      const { id, token: tokenValue } = lanes[lane] ?? { id: '', token: '' };
      return (await uploadImage(rel.url, id, typeof bytes === 'function' ? bytes(i) : bytes, { ...options, token: tokenValue })).status;
    },
    4,
    warmUp,
  );
  const stored: string[] = [];
  for (const lane of lanes) {
    if (await rel.server.store.getOriginal(lane.id)) stored.push(`row ${lane.id}`);
    for (const key of await originalObjects(rel.server, lane.id)) stored.push(`object ${key}`);
  }
  t.same(stored, [], 'no originals row and no original object for any of the batch ids');
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), 'no temp file left in DATA_DIR/tmp');
}

/** Inserts `bytes` as an original directly (not through an upload), declaring `width` x `height`. */
async function storeDirectly(rel: TestServer, id: string, bytes: Uint8Array, format: string, width: number, height: number): Promise<void> {
  const generation = 'direct';
  const key = originalKey(rel.server.originals, id, generation);
  await rel.server.originals.put(key, bytes, `image/${format}`);
  await rel.server.store.insertOriginal({ id, format, width, height, bytes: bytes.byteLength, storageKey: key, uploadedAt: new Date(), generation, jpegQuality: null, copies: [] });
}

let main!: TestServer;

t.before(async () => {
  // Two render threads and a long, patient queue: these tests are about answers, not about shedding
  // load (a loaded machine makes the wait estimate long, and a refusal there would be noise).
  main = await serve(t, { 'pool.size': 2, 'pool.queue_limit': 100, 'pool.queue_wait_ms': 60_000 });
});

t.test('a PNG of a few hundred bytes declaring 100000x100000 is refused with 413 from its header, over and over, with flat memory', async (t) => {
  const mark = crashMark();
  const bomb = pngDeclaring(100_000, 100_000);
  t.ok(bomb.byteLength < 1_000, `the PNG is ${bomb.byteLength} bytes`);
  const id = unique('bomb');
  const tokenValue = await issueToken(main.url, id);
  const first = await uploadImage(main.url, id, bomb, { token: tokenValue, type: 'image/png', filename: 'bomb.png' });
  t.equal(first.status, 413, 'POST answers 413');
  t.equal(first.body.code, 'TOO_MANY_PIXELS');
  t.ok(first.ms < 5_000, `answered in ${first.ms.toFixed(0)} ms: judged from the header, nothing decoded`);
  const highwater = vipsStats().memoryHighwater;
  await refusedBatch(t, main, 'the 100000x100000 PNG upload', bomb, 413, { type: 'image/png' });
  // libvips counts its pixel buffers process-wide: decoding even one row band of this image would show.
  const grown = (vipsStats().memoryHighwater - highwater) / 1024 / 1024;
  t.ok(grown < 16, `libvips' memory high-water mark grew ${grown.toFixed(1)} MB over 250 refusals (a decode would need 30 GB)`);
  await nothingStored(t, main, id);
  await assertAlive(t, main.url, mark);
  await tokenStillWorks(t, main, id, tokenValue);
});

t.test('an original already stored that declares 100000x100000 answers 413 to every render, with flat memory', async (t) => {
  const mark = crashMark();
  const id = unique('stored-bomb');
  await storeDirectly(main, id, pngDeclaring(100_000, 100_000), 'png', 100_000, 100_000);
  for (const target of [`/${id}_100_100.jpg`, `/${id}_64_64.webp?fit=crop`, `/${id}.jpg`, `/${id}.png?blur=true`]) {
    const answer = await getBytes(`${main.url}${target}`);
    t.equal(answer.status, 413, `GET ${target} answers 413`);
    t.equal((JSON.parse(answer.body.toString()) as { code?: string }).code, 'TOO_MANY_PIXELS');
  }
  await memoryFlat(t, 'renders of the stored 100000x100000 PNG', 200, 413, async (i) => (await getBytes(`${main.url}/${id}_${100 + (Math.abs(i) % 50)}_100.jpg`)).status, 4);
  t.same(filesIn(path.join(main.config.cacheDir, id)), [], 'nothing was cached for it');
  await assertAlive(t, main.url, mark);
});

t.test('a GIF of 3000 frames that together exceed max_input is refused with 413, while its 3-frame sibling is accepted', async (t) => {
  const mark = crashMark();
  const rel = await serve(t, { 'constraints.max_input': 1, 'pool.size': 1, 'pool.queue_limit': 100, 'pool.queue_wait_ms': 60_000 });
  const frames = animatedGif(3000, 20);
  t.comment(`3000 frames of 20x20 = 1.2 megapixels in ${frames.byteLength} bytes; one frame is 400 pixels`);
  const id = unique('frames');
  const tokenValue = await issueToken(rel.url, id);
  const answer = await uploadImage(rel.url, id, frames, { token: tokenValue, type: 'image/gif', filename: 'frames.gif' });
  t.equal(answer.status, 413, 'POST answers 413');
  t.equal(answer.body.code, 'TOO_MANY_PIXELS');
  // Decoding 3000 frame headers grows the pool thread's malloc arena for the first ~100 uploads, then it is flat.
  await refusedBatch(t, rel, 'the 3000-frame GIF upload', frames, 413, { type: 'image/gif' }, 120);
  await nothingStored(t, rel, id);
  const fewId = unique('few');
  const few = await uploadImage(rel.url, fewId, animatedGif(3, 20), { type: 'image/gif' });
  t.equal(few.status, 200, 'a 3-frame GIF of the same frame size is accepted: it is the frame count that is refused');
  await assertAlive(t, rel.url, mark);
  await tokenStillWorks(t, rel, id, tokenValue);
});

t.test('a 1x60,000,000 TIFF strip is refused with 413 by the pixel limit, with flat memory', async (t) => {
  const mark = crashMark();
  const strip = tiffDeclaring(1, 60_000_000);
  const id = unique('strip');
  const tokenValue = await issueToken(main.url, id);
  const answer = await uploadImage(main.url, id, strip, { token: tokenValue, type: 'image/tiff', filename: 'strip.tif' });
  t.equal(answer.status, 413, 'POST answers 413');
  t.equal(answer.body.code, 'TOO_MANY_PIXELS');
  const highwater = vipsStats().memoryHighwater;
  await refusedBatch(t, main, 'the 1x60,000,000 TIFF upload', strip, 413, { type: 'image/tiff' });
  const grown = (vipsStats().memoryHighwater - highwater) / 1024 / 1024;
  t.ok(grown < 16, `libvips' memory high-water mark grew ${grown.toFixed(1)} MB over 250 refusals`);
  await nothingStored(t, main, id);
  await assertAlive(t, main.url, mark);
  await tokenStillWorks(t, main, id, tokenValue);
});

t.test('a truncated JPEG and a JPEG with a corrupt header are refused with 415, nothing is stored, and the token is freed', async (t) => {
  const cases: [string, Uint8Array][] = [
    ['truncated', truncated(photoJpeg(800, 600, 90, 5))],
    ['corrupt-header', corruptHeaderJpeg()],
  ];
  for (const [name, bytes] of cases) {
    const mark = crashMark();
    const id = unique(name);
    const tokenValue = await issueToken(main.url, id);
    const answer = await uploadImage(main.url, id, bytes, { token: tokenValue });
    t.equal(answer.status, 415, `${name}: POST answers 415`);
    t.ok(answer.body.code === 'CORRUPT_IMAGE' || answer.body.code === 'UNSUPPORTED_FORMAT', `${name}: code ${String(answer.body.code)}`);
    await refusedBatch(t, main, `the ${name} JPEG upload`, bytes, 415);
    await nothingStored(t, main, id);
    await assertAlive(t, main.url, mark);
    await tokenStillWorks(t, main, id, tokenValue);
  }
});

t.test('a stored original that WebP cannot hold (1x20000) answers 500 ENCODE_FAILED as WebP, the repeat from the negative cache, and renders as PNG', async (t) => {
  const mark = crashMark();
  const id = unique('tall');
  const tall = solid(1, 20_000, [40, 90, 160], 'png');
  t.equal((await uploadImage(main.url, id, tall, { type: 'image/png', filename: 'tall.png', ext: 'png' })).status, 200, 'the upload decodes: 200');
  const before = await main.server.admitter.stats();
  for (const attempt of ['first', 'second']) {
    const answer = await getBytes(`${main.url}/${id}.webp`);
    const body = JSON.parse(answer.body.toString()) as { code?: string; error?: string };
    t.same([answer.status, body.code], [500, 'ENCODE_FAILED'], `the ${attempt} WebP conversion answers 500 ENCODE_FAILED`);
    t.notMatch(body.error ?? '', /webpsave|vips/i, 'no libvips text reaches the client');
  }
  const after = await main.server.admitter.stats();
  // A format's limit fails the same render every time: the repeat costs no decode.
  t.equal(after.negativeHits - before.negativeHits, 1, 'the repeat was answered from the negative cache');
  t.equal((await getBytes(`${main.url}/${id}.png`)).status, 200, 'the same original converts to PNG');
  await assertAlive(t, main.url, mark);
});

t.test('MVG, MSL, SVG, PDF, PSD, HEIC and text payloads named .jpg are refused with 415, and libvips finds no allowed loader for them', async (t) => {
  const mark = crashMark();
  const payloads: [string, Uint8Array][] = [
    ['mvg', hostile.mvg],
    ['msl', hostile.msl],
    ['svg', hostile.svg],
    ['pdf', hostile.pdf],
    ['psd', hostile.psd],
    ['heic', hostile.heic],
    ['text', hostile.text],
  ];
  for (const name of ['mvg', 'msl', 'svg', 'pdf', 'psd']) {
    const bytes = payloads.find(([n]) => n === name)?.[1] ?? new Uint8Array(0);
    t.equal(native().libvipsLoaderFor(bytes), null, `libvips' own sniffing finds no allowed loader for the ${name} payload`);
  }
  const id = unique('hostile');
  const tokenValue = await issueToken(main.url, id);
  for (const [name, bytes] of payloads) {
    const answer = await uploadImage(main.url, id, bytes, { token: tokenValue, filename: `${name}.jpg`, type: 'image/jpeg' });
    t.equal(answer.status, 415, `${name} named .jpg: POST answers 415`);
    t.equal(answer.body.code, 'UNSUPPORTED_FORMAT', `${name}: UNSUPPORTED_FORMAT`);
  }
  await refusedBatch(t, main, 'the hostile payloads, in turn', (i) => (payloads[Math.abs(i) % payloads.length] ?? ['text', hostile.text])[1], 415);
  await nothingStored(t, main, id);
  await assertAlive(t, main.url, mark);
  await tokenStillWorks(t, main, id, tokenValue);
});

t.test('an SVG pointing at a local file and at a URL is refused on upload and on render, and neither is ever read', async (t) => {
  const mark = crashMark();
  const folder = await mkdtemp(path.join(tmpdir(), 'iaas-rel-svg-'));
  t.teardown(() => rm(folder, { recursive: true, force: true }));
  const secretFile = path.join(folder, 'secret.png');
  await writeFile(secretFile, solid(8, 8, [1, 2, 3]));
  // An atime older than the mtime: any read would move it, whatever the relatime rules.
  const old = new Date('2001-01-01T00:00:00Z');
  await utimes(secretFile, old, new Date());
  const before = await stat(secretFile);
  const spy = await startSpy(t);
  const svg = Buffer.from(
    `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">` +
      `<style>@import url("${spy.url}/css");</style>` +
      `<image xlink:href="file://${secretFile}" width="64" height="64"/>` +
      `<image href="${spy.url}/image.png" width="64" height="64"/>` +
      `<script xlink:href="${spy.url}/script.js"/></svg>`,
  );
  t.equal(native().libvipsLoaderFor(svg), null, 'libvips finds no allowed loader for it');
  const id = unique('svg');
  const tokenValue = await issueToken(main.url, id);
  for (const type of ['image/svg+xml', 'image/jpeg', 'image/png']) {
    const answer = await uploadImage(main.url, id, svg, { token: tokenValue, type, filename: 'photo.jpg' });
    t.equal(answer.status, 415, `uploaded as ${type}: 415`);
    t.equal(answer.body.code, 'UNSUPPORTED_FORMAT');
  }
  await nothingStored(t, main, id);
  const storedId = unique('svg-stored');
  await storeDirectly(main, storedId, svg, 'png', 64, 64);
  for (const target of [`/${storedId}_32_32.jpg`, `/${storedId}.jpg`, `/${storedId}_32_32.png?blur=true`]) {
    const answer = await getBytes(`${main.url}${target}`);
    // Rendering what is stored is the service's own fault, not the client's: never a 415.
    t.same([answer.status, (JSON.parse(answer.body.toString()) as { code?: string }).code], [500, 'CORRUPT_ORIGINAL'], `a render of it stored (${target}) answers 500 CORRUPT_ORIGINAL`);
  }
  await sleep(500);
  t.same(spy.hits, [], 'the URL it references got no request');
  const after = await stat(secretFile);
  t.equal(after.atimeMs, before.atimeMs, 'the local file it references was not read (atime unchanged)');
  await assertAlive(t, main.url, mark);
  await tokenStillWorks(t, main, id, tokenValue);
});

t.test('the bytes decide the format, whatever the part Content-Type or file name says', async (t) => {
  const mark = crashMark();
  const jpeg = photoJpeg(120, 80, 88, 11);
  for (const [type, filename] of [
    ['image/png', 'photo.png'],
    ['text/plain', 'notes.txt'],
    ['application/octet-stream', 'blob'],
  ] as const) {
    const id = unique('declared');
    const answer = await uploadImage(main.url, id, jpeg, { type, filename });
    t.equal(answer.status, 200, `JPEG bytes declared ${type}: 200`);
    t.equal((await main.server.store.getOriginal(id))?.format, 'jpeg', 'recorded as JPEG');
    const back = await getBytes(`${main.url}/${id}.jpg`);
    t.equal(back.headers.get('content-type'), 'image/jpeg');
    t.ok(back.body.equals(Buffer.from(jpeg)), 'served back byte for byte as image/jpeg');
  }
  const png = solid(40, 30, [10, 200, 30], 'png');
  const pngId = unique('png-as-jpg');
  const asJpg = await uploadImage(main.url, pngId, png, { type: 'image/jpeg', filename: 'x.jpg', ext: 'jpg' });
  t.equal(asJpg.status, 200, 'PNG bytes posted to .jpg as image/jpeg: 200');
  t.equal((await main.server.store.getOriginal(pngId))?.format, 'png', 'recorded as PNG');
  const original = await getBytes(`${main.url}/${pngId}.png`);
  t.equal(original.headers.get('content-type'), 'image/png');
  t.ok(original.body.equals(Buffer.from(png)), 'GET /{id}.png serves the PNG bytes');
  const converted = await getBytes(`${main.url}/${pngId}.jpg`);
  t.equal(converted.status, 200);
  t.equal(probe(converted.body).format, 'jpeg', 'GET /{id}.jpg converts it to a real JPEG');
  await assertAlive(t, main.url, mark);
});

t.test('every response carries X-Content-Type-Options: nosniff, whatever its status', async (t) => {
  const id = unique('nosniff');
  await uploadImage(main.url, id, good);
  const rel = main.url;
  const probes: [string, string, RequestInit?][] = [
    ['200 original', `${rel}/${id}.jpg`],
    ['200 miss', `${rel}/${id}_20_20.jpg`],
    ['200 hit', `${rel}/${id}_20_20.jpg`],
    ['200 health', `${rel}/_health`],
    ['200 robots', `${rel}/robots.txt`],
    ['303 bounds', `${rel}/${id}_9000_9000.jpg`],
    ['400 option', `${rel}/${id}_0_20.jpg`],
    ['403 token', `${rel}/${id}.jpg`, { method: 'POST', headers: { 'X-Token': 'nope' } }],
    ['404 id', `${rel}/${unique('missing')}_20_20.jpg`],
    ['404 favicon', `${rel}/favicon.ico`],
    ['405 method', `${rel}/${id}.jpg`, { method: 'PUT' }],
  ];
  for (const [label, target, init] of probes) {
    const answer = await getBytes(target, init ?? {});
    await settled(main.server); // the miss is stored after its response: the hit after it must find it
    t.equal(answer.headers.get('x-content-type-options'), 'nosniff', `${label} (${answer.status}) carries nosniff`);
  }
  const bomb = unique('nosniff-bomb');
  const refused = await uploadImage(main.url, bomb, pngDeclaring(100_000, 100_000));
  t.equal(refused.headers.get('x-content-type-options'), 'nosniff', `413 (${refused.status}) carries nosniff`);
  const unsupported = unique('nosniff-svg');
  const refusedSvg = await uploadImage(main.url, unsupported, hostile.svg);
  t.equal(refusedSvg.status, 415);
  t.equal(refusedSvg.headers.get('x-content-type-options'), 'nosniff', '415 carries nosniff');
});

t.test('multipart bodies with no file part, a misnamed or second file part, thousands of parts or no closing boundary get 400, and the token stays usable', async (t) => {
  const id = unique('shapes');
  const tokenValue = await issueToken(main.url, id);
  const image = { name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: good };
  const many = Array.from({ length: 3000 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
  const manyFiles = Array.from({ length: 3000 }, (_, i) => ({ name: `f${i}`, filename: `f${i}.jpg`, type: 'image/jpeg', data: 'x' }));
  const shapes: [string, { body: Buffer; contentType: string }][] = [
    ['no file part', multipart([{ name: 'title', data: 'no image here' }])],
    ['a file part not named image', multipart([{ ...image, name: 'picture' }])],
    ['two image file parts', multipart([image, image])],
    ['3000 fields before the image', multipart([...many, image])],
    ['3000 fields after the image', multipart([image, ...many])],
    ['3000 file parts', multipart([...manyFiles, image])],
    ['no closing boundary', multipart([image], { close: false })],
    ['a body cut inside the image part', (() => {
      const whole = multipart([image]);
      return { body: whole.body.subarray(0, Math.floor(whole.body.byteLength / 2)), contentType: whole.contentType };
    })()],
    ['an empty body', { body: Buffer.alloc(0), contentType: 'multipart/form-data; boundary=nothing' }],
    ['multipart without a boundary', { body: multipart([image]).body, contentType: 'multipart/form-data' }],
    ['not multipart at all', { body: Buffer.from(good), contentType: 'image/jpeg' }],
  ];
  const request = (shape: { body: Buffer; contentType: string }) => [
    head('POST', `/${id}.jpg`, { 'X-Token': tokenValue, 'Content-Type': shape.contentType, 'Content-Length': shape.body.byteLength }),
    shape.body,
  ];
  for (const [label, shape] of shapes) {
    const mark = crashMark();
    // Keep-alive, then a second request on the same connection: it must be answered, or the connection closed.
    const answer = await followUp(main.port, request(shape), head('GET', '/_health', {}), 2_500);
    let code: unknown;
    try {
      code = (JSON.parse(answer.first?.body.toString() ?? '') as { code?: unknown }).code;
    } catch {
      code = undefined;
    }
    t.equal(answer.first?.status, 400, `${label}: 400`);
    t.ok(code === 'BAD_REQUEST' || code === 'NO_IMAGE_PART', `${label}: code ${String(code)}`);
    t.ok(answer.second?.status === 200 || answer.ended !== 'open', `${label}: the connection then answers the next request or is closed, never left hanging (next: ${answer.second?.status ?? 'none'}, ${answer.ended})`);
    await sleep(50);
    t.same(crashesSince(mark), [], `${label}: no uncaught error (the worker process would have survived)`);
    t.ok(await eventually(() => filesIn(main.config.tempDir).length === 0, 2_000), `${label}: no temp file left in DATA_DIR/tmp (${filesIn(main.config.tempDir).join(', ')})`);
  }
  for (const [label, index] of [['no closing boundary', 6], ['3000 fields before the image', 3], ['3000 fields after the image', 4]] as const) {
    const shape = shapes[index]?.[1];
    if (!shape) continue;
    // Each on a connection of its own: a refused body may leave its connection unusable (see above).
    await memoryFlat(
      t,
      label,
      200,
      400,
      async () => {
        const [requestHead, body] = request(shape);
        return (await wire(main.port, [requestHead ?? '', body ?? ''], { until: (responses) => responses.length > 0, timeoutMs: 5_000 })).responses[0]?.status ?? 'no answer';
      },
      // Sixteen at once for the fields after the image: the refusal then races the temp file's creation.
      index === 4 ? 16 : 8,
    );
  }
  await nothingStored(t, main, id);
  t.equal(await healthStatus(main.url), 200, 'GET /_health answers 200');
  await tokenStillWorks(t, main, id, tokenValue);
});

t.test('ids like ../x, %2e%2e%2f, with a NUL, or 10 KB long get 400 for GET, POST and DELETE, and nothing outside the data folders is touched', async (t) => {
  const mark = crashMark();
  const root = await mkdtemp(path.join(tmpdir(), 'iaas-rel-ids-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dataDir = path.join(root, 'data');
  const rel = await serve(t, { data_dir: dataDir, secret: 'rel-secret' });
  // Sentinels where a climbing id would land: beside DATA_DIR, and in DATA_DIR beside the data folders.
  const sentinels = [path.join(root, 'x'), path.join(root, 'x.jpg'), path.join(root, 'sentinel'), path.join(dataDir, 'x'), path.join(dataDir, 'x.jpg')];
  const old = new Date('2001-01-01T00:00:00Z');
  const mtime = new Date('2020-01-01T00:00:00Z');
  for (const file of sentinels) {
    await writeFile(file, good);
    await utimes(file, old, mtime);
  }
  const treeBefore = tree(dataDir);
  const longId = 'a'.repeat(10 * 1024);
  const targets = [
    '/../x.jpg',
    '/../x',
    '/../../x.jpg',
    '/%2e%2e%2fx.jpg',
    '/%2e%2e%2f',
    '/%2e%2e/x.jpg',
    '/..%2fx.jpg',
    '/..%5cx.jpg',
    '/x%00.jpg',
    '/x%00',
    '/%00',
    `/${longId}.jpg`,
    `/${longId}`,
    `/${longId}_10_10.jpg`,
    `/${'b'.repeat(129)}.jpg`,
    '/x/../../sentinel.jpg',
    '//x.jpg',
    '/./x.jpg',
  ];
  const bad: string[] = [];
  const validToken = 'a'.repeat(64);
  const form = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: good }]);
  for (const target of targets) {
    for (const method of ['GET', 'HEAD', 'POST', 'DELETE']) {
      const headers: Record<string, string | number> = { Connection: 'close' };
      let body: Buffer | undefined;
      if (method === 'POST') {
        Object.assign(headers, { 'X-Token': validToken, 'Content-Type': form.contentType, 'Content-Length': form.body.byteLength });
        body = form.body;
      }
      if (method === 'DELETE') headers['X-Secret'] = 'rel-secret';
      // Sent raw: fetch would resolve the dot segments before sending.
      const answer = await wire(rel.port, body ? [head(method, target, headers), body] : [head(method, target, headers)], {
        untilRaw: (raw) => (method === 'HEAD' ? raw.includes('\r\n\r\n') : parseResponses(raw).length > 0),
        timeoutMs: 3_000,
      });
      // HEAD answers carry no body, so read the status line itself.
      const line = /^HTTP\/1\.1 (\d{3})/.exec(answer.raw.toString('latin1'));
      const status = line ? Number(line[1]) : undefined;
      if (status !== 400) bad.push(`${method} ${target.slice(0, 40)} -> ${status ?? `no answer (${answer.ended})`}`);
      if (method !== 'HEAD' && status === 400) {
        const code = (JSON.parse(answer.responses[0]?.body.toString() || '{}') as { code?: string }).code;
        if (code !== 'BAD_REQUEST' && code !== 'BAD_OPTION') bad.push(`${method} ${target.slice(0, 40)} -> code ${String(code)}`);
      }
    }
  }
  t.same(bad, [], `every one of ${targets.length * 4} requests answered 400 BAD_REQUEST/BAD_OPTION`);
  await memoryFlat(
    t,
    'hostile ids',
    200,
    400,
    async (i) => {
      const target = targets[Math.abs(i) % targets.length] ?? '/../x.jpg';
      return (await rawStatus(rel.port, i % 2 === 0 ? 'GET' : 'DELETE', target, { 'X-Secret': 'rel-secret' })).status;
    },
    8,
  );
  // A raw NUL byte in the request line: uWS refuses the line itself.
  const nul = await wire(rel.port, [`GET /x\u0000.jpg HTTP/1.1\r\nHost: x\r\n\r\n`], { until: (responses) => responses.length > 0 });
  const nulStatus = nul.responses[0]?.status;
  // uWS neither answers nor closes such a line (its idle timeout closes the connection later); what matters is that it is never served.
  t.ok(nulStatus === 400 || nulStatus === undefined, `a raw NUL in the path is never served: 400 or no answer (got ${nulStatus ?? `no answer, connection ${nul.ended}`})`);
  for (const file of sentinels) {
    const info = await stat(file);
    t.ok((await readFile(file)).equals(Buffer.from(good)), `${path.relative(root, file)} is unchanged`);
    t.equal(info.mtimeMs, mtime.getTime(), `${path.relative(root, file)} was not written`);
    t.equal(info.atimeMs, old.getTime(), `${path.relative(root, file)} was not read`);
  }
  t.same(readdirSync(root).sort(), ['data', 'sentinel', 'x', 'x.jpg'], 'nothing new beside DATA_DIR');
  const after = tree(dataDir).filter((entry) => !/^iaas\.sqlite/.test(entry));
  t.same(after, treeBefore.filter((entry) => !/^iaas\.sqlite/.test(entry)), `the DATA_DIR tree is unchanged (${after.join(', ')})`);
  await assertAlive(t, rel.url, mark);
});

t.test('tokens that are missing, of the wrong length, not hex, uppercase, unknown, for another id or expired get 403, never 500', async (t) => {
  const mark = crashMark();
  const rel = await serve(t, { token_ttl_seconds: 1 });
  const id = unique('tokens');
  const real = await issueToken(rel.url, id);
  const other = unique('other');
  const otherToken = await issueToken(rel.url, other);
  const cases: [string, string | undefined][] = [
    ['missing', undefined],
    ['empty', ''],
    ['63 hex characters', real.slice(1)],
    ['65 hex characters', `${real}0`],
    ['128 hex characters', real + real],
    ['non-hex', 'g'.repeat(64)],
    ['uppercase', real.toUpperCase()],
    ['with spaces', ` ${real.slice(2)} `],
    ['unknown', 'a'.repeat(64)],
    ['for another id', otherToken],
    ['a megabyte-ish', 'a'.repeat(8_000)],
  ];
  const form = () => {
    const data = new FormData();
    data.append('image', new Blob([good], { type: 'image/jpeg' }), 'a.jpg');
    return data;
  };
  for (const [label, value] of cases) {
    const response = await fetch(`${rel.url}/${id}.jpg`, { method: 'POST', headers: value === undefined ? {} : { 'X-Token': value }, body: form() });
    const body = await jsonOf(response);
    t.equal(response.status, 403, `${label}: 403`);
    t.equal(body.code, 'BAD_TOKEN', `${label}: BAD_TOKEN`);
  }
  const form2 = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: good }]);
  await memoryFlat(
    t,
    'bad tokens',
    200,
    403,
    async (i) => {
      const value = cases[Math.abs(i) % cases.length]?.[1];
      const headers: Record<string, string | number> = { 'Content-Type': form2.contentType, 'Content-Length': form2.body.byteLength };
      if (value !== undefined) headers['X-Token'] = value;
      return (await rawStatus(rel.port, 'POST', `/${id}.jpg`, headers, form2.body)).status;
    },
    8,
  );
  await sleep(1_600);
  const expired = await uploadImage(rel.url, id, good, { token: real });
  t.equal(expired.status, 403, 'expired (token_ttl_seconds 1, waited 1.6 s): 403');
  t.equal(expired.body.code, 'BAD_TOKEN');
  t.equal(await rel.server.store.getOriginal(id), null, 'nothing stored');
  await assertAlive(t, rel.url, mark);
});

t.test('sizes of 0, negative, NaN, 1e9, fractions or over 100000, quality 101, an unknown fit and duplicate parameters get 400 BAD_OPTION with a message', async (t) => {
  const mark = crashMark();
  const id = unique('options');
  t.equal((await uploadImage(main.url, id, good)).status, 200);
  const targets = [
    `/${id}_0_100.jpg`,
    `/${id}_100_0.jpg`,
    `/${id}_-5_100.jpg`,
    `/${id}_100_-1.jpg`,
    `/${id}_NaN_100.jpg`,
    `/${id}_100_nan.jpg`,
    `/${id}_Infinity_100.jpg`,
    `/${id}_1e9_100.jpg`,
    `/${id}_1e3_100.jpg`,
    `/${id}_10.5_100.jpg`,
    `/${id}_100001_100.jpg`,
    `/${id}_1000000000_1.jpg`,
    `/${id}_99999999999999999999_1.jpg`,
    `/${id}_100_100_0x.jpg`,
    `/${id}_100_100_5x.jpg`,
    `/${id}_100_100_1.5x.jpg`,
    `/${id}_100_100.jpg?quality=101`,
    `/${id}_100_100.jpg?quality=-1`,
    `/${id}_100_100.jpg?quality=1e2`,
    `/${id}_100_100.jpg?quality=best`,
    `/${id}_100_100.jpg?fit=stretch`,
    `/${id}_100_100.jpg?fit=`,
    `/${id}_100_100.jpg?blur=maybe`,
    `/${id}_100_100.jpg?fit=crop&fit=clip`,
    `/${id}_100_100.jpg?quality=50&quality=60`,
    `/${id}_100_100.jpg?blur=true&blur=true`,
    `/${id}_100_100.bmp`,
    `/${id}_100_100.jpg?fit=crop&gravity=middle`,
    `/${id}_100_100.webp?frames=0`,
    `/${id}_100_100.svg`,
  ];
  for (const target of targets) {
    const answer = await getBytes(`${main.url}${target}`);
    const body = JSON.parse(answer.body.toString() || '{}') as { code?: string; error?: unknown };
    t.equal(answer.status, 400, `${target.slice(id.length + 1)}: 400`);
    t.equal(body.code, 'BAD_OPTION', `${target.slice(id.length + 1)}: BAD_OPTION`);
    t.ok(typeof body.error === 'string' && body.error.length > 0, `${target.slice(id.length + 1)}: with a message`);
  }
  await memoryFlat(t, 'bad options', 200, 400, async (i) => (await getBytes(`${main.url}${targets[Math.abs(i) % targets.length] ?? ''}`)).status, 4);
  await assertAlive(t, main.url, mark);
});

t.test('sizes over the bounds get the documented 303 to the in-bounds URL, and following it never renders beyond the bounds', async (t) => {
  const mark = crashMark();
  const rel = await serve(t, { 'constraints.max_width': 300, 'constraints.max_height': 200 });
  const id = unique('bounds');
  t.equal((await uploadImage(rel.url, id, photoJpeg(640, 480, 85, 9))).status, 200);
  const targets = [
    `/${id}_100000_100000.jpg`,
    `/${id}_100000_1.jpg`,
    `/${id}_1_100000.png`,
    `/${id}_5000_100.webp`,
    `/${id}_300_200_4x.jpg?fit=crop`,
    `/${id}_250_150_2x.jpg?fit=canvas&quality=70`,
    `/${id}_99999_99999_4x.jpg?fit=cover`,
  ];
  for (const target of targets) {
    const answer = await getBytes(`${rel.url}${target}`);
    t.equal(answer.status, 303, `${target.slice(id.length + 1)}: 303`);
    t.ok(answer.headers.get('x-redirect-info'), 'with X-Redirect-Info');
    const location = answer.headers.get('location') ?? '';
    const followed = await getBytes(new URL(location, rel.url).toString());
    t.equal(followed.status, 200, `following ${location}: 200`);
    const image = probe(followed.body);
    t.ok(image.width <= 300 && image.height <= 200, `rendered ${image.width}x${image.height}, within 300x200`);
  }
  await assertAlive(t, rel.url, mark);
});

t.test('random malformed image URLs never answer 500', async (t) => {
  const mark = crashMark();
  const id = unique('fuzz');
  t.equal((await uploadImage(main.url, id, good)).status, 200);
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const sides = ['0', '1', '-1', '16', '2048', '2049', '100000', '100001', 'NaN', '1e9', '0x10', '', '00', '7.5', '+5', '%31'];
  const names = [id, `${id}_x`, '', '_', '__', 'a.b', '%2e', '..', unique('unknown')];
  const exts = ['jpg', 'jpeg', 'JPG', 'png', 'webp', 'avif', 'gif', '', 'jpg.jpg', 'exe'];
  const queries = ['', '?fit=crop', '?fit=x', '?quality=0', '?quality=100', '?quality=101', '?blur=1', '?blur=yes', '?fit=a&fit=b', '?proxy=true', '?allow_webp=1', '?%00=1'];
  const statuses: number[] = [];
  for (let i = 0; i < 300; i++) {
    const parts = [pick(names)];
    if (next() < 0.8) parts.push(pick(sides), pick(sides));
    if (next() < 0.3) parts.push(`${pick(['1', '2', '4', '5', '0', 'x'])}x`);
    const target = `/${parts.join('_')}.${pick(exts)}${pick(queries)}`;
    const answer = await getBytes(`${main.url}${target}`);
    statuses.push(answer.status);
  }
  const counts = tally(statuses);
  t.same(Object.keys(counts).filter((status) => Number(status) >= 500), [], `no 5xx among ${JSON.stringify(counts)}`);
  await assertAlive(t, main.url, mark);
});
