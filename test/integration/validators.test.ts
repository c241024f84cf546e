/**
 * Validators over HTTP (embedded defaults: SQLite, local folders): every
 * image answer carries a strong ETag and Last-Modified; If-None-Match (lists,
 * `*`, weak forms) and If-Modified-Since answer 304 with no body and no
 * render; a re-upload after DELETE is a new version with a new ETag. Renders
 * are counted through the server's events.
 */
import t from 'tap';
import { NO_EVENTS } from '../../src/images/types.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { eventually } from '../helpers/timing.js';
import { get, uploadImage } from '../helpers/http.js';
import { rawRequest } from '../helpers/wire.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';
import { variantKeyOf } from '../helpers/stored.js';

const SECRET = 'validators-secret';
let renders = 0;
let ts!: TestServer;
t.before(async () => {
  ts = await startTestServer({ secret: SECRET, 'formats.auto': 'webp' }, {}, { events: { ...NO_EVENTS, render: () => void renders++ } });
});
t.teardown(() => ts?.stop());

async function upload(id: string, seed = 1): Promise<void> {
  const answer = await uploadImage(ts.url, id, photoJpeg(160, 120, 90, seed), { secret: SECRET });
  if (answer.status !== 200) throw new Error(`upload of ${id} answered ${answer.status} ${JSON.stringify(answer.body)}`);
}

/** A GET read to its end: status, headers and body length. */
async function fetched(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; bytes: number }> {
  const response = await get(`${ts.url}${path}`, headers);
  return { status: response.status, headers: response.headers, bytes: (await response.arrayBuffer()).byteLength };
}

/** Waits until the JPEG variant `side`x`side` of `id` is in the render index (a miss is stored after its answer). */
async function stored(id: string, side: number, format: 'jpeg' | 'webp' = 'jpeg'): Promise<boolean> {
  const key = await variantKeyOf(ts.server, { id, width: side, height: side, fit: 'clip', quality: 'auto', blur: 0, format });
  return eventually(async () => (await ts.server.store.getVariant(key)) !== null, 10_000);
}

const STRONG = /^"[A-Za-z0-9_-]{10,}"$/;

t.test('answers 304 with no body to a revalidation of a hit', async (t) => {
  const id = unique('hit');
  await upload(id);
  const path = `/${id}_64_64.jpg`;
  await fetched(path);
  t.ok(await stored(id, 64));
  const hit = await fetched(path);
  t.equal(hit.headers.get('x-cache'), 'HIT');
  const etag = hit.headers.get('etag') ?? '';
  t.match(etag, STRONG, 'a strong ETag');
  t.ok(hit.headers.get('last-modified'), 'and Last-Modified');
  const before = renders;
  const again = await fetched(path, { 'If-None-Match': etag });
  t.equal(again.status, 304);
  t.equal(again.bytes, 0, 'no body');
  t.equal(again.headers.get('etag'), etag);
  t.equal(again.headers.get('cache-control'), 'public, max-age=31536000');
  t.equal(again.headers.get('content-type'), null);
  const raw = await rawRequest(ts.url, { method: 'GET', path, headers: { 'If-None-Match': etag } });
  t.equal(raw.status, 304);
  t.equal(raw.headers['content-length'], undefined, 'no Content-Length: 0 standing for the 200 it replaces');
  t.equal(raw.body.byteLength, 0);
  t.equal(renders, before, 'no render');
});

t.test('a miss carries the ETag that its later revalidation matches', async (t) => {
  const id = unique('miss');
  await upload(id);
  const path = `/${id}_50_50.jpg`;
  const miss = await fetched(path);
  t.equal(miss.headers.get('x-cache'), 'MISS');
  const etag = miss.headers.get('etag') ?? '';
  t.match(etag, STRONG);
  t.ok(await stored(id, 50));
  const before = renders;
  const revalidated = await fetched(path, { 'If-None-Match': `"elsewhere", ${etag}` });
  t.equal(revalidated.status, 304, 'a list holding the ETag matches');
  t.equal(revalidated.bytes, 0);
  t.equal((await fetched(path, { 'If-None-Match': `W/${etag}` })).status, 304, 'a weak form of it matches too');
  t.equal((await fetched(path, { 'If-None-Match': '*' })).status, 304, '* matches any stored version');
  t.equal((await fetched(path, { 'If-None-Match': '"other"' })).status, 200, 'another ETag gets the image');
  t.equal(renders, before, 'none of them rendered');
});

t.test('If-Modified-Since answers 304 from Last-Modified on, 200 before it', async (t) => {
  const id = unique('since');
  await upload(id);
  const path = `/${id}_40_40.jpg`;
  const first = await fetched(path);
  t.ok(await stored(id, 40));
  const lastModified = first.headers.get('last-modified') ?? '';
  t.equal((await fetched(path, { 'If-Modified-Since': lastModified })).status, 304);
  t.equal((await fetched(path, { 'If-Modified-Since': new Date(Date.parse(lastModified) - 60_000).toUTCString() })).status, 200);
  t.equal((await fetched(path, { 'If-Modified-Since': lastModified, 'If-None-Match': '"other"' })).status, 200, 'If-None-Match decides when both are sent');
});

t.test('an original gives 304 with no body, and HEAD carries the same validators', async (t) => {
  const id = unique('original');
  await upload(id);
  const original = await fetched(`/${id}.jpg`);
  t.equal(original.status, 200);
  const etag = original.headers.get('etag') ?? '';
  t.match(etag, STRONG);
  t.equal(original.headers.get('last-modified'), (await ts.server.store.getOriginal(id))?.uploadedAt.toUTCString());
  const revalidated = await fetched(`/${id}.jpg`, { 'If-None-Match': etag });
  t.equal(revalidated.status, 304);
  t.equal(revalidated.bytes, 0);
  const head = await rawRequest(ts.url, { method: 'HEAD', path: `/${id}.jpg` });
  t.equal(head.headers.etag, etag, 'HEAD of the original');
  const variant = await fetched(`/${id}_30_30.jpg`);
  t.ok(await stored(id, 30));
  const variantHead = await rawRequest(ts.url, { method: 'HEAD', path: `/${id}_30_30.jpg` });
  t.equal(variantHead.status, 200);
  t.equal(variantHead.headers.etag, variant.headers.get('etag'), 'HEAD of a stored variant');
  t.equal(variantHead.headers['last-modified'], variant.headers.get('last-modified') ?? undefined);
  const headRevalidated = await rawRequest(ts.url, { method: 'HEAD', path: `/${id}_30_30.jpg`, headers: { 'If-None-Match': variant.headers.get('etag') ?? '' } });
  t.equal(headRevalidated.status, 304);
});

t.test('a negotiated variant has its own ETag, and the answer still varies by Accept on a 304', async (t) => {
  const id = unique('negotiated');
  await upload(id);
  const path = `/${id}_64_64.jpg`;
  const jpeg = await fetched(path, { Accept: '*/*' });
  const webp = await fetched(path, { Accept: 'image/webp,*/*' });
  t.equal(webp.headers.get('content-type'), 'image/webp');
  t.ok(await stored(id, 64, 'webp'));
  t.not(webp.headers.get('etag'), jpeg.headers.get('etag'), 'one ETag per stored variant');
  const asJpeg = await fetched(path, { Accept: '*/*', 'If-None-Match': webp.headers.get('etag') ?? '' });
  t.equal(asJpeg.status, 200, "the WebP's ETag does not revalidate the JPEG");
  const asWebp = await fetched(path, { Accept: 'image/webp,*/*', 'If-None-Match': webp.headers.get('etag') ?? '' });
  t.equal(asWebp.status, 304);
  t.equal(asWebp.headers.get('vary'), 'Accept');
});

t.test('a changed image (re-uploaded after DELETE) gives 200 with a new ETag', async (t) => {
  const id = unique('changed');
  await upload(id, 1);
  const path = `/${id}_64_64.jpg`;
  const before = (await fetched(path)).headers.get('etag') ?? '';
  const originalBefore = (await fetched(`/${id}.jpg`)).headers.get('etag') ?? '';
  const deleted = await fetch(`${ts.url}/${id}`, { method: 'DELETE', headers: { 'X-Secret': SECRET } });
  t.equal(deleted.status, 200);
  await upload(id, 2);
  const after = await fetched(path, { 'If-None-Match': before });
  t.equal(after.status, 200);
  t.ok(after.bytes > 0);
  t.not(after.headers.get('etag'), before, 'a new ETag for the new image');
  const original = await fetched(`/${id}.jpg`, { 'If-None-Match': originalBefore });
  t.equal(original.status, 200, 'the original too');
  t.not(original.headers.get('etag'), originalBefore);
});
