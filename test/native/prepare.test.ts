import t from 'tap';
import { encodeRaw, prepareOriginal, probe } from '../../src/index.js';
import { corruptHeaderJpeg, hostile, orientedJpeg, photoJpeg, photoPixels, pngDeclaring, RED, truncated } from '../helpers/fixtures.js';
import { decode, near } from '../helpers/pixels.js';
import { thrownCode } from '../helpers/codes.js';

t.test('returns the input bytes untouched when nothing needs to change', async (t) => {
  const input = photoJpeg(300, 200, 85);
  const prepared = prepareOriginal(input, { maxPixels: 1_000_000 });
  t.equal(prepared.changed, false);
  t.equal(prepared.data, input, 'the very same bytes, no re-encode');
  t.same([prepared.width, prepared.height, prepared.format], [300, 200, 'jpeg']);
});

t.test('applies the EXIF orientation and keeps the JPEG quality', async (t) => {
  const prepared = prepareOriginal(orientedJpeg(6), { maxPixels: 1_000_000 });
  t.equal(prepared.changed, true);
  t.same([prepared.width, prepared.height], [96, 64]);
  const header = probe(prepared.data);
  t.same([header.width, header.height, header.orientation], [96, 64, 1]);
  t.ok(Math.abs((header.jpegQuality ?? 0) - 95) <= 2, `quality ${header.jpegQuality}`);
  t.ok(near(decode(prepared.data).at(5, 5), RED, 60), 'upright: red at top left');
});

t.test('crops in displayed coordinates, after orientation', async (t) => {
  const prepared = prepareOriginal(orientedJpeg(8), { maxPixels: 1_000_000, crop: { x: 0, y: 0, width: 32, height: 24 } });
  t.same([prepared.width, prepared.height], [32, 24]);
  const image = decode(prepared.data);
  t.ok(near(image.at(16, 12), RED, 60), `the crop holds the red marker: ${image.at(16, 12)}`);
});

t.test('downscales to at most maxPixels keeping the aspect ratio', async (t) => {
  const prepared = prepareOriginal(photoJpeg(1000, 500), { maxPixels: 20_000 });
  t.equal(prepared.changed, true);
  t.ok(prepared.width * prepared.height <= 20_000, `${prepared.width}x${prepared.height}`);
  t.ok(Math.abs(prepared.width / prepared.height - 2) < 0.05, 'aspect kept');
});

t.test('rejects a crop outside the image with BAD_OPTION', async (t) => {
  t.equal(thrownCode(() => prepareOriginal(photoJpeg(100, 100), { maxPixels: 1e6, crop: { x: 90, y: 0, width: 20, height: 10 } })), 'BAD_OPTION');
  t.equal(thrownCode(() => prepareOriginal(photoJpeg(100, 100), { maxPixels: 1e6, crop: { x: -1, y: 0, width: 20, height: 10 } })), 'BAD_OPTION');
});

t.test('refuses truncated and corrupt uploads with CORRUPT_IMAGE, summarised or not', async (t) => {
  const png = encodeRaw(photoPixels(300, 200), { width: 300, height: 200, channels: 3, format: 'png' });
  for (const summarise of [false, true]) {
    t.equal(thrownCode(() => prepareOriginal(truncated(photoJpeg(400, 300)), { maxPixels: 1e6, summarise })), 'CORRUPT_IMAGE', `a truncated JPEG, summarise ${summarise}`);
    t.equal(thrownCode(() => prepareOriginal(truncated(png), { maxPixels: 1e6, summarise })), 'CORRUPT_IMAGE', `a truncated PNG, summarise ${summarise}`);
    t.equal(thrownCode(() => prepareOriginal(truncated(png), { maxPixels: 1e6, summarise, crop: { x: 0, y: 0, width: 10, height: 10 } })), 'CORRUPT_IMAGE', `cut after a crop, summarise ${summarise}`);
    t.equal(thrownCode(() => prepareOriginal(corruptHeaderJpeg(), { maxPixels: 1e6, summarise })), 'CORRUPT_IMAGE');
  }
});

t.test('scales an upload focus with the downscale to maxPixels, and refuses one outside the picture', async (t) => {
  const prepared = prepareOriginal(photoJpeg(1000, 500), { maxPixels: 20_000, focus: { x: 999, y: 0 } });
  t.same(prepared.focus, { x: prepared.width - 1, y: 0 }, 'the last column stays the last');
  const cropped = prepareOriginal(photoJpeg(300, 200), { maxPixels: 1e6, crop: { x: 100, y: 50, width: 100, height: 50 }, focus: { x: 99, y: 49 } });
  t.same(cropped.focus, { x: 99, y: 49 }, 'relative to the cropped picture');
  t.equal(thrownCode(() => prepareOriginal(photoJpeg(300, 200), { maxPixels: 1e6, crop: { x: 100, y: 50, width: 100, height: 50 }, focus: { x: 100, y: 0 } })), 'BAD_OPTION');
});

t.test('refuses oversized and unsupported uploads with their codes', async (t) => {
  t.equal(thrownCode(() => prepareOriginal(pngDeclaring(100_000, 100_000), { maxPixels: 1e6 })), 'TOO_MANY_PIXELS');
  t.equal(thrownCode(() => prepareOriginal(hostile.svg, { maxPixels: 1e6 })), 'UNSUPPORTED_FORMAT');
});
