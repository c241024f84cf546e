/**
 * The client helper in a real browser: headless Chromium (Debian's
 * /usr/bin/chromium) driven by playwright-core loads a small page served by
 * this test from its own origin, which builds image URLs with `imageUrl` and
 * `srcset` from the compiled client module and loads them cross-origin from
 * an iaas server whose render cache is S3 (s3rver), so cache hits are 303s
 * to another origin again; and shows a placeholder from GET /{id}.json,
 * swapped for the image on load, with only the client helper.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { CHROMIUM, CHROMIUM_FLAGS, loadPlaywright, openPage as openRecordedPage, type PwContext, type PwPage } from '../helpers/browser.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { startS3rver, S3RVER_CREDENTIALS, type RunningS3rver } from '../helpers/s3.js';
import { uploadImage } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';

/** What the page's `loadImage` reports. */
interface Loaded {
  ok: boolean;
  naturalWidth: number;
  naturalHeight: number;
  currentSrc: string;
  /** The decoded bitmap's size in device pixels (fetched again with CORS), when asked for. */
  pixels?: { width: number; height: number };
}

/** The compiled client module and the grammar it imports, from the same build as this file. */
const CLIENT_FILES: Record<string, string> = {
  '/js/client/index.js': fileURLToPath(new URL('../../src/client/index.js', import.meta.url)),
  '/js/options/grammar.js': fileURLToPath(new URL('../../src/options/grammar.js', import.meta.url)),
};

/**
 * The page: it exposes `loadImage` (an <img> with the given attributes, its
 * natural size once loaded) and `uploadFrom` (a token from /token, then a
 * multipart upload with fetch + FormData), and the client helper itself.
 */
const PAGE = `<!doctype html>
<html>
<head><meta charset="utf-8"><title>iaas client</title></head>
<body>
<script type="module">
  import { imageInfo, imageUrl, srcset } from '/js/client/index.js';
  window.iaas = { imageUrl, srcset };

  // A placeholder from GET /{id}.json (the LQIP, on the dominant colour), swapped for the image once it loads.
  window.placeholderSwap = async (base, id, width, height) => {
    const seen = [];
    const note = (img, stage) => seen.push({ stage, currentSrc: img.currentSrc, naturalWidth: img.naturalWidth, complete: img.complete });
    const info = await imageInfo(base, id);
    const img = document.createElement('img');
    img.width = width;
    img.height = height;
    img.style.backgroundColor = info.dominant;
    img.src = info.lqip;
    document.body.append(img);
    await img.decode();
    note(img, 'placeholder');
    const full = new Image();
    full.crossOrigin = 'anonymous';
    const url = imageUrl(base, id, { width, height, fit: 'crop' });
    await new Promise((resolve, reject) => {
      full.addEventListener('load', resolve);
      full.addEventListener('error', reject);
      full.src = url;
    });
    note(img, 'still the placeholder while the image loaded');
    img.src = full.src;
    await img.decode();
    note(img, 'swapped');
    return { info, url, seen };
  };

  window.loadImage = (attributes, measurePixels) => new Promise((resolve) => {
    const img = document.createElement('img');
    const done = async (ok) => {
      const result = { ok, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, currentSrc: img.currentSrc };
      if (ok && measurePixels) {
        const blob = await (await fetch(img.currentSrc, { mode: 'cors' })).blob();
        const bitmap = await createImageBitmap(blob);
        result.pixels = { width: bitmap.width, height: bitmap.height };
        bitmap.close();
      }
      resolve(result);
    };
    img.addEventListener('load', () => void done(true));
    img.addEventListener('error', () => void done(false));
    for (const [name, value] of Object.entries(attributes)) img.setAttribute(name, value);
    document.body.append(img);
  });

  window.uploadFrom = async (apiBase, id) => {
    const tokenAnswer = await fetch(apiBase + '/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ id }),
    });
    const issued = await tokenAnswer.json();
    if (tokenAnswer.status !== 200) return { tokenStatus: tokenAnswer.status, body: issued };
    const image = await (await fetch('/fixture.jpg')).blob();
    const form = new FormData();
    form.append('image', image, id + '.jpg');
    const answer = await fetch(apiBase + '/' + id + '.jpg', { method: 'POST', headers: { 'X-Token': issued.token }, body: form });
    return { tokenStatus: tokenAnswer.status, status: answer.status, body: await answer.json() };
  };
  window.ready = true;
</script>
</body>
</html>
`;

/** Calls a function the page defined on window. */
function call<R>(page: PwPage, name: string, ...args: unknown[]): Promise<R> {
  return page.evaluate(
    ([fn, list]) => (globalThis as unknown as Record<string, (...values: unknown[]) => R>)[fn]?.(...list) as R,
    [name, args] as [string, unknown[]],
  );
}

/** The page's server: the page, the client modules, a fixture, and (for browsers without CORS on iaas) a same-origin proxy under /iaas. */
async function startPageServer(iaasUrl: string, fixture: Uint8Array): Promise<{ url: string; proxied: () => number; stop(): Promise<void> }> {
  const upstream = new URL(iaasUrl);
  let proxied = 0;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/iaas/')) {
      proxied++;
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: url.slice('/iaas'.length), headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.writeHead(502).end());
      req.pipe(forward);
      return;
    }
    if (url === '/' || url === '/index.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    if (url === '/fixture.jpg') {
      res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(fixture);
      return;
    }
    const file = CLIENT_FILES[url];
    if (file) {
      readFile(file).then(
        (body) => res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(body),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    proxied: () => proxied,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** True when iaas answers a browser's CORS preflight for POST /token and an upload. */
async function iaasAllowsCors(iaasUrl: string, origin: string): Promise<boolean> {
  const preflight = async (path: string, headers: string) => {
    const response = await fetch(`${iaasUrl}${path}`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': headers },
    });
    await response.arrayBuffer();
    const allowOrigin = response.headers.get('access-control-allow-origin');
    const allowHeaders = (response.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    return response.ok && (allowOrigin === '*' || allowOrigin === origin) && headers.split(',').every((name) => allowHeaders === '*' || allowHeaders.includes(name));
  };
  return (await preflight('/token', 'content-type')) && (await preflight('/cors-check.jpg', 'x-token'));
}

const { playwright, missing } = await loadPlaywright();

if (!playwright) {
  t.comment(`skipping the browser tests: ${missing}`);
  t.plan(0, missing);
} else {
  const pw = playwright;
  let s3: RunningS3rver;
  let iaas: TestServer;
  let pageServer: Awaited<ReturnType<typeof startPageServer>>;
  let context: PwContext;
  let userDataDir: string;
  const id = unique('browser');
  const fixture = photoJpeg(400, 300);

  t.before(async () => {
    s3 = await startS3rver({ bucket: unique('iaas-browser') });
    iaas = await startTestServer({
      'webp.allow_dynamic_switch': true,
      'aws.bucket': s3.bucket,
      'aws.endpoint': s3.endpoint,
      'aws.access_key': S3RVER_CREDENTIALS.accessKeyId,
      'aws.secret_key': S3RVER_CREDENTIALS.secretAccessKey,
      'aws.region': S3RVER_CREDENTIALS.region,
    });
    const uploaded = await uploadImage(iaas.url, id, fixture);
    if (uploaded.status !== 200) throw new Error(`the fixture upload answered ${uploaded.status}`);
    pageServer = await startPageServer(iaas.url, photoJpeg(64, 48, 90, 2));
    userDataDir = await mkdtemp(path.join(tmpdir(), 'iaas-chromium-'));
    context = await pw.chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      deviceScaleFactor: 2,
      viewport: { width: 800, height: 600 },
      timeout: 120_000,
    });
  });

  t.teardown(async () => {
    await context?.close().catch(() => {});
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    await pageServer?.stop();
    await iaas?.stop();
    await s3?.stop();
  });

  /** A fresh page of the test's origin, with every response it sees recorded and page errors reported. */
  const openPage = (t: Test) => openRecordedPage(t, context, pageServer.url, { reportErrors: true });

  t.test('at device scale factor 2 an <img srcset> built with srcset() loads the 2x variant', async (t) => {
    const { page, responses } = await openPage(t);
    const set = await page.evaluate(([base, image]) => (globalThis as unknown as { iaas: { srcset(b: string, i: string, o: object): string } }).iaas.srcset(base, image, { width: 100, height: 75 }), [iaas.url, id] as const);
    t.match(set, `${id}_100_75_2x.jpg 2x`, 'the srcset has a 2x candidate');
    const loaded = await call<Loaded>(page, 'loadImage', { srcset: set, src: `${iaas.url}/${id}_100_75.jpg`, alt: '' }, true);
    t.ok(loaded.ok, 'the image loads');
    t.equal(loaded.currentSrc, `${iaas.url}/${id}_100_75_2x.jpg`, 'Chromium picks the 2x candidate');
    t.equal(loaded.naturalWidth, 100, 'its natural width is the box width in CSS pixels (density 2)');
    t.equal(loaded.naturalHeight, 75, 'its natural height is the box height in CSS pixels');
    t.same(loaded.pixels, { width: 200, height: 150 }, 'the bitmap is 200x150 device pixels');
    t.notOk(responses.some((response) => response.url().endsWith('_100_75.jpg') || response.url().endsWith('_100_75_3x.jpg')), 'no other candidate is fetched');
  });

  t.test('with WebP switching on, Chromium\'s own Accept header gets WebP', async (t) => {
    const { page, responses } = await openPage(t);
    const url = await page.evaluate(([base, image]) => (globalThis as unknown as { iaas: { imageUrl(b: string, i: string, o: object): string } }).iaas.imageUrl(base, image, { width: 90, height: 90 }), [iaas.url, id] as const);
    t.equal(url, `${iaas.url}/${id}_90_90.jpg`, 'imageUrl builds a .jpg URL');
    const loaded = await call<Loaded>(page, 'loadImage', { src: url, alt: '' }, false);
    t.ok(loaded.ok, 'the image loads');
    t.same([loaded.naturalWidth, loaded.naturalHeight], [90, 68], 'it has the clipped size');
    const response = responses.find((candidate) => candidate.url() === url);
    t.ok(response, 'the page saw the response');
    const sent = (await response?.request().allHeaders()) ?? {};
    t.match(sent.accept ?? '', 'image/webp', 'Chromium asked for WebP in its own Accept header');
    t.equal(response?.status(), 200, 'the render answers 200');
    t.equal(response?.headers()['content-type'], 'image/webp', 'the .jpg URL is answered with WebP');
    t.match(response?.headers().vary ?? '', /accept/i, 'the answer varies by Accept');
  });

  t.test('every fit mode renders with the expected natural size', async (t) => {
    const { page } = await openPage(t);
    // The original is 400x300; the box is 100x100.
    const expected: Record<string, [number, number]> = { clip: [100, 75], crop: [100, 100], canvas: [100, 100], cover: [133, 100] };
    for (const [fit, size] of Object.entries(expected)) {
      const url = await page.evaluate(([base, image, mode]) => (globalThis as unknown as { iaas: { imageUrl(b: string, i: string, o: object): string } }).iaas.imageUrl(base, image, { width: 100, height: 100, fit: mode, format: 'png' }), [iaas.url, id, fit] as const);
      const loaded = await call<Loaded>(page, 'loadImage', { src: url, alt: fit }, false);
      t.ok(loaded.ok, `fit=${fit} loads`);
      t.same([loaded.naturalWidth, loaded.naturalHeight], size, `fit=${fit} is ${size.join('x')}`);
    }
  });

  t.test('a placeholder from GET /{id}.json is shown first and swapped for the image once it loads', async (t) => {
    const { page } = await openPage(t);
    const result = await call<{ info: Record<string, unknown>; url: string; seen: { stage: string; currentSrc: string; naturalWidth: number; complete: boolean }[] }>(page, 'placeholderSwap', iaas.url, id, 200, 150);
    t.match(result.info, { id, width: 400, height: 300, format: 'jpeg' }, 'the client helper read the JSON');
    const [placeholder, waiting, swapped] = result.seen;
    t.ok(placeholder?.currentSrc.startsWith('data:image/webp;base64,'), 'the placeholder is the LQIP data URI');
    t.ok((placeholder?.naturalWidth ?? 99) > 0 && (placeholder?.naturalWidth ?? 99) <= 32, 'a tiny image, decoded by Chromium');
    t.ok(waiting?.currentSrc.startsWith('data:'), 'it stays while the image loads');
    t.equal(swapped?.currentSrc, result.url, 'then the image replaces it');
    t.equal(swapped?.naturalWidth, 200, 'at its size');
  });

  t.test('an upload from the page (token from /token, fetch + FormData) succeeds and then displays', async (t) => {
    const corsAllowed = await iaasAllowsCors(iaas.url, pageServer.url);
    if (!corsAllowed) t.comment('iaas answers no CORS preflight for POST /token and uploads: the page uploads through a same-origin proxy');
    const apiBase = corsAllowed ? iaas.url : `${pageServer.url}/iaas`;
    const { page } = await openPage(t);
    const uploadId = unique('from-page');
    const before = pageServer.proxied();
    const result = await call<{ tokenStatus: number; status?: number; body: Record<string, unknown> }>(page, 'uploadFrom', apiBase, uploadId);
    t.equal(result.tokenStatus, 200, 'the page gets a token');
    t.equal(result.status, 200, 'the upload succeeds');
    t.match(result.body, { status: 'OK', id: uploadId, original_width: 64, original_height: 48 }, 'the answer describes the stored original');
    if (!corsAllowed) t.ok(pageServer.proxied() > before, 'the upload went through the proxy');
    const url = await page.evaluate(([base, image]) => (globalThis as unknown as { iaas: { imageUrl(b: string, i: string, o: object): string } }).iaas.imageUrl(base, image, { width: 32, height: 32, fit: 'crop' }), [iaas.url, uploadId] as const);
    const loaded = await call<Loaded>(page, 'loadImage', { src: url, alt: '' }, false);
    t.ok(loaded.ok, 'the uploaded image displays');
    t.same([loaded.naturalWidth, loaded.naturalHeight], [32, 32], 'at the requested size');
    const original = await call<Loaded>(page, 'loadImage', { src: `${iaas.url}/${uploadId}.jpg`, alt: '' }, false);
    t.same([original.naturalWidth, original.naturalHeight], [64, 48], 'and so does the original');
  });

  t.test('a cache hit that is a 303 to the S3 render cache displays', async (t) => {
    const { page, responses } = await openPage(t);
    const base = `${iaas.url}/${id}_120_120.jpg?fit=crop`;
    // The first load renders (and then stores) the variant for Chromium's Accept.
    const first = await call<Loaded>(page, 'loadImage', { src: `${base}&v=1`, alt: '' }, false);
    t.ok(first.ok, 'the first load renders');
    const firstResponse = responses.find((response) => response.url() === `${base}&v=1`);
    t.equal(firstResponse?.status(), 200, 'the first load is a render');
    const accept = (await firstResponse?.request().allHeaders())?.accept ?? '';
    t.match(accept, 'image/webp', 'Chromium accepts WebP');
    // Wait until the stored variant is a 303 for the same Accept. `v` is a cache buster iaas ignores.
    let redirected = false;
    for (let i = 0; i < 200 && !redirected; i++) {
      const probe = await fetch(`${base}&v=probe`, { redirect: 'manual', headers: { Accept: accept } });
      await probe.arrayBuffer();
      redirected = probe.status === 303;
      if (!redirected) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.ok(redirected, 'the variant is stored in S3');

    const second = await call<Loaded>(page, 'loadImage', { src: `${base}&v=2`, alt: '' }, false);
    t.ok(second.ok, 'the cached variant displays');
    t.same([second.naturalWidth, second.naturalHeight], [120, 120], 'at the requested size');
    const hop = responses.find((response) => response.url() === `${base}&v=2`);
    t.equal(hop?.status(), 303, 'iaas answered with a 303');
    const location = hop?.headers().location ?? '';
    t.ok(location.startsWith(`${s3.endpoint}/${s3.bucket}/`), 'to the bucket, another origin');
    const fromBucket = responses.find((response) => response.url() === location);
    t.equal(fromBucket?.status(), 200, 'the bucket served the bytes');
    t.equal(fromBucket?.headers()['content-type'], 'image/webp', 'with the stored media type');
  });
}
