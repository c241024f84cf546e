/**
 * Web delivery over HTTP (embedded defaults: SQLite, local folders): the
 * format chosen by Accept (formats.auto, and the WebP-only switches of the
 * original service), Vary, the cache key holding the chosen format, and
 * deferred AVIF, watched through a recording admitter: the order in which
 * renders asked for a slot and got one, and when each answer went out.
 * Nothing here is timed.
 */
import t from 'tap';
import { localAdmitter } from '../../src/admission/client.js';
import type { Admission, AdmissionRequest, Admitter } from '../../src/admission/types.js';
import type { VariantSpec } from '../../src/images/keys.js';
import { alphaPng, photoJpeg, unique } from '../helpers/fixtures.js';
import { decode } from '../helpers/pixels.js';
import { eventually } from '../helpers/timing.js';
import { get, uploadImage } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';
import { cachedObjects, variantKeyOf } from '../helpers/stored.js';

/** What Chromium sends for an <img>. */
const CHROMIUM_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const YEAR = 'public, max-age=31536000';

/** One step of the admission story: a render asked, was granted, or an answer went out. */
interface Step {
  kind: 'admit' | 'grant' | 'answered';
  priority?: AdmissionRequest['priority'];
  cost?: string;
  path?: string;
}

/** An admitter of one slot that records every admission and grant, in order. */
function recordingAdmitter(): { admitter: Admitter; steps: Step[] } {
  const inner = localAdmitter({ slots: 1, queueLimit: 1000, queueWaitMs: 600_000, backgroundLimit: 1000, negativeTtlMs: 0, negativeEntries: 100 });
  const steps: Step[] = [];
  return {
    steps,
    admitter: {
      async admit(request: AdmissionRequest, signal?: AbortSignal): Promise<Admission> {
        steps.push({ kind: 'admit', priority: request.priority, cost: request.cost });
        const admission = await inner.admit(request, signal);
        if (admission.kind === 'granted') steps.push({ kind: 'grant', priority: request.priority, cost: request.cost });
        return admission;
      },
      stats: () => inner.stats(),
      close: () => inner.close(),
    },
  };
}

const isAvifGrant = (step: Step) => step.kind === 'grant' && step.cost?.startsWith('render:avif:') === true;

async function upload(ts: TestServer, id: string, bytes: Uint8Array, ext = 'jpg'): Promise<void> {
  const answer = await uploadImage(ts.url, id, bytes, { ext, type: `image/${ext === 'jpg' ? 'jpeg' : ext}`, filename: `${id}.${ext}` });
  if (answer.status !== 200) throw new Error(`upload of ${id} answered ${answer.status} ${JSON.stringify(answer.body)}`);
}

/** Waits until the variant of `spec` is in the render index. */
async function stored(ts: TestServer, spec: Omit<VariantSpec, 'generation' | 'gravity' | 'focus' | 'frames'>): Promise<boolean> {
  const key = await variantKeyOf(ts.server, spec);
  return eventually(async () => (await ts.server.store.getVariant(key)) !== null, 20_000);
}

const sized = (id: string, format: VariantSpec['format'], side = 64) => ({ id, width: side, height: side, fit: 'clip' as const, quality: 'auto' as const, blur: 0, format });

let auto!: TestServer;
let recorder!: ReturnType<typeof recordingAdmitter>;
t.before(async () => {
  recorder = recordingAdmitter();
  auto = await startTestServer(
    { 'formats.auto': 'avif,webp', 'pool.size': 1 },
    {},
    { admitter: recorder.admitter, observe: (_method, path) => void recorder.steps.push({ kind: 'answered', path }) },
  );
});
t.teardown(() => auto?.stop());

t.test('Accept picks AVIF once the deferred render landed, WebP for image/webp, and the URL format for */*', async (t) => {
  const id = unique('negotiate');
  await upload(auto, id, photoJpeg(200, 150));
  const url = `${auto.url}/${id}_64_64.jpg`;
  const first = await get(url, { Accept: 'image/avif,image/webp,*/*' });
  t.equal(first.headers.get('content-type'), 'image/webp', 'the AVIF is not there yet: WebP answers');
  t.equal(first.headers.get('cache-control'), 'no-cache', 'briefly cacheable, so the client comes back for the AVIF');
  await first.arrayBuffer();
  t.ok(await stored(auto, sized(id, 'avif')), 'the deferred AVIF is stored');
  const later = await get(url, { Accept: 'image/avif,image/webp,*/*' });
  t.equal(later.headers.get('content-type'), 'image/avif');
  t.equal(later.headers.get('cache-control'), YEAR);
  t.equal(later.headers.get('vary'), 'Accept');
  t.equal(decode(await later.arrayBuffer()).width, 64, 'a real AVIF of the asked size');
  const webp = await get(url, { Accept: 'image/webp,*/*' });
  t.equal(webp.headers.get('content-type'), 'image/webp');
  t.equal(webp.headers.get('vary'), 'Accept');
  await webp.arrayBuffer();
  const any = await get(url, { Accept: '*/*' });
  t.equal(any.headers.get('content-type'), 'image/jpeg', 'a bare */* names no format: the URL format');
  t.equal(any.headers.get('vary'), 'Accept');
  await any.arrayBuffer();
});

t.test('the first AVIF-capable request is answered before any AVIF encode is granted a slot', async (t) => {
  const id = unique('deferred');
  await upload(auto, id, photoJpeg(200, 150));
  const path = `/${id}_48_48.jpg`;
  const from = recorder.steps.length;
  const first = await get(`${auto.url}${path}`, { Accept: CHROMIUM_ACCEPT });
  t.equal(first.headers.get('content-type'), 'image/webp');
  t.equal(first.headers.get('x-cache'), 'MISS');
  await first.arrayBuffer();
  t.ok(await stored(auto, sized(id, 'avif', 48)));
  const steps = recorder.steps.slice(from);
  const answered = steps.findIndex((step) => step.kind === 'answered' && step.path === path);
  const avif = steps.findIndex(isAvifGrant);
  t.ok(answered >= 0 && avif > answered, `the answer went out (step ${answered}) before the AVIF render was granted (step ${avif})`);
  t.equal(steps.find((step) => step.kind === 'admit' && step.cost?.startsWith('render:avif:'))?.priority, 'background', 'at the background priority');
  const later = await get(`${auto.url}${path}`, { Accept: CHROMIUM_ACCEPT });
  t.equal(later.headers.get('content-type'), 'image/avif');
  t.equal(later.headers.get('x-cache'), 'HIT');
  await later.arrayBuffer();
});

t.test('a background AVIF render never takes the slot while foreground misses wait for it', async (t) => {
  const id = unique('priority');
  await upload(auto, id, photoJpeg(200, 150));
  // The WebP is stored first, so the AVIF-capable request below is answered without a render.
  await (await get(`${auto.url}/${id}_64_64.jpg`, { Accept: 'image/webp' })).arrayBuffer();
  t.ok(await stored(auto, sized(id, 'webp')));
  const hold = await recorder.admitter.admit({ priority: 'foreground', client: 'test', cost: 'hold' });
  if (hold.kind !== 'granted') throw new Error(`the test could not hold the slot: ${hold.kind}`);
  const from = recorder.steps.length;
  const misses = [40, 44, 52, 56].map((side) => get(`${auto.url}/${id}_${side}_${side}.jpg`).then((response) => response.arrayBuffer()));
  t.ok(await eventually(() => recorder.steps.slice(from).filter((step) => step.kind === 'admit' && step.priority === 'foreground').length === 4, 10_000), 'four misses wait for the slot');
  const hit = await get(`${auto.url}/${id}_64_64.jpg`, { Accept: CHROMIUM_ACCEPT });
  t.equal(hit.headers.get('content-type'), 'image/webp', 'answered from the cache at once, while the slot is held');
  await hit.arrayBuffer();
  const isAvifAdmit = (step: Step) => step.kind === 'admit' && step.cost?.startsWith('render:avif:') === true;
  t.ok(await eventually(() => recorder.steps.slice(from).some(isAvifAdmit), 10_000), 'the AVIF is queued behind them');
  hold.ticket.release({ ms: 1 });
  await Promise.all(misses);
  t.ok(await stored(auto, sized(id, 'avif')));
  const steps = recorder.steps.slice(from);
  const lastForeground = steps.map((step) => step.kind === 'grant' && step.priority === 'foreground').lastIndexOf(true);
  const background = steps.findIndex(isAvifGrant);
  t.ok(background > lastForeground, `every waiting miss got the slot (last at step ${lastForeground}) before the AVIF (step ${background})`);
});

t.test('fifty distinct Accept strings leave at most three stored variants of one size', async (t) => {
  const id = unique('flood');
  await upload(auto, id, photoJpeg(200, 150));
  const accepts = Array.from({ length: 50 }, (_, i) =>
    [`image/avif,image/webp,*/*;q=0.${i}`, `image/webp;q=0.${i},*/*`, `text/html,application/xml;q=0.${i},*/*`][i % 3] ?? '*/*',
  );
  t.equal(new Set(accepts).size, 50);
  for (const accept of accepts) await (await get(`${auto.url}/${id}_72_72.jpg`, { Accept: accept })).arrayBuffer();
  t.ok(await stored(auto, sized(id, 'avif', 72)));
  const objects = (await cachedObjects(auto.server, id)).filter((key) => key.includes('/72x72-'));
  t.equal(objects.length, 3, `one per format: ${objects.join(', ')}`);
});

t.test('Vary: Accept is sent exactly where negotiation applies', async (t) => {
  const id = unique('vary');
  await upload(auto, id, photoJpeg(200, 150));
  for (const ext of ['jpg', 'jpeg']) {
    const response = await get(`${auto.url}/${id}_32_32.${ext}`, { Accept: '*/*' });
    t.equal(response.headers.get('vary'), 'Accept', `.${ext}`);
    await response.arrayBuffer();
  }
  for (const ext of ['webp', 'avif', 'gif']) {
    const response = await get(`${auto.url}/${id}_32_32.${ext}`, { Accept: CHROMIUM_ACCEPT });
    t.equal(response.headers.get('vary'), null, `.${ext} names its format: nothing to negotiate`);
    t.equal(response.headers.get('content-type'), `image/${ext}`);
    await response.arrayBuffer();
  }
  const off = await startTestServer();
  t.teardown(() => off.stop());
  await upload(off, id, photoJpeg(200, 150));
  const plain = await get(`${off.url}/${id}_32_32.jpg`, { Accept: CHROMIUM_ACCEPT });
  t.equal(plain.headers.get('vary'), null, 'negotiation off (the default): no Vary');
  t.equal(plain.headers.get('content-type'), 'image/jpeg');
  await plain.arrayBuffer();
});

t.test('a transparent PNG URL is negotiated only into formats that keep its alpha', async (t) => {
  const id = unique('alpha');
  await upload(auto, id, alphaPng(), 'png');
  const response = await get(`${auto.url}/${id}_40_40.png`, { Accept: 'image/webp,*/*' });
  t.equal(response.headers.get('content-type'), 'image/webp');
  const image = decode(await response.arrayBuffer());
  t.equal(image.channels, 4, 'the alpha channel is kept');
  t.equal(image.at(30, 20)[3], 0, 'the transparent half stays transparent');
});

t.test('the WebP switches of the original service are the WebP-only case of negotiation', async (t) => {
  const dynamic = await startTestServer({ 'webp.allow_dynamic_switch': true });
  const optIn = await startTestServer({ 'webp.allow_opt_in': true });
  t.teardown(() => Promise.all([dynamic.stop(), optIn.stop()]));
  const id = unique('switch');
  await Promise.all([upload(dynamic, id, photoJpeg(120, 90)), upload(optIn, id, photoJpeg(120, 90))]);
  const switched = await get(`${dynamic.url}/${id}_32_32.jpg`, { Accept: CHROMIUM_ACCEPT });
  t.equal(switched.headers.get('content-type'), 'image/webp', 'never AVIF: formats.auto is empty');
  t.equal(switched.headers.get('vary'), 'Accept');
  await switched.arrayBuffer();
  const plain = await get(`${optIn.url}/${id}_32_32.jpg`, { Accept: CHROMIUM_ACCEPT });
  t.equal(plain.headers.get('content-type'), 'image/jpeg', 'allow_opt_in without ?allow_webp=true: the URL format');
  t.equal(plain.headers.get('vary'), null);
  await plain.arrayBuffer();
  const opted = await get(`${optIn.url}/${id}_32_32.jpg?allow_webp=true`, { Accept: CHROMIUM_ACCEPT });
  t.equal(opted.headers.get('content-type'), 'image/webp');
  t.equal(opted.headers.get('vary'), 'Accept');
  await opted.arrayBuffer();
});

t.test('with formats.avif_deferred false, the first AVIF-capable request gets AVIF rendered in the request', async (t) => {
  const immediate = await startTestServer({ 'formats.auto': 'avif,webp', 'formats.avif_deferred': false });
  t.teardown(() => immediate.stop());
  const id = unique('immediate');
  await upload(immediate, id, photoJpeg(200, 150));
  const response = await get(`${immediate.url}/${id}_64_64.jpg`, { Accept: CHROMIUM_ACCEPT });
  t.equal(response.headers.get('content-type'), 'image/avif');
  t.equal(response.headers.get('x-cache'), 'MISS');
  t.equal(response.headers.get('cache-control'), YEAR);
  await response.arrayBuffer();
});

t.test('AUTO_FORMATS refuses a format it cannot negotiate', async (t) => {
  await t.rejects(startTestServer({ 'formats.auto': 'avif,jpeg' }), { code: 'BAD_CONFIG', key: 'formats.auto' });
  await t.rejects(startTestServer({ 'formats.auto': 'webp,webp' }), { code: 'BAD_CONFIG', key: 'formats.auto' });
});
