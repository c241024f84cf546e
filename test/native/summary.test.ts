/**
 * The summary behind GET /{id}.json: the BlurHash decodes (with the blurhash
 * package's own decode) to the picture's mean colour, the LQIP is a small WebP
 * that decodes, and the dominant colour is the picture's main one.
 */
import { decode as decodeBlurhash, isBlurhashValid } from 'blurhash';
import t, { type Test } from 'tap';
import { prepareOriginal, probe, summariseOriginal, type ImageSummary } from '../../src/index.js';
import { blurhashComponents } from '../../src/render/summary.js';
import { alphaPng, animatedGif, orientedJpeg, photoJpeg, solid } from '../helpers/fixtures.js';
import { decode } from '../helpers/pixels.js';

const toLinear = (value: number) => {
  const v = value / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};
const toSrgb = (value: number) => 255 * (value <= 0.0031308 ? value * 12.92 : 1.055 * value ** (1 / 2.4) - 0.055);

/**
 * The mean colour of decoded RGB(A) pixels (transparent areas taken as white), averaged in
 * linear light and written as 0..255 sRGB: the mean a BlurHash keeps (its DC term is
 * exactly this), where an sRGB average of a hard edge would differ by tens of levels.
 */
function meanOf(pixels: ArrayLike<number>, channels: number): number[] {
  const sum = [0, 0, 0];
  const count = pixels.length / channels;
  for (let i = 0; i < pixels.length; i += channels) {
    const alpha = channels === 4 ? (pixels[i + 3] ?? 255) / 255 : 1;
    for (let c = 0; c < 3; c++) sum[c] = (sum[c] ?? 0) + toLinear((pixels[i + c] ?? 0) * alpha + 255 * (1 - alpha));
  }
  return sum.map((value) => toSrgb(value / count));
}

function meanOfImage(bytes: Uint8Array): number[] {
  const image = decode(bytes);
  const pixels: number[] = [];
  for (let y = 0; y < image.height; y++) for (let x = 0; x < image.width; x++) pixels.push(...image.at(x, y));
  return meanOf(pixels, image.channels);
}

function lqipBytes(summary: ImageSummary): Uint8Array {
  const prefix = 'data:image/webp;base64,';
  if (!summary.lqip.startsWith(prefix)) throw new Error('not a WebP data URI');
  return new Uint8Array(Buffer.from(summary.lqip.slice(prefix.length), 'base64'));
}

function checkSummary(t: Test, summary: ImageSummary, expectedMean: number[], label: string): void {
  t.ok(isBlurhashValid(summary.blurhash).result, `${label}: the BlurHash is valid`);
  const decoded = decodeBlurhash(summary.blurhash, 32, 32);
  const mean = meanOf(decoded, 4);
  for (let c = 0; c < 3; c++) {
    t.ok(Math.abs((mean[c] ?? 0) - (expectedMean[c] ?? 0)) <= 10, `${label}: channel ${c} of the BlurHash's mean is within 10/255 (${mean[c]?.toFixed(1)} vs ${expectedMean[c]?.toFixed(1)})`);
  }
  t.ok(summary.lqip.length <= 1024, `${label}: the LQIP data URI is at most 1 KB (${summary.lqip.length})`);
  const lqip = probe(lqipBytes(summary));
  t.equal(lqip.format, 'webp', `${label}: the LQIP is a WebP`);
  t.ok(Math.max(lqip.width, lqip.height) <= 32, `${label}: at most 32 px on its long side`);
  t.match(summary.dominant, /^#[0-9a-f]{6}$/, `${label}: the dominant colour is #rrggbb`);
}

t.test('a JPEG photo: the BlurHash decodes to its mean colour, the LQIP is small and decodes', async (t) => {
  const jpeg = photoJpeg(640, 480, 90, 4);
  const prepared = prepareOriginal(jpeg, { maxPixels: 1e9, summarise: true });
  t.ok(prepared.summary, 'summarised');
  checkSummary(t, prepared.summary as ImageSummary, meanOfImage(jpeg), 'jpeg');
});

t.test('a PNG with alpha: transparent areas count as white', async (t) => {
  const png = alphaPng();
  const prepared = prepareOriginal(png, { maxPixels: 1e9, summarise: true });
  checkSummary(t, prepared.summary as ImageSummary, meanOfImage(png), 'png');
  t.equal(probe(lqipBytes(prepared.summary as ImageSummary)).hasAlpha, true, 'the LQIP keeps the alpha');
});

t.test('an animated GIF: the first frame, and its frame count', async (t) => {
  const gif = animatedGif(3, 40);
  const summarised = summariseOriginal(gif);
  t.equal(summarised.frames, 3);
  checkSummary(t, summarised.summary, [255, 0, 0], 'gif');
  t.equal(summarised.summary.dominant, '#ff0000', 'the dominant colour of a red frame is red');
});

t.test('the summary is of the picture as displayed: orientation applied, the upload crop taken', async (t) => {
  // Displays 96x64 grey with red top left and blue top right; the crop keeps the red block only.
  const prepared = prepareOriginal(orientedJpeg(6), { maxPixels: 1e9, crop: { x: 0, y: 0, width: 24, height: 20 }, summarise: true });
  const dominant = prepared.summary?.dominant ?? '';
  const [r, g, b] = [1, 3, 5].map((at) => parseInt(dominant.slice(at, at + 2), 16));
  t.ok((r ?? 0) > 180 && (g ?? 255) < 80 && (b ?? 255) < 80, `the cropped picture is red (${dominant})`);
});

t.test('a flat image has its colour as the dominant one', async (t) => {
  t.equal(summariseOriginal(solid(50, 30, [10, 120, 200])).summary.dominant, '#0a78c8');
});

t.test('BlurHash components follow the aspect ratio', async (t) => {
  t.same(blurhashComponents(400, 300), [4, 3]);
  t.same(blurhashComponents(1600, 900), [4, 2]);
  t.same(blurhashComponents(300, 300), [4, 4]);
  t.same(blurhashComponents(300, 1200), [1, 4]);
});
