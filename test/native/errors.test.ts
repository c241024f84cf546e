import t from 'tap';
import { ImageError, libvipsVersion, probe, render } from '../../src/index.js';
import { native } from '../../src/render/native.js';
import {
  animatedGif,
  corruptHeaderJpeg,
  hostile,
  photoJpeg,
  pngDeclaring,
  solid,
  tiffDeclaring,
  truncated,
} from '../helpers/fixtures.js';
import { thrownCode } from '../helpers/codes.js';

t.test('runs on libvips 8.18.7 from the npm package', async (t) => {
  t.equal(libvipsVersion(), '8.18.7');
});

for (const [name, payload] of Object.entries(hostile)) {
  t.test(`refuses ${name} bytes with UNSUPPORTED_FORMAT`, async (t) => {
    t.equal(thrownCode(() => probe(payload)), 'UNSUPPORTED_FORMAT');
    t.equal(thrownCode(() => render(payload, { width: 10 })), 'UNSUPPORTED_FORMAT');
  });
}

t.test('blocks libvips untrusted loaders, so its own sniffing finds none for SVG, PDF or MVG', async (t) => {
  for (const payload of [hostile.svg, hostile.pdf, hostile.mvg, hostile.msl]) {
    t.equal(native().libvipsLoaderFor(payload), null);
  }
  t.equal(native().libvipsLoaderFor(photoJpeg(16, 16)), 'VipsForeignLoadJpegBuffer', 'trusted loaders still work');
});

t.test('refuses a tiny PNG declaring 100000x100000 with TOO_MANY_PIXELS, from the header alone', async (t) => {
  const bomb = pngDeclaring(100_000, 100_000);
  t.ok(bomb.length < 400, `only ${bomb.length} bytes`);
  const header = probe(bomb);
  t.same([header.width, header.height], [100_000, 100_000], 'probe reads the header without decoding');
  const before = process.memoryUsage().rss;
  t.equal(thrownCode(() => render(bomb, { width: 100 })), 'TOO_MANY_PIXELS');
  t.ok(process.memoryUsage().rss - before < 50 * 1024 * 1024, 'no large allocation');
});

t.test('refuses a 1x60,000,000 strip with TOO_MANY_PIXELS at a 50 megapixel limit', async (t) => {
  const strip = tiffDeclaring(1, 60_000_000);
  t.equal(thrownCode(() => render(strip, { width: 1, maxInputPixels: 50_000_000 })), 'TOO_MANY_PIXELS');
});

t.test('counts every frame a render keeps against the pixel limit, and no other', async (t) => {
  const gif = animatedGif(30, 20); // 30 frames of 400 pixels
  t.equal(probe(gif).pages, 30);
  t.equal(thrownCode(() => render(gif, { width: 10, format: 'webp', frames: 30, maxInputPixels: 5_000 })), 'TOO_MANY_PIXELS', '30 frames kept are 12,000 pixels');
  t.equal(thrownCode(() => render(gif, { width: 10, format: 'gif', frames: 100, maxInputPixels: 5_000 })), 'TOO_MANY_PIXELS', 'frames beyond the animation are not counted, those in it are');
  t.equal(thrownCode(() => render(gif, { width: 10, format: 'webp', frames: 30, maxInputPixels: 20_000 })), undefined, 'under the limit renders');
  t.equal(thrownCode(() => render(gif, { width: 10, format: 'webp', frames: 1, maxInputPixels: 5_000 })), undefined, 'a still counts one frame');
  t.equal(thrownCode(() => render(gif, { width: 10, format: 'jpeg', frames: 30, maxInputPixels: 5_000 })), undefined, 'a JPEG keeps one frame');
});

t.test('refuses a truncated JPEG with CORRUPT_IMAGE', async (t) => {
  t.equal(thrownCode(() => render(truncated(photoJpeg(400, 300)), { width: 100 })), 'CORRUPT_IMAGE');
});

t.test('refuses a JPEG with a corrupt header with CORRUPT_IMAGE', async (t) => {
  t.equal(thrownCode(() => probe(corruptHeaderJpeg())), 'CORRUPT_IMAGE');
  t.equal(thrownCode(() => render(corruptHeaderJpeg(), { width: 100 })), 'CORRUPT_IMAGE');
});

t.test('an image that decodes but that the encoder refuses is ENCODE_FAILED, not the input\'s CORRUPT_IMAGE', async (t) => {
  // WebP holds at most 16383 pixels a side; converting a 1x20000 PNG at its own size asks for more.
  const tall = solid(1, 20_000, [40, 90, 160], 'png');
  let failure: ImageError | undefined;
  try {
    render(tall, { format: 'webp' });
  } catch (error) {
    failure = error as ImageError;
  }
  t.equal(failure?.code, 'ENCODE_FAILED');
  t.equal(failure?.status, 500, 'the service\'s failure, not the client\'s');
  t.ok(failure?.detail && /webpsave/.test(failure.detail), `detail keeps libvips' text for logs: ${failure?.detail}`);
  t.notMatch(failure?.message ?? '', /webpsave|vips/i, 'the message is ours');
  t.equal(thrownCode(() => render(tall, { format: 'png' })), undefined, 'the same input renders as PNG: it decodes');
  t.equal(thrownCode(() => render(truncated(photoJpeg(400, 300)), { format: 'webp' })), 'CORRUPT_IMAGE', 'an input failing in the same encode is still CORRUPT_IMAGE');
});

t.test('keeps libvips text out of the message and out of later calls', async (t) => {
  let first: ImageError | undefined;
  try {
    render(truncated(photoJpeg(400, 300)), { width: 100 });
  } catch (error) {
    first = error as ImageError;
  }
  t.ok(first?.detail && /jpeg/i.test(first.detail), `detail keeps libvips' text for logs: ${first?.detail}`);
  t.notMatch(first?.message ?? '', /Vips/, 'the message is ours');
  t.equal(thrownCode(() => render(photoJpeg(64, 64), { width: 32 })), undefined, 'a good render still succeeds');
  try {
    render(corruptHeaderJpeg(), { width: 100 });
  } catch (error) {
    t.notMatch((error as ImageError).detail ?? '', /premature end/i, 'no earlier error text leaks in');
  }
});

const badOptions: [string, unknown][] = [
  ['a width of 0', { width: 0 }],
  ['a negative width', { width: -5 }],
  ['a fractional height', { height: 10.5 }],
  ['a NaN width', { width: Number.NaN }],
  ['a width of 1e9', { width: 1e9 }],
  ['a quality of 101', { quality: 101 }],
  ['a quality of "high"', { quality: 'high' }],
  ['an unknown fit', { fit: 'stretch' }],
  ['an unknown format', { format: 'bmp' }],
  ['a blur sigma of 0', { blur: { sigma: 0 } }],
  ['a blur sigma of 1000', { blur: { sigma: 1000 } }],
  ['a background of "red"', { background: 'red' }],
  ['a negative timeout', { timeoutMs: -1 }],
  ['options that are not an object', 'fast'],
];
for (const [what, options] of badOptions) {
  t.test(`rejects ${what} with BAD_OPTION`, async (t) => {
    t.equal(thrownCode(() => render(photoJpeg(16, 16), options as never)), 'BAD_OPTION');
  });
}

t.test('rejects an input that is not a Uint8Array with BAD_OPTION', async (t) => {
  t.equal(thrownCode(() => render('photo.jpg' as never, { width: 10 })), 'BAD_OPTION');
});

t.test('formats parameter errors as Expected <what> for <name> but received <value>', async (t) => {
  try {
    render(photoJpeg(16, 16), { width: 0 });
    t.fail('should throw');
  } catch (error) {
    t.equal((error as Error).message, 'Expected an integer between 1 and 16383 for width but received 0');
  }
});

t.test('a render past timeoutMs fails with TIMEOUT within timeoutMs + 200 ms', async (t) => {
  const source = photoJpeg(400, 300);
  const started = performance.now();
  const code = thrownCode(() => render(source, { width: 12000, height: 9000, blur: { sigma: 5 }, timeoutMs: 100 }));
  const elapsed = performance.now() - started;
  t.equal(code, 'TIMEOUT');
  t.ok(elapsed < 300, `returned after ${Math.round(elapsed)} ms`);
  t.equal(thrownCode(() => render(source, { width: 100 })), undefined, 'the next render succeeds');
});
