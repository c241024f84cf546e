/**
 * Web delivery in a real browser: headless Chromium (Debian's
 * /usr/bin/chromium) driven by playwright-core. With AUTO_FORMATS=avif,webp,
 * Chromium's own Accept gets WebP from a .jpg URL while the AVIF is deferred,
 * then AVIF once it landed (its revalidation of the no-cache WebP finds a new
 * version); and a <picture> built by the client helper's picture() loads its
 * AVIF source. The page and the compiled client module come from a server of
 * this test's own origin.
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
import { eventually } from '../helpers/timing.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';
import { uploadImage } from '../helpers/http.js';
import { variantKeyOf } from '../helpers/stored.js';

/** The compiled client module and the grammar it imports, from the same build as this file. */
const CLIENT_FILES: Record<string, string> = {
  '/js/client/index.js': fileURLToPath(new URL('../../src/client/index.js', import.meta.url)),
  '/js/options/grammar.js': fileURLToPath(new URL('../../src/options/grammar.js', import.meta.url)),
};

/** The page: `show(html)` puts markup in the body and reports the <img> inside once it loaded (or failed). */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>iaas delivery</title></head>
<body>
<script type="module">
  import { picture } from '/js/client/index.js';
  window.picture = picture;
  window.show = (html) => new Promise((resolve) => {
    const holder = document.createElement('div');
    holder.innerHTML = html;
    const img = holder.querySelector('img');
    const done = (ok) => resolve({ ok, currentSrc: img.currentSrc, naturalWidth: img.naturalWidth });
    img.addEventListener('load', () => done(true));
    img.addEventListener('error', () => done(false));
    document.body.append(holder);
  });
  window.ready = true;
</script>
</body></html>
`;

async function startPageServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/') return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    const file = CLIENT_FILES[url];
    if (!file) return void res.writeHead(404).end();
    readFile(file).then(
      (body) => res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

const { playwright, missing } = await loadPlaywright();

if (!playwright) {
  t.comment(`skipping the browser tests: ${missing}`);
  t.plan(0, missing);
} else {
  const pw = playwright;
  let iaas: TestServer;
  let pageServer: Awaited<ReturnType<typeof startPageServer>>;
  let context: PwContext;
  let userDataDir: string;
  const id = unique('delivery');

  t.before(async () => {
    iaas = await startTestServer({ 'formats.auto': 'avif,webp' });
    const uploaded = await uploadImage(iaas.url, id, photoJpeg(400, 300));
    if (uploaded.status !== 200) throw new Error(`the fixture upload answered ${uploaded.status}`);
    pageServer = await startPageServer();
    userDataDir = await mkdtemp(path.join(tmpdir(), 'iaas-chromium-'));
    context = await pw.chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport: { width: 800, height: 600 }, timeout: 120_000 });
  });

  t.teardown(async () => {
    await context?.close().catch(() => {});
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    await pageServer?.stop();
    await iaas?.stop();
  });

  /** A fresh page of the test's origin (no memory cache of images shown before), its responses recorded. */
  const openPage = (t: Test) => openRecordedPage(t, context, pageServer.url);

  type Shown = { ok: boolean; currentSrc: string; naturalWidth: number };
  const show = (page: PwPage, html: string) => page.evaluate((markup) => (globalThis as unknown as { show(h: string): Promise<Shown> }).show(markup), html);

  t.test("Chromium's own Accept gets WebP from a .jpg URL while the AVIF is deferred, and AVIF once it landed", async (t) => {
    const url = `${iaas.url}/${id}_90_90.jpg`;
    const first = await openPage(t);
    const shown = await show(first.page, `<img src="${url}" alt="">`);
    t.ok(shown.ok, 'the image loads');
    const answer = first.responses.find((response) => response.url() === url);
    t.match((await answer?.request().allHeaders())?.accept ?? '', 'image/avif', "Chromium's Accept names AVIF");
    t.equal(answer?.headers()['content-type'], 'image/webp', 'the AVIF is deferred: WebP answers first');
    t.equal(answer?.headers()['cache-control'], 'no-cache');
    const key = await variantKeyOf(iaas.server, { id, width: 90, height: 90, fit: 'clip', quality: 'auto', blur: 0, format: 'avif' });
    t.ok(await eventually(async () => (await iaas.server.store.getVariant(key)) !== null, 20_000), 'the deferred AVIF is stored');
    const later = await openPage(t);
    const again = await show(later.page, `<img src="${url}" alt="">`);
    t.ok(again.ok, 'the image loads again');
    t.equal(again.naturalWidth, 90);
    const avif = later.responses.find((response) => response.url() === url);
    t.equal(avif?.status(), 200, 'the revalidation of the WebP finds a new version');
    t.equal(avif?.headers()['content-type'], 'image/avif', 'now in AVIF');
    t.match(avif?.headers().vary ?? '', /accept/i);
  });

  t.test('a <picture> built by picture() loads its AVIF source', async (t) => {
    const { page, responses } = await openPage(t);
    const html = await page.evaluate(
      ([base, image]) => (globalThis as unknown as { picture(b: string, i: string, o: object): { html: string } }).picture(base, image, { width: 60, height: 40, fit: 'crop' }).html,
      [iaas.url, id] as const,
    );
    t.match(html, /^<picture><source type="image\/avif"/);
    const shown = await show(page, html);
    t.ok(shown.ok, 'the picture loads');
    t.equal(shown.currentSrc, `${iaas.url}/${id}_60_40.avif?fit=crop`, 'Chromium picks the AVIF source (1x)');
    t.equal(shown.naturalWidth, 60);
    const answer = responses.find((response) => response.url() === shown.currentSrc);
    t.equal(answer?.headers()['content-type'], 'image/avif');
    t.equal(answer?.headers().vary, undefined, 'a URL naming its format varies by nothing: any CDN can cache it');
  });
}
