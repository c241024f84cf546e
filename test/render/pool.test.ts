import t from 'tap';
import { createRenderPool, render, resolvePoolOptions } from '../../src/index.js';
import { corruptHeaderJpeg, hostile, photoJpeg, truncated } from '../helpers/fixtures.js';
import { rejectionCode } from '../helpers/codes.js';

const photo = photoJpeg(800, 600, 90);
const slow = { width: 12000, height: 9000, blur: { sigma: 5 } } as const;

t.test('defaults to one thread per core, a queue of size squared and 10 s', async (t) => {
  const options = resolvePoolOptions({ size: 3 });
  t.same([options.queueLimit, options.timeoutMs, options.vipsConcurrency], [9, 10_000, 1]);
});

t.test('renders in a thread the same bytes as a direct render, transferring the input', async (t) => {
  const pool = createRenderPool({ size: 2 });
  t.teardown(() => pool.close());
  const input = photo.slice();
  const pooled = await pool.render(input, { width: 200, height: 200, fit: 'crop' });
  t.equal(input.byteLength, 0, 'the input buffer moved to the thread');
  const direct = render(photo, { width: 200, height: 200, fit: 'crop' });
  t.ok(Buffer.from(pooled.data).equals(Buffer.from(direct.data)), 'identical output');
  t.same([pooled.width, pooled.height, pooled.format], [200, 200, 'jpeg']);
  const header = await pool.probe(photo.slice());
  t.same([header.width, header.height], [800, 600]);
  const prepared = await pool.prepareOriginal(photo.slice(), { maxPixels: 100_000 });
  t.ok(prepared.width * prepared.height <= 100_000, 'prepareOriginal runs in the pool');
});

t.test('shares an input in a SharedArrayBuffer with the threads, neither detaching nor copying it', async (t) => {
  const pool = createRenderPool({ size: 2 });
  t.teardown(() => pool.close());
  const shared = new Uint8Array(new SharedArrayBuffer(photo.byteLength));
  shared.set(photo);
  const direct = render(photo, { width: 200, height: 150 });
  const [first, second] = await Promise.all([pool.render(shared, { width: 200, height: 150 }), pool.render(shared, { width: 200, height: 150 })]);
  t.equal(shared.byteLength, photo.byteLength, 'the input is still readable here');
  for (const result of [first, second]) t.ok(Buffer.from(result.data).equals(Buffer.from(direct.data)), 'identical output from the shared bytes');
  t.same((await pool.probe(shared)).width, 800);
});

t.test('a timed-out render fails with TIMEOUT within timeoutMs + 200 ms, then the pool renders correctly', async (t) => {
  const pool = createRenderPool({ size: 1, timeoutMs: 150 });
  t.teardown(() => pool.close());
  await pool.ready();
  const started = performance.now();
  t.equal(await rejectionCode(() => pool.render(photo.slice(), slow)), 'TIMEOUT');
  const elapsed = performance.now() - started;
  t.ok(elapsed < 350, `rejected after ${Math.round(elapsed)} ms`);
  const after = await pool.render(photo.slice(), { width: 100 });
  t.equal(after.width, 100);
});

t.test('a request may shorten the pool timeout but not extend it', async (t) => {
  const pool = createRenderPool({ size: 1, timeoutMs: 5_000 });
  t.teardown(() => pool.close());
  await pool.ready();
  const started = performance.now();
  t.equal(await rejectionCode(() => pool.render(photo.slice(), { ...slow, timeoutMs: 100 })), 'TIMEOUT');
  t.ok(performance.now() - started < 300, 'the shorter deadline applied');
});

t.test('survives 100 bad inputs in a row, each with its code', async (t) => {
  const pool = createRenderPool({ size: 2, queueLimit: 200 });
  t.teardown(() => pool.close());
  const bad = [hostile.svg, hostile.pdf, hostile.text, truncated(photo), corruptHeaderJpeg()];
  const expected = ['UNSUPPORTED_FORMAT', 'UNSUPPORTED_FORMAT', 'UNSUPPORTED_FORMAT', 'CORRUPT_IMAGE', 'CORRUPT_IMAGE'];
  const codes = await Promise.all(
    Array.from({ length: 100 }, (_, i) => rejectionCode(() => pool.render(bad[i % bad.length]!.slice(), { width: 50 }))),
  );
  t.same(codes, Array.from({ length: 100 }, (_, i) => expected[i % expected.length]));
  const good = await pool.render(photo.slice(), { width: 64 });
  t.equal(good.width, 64, 'and then renders');
});

t.test('a full queue rejects at once with OVERLOADED', async (t) => {
  const pool = createRenderPool({ size: 1, queueLimit: 1, timeoutMs: 2_000 });
  t.teardown(() => pool.close());
  await pool.ready();
  const running = Array.from({ length: 2 }, () => rejectionCode(() => pool.render(photo.slice(), { ...slow, timeoutMs: 300 })));
  let drained = false;
  void Promise.all(running).then(() => (drained = true));
  const rejected = await rejectionCode(() => pool.render(photo.slice(), { width: 10 }));
  t.equal(rejected, 'OVERLOADED');
  t.notOk(drained, 'rejected at once: neither render ahead of it had ended');
  t.same(pool.stats().queued + pool.stats().running, 2);
  await Promise.all(running);
  t.equal((await pool.render(photo.slice(), { width: 10 })).width, 10, 'serves again once drained');
});

t.test('times a queued task from when it starts running, not while it waits', async (t) => {
  const thumbnail = { width: 60, height: 60, fit: 'crop' } as const;
  // Sized from this machine's own thumbnail times: a timeout far above one render, and
  // enough renders that, one at a time, they take longer than the timeout together.
  const probe = createRenderPool({ size: 1 });
  const times: number[] = [];
  for (let i = 0; i < 8; i++) {
    const start = performance.now();
    await probe.render(photo.slice(), thumbnail);
    times.push(performance.now() - start);
  }
  await probe.close();
  const timeoutMs = Math.max(200, Math.ceil(20 * Math.max(...times)));
  const count = Math.ceil((2 * timeoutMs) / Math.min(...times));
  const pool = createRenderPool({ size: 1, queueLimit: count, timeoutMs, graceMs: 0 });
  t.teardown(() => pool.close());
  await pool.ready();
  const started = performance.now();
  const codes = await Promise.all(Array.from({ length: count }, () => rejectionCode(() => pool.render(photo.slice(), thumbnail))));
  const elapsed = performance.now() - started;
  t.ok(elapsed > timeoutMs, `${count} thumbnails queued for ${Math.round(elapsed)} ms in all, longer than the ${timeoutMs} ms timeout`);
  t.same(codes.filter((code) => code !== undefined), [], 'no queued task timed out');
});

t.test('rejects bad options before queueing, with BAD_OPTION', async (t) => {
  const pool = createRenderPool({ size: 1 });
  t.teardown(() => pool.close());
  t.equal(await rejectionCode(() => pool.render(photo.slice(), { width: 0 })), 'BAD_OPTION');
  t.equal(pool.stats().completed, 0);
});
