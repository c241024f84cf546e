/**
 * The HTTP API, end to end, as the spec states it: run against the embedded
 * defaults (SQLite + local folders) and against PostgreSQL + S3 (s3rver).
 * Every fixture is generated; every assertion is on statuses, headers, error
 * codes and decoded image sizes, never on message text.
 */
import type { Test } from 'tap';
import { encodeRaw, probe } from '../../src/index.js';
import type { UrlFormat } from '../../src/options/grammar.js';
import { originalKeyOf, originalObjects, variantKeyOf, type SpecOf } from '../helpers/stored.js';
import { alphaPng, hostile, orientedJpeg, photoJpeg, photoPixels, pngDeclaring, random, truncated, unique } from '../helpers/fixtures.js';
import { decode } from '../helpers/pixels.js';
import { bytesOf, errorOf, get, postImage, requestToken, uploadImage } from '../helpers/http.js';
import { settled, type TestServer } from '../helpers/processes.js';
import { eventually, sleep } from '../helpers/timing.js';
import { abortedRequest, chunked, multipart, rawRequest, type Part } from '../helpers/wire.js';

export type { TestServer } from '../helpers/processes.js';

/** `bytes` as the form's one file part, as a browser would post it. */
const PHOTO_PART = (bytes: Uint8Array): Part => ({ name: 'image', filename: 'image.jpg', type: 'image/jpeg', data: bytes });

export type Kind = 'embedded' | 'postgres-s3';
export type Start = (overrides?: Record<string, unknown>) => Promise<TestServer>;

/** The freshness secret of the main server. */
const FRESHNESS = 'fresh-sesame';
/** The secret of the configured server. */
const SECRET = 's3cret';
const YEAR_MS = 365 * 24 * 3600 * 1000;

/**
 * A photo-like JPEG of any size without photoPixels' cost per pixel: its
 * pattern at a fifth of the size, enlarged, with fresh fine noise.
 */
function largePhoto(width: number, height: number): Uint8Array {
  const sw = Math.ceil(width / 5);
  const sh = Math.ceil(height / 5);
  const base = photoPixels(sw, sh, 3);
  const next = random(11);
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / 5) * sw;
    for (let x = 0; x < width; x++) {
      const from = (row + Math.floor(x / 5)) * 3;
      const to = (y * width + x) * 3;
      const noise = (next() - 0.5) * 16;
      for (let c = 0; c < 3; c++) pixels[to + c] = Math.max(0, Math.min(255, Math.round((base[from + c] ?? 0) + noise)));
    }
  }
  return encodeRaw(pixels, { width, height, channels: 3, format: 'jpeg', quality: 90 });
}

/** A lossless PNG: the left half red, the right half blue. */
function halvesPng(width: number, height: number): Uint8Array {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set(x < width / 2 ? [255, 0, 0] : [0, 0, 255], (y * width + x) * 3);
  }
  return encodeRaw(pixels, { width, height, channels: 3, format: 'png' });
}

/** Mean absolute difference between horizontal neighbours: lower is blurrier. */
function sharpness(bytes: Uint8Array): number {
  const image = decode(bytes);
  let sum = 0;
  let count = 0;
  for (let y = 0; y < image.height; y++) {
    for (let x = 1; x < image.width; x++) {
      const a = image.at(x - 1, y);
      const b = image.at(x, y);
      for (let c = 0; c < 3; c++) sum += Math.abs((a[c] ?? 0) - (b[c] ?? 0));
      count += 3;
    }
  }
  return sum / count;
}

/** A GET that follows redirects: the image itself, whether rendered now or a cache hit in S3. */
function image(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { headers });
}

function same(a: Uint8Array | null, b: Uint8Array): boolean {
  return a !== null && Buffer.from(a).equals(Buffer.from(b));
}

/** The storage key of a variant in the server's cache, as the service names it. */
function cacheKey(ts: TestServer, spec: Partial<SpecOf> & { id: string }): Promise<string> {
  return variantKeyOf(ts.server, { width: 0, height: 0, fit: 'clip', quality: 'auto', blur: 0, format: 'jpeg', ...spec });
}

/** True once the variant is both in the cache storage and in the store's index. */
function stored(ts: TestServer, key: string): Promise<boolean> {
  return eventually(async () => (await ts.server.store.getVariant(key)) !== null && (await ts.server.cache.exists(key)));
}

/** Once the server's work after its responses is done, true when neither the cache storage nor the index has the key. */
async function notStored(ts: TestServer, key: string): Promise<boolean> {
  await settled(ts.server);
  return (await ts.server.store.getVariant(key)) === null && !(await ts.server.cache.exists(key));
}

export function apiSuite(t: Test, start: Start, kind: Kind): void {
  let main!: TestServer;
  /** 2725x2225, stored untouched (under the on-disk limit, no orientation). */
  const photo = largePhoto(2725, 2225);
  /** 320x240. */
  const small = photoJpeg(320, 240, 90, 5);

  t.before(async () => {
    main = await start({ freshness: FRESHNESS });
    for (const [id, bytes] of [['photo', photo], ['small', small]] as const) {
      const answer = await uploadImage(main.url, id, bytes);
      if (answer.status !== 200) throw new Error(`uploading ${id} answered ${answer.status} ${JSON.stringify(answer.body)}`);
    }
  });
  t.teardown(() => main?.stop());

  /**
   * One more server for settings that touch separate routes (robots.txt, /token,
   * WebP opt-in), started on first use and stopped with the suite: each start
   * costs a render pool.
   */
  let configured: Promise<TestServer> | undefined;
  function configuredServer(): Promise<TestServer> {
    configured ??= start({ allow_indexing: true, secret: SECRET, 'webp.allow_opt_in': true });
    return configured;
  }
  t.teardown(() => configured?.then((server) => server.stop(), () => undefined));

  /** Starts an extra server for one test, stopped when the test ends. */
  async function extra(t: Test, overrides: Record<string, unknown>): Promise<TestServer> {
    const server = await start(overrides);
    t.teardown(() => server.stop());
    return server;
  }

  /**
   * Asserts a cache hit: locally 200 from the cache folder with `X-Cache: HIT`;
   * on S3 a 303 to `{endpoint}/{bucket}/{key}` with the redirect max-age, whose
   * target holds the bytes, and 200 with the bytes when `?proxy=true`.
   */
  async function expectHit(t: Test, ts: TestServer, path: string, key: string, bytes: Uint8Array, contentType: string, headers: Record<string, string> = {}): Promise<void> {
    const response = await get(`${ts.url}${path}`, headers);
    t.equal(response.headers.get('access-control-allow-origin'), '*', 'a hit carries CORS');
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    if (kind === 'embedded') {
      t.equal(response.status, 200, 'a local hit answers 200');
      t.equal(response.headers.get('x-cache'), 'HIT');
      t.equal(response.headers.get('content-type'), contentType);
      t.match(response.headers.get('cache-control') ?? '', /public/);
      t.ok(same(await bytesOf(response), bytes), 'the hit has the bytes of the miss');
      return;
    }
    await response.arrayBuffer();
    const s3 = ts.config.s3;
    if (!s3?.endpoint) throw new Error('the S3 suite needs aws.endpoint');
    t.equal(response.status, 303, 'an S3 hit redirects');
    const location = response.headers.get('location') ?? '';
    t.ok(location.startsWith(`${s3.endpoint}/${s3.bucket}/cache/`), `Location ${location} is under the bucket's cache/`);
    t.equal(location, `${s3.endpoint}/${s3.bucket}/${key}`, 'Location names the variant key');
    t.equal(response.headers.get('cache-control'), `max-age=${ts.config.redirectCacheTimeout}`);
    t.equal(ts.config.redirectCacheTimeout, 86400, 'the default redirect_cache_timeout');
    const target = await fetch(location);
    t.equal(target.status, 200, 'the redirect target exists in the bucket');
    t.ok(same(await bytesOf(target), bytes), 'the bucket holds the rendered bytes');
    const proxied = await get(`${ts.url}${path}${path.includes('?') ? '&' : '?'}proxy=true`, headers);
    t.equal(proxied.status, 200, '?proxy=true streams the hit');
    t.equal(proxied.headers.get('x-cache'), 'HIT');
    t.equal(proxied.headers.get('content-type'), contentType);
    t.ok(same(await bytesOf(proxied), bytes), 'the proxied hit has the bytes of the miss');
  }

  // ---- service paths ----

  t.test('answers GET /_health with 200 OK', async (t) => {
    const response = await get(`${main.url}/_health`);
    t.equal(response.status, 200);
    t.equal(await response.text(), 'OK');
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
  });

  t.test('answers GET /_health with 503 when the database is unreachable', async (t) => {
    const ts = await extra(t, {});
    t.equal((await get(`${ts.url}/_health`)).status, 200, 'healthy first');
    await ts.server.store.close();
    const response = await get(`${ts.url}/_health`);
    t.equal(response.status, 503);
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.equal((await errorOf(response)).code, 'UNAVAILABLE');
  });

  t.test('serves a robots.txt that disallows all crawling by default', async (t) => {
    const response = await get(`${main.url}/robots.txt`);
    t.equal(response.status, 200);
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const text = await response.text();
    t.match(text, /^User-agent: \*$/m);
    t.match(text, /^Disallow: \/$/m);
    t.notMatch(text, /^Allow:/m);
  });

  t.test('serves a robots.txt that allows all crawling with allow_indexing', async (t) => {
    const ts = await configuredServer();
    t.equal(ts.config.allowIndexing, true);
    const response = await get(`${ts.url}/robots.txt`);
    t.equal(response.status, 200);
    const text = await response.text();
    t.match(text, /^User-agent: \*$/m);
    t.match(text, /^Allow: \/$/m);
    t.notMatch(text, /^Disallow:/m);
  });

  t.test('answers 404 for /favicon.ico', async (t) => {
    const response = await get(`${main.url}/favicon.ico`);
    t.equal(response.status, 404);
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    await response.arrayBuffer();
  });

  t.test('answers 404 for an unknown id', async (t) => {
    for (const path of ['/nobody_100_100.jpg', '/nobody.jpg', '/nobody_100_100_2x.png?fit=crop', '/nobody_5000_5000.jpg']) {
      const response = await get(`${main.url}${path}`);
      t.equal(response.status, 404, `GET ${path}`);
      t.equal(response.headers.get('content-type'), 'application/json');
      t.equal(response.headers.get('x-content-type-options'), 'nosniff');
      const { error, code } = await errorOf(response);
      t.equal(code, 'NOT_FOUND', `GET ${path} code`);
      t.type(error, 'string');
    }
    const head = await rawRequest(main.url, { method: 'HEAD', path: '/nobody_100_100.jpg' });
    t.equal(head.status, 404, 'HEAD of an unknown id');
  });

  // ---- variants ----

  t.test('fits a variant into w x h with the default clip, and stores it after the response', async (t) => {
    const key = await cacheKey(main, { id: 'photo', width: 720, height: 720 });
    t.equal(await main.server.store.getVariant(key), null, 'not cached before');
    const before = Date.now();
    const response = await get(`${main.url}/photo_720_720.jpg`);
    t.equal(response.status, 200);
    t.equal(response.headers.get('content-type'), 'image/jpeg');
    t.equal(response.headers.get('x-cache'), 'MISS');
    t.equal(response.headers.get('access-control-allow-origin'), '*');
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.match(response.headers.get('cache-control') ?? '', /\bpublic\b/, 'Cache-Control: public');
    const expires = Date.parse(response.headers.get('expires') ?? '');
    t.ok(expires > before + YEAR_MS / 2, `a far Expires (${response.headers.get('expires')})`);
    const bytes = await bytesOf(response);
    const header = probe(bytes);
    t.same([header.format, header.width, header.height], ['jpeg', 720, 588]);
    t.ok(await stored(main, key), 'the variant reaches the cache storage and the index within 2 s');
    const record = await main.server.store.getVariant(key);
    t.same([record?.originalId, record?.width, record?.height], ['photo', 720, 588], 'the index row describes the variant');
    t.ok(same(await main.server.cache.get(key), bytes), 'the cache holds the bytes that were served');
  });

  t.test('answers a cache hit on the second request', async (t) => {
    const key = await cacheKey(main, { id: 'photo', width: 400, height: 400 });
    const miss = await get(`${main.url}/photo_400_400.jpg`);
    t.equal(miss.status, 200);
    t.equal(miss.headers.get('x-cache'), 'MISS');
    const bytes = await bytesOf(miss);
    t.ok(await stored(main, key), 'stored after the miss');
    await expectHit(t, main, '/photo_400_400.jpg', key, bytes, 'image/jpeg');
  });

  t.test('renders _{n}x at (w*n) x (h*n)', async (t) => {
    const one = probe(await bytesOf(await image(`${main.url}/photo_300_300.jpg`)));
    const two = probe(await bytesOf(await image(`${main.url}/photo_300_300_2x.jpg`)));
    const three = probe(await bytesOf(await image(`${main.url}/photo_100_100_3x.jpg?fit=crop`)));
    t.same([one.width, one.height], [300, 245], '1x');
    t.same([two.width, two.height], [600, 490], '2x doubles');
    t.same([three.width, three.height], [300, 300], '3x crop triples');
  });

  t.test('applies each fit: clip, crop, canvas and cover', async (t) => {
    const sizes: Record<string, [number, number]> = { clip: [300, 245], crop: [300, 300], canvas: [300, 300], cover: [367, 300] };
    for (const [fit, expected] of Object.entries(sizes)) {
      const response = await image(`${main.url}/photo_300_300.jpg?fit=${fit}`);
      t.equal(response.status, 200, fit);
      const header = probe(await bytesOf(response));
      t.same([header.width, header.height], expected, `fit=${fit}`);
    }
    const wide = probe(await bytesOf(await image(`${main.url}/photo_400_100.png?fit=crop`)));
    t.same([wide.format, wide.width, wide.height], ['png', 400, 100], 'crop is exact for another aspect');
    const canvas = probe(await bytesOf(await image(`${main.url}/photo_400_100.jpg?fit=canvas`)));
    t.same([canvas.width, canvas.height], [400, 100], 'canvas is exact for another aspect');
  });

  t.test('serves every extension in its format', async (t) => {
    const formats: Record<string, [UrlFormat, string]> = {
      jpg: ['jpeg', 'image/jpeg'],
      jpeg: ['jpeg', 'image/jpeg'],
      jfif: ['jpeg', 'image/jpeg'],
      jpe: ['jpeg', 'image/jpeg'],
      png: ['png', 'image/png'],
      webp: ['webp', 'image/webp'],
      avif: ['avif', 'image/avif'],
    };
    for (const [ext, [format, type]] of Object.entries(formats)) {
      const response = await image(`${main.url}/small_64_64.${ext}`);
      t.equal(response.status, 200, ext);
      t.equal(response.headers.get('content-type'), type, `.${ext} is ${type}`);
      const header = probe(await bytesOf(response));
      t.same([header.format, header.width, header.height], [format, 64, 48], `.${ext} decodes as ${format} 64x48`);
      // The aliases of one format share a cache key: let the first store land before the next asks.
      t.ok(await stored(main, await cacheKey(main, { id: 'small', width: 64, height: 64, format })), `.${ext} is cached as ${format}`);
    }
  });

  t.test('blurs slightly with blur=true', async (t) => {
    const plain = await bytesOf(await image(`${main.url}/small_320_240.png`));
    const response = await image(`${main.url}/small_320_240.png?blur=true`);
    t.equal(response.status, 200);
    const blurred = await bytesOf(response);
    const header = probe(blurred);
    t.same([header.width, header.height], [320, 240], 'same size');
    t.ok(sharpness(blurred) < sharpness(plain) * 0.7, `blurred (${sharpness(blurred).toFixed(2)}) is softer than plain (${sharpness(plain).toFixed(2)})`);
    const key = await cacheKey(main, { id: 'small', width: 320, height: 240, format: 'png', blur: main.config.blurSigma });
    t.ok(await stored(main, key), 'the blurred variant is cached under its own key');
  });

  t.test('encodes at quality 0..100 or auto, and refuses any other quality', async (t) => {
    const low = await get(`${main.url}/small_320_240.jpg?quality=10`);
    const high = await get(`${main.url}/small_320_240.jpg?quality=95`);
    const auto = await get(`${main.url}/small_320_240.jpg?quality=auto`);
    t.equal(low.status, 200);
    t.equal(high.status, 200);
    t.equal(auto.status, 200);
    const lowBytes = await bytesOf(low);
    const highBytes = await bytesOf(high);
    await auto.arrayBuffer();
    t.ok(lowBytes.byteLength < highBytes.byteLength / 2, `quality=10 (${lowBytes.byteLength} B) is much smaller than 95 (${highBytes.byteLength} B)`);
    const lowQ = probe(lowBytes).jpegQuality ?? -1;
    const highQ = probe(highBytes).jpegQuality ?? -1;
    t.ok(Math.abs(lowQ - 10) <= 3, `estimated quality ${lowQ} near 10`);
    t.ok(Math.abs(highQ - 95) <= 3, `estimated quality ${highQ} near 95`);
    for (const ext of ['webp', 'avif']) {
      const a = await get(`${main.url}/small_160_120.${ext}?quality=5`);
      const b = await get(`${main.url}/small_160_120.${ext}?quality=95`);
      t.equal(a.status, 200, `${ext} quality=5`);
      t.equal(b.status, 200, `${ext} quality=95`);
      t.ok((await bytesOf(a)).byteLength < (await bytesOf(b)).byteLength, `${ext} quality changes the bytes`);
    }
    for (const quality of ['101', '-1', 'high', '50.5']) {
      const response = await get(`${main.url}/small_320_240.jpg?quality=${quality}`);
      t.equal(response.status, 400, `quality=${quality}`);
      t.equal((await errorOf(response)).code, 'BAD_OPTION');
    }
  });

  // ---- originals ----

  t.test('serves the original at /{id}.{ext}', async (t) => {
    const response = await get(`${main.url}/photo.jpg`);
    t.equal(response.status, 200);
    t.equal(response.headers.get('content-type'), 'image/jpeg');
    t.equal(response.headers.get('access-control-allow-origin'), '*');
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.ok(same(await bytesOf(response), photo), 'the uploaded bytes, untouched');
    const jpeg = await get(`${main.url}/small.jpeg`);
    t.ok(same(await bytesOf(jpeg), small), '.jpeg names the same format');
  });

  t.test('converts the original when the extension names another format', async (t) => {
    for (const [ext, format, type] of [['png', 'png', 'image/png'], ['webp', 'webp', 'image/webp']] as const) {
      const response = await image(`${main.url}/small.${ext}`);
      t.equal(response.status, 200, ext);
      t.equal(response.headers.get('content-type'), type);
      const header = probe(await bytesOf(response));
      t.same([header.format, header.width, header.height], [format, 320, 240], `.${ext} converts at the original size`);
    }
  });

  t.test('renders the original at its size when blur or quality is given', async (t) => {
    for (const query of ['blur=true', 'quality=40']) {
      const response = await image(`${main.url}/small.jpg?${query}`);
      t.equal(response.status, 200, query);
      t.equal(response.headers.get('content-type'), 'image/jpeg');
      const bytes = await bytesOf(response);
      const header = probe(bytes);
      t.same([header.format, header.width, header.height], ['jpeg', 320, 240], `${query}: original size`);
      t.notOk(same(bytes, small), `${query}: rendered, not the stored bytes`);
    }
  });

  // ---- HEAD ----

  t.test('answers HEAD with 200, headers and no body, and renders nothing', async (t) => {
    const key = await cacheKey(main, { id: 'photo', width: 310, height: 310 });
    const completed = main.server.pool.stats().completed;
    const head = await rawRequest(main.url, { method: 'HEAD', path: '/photo_310_310.jpg' });
    t.equal(head.status, 200);
    t.equal(head.headers['content-type'], 'image/jpeg');
    t.equal(head.headers['access-control-allow-origin'], '*');
    t.equal(head.headers['x-content-type-options'], 'nosniff');
    t.equal(head.body.byteLength, 0, 'no body bytes follow the headers');
    t.ok(await notStored(main, key), 'no cache object and no index row after a HEAD');
    t.equal(main.server.pool.stats().completed, completed, 'the pool ran nothing');

    const original = await rawRequest(main.url, { method: 'HEAD', path: '/photo.jpg' });
    t.equal(original.status, 200, 'HEAD of the original');
    t.equal(original.headers['content-type'], 'image/jpeg');
    t.equal(original.headers['content-length'], String(photo.byteLength), 'HEAD reports the length of the original');
    t.equal(original.body.byteLength, 0);

    for (const path of ['/small.png', '/small_50_50_2x.webp?fit=cover', '/small.jpg?blur=true', '/photo_720_720.jpg']) {
      const answer = await rawRequest(main.url, { method: 'HEAD', path });
      t.equal(answer.status, 200, `HEAD ${path}`);
      t.equal(answer.body.byteLength, 0, `HEAD ${path}: no body`);
    }
    t.equal(main.server.pool.stats().completed, completed, 'still nothing rendered');
  });

  // ---- bounds ----

  t.test('redirects a size above the maximum to the in-bounds URL with 303 and X-Redirect-Info', async (t) => {
    const { maxWidth, maxHeight } = main.config.constraints;
    t.same([maxWidth, maxHeight], [2048, 2048], 'default bounds');
    const cases: [string, string][] = [
      ['/photo_3000_1000.jpg', '/photo_2048_682.jpg'],
      ['/photo_100_5000.jpg', '/photo_40_2048.jpg'],
      ['/photo_4096_4096.png?fit=crop', '/photo_2048_2048.png?fit=crop'],
      ['/photo_1500_500_2x.jpg', '/photo_1024_341_2x.jpg'],
    ];
    for (const [path, expected] of cases) {
      const response = await get(`${main.url}${path}`);
      await response.arrayBuffer();
      t.equal(response.status, 303, path);
      t.equal(response.headers.get('location'), expected, `${path} -> ${expected}`);
      t.ok((response.headers.get('x-redirect-info') ?? '').length > 0, `${path}: X-Redirect-Info`);
      t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    }
    const followed = await image(`${main.url}/photo_2048_682.jpg`);
    t.equal(followed.status, 200, 'the target is served');
    const header = probe(await bytesOf(followed));
    t.ok(header.width <= maxWidth && header.height <= maxHeight, `the target is in bounds (${header.width}x${header.height})`);
  });

  // ---- malformed ----

  t.test('answers 400 with a JSON error and code for a malformed path or option', async (t) => {
    const cases: [string, string][] = [
      ['/photo_0_100.jpg', 'BAD_OPTION'],
      ['/photo_100_0.jpg', 'BAD_OPTION'],
      ['/photo_1.5_100.jpg', 'BAD_OPTION'],
      ['/photo_100_200000.jpg', 'BAD_OPTION'],
      ['/photo_100_100.bmp', 'BAD_OPTION'],
      ['/photo_100_100.tiff', 'BAD_OPTION'],
      ['/photo_100_100_9x.jpg', 'BAD_OPTION'],
      ['/photo_100_100_0x.jpg', 'BAD_OPTION'],
      ['/photo_100_100.jpg?fit=stretch', 'BAD_OPTION'],
      ['/photo_100_100.jpg?fit=crop&fit=clip', 'BAD_OPTION'],
      ['/photo_100_100.jpg?blur=maybe', 'BAD_OPTION'],
      ['/photo_100_100.jpg?proxy=yes', 'BAD_OPTION'],
      ['/photo_100_100.jpg?quality=1000', 'BAD_OPTION'],
      ['/photo', 'BAD_REQUEST'],
      ['/a/photo_100_100.jpg', 'BAD_REQUEST'],
      ['/ph%2eoto_100_100.jpg', 'BAD_REQUEST'],
      ['/ph.oto_100_100.jpg', 'BAD_REQUEST'],
      [`/${'a'.repeat(129)}_100_100.jpg`, 'BAD_REQUEST'],
      [`/${'a'.repeat(300)}.jpg`, 'BAD_REQUEST'],
    ];
    for (const [path, code] of cases) {
      const response = await get(`${main.url}${path}`);
      t.equal(response.status, 400, `${path}: 400`);
      t.equal(response.headers.get('content-type'), 'application/json', `${path}: JSON`);
      t.equal(response.headers.get('x-content-type-options'), 'nosniff');
      const body = await errorOf(response);
      t.equal(body.code, code, `${path}: ${code}`);
      t.ok(typeof body.error === 'string' && body.error.length > 0, `${path}: an error message`);
    }
  });

  t.test('parses ids from the right, so ids may contain underscores', async (t) => {
    const bytes = photoJpeg(200, 100, 90, 9);
    const answer = await uploadImage(main.url, 'my_photo', bytes);
    t.equal(answer.status, 200);
    t.equal(answer.body.id, 'my_photo');
    const variant = await get(`${main.url}/my_photo_100_100.jpg`);
    t.equal(variant.status, 200, 'my_photo_100_100.jpg is my_photo at 100x100');
    const header = probe(await bytesOf(variant));
    t.same([header.width, header.height], [100, 50]);
    const retina = probe(await bytesOf(await image(`${main.url}/my_photo_50_50_2x.jpg`)));
    t.same([retina.width, retina.height], [100, 50], 'my_photo_50_50_2x.jpg');
    t.ok(same(await bytesOf(await get(`${main.url}/my_photo.jpg`)), bytes), 'my_photo.jpg is the original');
    t.equal((await get(`${main.url}/my_100_100.jpg`)).status, 404, 'my is another id');

    const long = `${'x'.repeat(120)}-_A9zZ00`;
    t.equal(long.length, 128);
    const upload = await uploadImage(main.url, long, bytes, { ext: null });
    t.equal(upload.status, 200, 'a 128-character id is accepted');
    const longVariant = await get(`${main.url}/${long}_20_20.jpg`);
    t.equal(longVariant.status, 200);
    await longVariant.arrayBuffer();
  });

  // ---- freshness ----

  t.test('renders fresh and stores nothing when freshness-token matches', async (t) => {
    const key = await cacheKey(main, { id: 'photo', width: 500, height: 500 });
    const fresh = await get(`${main.url}/photo_500_500.jpg`, { 'freshness-token': FRESHNESS });
    t.equal(fresh.status, 200);
    t.equal(fresh.headers.get('x-cache'), 'FRESH');
    const header = probe(await bytesOf(fresh));
    t.same([header.width, header.height], [500, 408]);
    t.ok(await notStored(main, key), 'nothing stored');

    const miss = await get(`${main.url}/photo_500_500.jpg`);
    t.equal(miss.headers.get('x-cache'), 'MISS', 'a normal request then renders: nothing was cached');
    const bytes = await bytesOf(miss);
    t.ok(await stored(main, key));

    const again = await get(`${main.url}/photo_500_500.jpg`, { 'freshness-token': FRESHNESS });
    t.equal(again.status, 200, 'a cached variant is rendered fresh too (no redirect)');
    t.equal(again.headers.get('x-cache'), 'FRESH', 'the cache lookup is skipped');
    await again.arrayBuffer();

    const wrong = await get(`${main.url}/photo_500_500.jpg`, { 'freshness-token': 'guess' });
    t.not(wrong.headers.get('x-cache'), 'FRESH', 'a wrong freshness-token changes nothing');
    await wrong.arrayBuffer();
    await expectHit(t, main, '/photo_500_500.jpg', key, bytes, 'image/jpeg');
  });

  // ---- tokens ----

  t.test('issues a token for an id with POST /token', async (t) => {
    const { status, body, response } = await requestToken(main.url, 'token-one');
    t.equal(status, 200);
    t.equal(response.headers.get('content-type'), 'application/json');
    t.equal(response.headers.get('x-content-type-options'), 'nosniff');
    t.match(body.token, /^[0-9a-f]{64}$/);
  });

  t.test('answers 403 to a second token request for the same id', async (t) => {
    t.equal((await requestToken(main.url, 'token-twice')).status, 200);
    const second = await requestToken(main.url, 'token-twice');
    t.equal(second.status, 403);
    t.equal(second.body.code, 'FORBIDDEN');
    const uploaded = await requestToken(main.url, 'photo');
    t.equal(uploaded.status, 403, 'an id with an original');
    t.equal(uploaded.body.code, 'FORBIDDEN');
  });

  t.test('answers 400 to a token request with a missing or invalid id', async (t) => {
    for (const id of [undefined, '', 'a/b', 'a.b', 5, 'x'.repeat(129), ['a']]) {
      const { status, body } = await requestToken(main.url, id);
      t.equal(status, 400, `id ${JSON.stringify(id)}`);
      t.equal(body.code, 'BAD_REQUEST');
    }
    for (const raw of ['not json', '[1]', 'null']) {
      const response = await fetch(`${main.url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: raw });
      t.equal(response.status, 400, `body ${raw}`);
      t.equal((await errorOf(response)).code, 'BAD_REQUEST');
    }
  });

  t.test('answers 401 to a token request without the configured secret', async (t) => {
    const ts = await configuredServer();
    t.equal(ts.config.secret, SECRET);
    const id = unique('secret');
    const missing = await requestToken(ts.url, id);
    t.equal(missing.status, 401, 'no secret');
    t.equal(missing.body.code, 'UNAUTHORIZED');
    const wrong = await requestToken(ts.url, id, { secret: `${SECRET}!` });
    t.equal(wrong.status, 401, 'wrong secret');
    t.equal(wrong.body.code, 'UNAUTHORIZED');
    const empty = await requestToken(ts.url, id, { secret: '' });
    t.equal(empty.status, 401, 'empty secret');
    const right = await requestToken(ts.url, id, { secret: SECRET });
    t.equal(right.status, 200, 'the right secret');
    t.match(right.body.token, /^[0-9a-f]{64}$/);
    const upload = await uploadImage(ts.url, id, small, { token: String(right.body.token) });
    t.equal(upload.status, 200, 'the token uploads');
    const again = await requestToken(ts.url, id, { secret: SECRET });
    t.equal(again.status, 403, 'the id was already requested');
  });

  // ---- uploads ----

  t.test('uploads with a token and stores the original durably before the 200', async (t) => {
    const id = unique('upload');
    const answer = await uploadImage(main.url, id, small);
    t.equal(answer.status, 200);
    t.equal(answer.response.headers.get('content-type'), 'application/json');
    t.equal(answer.response.headers.get('x-content-type-options'), 'nosniff');
    t.same(answer.body, { status: 'OK', id, original_width: 320, original_height: 240 });
    const key = (await originalKeyOf(main.server, id)) ?? '';
    t.ok(await main.server.originals.exists(key), 'the original is in the originals storage right after the 200');
    t.ok(same(await main.server.originals.get(key), small), 'byte for byte');
    const record = await main.server.store.getOriginal(id);
    t.same([record?.width, record?.height], [320, 240], 'and recorded in the store');
    const variant = await get(`${main.url}/${id}_32_32.jpg`);
    t.equal(variant.status, 200, 'and served');
    await variant.arrayBuffer();

    const bare = unique('bare');
    const png = alphaPng();
    const plain = await uploadImage(main.url, bare, png, { ext: null, type: 'image/png', filename: 'a.png' });
    t.equal(plain.status, 200, 'POST /{id} without an extension');
    t.same(plain.body, { status: 'OK', id: bare, original_width: 40, original_height: 40 });
    const asPng = probe(await bytesOf(await image(`${main.url}/${bare}_20_20.png`)));
    t.same([asPng.format, asPng.width, asPng.height, asPng.hasAlpha], ['png', 20, 20, true], 'a PNG variant keeps transparency');
  });

  t.test('accepts an upload whose whole body arrived while its token was being checked', async (t) => {
    const ts = await extra(t, {});
    // A slow store: the body is in before the token is known to be good, and must be parsed from what was held.
    const store = ts.server.store;
    const consume = store.consumeToken.bind(store);
    store.consumeToken = async (...args) => {
      await sleep(200);
      return consume(...args);
    };
    const id = unique('slow');
    const answer = await uploadImage(ts.url, id, small);
    t.equal(answer.status, 200, JSON.stringify(answer.body));
    t.same([(await store.getOriginal(id))?.width, (await store.getOriginal(id))?.height], [320, 240], 'recorded');
  });

  t.test('applies the EXIF orientation of an upload', async (t) => {
    const id = unique('oriented');
    const answer = await uploadImage(main.url, id, orientedJpeg(6));
    t.equal(answer.status, 200);
    t.same([answer.body.original_width, answer.body.original_height], [96, 64], 'the displayed size');
    const header = probe(await bytesOf(await image(`${main.url}/${id}_48_48.jpg`)));
    t.same([header.width, header.height], [48, 32]);
  });

  t.test('answers 403 to an upload with a token for another id', async (t) => {
    const id = unique('mine');
    const other = unique('theirs');
    const issued = await requestToken(main.url, id);
    const token = String(issued.body.token);
    const response = await postImage(main.url, other, token, small);
    t.equal(response.status, 403);
    t.equal((await errorOf(response)).code, 'BAD_TOKEN');
    t.equal(await main.server.store.getOriginal(other), null, 'nothing stored for the other id');
    const own = await uploadImage(main.url, id, small, { token });
    t.equal(own.status, 200, 'the token still works for its own id');
  });

  t.test('answers 403 to an upload with a used token', async (t) => {
    const id = unique('used');
    const first = await uploadImage(main.url, id, small);
    t.equal(first.status, 200);
    const second = await uploadImage(main.url, id, photoJpeg(64, 64), { token: first.token });
    t.equal(second.status, 403);
    t.equal(second.body.code, 'BAD_TOKEN');
    t.ok(same(await main.server.originals.get((await originalKeyOf(main.server, id)) ?? ''), small), 'the original is unchanged');
  });

  t.test('answers 403 to an upload with a missing, malformed or unknown token', async (t) => {
    const id = unique('tokenless');
    for (const token of ['', 'abc', 'g'.repeat(64), 'a'.repeat(64)]) {
      const response = await postImage(main.url, id, token, small);
      t.equal(response.status, 403, `X-Token ${JSON.stringify(token.slice(0, 8))}`);
      t.equal((await errorOf(response)).code, 'BAD_TOKEN');
    }
    const form = new FormData();
    form.append('image', new Blob([small], { type: 'image/jpeg' }), 'a.jpg');
    const none = await fetch(`${main.url}/${id}.jpg`, { method: 'POST', body: form });
    t.equal(none.status, 403, 'no X-Token header');
    t.equal((await errorOf(none)).code, 'BAD_TOKEN');
  });

  t.test('answers 403 to an upload with an expired token', async (t) => {
    const ts = await extra(t, { token_ttl_seconds: 1 });
    const id = unique('expired');
    const issued = await requestToken(ts.url, id);
    t.equal(issued.status, 200);
    await sleep(1_200);
    const response = await postImage(ts.url, id, String(issued.body.token), small);
    t.equal(response.status, 403);
    t.equal((await errorOf(response)).code, 'BAD_TOKEN');
  });

  t.test('answers 400 to an upload without an image part, and the token stays usable', async (t) => {
    const id = unique('partless');
    const issued = await requestToken(main.url, id);
    const token = String(issued.body.token);
    const fields = new FormData();
    fields.append('title', 'no image here');
    const empty = await fetch(`${main.url}/${id}.jpg`, { method: 'POST', headers: { 'X-Token': token }, body: fields });
    t.equal(empty.status, 400, 'only a text field');
    t.equal((await errorOf(empty)).code, 'NO_IMAGE_PART');
    const misnamed = await postImage(main.url, id, token, small, { field: 'file' });
    t.equal(misnamed.status, 400, 'a file part not named image');
    const code = (await errorOf(misnamed)).code;
    t.ok(code === 'NO_IMAGE_PART' || code === 'BAD_REQUEST', `code ${String(code)}`);
    const notMultipart = await fetch(`${main.url}/${id}.jpg`, { method: 'POST', headers: { 'X-Token': token, 'Content-Type': 'image/jpeg' }, body: small });
    t.equal(notMultipart.status, 400, 'a raw body, not multipart');
    await notMultipart.arrayBuffer();
    const retry = await uploadImage(main.url, id, small, { token });
    t.equal(retry.status, 200, 'the token uploads afterwards');
  });

  t.test('answers 413 to an image over the megapixel limit', async (t) => {
    const id = unique('bomb');
    const answer = await uploadImage(main.url, id, pngDeclaring(100_000, 100_000), { type: 'image/png' });
    t.equal(answer.status, 413);
    t.equal(answer.body.code, 'TOO_MANY_PIXELS');
    t.equal(await main.server.store.getOriginal(id), null, 'nothing recorded');
  });

  t.test('answers 415 to a payload that is not an accepted image format', async (t) => {
    const id = unique('hostile');
    const issued = await requestToken(main.url, id);
    const token = String(issued.body.token);
    for (const name of ['svg', 'mvg', 'msl', 'pdf', 'psd', 'heic', 'text'] as const) {
      const answer = await uploadImage(main.url, id, hostile[name], { token });
      t.equal(answer.status, 415, `${name} named .jpg`);
      t.equal(answer.body.code, 'UNSUPPORTED_FORMAT', `${name}: UNSUPPORTED_FORMAT`);
    }
    const cut = await uploadImage(main.url, id, truncated(photoJpeg(400, 300)), { token });
    t.equal(cut.status, 415, 'a truncated JPEG');
    t.equal(cut.body.code, 'CORRUPT_IMAGE');
    t.equal(await main.server.store.getOriginal(id), null, 'nothing recorded');
    t.same(await originalObjects(main.server, id), [], 'nothing stored');
    const good = await uploadImage(main.url, id, small, { token });
    t.equal(good.status, 200, 'a failed upload leaves the token usable');
  });

  t.test('crops the original on upload with x, y, width and height', async (t) => {
    const id = unique('cropped');
    const answer = await uploadImage(main.url, id, halvesPng(200, 100), { query: 'x=100&y=10&width=100&height=80', type: 'image/png', filename: 'a.png' });
    t.equal(answer.status, 200);
    t.same(answer.body, { status: 'OK', id, original_width: 100, original_height: 80 });
    const original = await get(`${main.url}/${id}.png`);
    t.equal(original.status, 200);
    const image = decode(await bytesOf(original));
    t.same([image.width, image.height], [100, 80], 'the stored original is the crop');
    for (const [x, y] of [[0, 0], [99, 0], [0, 79], [99, 79], [50, 40]] as const) {
      t.same(image.at(x, y).slice(0, 3), [0, 0, 255], `pixel ${x},${y} is from the blue half`);
    }
    const partial = await uploadImage(main.url, unique('partial'), small, { query: 'x=1&y=1' });
    t.equal(partial.status, 400, 'a crop needs all four values');
    t.equal(partial.body.code, 'BAD_OPTION');
  });

  // ---- WebP negotiation ----

  t.test('switches to WebP for clients that accept it with webp.allow_dynamic_switch', async (t) => {
    const ts = await extra(t, { 'webp.allow_dynamic_switch': true });
    const id = unique('webp');
    t.equal((await uploadImage(ts.url, id, small)).status, 200);
    const webpAccept = { Accept: 'image/avif,image/webp,image/*,*/*;q=0.8' };
    const jpegAccept = { Accept: 'image/jpeg,image/*;q=0.8' };
    const path = `/${id}_100_100.jpg`;

    const webp = await get(`${ts.url}${path}`, webpAccept);
    t.equal(webp.status, 200);
    t.equal(webp.headers.get('content-type'), 'image/webp', 'Accept with image/webp gets WebP');
    t.match(webp.headers.get('vary') ?? '', /\bAccept\b/i, 'Vary: Accept');
    const webpBytes = await bytesOf(webp);
    t.equal(probe(webpBytes).format, 'webp');

    const jpeg = await get(`${ts.url}${path}`, jpegAccept);
    t.equal(jpeg.status, 200);
    t.equal(jpeg.headers.get('content-type'), 'image/jpeg', 'Accept without image/webp gets the extension format');
    t.match(jpeg.headers.get('vary') ?? '', /\bAccept\b/i, 'Vary: Accept');
    const jpegBytes = await bytesOf(jpeg);
    t.equal(probe(jpegBytes).format, 'jpeg');

    const webpKey = await cacheKey(ts, { id, width: 100, height: 100, format: 'webp' });
    const jpegKey = await cacheKey(ts, { id, width: 100, height: 100, format: 'jpeg' });
    t.not(webpKey, jpegKey);
    t.ok(await stored(ts, webpKey), 'the WebP rendering is cached');
    t.ok(await stored(ts, jpegKey), 'the JPEG rendering is cached separately');
    await expectHit(t, ts, path, webpKey, webpBytes, 'image/webp', webpAccept);
    await expectHit(t, ts, path, jpegKey, jpegBytes, 'image/jpeg', jpegAccept);
    const hit = await get(`${ts.url}${path}`, webpAccept);
    t.match(hit.headers.get('vary') ?? '', /\bAccept\b/i, 'a hit varies by Accept too');
    await hit.arrayBuffer();

    const png = await image(`${ts.url}/${id}_100_100.png`, webpAccept);
    t.equal(png.headers.get('content-type'), 'image/webp', 'a .png URL switches too');
    await png.arrayBuffer();
  });

  t.test('switches to WebP only with allow_webp=true under webp.allow_opt_in', async (t) => {
    const ts = await configuredServer();
    t.equal(ts.config.webp.allowOptIn, true);
    const id = unique('optin');
    t.equal((await uploadImage(ts.url, id, small, { secret: SECRET })).status, 200);
    const accept = { Accept: 'image/webp,*/*' };
    const plain = await get(`${ts.url}/${id}_80_80.jpg`, accept);
    t.equal(plain.headers.get('content-type'), 'image/jpeg', 'no opt-in: the extension format');
    await plain.arrayBuffer();
    const opted = await get(`${ts.url}/${id}_80_80.jpg?allow_webp=true`, accept);
    t.equal(opted.headers.get('content-type'), 'image/webp', 'opted in: WebP');
    t.match(opted.headers.get('vary') ?? '', /\bAccept\b/i);
    await opted.arrayBuffer();
  });

  t.test('never switches formats without a WebP setting', async (t) => {
    const response = await get(`${main.url}/small_90_90.jpg?allow_webp=true`, { Accept: 'image/webp,*/*' });
    t.equal(response.headers.get('content-type'), 'image/jpeg');
    t.equal(response.headers.get('vary'), null, 'no Vary without negotiation');
    await response.arrayBuffer();
  });
  // ---- last: a failure here has taken the whole process down before (see the report) ----

  t.test('answers 413 to an upload over max_upload_bytes', async (t) => {
    const ts = await extra(t, { max_upload_bytes: 200_000 });
    t.ok(photo.byteLength > 200_000, `the photo (${photo.byteLength} B) is over the limit`);
    const id = unique('toolarge');
    const issued = await requestToken(ts.url, id);
    const token = String(issued.body.token);

    // A declared length over the limit is refused before any body byte is read.
    const declared = await rawRequest(ts.url, {
      method: 'POST',
      path: `/${id}.jpg`,
      headers: { 'X-Token': token, 'Content-Type': 'multipart/form-data; boundary=x', 'Content-Length': String(photo.byteLength + 200) },
    });
    t.equal(declared.status, 413, 'declared Content-Length over the limit');
    t.equal(declared.headers['x-content-type-options'], 'nosniff');
    t.equal((JSON.parse(declared.body.toString('utf8')) as { code?: string }).code, 'PAYLOAD_TOO_LARGE');

    // A body that streams past the limit (chunked: no declared length).
    const form = multipart([PHOTO_PART(photo)]);
    const streamed = await rawRequest(ts.url, {
      method: 'POST',
      path: `/${id}.jpg`,
      headers: { 'X-Token': token, 'Content-Type': form.contentType, 'Transfer-Encoding': 'chunked' },
      // One chunk holding the whole form.
      body: chunked(form.body, form.body.byteLength),
    });
    t.equal(streamed.status, 413, 'a streamed body over the limit');

    const small413 = await uploadImage(ts.url, id, small, { token });
    t.equal(small413.status, 200, 'the token still uploads an image under the limit');
  });

  t.test('keeps serving after a client aborts an upload midway, and the token stays usable', async (t) => {
    const id = unique('aborted');
    const issued = await requestToken(main.url, id);
    const token = String(issued.body.token);
    const form = multipart([PHOTO_PART(photo)]);
    await abortedRequest(main.url, {
      method: 'POST',
      path: `/${id}.jpg`,
      headers: { 'X-Token': token, 'Content-Type': form.contentType },
      body: form.body,
      sendBytes: Math.floor(form.body.byteLength / 3),
    });
    t.equal((await get(`${main.url}/_health`)).status, 200, 'the server still answers');
    t.equal(await main.server.store.getOriginal(id), null, 'nothing recorded');
    const retry = await uploadImage(main.url, id, small, { token });
    t.equal(retry.status, 200, 'the token uploads afterwards');
  });
}
