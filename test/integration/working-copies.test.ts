/**
 * Working copies through the service: which originals get which copies, that
 * misses read them (and work before they exist), that a missing or corrupt
 * copy is detected and made again, that they go wherever their original goes
 * (local folders or S3) and with it on DELETE, and the back-fill of originals
 * uploaded before copies existed. Small bounds keep the copies small.
 */
import t, { type Test } from 'tap';
import { backfillWorkingCopies } from '../../src/cli/working-copies.js';
import { purgeVariantsOf } from '../../src/images/purge.js';
import { type ImageEvents, NO_EVENTS } from '../../src/images/types.js';
import { encodeRaw, probe, render } from '../../src/index.js';
import { animatedGif, photoPixels, unique } from '../helpers/fixtures.js';
import { startS3rver } from '../helpers/s3.js';
import { get, uploadImage } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';
import { eventually } from '../helpers/timing.js';
import { originalObjects } from '../helpers/stored.js';

const BOUNDS = { 'constraints.max_width': 400, 'constraints.max_height': 400 };

/** Records what each render read. */
function recorder(): { events: ImageEvents; sources: string[] } {
  const sources: string[] = [];
  return { events: { ...NO_EVENTS, renderSource: (source) => void sources.push(source) }, sources };
}

async function server(t: Test, overrides: Record<string, unknown> = {}, events?: ImageEvents): Promise<TestServer> {
  const started = await startTestServer({ ...BOUNDS, ...overrides }, {}, events ? { events } : {});
  t.teardown(() => started.stop());
  return started;
}



const baseline = (w: number, h: number, q = 92, seed = 1) => encodeRaw(photoPixels(w, h, seed), { width: w, height: h, channels: 3, format: 'jpeg', quality: q });

/** Waits until the service decided the copies of `id`; returns them. */
async function decided(ts: TestServer, id: string) {
  let copies: Awaited<ReturnType<TestServer['server']['store']['getOriginal']>> = null;
  await eventually(async () => {
    copies = await ts.server.store.getOriginal(id);
    return copies?.copies !== null && copies?.copies !== undefined;
  }, 20_000);
  return (copies as { copies: { level: number; width: number; height: number; format: string; storageKey: string }[] | null } | null)?.copies ?? null;
}

t.test('each kind of original gets the copies that help it, and none where they would not', async (t) => {
  const ts = await server(t);
  const progressive = new Uint8Array(render(baseline(1200, 900), { format: 'jpeg', quality: 90 }).data);
  t.ok(probe(progressive).interlaced, 'the fixture is a progressive JPEG');
  const alpha = new Uint8Array(1000 * 750 * 4).map((_, i) => (i % 4 === 3 ? 128 : (i * 7) % 256));
  const cases: [string, Uint8Array, string, string[]][] = [
    ['a progressive JPEG', progressive, 'jpg', ['1 jpeg 533x400', '2 jpeg 267x200']],
    ['a large baseline JPEG', baseline(2400, 1800), 'jpg', ['1 jpeg 533x400', '2 jpeg 267x200']],
    ['a small baseline JPEG', baseline(1200, 900), 'jpg', []],
    ['a PNG with alpha', encodeRaw(alpha, { width: 1000, height: 750, channels: 4, format: 'png' }), 'png', ['1 png 533x400', '2 png 267x200']],
    ['an animated GIF', animatedGif(3, 400), 'gif', []],
  ];
  for (const [label, bytes, ext, expected] of cases) {
    const id = unique('kind');
    const answer = await uploadImage(ts.url, id, bytes, { ext: ext === 'gif' ? null : ext, type: `image/${ext === 'jpg' ? 'jpeg' : ext}` });
    t.equal(answer.status, 200, `${label}: uploaded`);
    const copies = await decided(ts, id);
    t.same(copies?.map((c) => `${c.level} ${c.format} ${c.width}x${c.height}`), expected, `${label}: ${expected.length ? expected.join(', ') : 'none'}`);
    for (const copy of copies ?? []) t.ok(await ts.server.originals.exists(copy.storageKey), `${label}: ${copy.storageKey} is stored`);
  }
});

t.test('a miss right after the upload renders from the original; once the copies exist, misses read the smallest that has enough pixels', async (t) => {
  const { events, sources } = recorder();
  const ts = await server(t, {}, events);
  const id = unique('reads');
  t.equal((await uploadImage(ts.url, id, baseline(2400, 1800))).status, 200);
  const first = await get(`${ts.url}/${id}_300_300.jpg`);
  t.equal(first.status, 200, 'a miss right after the 200 is served');
  await first.arrayBuffer();
  await decided(ts, id);
  sources.length = 0;
  for (const [w, h] of [[200, 150], [260, 195], [400, 400], [320, 320]] as const) {
    const answer = await get(`${ts.url}/${id}_${w}_${h}.jpg`);
    t.equal(answer.status, 200);
    const header = probe(new Uint8Array(await answer.arrayBuffer()));
    t.same([header.width, header.height], [w, Math.round((w * 1800) / 2400)], `${w}x${h}: the original's geometry`);
  }
  t.same(sources, ['copy-2', 'copy-2', 'copy-1', 'copy-1'], 'the smallest copy with enough pixels each time');
  const crop = await get(`${ts.url}/${id}_400_400.jpg?fit=crop`);
  t.equal(crop.status, 200);
  await crop.arrayBuffer();
  t.equal(sources.at(-1), 'copy-1', 'a crop of the largest box: level 1 has enough on the short side');
});

t.test('a deleted or corrupt copy is detected: the render reads the original and the copy is made again', async (t) => {
  const { events, sources } = recorder();
  const ts = await server(t, { 'originals.cache_mb': 0 }, events);
  const id = unique('broken');
  t.equal((await uploadImage(ts.url, id, baseline(2400, 1800))).status, 200);
  const copies = (await decided(ts, id)) ?? [];
  const level2 = copies.find((c) => c.level === 2);
  if (!level2) return t.fail('no level 2 copy');
  for (const [damage, size] of [['deleted', 150], ['corrupt', 160]] as const) {
    if (damage === 'deleted') await ts.server.originals.delete([level2.storageKey]);
    else await ts.server.originals.put(level2.storageKey, Buffer.from('not a jpeg'), 'image/jpeg');
    sources.length = 0;
    const answer = await get(`${ts.url}/${id}_${size}_${size}.jpg`);
    t.equal(answer.status, 200, `${damage}: the miss is served`);
    t.same(probe(new Uint8Array(await answer.arrayBuffer())).width, size, `${damage}: at the right size`);
    t.same(sources, ['original'], `${damage}: from the original`);
    t.ok(
      await eventually(async () => {
        const record = await ts.server.store.getOriginal(id);
        const again = record?.copies?.find((c) => c.level === 2);
        const bytes = again ? await ts.server.originals.get(again.storageKey) : null;
        return !!bytes && probe(bytes).format === 'jpeg';
      }, 20_000),
      `${damage}: the copy is made again`,
    );
  }
});

t.test('copies go with their original: kept by purge --id, deleted by DELETE', async (t) => {
  const ts = await server(t, { secret: 's3cret' });
  const id = unique('gone');
  t.equal((await uploadImage(ts.url, id, baseline(2400, 1800), { secret: 's3cret' })).status, 200);
  const copies = (await decided(ts, id)) ?? [];
  t.equal(copies.length, 2);
  await purgeVariantsOf({ store: ts.server.store, cache: ts.server.cache }, id);
  for (const copy of copies) t.ok(await ts.server.originals.exists(copy.storageKey), `purge --id keeps ${copy.storageKey}`);
  const deleted = await fetch(`${ts.url}/${id}`, { method: 'DELETE', headers: { 'X-Secret': 's3cret' } });
  t.equal(deleted.status, 200);
  t.same(await originalObjects(ts.server, id), [], 'DELETE removes the original and its copies');
});

t.test('on S3 the copies live in the bucket beside the original, a miss reads a copy instead of the original, and DELETE removes them', async (t) => {
  const s3 = await startS3rver({ bucket: unique('iaas-wc') });
  t.teardown(() => s3.stop());
  const ts = await server(t, {
    'aws.bucket': s3.bucket,
    'aws.endpoint': s3.endpoint,
    'aws.access_key': 'S3RVER',
    'aws.secret_key': 'S3RVER',
    'aws.store_originals': true,
    'originals.cache_mb': 0,
    secret: 's3cret',
  });
  const id = unique('s3wc');
  t.equal((await uploadImage(ts.url, id, baseline(2400, 1800), { secret: 's3cret' })).status, 200);
  const copies = (await decided(ts, id)) ?? [];
  t.ok(copies.length === 2 && copies.every((c) => c.storageKey.startsWith(`originals/${id}.`)), `both copies in the bucket (${copies.map((c) => c.storageKey).join(', ')})`);
  // The original itself gone from the bucket: a miss a copy covers never needs it.
  const record = await ts.server.store.getOriginal(id);
  await ts.server.originals.delete([record?.storageKey ?? '']);
  const miss = await get(`${ts.url}/${id}_300_225.jpg?proxy=true`);
  t.equal(miss.status, 200, 'served from the copy');
  await miss.arrayBuffer();
  t.equal((await fetch(`${ts.url}/${id}`, { method: 'DELETE', headers: { 'X-Secret': 's3cret' } })).status, 200);
  t.same(await originalObjects(ts.server, id), [], 'DELETE removes the copies from the bucket');
});

t.test('originals from before working copies get them on their first miss, or from iaas working-copies', async (t) => {
  const ts = await server(t);
  const ids = [unique('old'), unique('old'), unique('old')];
  for (const id of ids) {
    t.equal((await uploadImage(ts.url, id, baseline(2400, 1800))).status, 200);
    await decided(ts, id);
    // As an original from before: nothing decided.
    const record = await ts.server.store.getOriginal(id);
    await ts.server.store.setCopies(id, record?.generation ?? '', null, null);
  }
  ts.server.service.forget(ids[0] ?? '');
  const miss = await get(`${ts.url}/${ids[0]}_120_90.jpg`);
  t.equal(miss.status, 200);
  await miss.arrayBuffer();
  t.ok(((await decided(ts, ids[0] ?? '')) ?? []).length === 2, 'the first miss of an old original makes its copies');
  const counts = await backfillWorkingCopies(ts.config, { batch: 1, pauseMs: 0 });
  t.same(counts, { made: 2 }, 'the command makes the copies of the other two, a batch at a time');
  for (const id of ids.slice(1)) t.equal(((await ts.server.store.getOriginal(id))?.copies ?? []).length, 2, `${id} has its copies`);
  t.same(await backfillWorkingCopies(ts.config, { batch: 5, pauseMs: 0 }), {}, 'a second run has nothing to do');
});
