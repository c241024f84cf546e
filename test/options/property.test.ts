import fc from 'fast-check';
import t from 'tap';
import { ImageError } from '../../src/errors.js';
import { ID_PATTERN, MAX_SCALE, MAX_URL_FRAMES, MAX_URL_SIDE, URL_GRAVITIES } from '../../src/options/grammar.js';
import { parseImageRequest } from '../../src/options/parse.js';
import { imageUrl } from '../../src/client/index.js';

const pathChars = fc.constantFrom(...'abcXYZ019_-./%\\\u0000 x.jpgpngwebp'.split(''));
const hostilePath = fc.oneof(
  fc.string(),
  fc.string({ unit: pathChars, maxLength: 300 }).map((s) => `/${s}`),
  fc.tuple(fc.string({ unit: pathChars, maxLength: 20 }), fc.integer(), fc.integer(), fc.constantFrom('jpg', 'png', 'webp', 'gif', '')).map(
    ([id, w, h, ext]) => `/${id}_${w}_${h}.${ext}`,
  ),
);

t.test('the URL parser never throws anything but a coded error on arbitrary input', async (t) => {
  fc.assert(
    fc.property(hostilePath, fc.string(), (path, query) => {
      try {
        parseImageRequest(path, query);
      } catch (error) {
        if (!(error instanceof ImageError) || !['BAD_OPTION', 'BAD_REQUEST'].includes(error.code)) throw error;
      }
    }),
    { numRuns: 5000 },
  );
  t.pass('no uncoded errors');
});

t.test('the URL parser never yields an id that can leave its folder or a size beyond the bounds', async (t) => {
  fc.assert(
    fc.property(hostilePath, fc.string(), (path, query) => {
      let request;
      try {
        request = parseImageRequest(path, query);
      } catch {
        return;
      }
      if (!ID_PATTERN.test(request.id) || request.id.includes('.') || request.id.includes('/')) throw new Error(`bad id ${request.id}`);
      if (request.width > MAX_URL_SIDE || request.height > MAX_URL_SIDE || request.width < 0 || request.height < 0) throw new Error('size out of bounds');
      if (request.scale < 1 || request.scale > MAX_SCALE) throw new Error('scale out of bounds');
    }),
    { numRuns: 5000 },
  );
  t.pass('ids and sizes stay in bounds');
});

t.test('every URL the client helper builds parses back to the same options', async (t) => {
  const options = fc.record({
    id: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
    width: fc.integer({ min: 1, max: MAX_URL_SIDE }),
    height: fc.integer({ min: 1, max: MAX_URL_SIDE }),
    scale: fc.integer({ min: 1, max: MAX_SCALE }),
    fit: fc.constantFrom('clip', 'crop', 'canvas', 'cover'),
    format: fc.constantFrom('jpeg', 'png', 'webp', 'avif', 'gif'),
    quality: fc.oneof(fc.constant('auto' as const), fc.integer({ min: 0, max: 100 })),
    blur: fc.boolean(),
    gravity: fc.option(fc.constantFrom(...URL_GRAVITIES), { nil: undefined }),
    frames: fc.option(fc.integer({ min: 1, max: MAX_URL_FRAMES }), { nil: undefined }),
  });
  fc.assert(
    fc.property(options, (o) => {
      const url = new URL(imageUrl('https://img.example.com', o.id, o));
      const parsed = parseImageRequest(url.pathname, url.search.slice(1));
      const same =
        parsed.id === o.id &&
        parsed.kind === 'variant' &&
        parsed.width === o.width &&
        parsed.height === o.height &&
        parsed.scale === o.scale &&
        parsed.fit === o.fit &&
        parsed.format === o.format &&
        parsed.quality === o.quality &&
        parsed.blur === o.blur &&
        parsed.gravity === o.gravity &&
        parsed.frames === o.frames;
      if (!same) throw new Error(`${url} parsed as ${JSON.stringify(parsed)}`);
    }),
    { numRuns: 3000 },
  );
  t.pass('round trip holds');
});
