import t from 'tap';
import { densityFor, hintedBox, readHints, widthCapFor } from '../../src/images/client-hints.js';
import { negotiate } from '../../src/images/negotiation.js';

const BOTH = { auto: ['avif', 'webp'] as const, webpSwitch: false };

t.test('a JPEG URL is answered in the first listed format the Accept names', async (t) => {
  t.same(negotiate('jpeg', 'image/avif,image/webp,*/*', BOTH), { formats: ['avif', 'webp', 'jpeg'], vary: true });
  t.same(negotiate('jpeg', 'image/webp,*/*', BOTH), { formats: ['webp', 'jpeg'], vary: true });
  t.same(negotiate('jpeg', 'image/avif,image/webp', { auto: ['webp', 'avif'], webpSwitch: false }).formats, ['webp', 'avif', 'jpeg'], 'the configured order, not the header order');
});

t.test('wildcards and a weight of 0 name no format', async (t) => {
  t.same(negotiate('jpeg', '*/*', BOTH).formats, ['jpeg']);
  t.same(negotiate('jpeg', 'image/*', BOTH).formats, ['jpeg']);
  t.same(negotiate('png', 'image/avif;q=0, image/webp;q=0.5', BOTH).formats, ['webp', 'png']);
  t.equal(negotiate('jpeg', '*/*', BOTH).vary, true, 'the answer still varies: another Accept would change it');
});

t.test('URLs naming another format, and a service offering none, are not negotiated', async (t) => {
  for (const format of ['webp', 'avif', 'gif'] as const) t.same(negotiate(format, 'image/avif,image/webp', BOTH), { formats: [format], vary: false });
  t.same(negotiate('jpeg', 'image/avif,image/webp', { auto: [], webpSwitch: false }), { formats: ['jpeg'], vary: false });
  t.same(negotiate('png', 'image/avif,image/webp', { auto: [], webpSwitch: true }), { formats: ['webp', 'png'], vary: true }, 'the WebP switch alone offers WebP');
});

t.test('client hints round densities and widths up to their ladders', async (t) => {
  t.same([0.5, 1, 1.3, 1.5, 2, 2.2, 3, 3.5, 8].map(densityFor), [1, 1, 1.5, 1.5, 2, 3, 3, 4, 4]);
  t.same([1, 160, 161, 250, 5000].map(widthCapFor), [160, 160, 240, 320, 3840]);
  t.same(hintedBox(300, 200, { dpr: 2 }), { width: 600, height: 400 });
  t.same(hintedBox(1, 1, { dpr: 1.5 }), { width: 2, height: 2 }, 'never below 1 px, rounded');
  t.same(hintedBox(300, 200, { dpr: 2, width: 250 }), { width: 320, height: 213 });
});

t.test('malformed hints are ignored, the modern header first', async (t) => {
  const headers = (values: Record<string, string>) => (name: string) => values[name] ?? '';
  t.same(readHints(headers({ 'sec-ch-dpr': '2', dpr: '3', 'sec-ch-width': '400' })), { dpr: 2, width: 400 });
  t.same(readHints(headers({ 'sec-ch-dpr': 'x', dpr: '1.5', width: '12.5' })), { dpr: 1.5 });
  t.same(readHints(headers({ dpr: '0', width: '-3' })), {});
});
