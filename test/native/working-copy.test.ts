/**
 * Rendering from a working copy is rendering from the original: the same
 * output size to the pixel for every fit, and PNG output within 40 dB PSNR
 * of a reference render of the original made without shrink-on-load, from
 * 100 px to the largest size in bounds. Also: `auto` quality keeps the
 * original's, and orientation and colour conversion happen once, in the copy.
 */
import t from 'tap';
import { chooseCopy, planLevels, type PlannedLevel } from '../../src/images/working-copies.js';
import type { OriginalRecord } from '../../src/store/types.js';
import { encodeRaw, probe, render, type RenderOptions } from '../../src/index.js';
import { photoPixels } from '../helpers/fixtures.js';
import { decode, psnr } from '../helpers/pixels.js';

const BOUNDS = { maxWidth: 600, maxHeight: 600, maxSide: undefined };
const FITS = ['clip', 'crop', 'canvas', 'cover'] as const;

/** Makes the copies the service would make, with the engine alone. */
function copiesOf(original: Uint8Array) {
  const header = probe(original);
  const displayed = header.orientation >= 5 ? { width: header.height, height: header.width } : { width: header.width, height: header.height };
  const levels = planLevels(displayed.width, displayed.height, header, BOUNDS);
  return {
    displayed,
    header,
    // As the service makes them: level 1 from the original, each next level from the one before.
    copies: levels.reduce<{ level: PlannedLevel; bytes: Uint8Array }[]>((made, level) => {
      const source = made.at(-1)?.bytes ?? original;
      const options: RenderOptions = { width: level.width, height: level.height, fit: 'clip', format: header.hasAlpha ? 'png' : 'jpeg', quality: 95, workingCopy: true };
      return [...made, { level, bytes: new Uint8Array(render(source, options).data) }];
    }, []),
  };
}

/** The original as displayed (upright, sRGB) in a PNG, which has no shrink-on-load: renders from it are the reference. */
function asPng(original: Uint8Array): Uint8Array {
  return new Uint8Array(render(original, { format: 'png' }).data);
}

function psnrDistribution(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]?.toFixed(1);
  return `min ${at(0)}, p10 ${at(0.1)}, median ${at(0.5)} dB over ${values.length} renders`;
}

t.test('renders from each working copy match renders from the original: size to the pixel, PSNR at least 40 dB, every fit, 100 px to the bounds', async (t) => {
  const pixels = photoPixels(1800, 1350, 41);
  const original = encodeRaw(pixels, { width: 1800, height: 1350, channels: 3, format: 'jpeg', quality: 92 });
  const reference = asPng(original);
  const { displayed, copies } = copiesOf(original);
  t.same(copies.map((c) => c.level.level), [1, 2], 'two levels for a 2.4 MP baseline JPEG and 600 px bounds');
  const scores: number[] = [];
  const sizes = [100, 137, 200, 263, 300, 411, 500, 600];
  for (const fit of FITS) {
    for (const box of sizes) {
      for (const [bw, bh] of [[box, box], [box, Math.round(box * 0.6)], [Math.round(box * 0.5), box]] as const) {
        const options: RenderOptions = { width: bw, height: bh, fit, format: 'png' };
        const expected = render(reference, options);
        const fromOriginal = render(original, options);
        t.same([fromOriginal.width, fromOriginal.height], [expected.width, expected.height], `${fit} ${bw}x${bh}: the original's size`);
        // The smallest copy with enough pixels, as chooseCopy picks it.
        const needed = fit === 'clip' || fit === 'canvas' ? Math.min(bw / displayed.width, bh / displayed.height) : Math.max(bw / displayed.width, bh / displayed.height);
        const record = { ...displayed, copies: copies.map((c) => ({ ...c.level, format: 'jpeg', bytes: c.bytes.byteLength, storageKey: String(c.level.level) })) } as unknown as OriginalRecord;
        const chosen = chooseCopy(record, needed);
        const copy = copies.find((c) => String(c.level.level) === chosen?.storageKey);
        if (!copy) continue;
        const fromCopy = render(copy.bytes, { ...options, source: { width: displayed.width, height: displayed.height, jpegQuality: 92 } });
        if (fromCopy.width !== expected.width || fromCopy.height !== expected.height) {
          t.fail(`${fit} ${bw}x${bh} from copy ${copy.level.level}: ${fromCopy.width}x${fromCopy.height}, expected ${expected.width}x${expected.height}`);
          continue;
        }
        scores.push(psnr(decode(fromCopy.data), decode(expected.data)));
      }
    }
  }
  t.ok(scores.length >= 60, `${scores.length} renders from copies compared`);
  t.comment(`PSNR of renders from copies against the reference: ${psnrDistribution(scores)}`);
  t.ok(Math.min(...scores) >= 40, `every one at least 40 dB (${psnrDistribution(scores)})`);
});

t.test('auto quality from a copy keeps the original\'s JPEG quality, not the copy\'s 95', async (t) => {
  const original = encodeRaw(photoPixels(1800, 1350, 42), { width: 1800, height: 1350, channels: 3, format: 'jpeg', quality: 75 });
  const { displayed, copies } = copiesOf(original);
  const copy = copies[1];
  if (!copy) return t.fail('no level 2 copy');
  t.equal(probe(copy.bytes).jpegQuality, 95, 'the copy is q95');
  const fromCopy = render(copy.bytes, { width: 300, height: 300, format: 'jpeg', quality: 'auto', source: { width: displayed.width, height: displayed.height, jpegQuality: 75 } });
  const estimated = probe(new Uint8Array(fromCopy.data)).jpegQuality ?? 0;
  t.ok(Math.abs(estimated - 75) <= 2, `rendered at q${estimated} (the original's 75, within 2)`);
  const fromPng = render(copy.bytes, { width: 300, height: 300, format: 'jpeg', quality: 'auto', source: { width: displayed.width, height: displayed.height, jpegQuality: null } });
  t.equal(probe(new Uint8Array(fromPng.data)).jpegQuality, 80, 'an original that was no JPEG: the JPEG default, 80');
});

t.test('orientation, an embedded ICC profile and CMYK colour are applied once, in the copy: its renders match the original\'s', async (t) => {
  const oriented = encodeRaw(photoPixels(2000, 1500, 43), { width: 2000, height: 1500, channels: 3, format: 'jpeg', quality: 92, orientation: 6 });
  const cmykPixels = new Uint8Array(2000 * 1500 * 4);
  const base = photoPixels(2000, 1500, 44);
  for (let i = 0; i < 2000 * 1500; i++) {
    cmykPixels[i * 4] = 255 - (base[i * 3] ?? 0);
    cmykPixels[i * 4 + 1] = 255 - (base[i * 3 + 1] ?? 0);
    cmykPixels[i * 4 + 2] = 255 - (base[i * 3 + 2] ?? 0);
    cmykPixels[i * 4 + 3] = 0;
  }
  const cmyk = encodeRaw(cmykPixels, { width: 2000, height: 1500, channels: 4, format: 'jpeg', quality: 92, cmyk: true });
  const p3 = encodeRaw(photoPixels(2000, 1500, 45), { width: 2000, height: 1500, channels: 3, format: 'jpeg', quality: 92, profile: 'p3' });
  for (const [label, original] of [['orientation 6', oriented], ['CMYK', cmyk], ['a Display P3 profile', p3]] as const) {
    const { displayed, copies } = copiesOf(original);
    const copy = copies[copies.length - 1];
    if (!copy) return t.fail(`${label}: no copy`);
    t.equal(probe(copy.bytes).orientation, 1, `${label}: the copy is upright`);
    const options: RenderOptions = { width: 250, height: 250, fit: 'crop', format: 'png' };
    const expected = render(asPng(original), options);
    const fromCopy = render(copy.bytes, { ...options, source: { width: displayed.width, height: displayed.height, jpegQuality: 92 } });
    t.same([fromCopy.width, fromCopy.height], [expected.width, expected.height], `${label}: the same size`);
    const score = psnr(decode(fromCopy.data), decode(expected.data));
    t.ok(score >= 40, `${label}: ${score.toFixed(1)} dB against the original's render`);
  }
  // The profile was applied, not ignored on both paths: the P3 original renders as its sRGB source does.
  const srgb = encodeRaw(photoPixels(2000, 1500, 45), { width: 2000, height: 1500, channels: 3, format: 'jpeg', quality: 92 });
  const options: RenderOptions = { width: 250, height: 250, fit: 'crop', format: 'png' };
  const converted = psnr(decode(render(asPng(p3), options).data), decode(render(asPng(srgb), options).data));
  t.ok(converted >= 35, `the P3 original renders as its sRGB source (${converted.toFixed(1)} dB)`);
});
