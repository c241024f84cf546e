import t from 'tap';
import { encodeRaw, probe, render } from '../../src/index.js';
import { alphaPng, animatedGif, cmykJpeg, hasJpegMarker, orientedJpeg, photoJpeg, photoPixels, solid } from '../helpers/fixtures.js';
import { decode, meanDifference, near } from '../helpers/pixels.js';

const bytes = (data: ArrayBuffer) => new Uint8Array(data);

for (const quality of [30, 50, 75, 90]) {
  t.test(`estimates a q${quality} source's quality within 2 and keeps it for JPEG output`, async (t) => {
    const source = photoJpeg(320, 240, quality, quality);
    const estimate = probe(source).jpegQuality ?? -100;
    t.ok(Math.abs(estimate - quality) <= 2, `estimate ${estimate}`);
    const output = probe(bytes(render(source, { width: 160, height: 160 }).data)).jpegQuality ?? -100;
    t.ok(Math.abs(output - quality) <= 2, `output quality ${output}`);
  });
}

t.test('uses the format defaults for auto quality when the source is not a JPEG', async (t) => {
  const png = encodeRaw(photoPixels(120, 90), { width: 120, height: 90, channels: 3, format: 'png' });
  const jpegAuto = render(png, { width: 60, format: 'jpeg' });
  t.equal(probe(bytes(jpegAuto.data)).jpegQuality, 80, 'JPEG 80');
  const same = (a: ArrayBuffer, b: ArrayBuffer) => Buffer.from(a).equals(Buffer.from(b));
  t.ok(same(render(png, { width: 60, format: 'webp' }).data, render(png, { width: 60, format: 'webp', quality: 80 }).data), 'WebP 80');
  t.ok(same(render(png, { width: 60, format: 'avif' }).data, render(png, { width: 60, format: 'avif', quality: 50 }).data), 'AVIF 50');
});

t.test('applies an explicit quality to JPEG and ignores it for PNG', async (t) => {
  const source = photoJpeg(200, 150, 90);
  t.equal(probe(bytes(render(source, { width: 100, quality: 40 }).data)).jpegQuality, 40);
  const low = render(source, { width: 100, format: 'png', quality: 10 });
  const high = render(source, { width: 100, format: 'png', quality: 90 });
  t.ok(Buffer.from(low.data).equals(Buffer.from(high.data)), 'PNG bytes do not depend on quality');
  const webpLow = render(source, { width: 100, format: 'webp', quality: 10 }).data.byteLength;
  const webpHigh = render(source, { width: 100, format: 'webp', quality: 95 }).data.byteLength;
  t.ok(webpLow < webpHigh, 'WebP quality changes the size');
});

t.test('writes progressive JPEG', async (t) => {
  const output = bytes(render(photoJpeg(200, 150), { width: 120 }).data);
  t.ok(hasJpegMarker(output, 0xc2), 'SOF2 marker present');
});

t.test('strips metadata such as EXIF', async (t) => {
  const output = Buffer.from(render(orientedJpeg(3), { width: 50 }).data);
  t.equal(output.indexOf('Exif\0\0'), -1, 'no Exif segment');
});

t.test('blur changes pixels but not the size', async (t) => {
  const source = photoJpeg(200, 150);
  const sharp = render(source, { width: 100, format: 'png' });
  const blurred = render(source, { width: 100, format: 'png', blur: { sigma: 2 } });
  t.same([blurred.width, blurred.height], [sharp.width, sharp.height]);
  t.ok(meanDifference(decode(sharp.data), decode(blurred.data)) > 2, 'pixels differ');
});

t.test('canvas corners are the background colour', async (t) => {
  const source = solid(300, 100, [0, 0, 0]);
  const white = decode(render(source, { width: 100, height: 100, fit: 'canvas' }).data);
  t.ok(near(white.at(0, 0), [255, 255, 255], 8), `white top left ${white.at(0, 0)}`);
  t.ok(near(white.at(99, 99), [255, 255, 255], 8), 'white bottom right');
  t.ok(near(white.at(50, 50), [0, 0, 0], 8), 'the image in the middle');
  const green = decode(render(source, { width: 100, height: 100, fit: 'canvas', background: '#00ff00', format: 'png' }).data);
  t.same(green.at(0, 0), [0, 255, 0], 'a custom background');
});

t.test('a JPEG made from an alpha PNG is white where the PNG was transparent', async (t) => {
  const image = decode(render(alphaPng(), { format: 'jpeg' }).data);
  t.equal(image.channels, 3);
  t.ok(near(image.at(35, 20), [255, 255, 255], 8), `transparent became white: ${image.at(35, 20)}`);
  t.ok(near(image.at(5, 20), [220, 0, 0], 30), 'opaque red stays red');
});

t.test('a canvas keeps transparency when the source and the output have alpha', async (t) => {
  const image = decode(render(alphaPng(), { width: 80, height: 40, fit: 'canvas', format: 'png' }).data);
  t.equal(image.channels, 4);
  t.equal(image.at(0, 0)[3], 0, 'canvas corner is transparent');
  t.equal(image.at(25, 20)[3], 255, 'the opaque half stays opaque');
});

t.test('a CMYK JPEG comes out right, not inverted', async (t) => {
  const pixel = decode(render(cmykJpeg(), { format: 'png' }).data).at(16, 16);
  t.ok((pixel[0] ?? 255) < 100 && (pixel[1] ?? 0) > 120 && (pixel[2] ?? 0) > 180, `cyan: ${pixel}`);
});

t.test('uses the first frame of an animated GIF', async (t) => {
  const result = render(animatedGif(3), { format: 'png' });
  t.same([result.width, result.height], [20, 20]);
  t.ok(near(decode(result.data).at(10, 10), [255, 0, 0], 10), 'red, the first frame');
});

t.test('reads every accepted input format', async (t) => {
  const pixels = photoPixels(64, 48);
  for (const format of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const) {
    const input = encodeRaw(pixels, { width: 64, height: 48, channels: 3, format });
    t.equal(probe(input).format, format, `${format} is detected`);
    const result = render(input, { width: 32, format: 'jpeg' });
    t.same([result.width, result.height], [32, 24], `${format} renders`);
  }
});
