import t from 'tap';
import { parseIdPath, parseImageRequest, parseInfoPath } from '../../src/options/parse.js';
import { parseUploadQuery } from '../../src/options/upload.js';
import { thrownCode } from '../helpers/codes.js';

t.test('parses a variant from the right, so ids may hold underscores', async (t) => {
  const request = parseImageRequest('/my_photo_100_120.jpg');
  t.match(request, { id: 'my_photo', kind: 'variant', width: 100, height: 120, scale: 1, format: 'jpeg', fit: 'clip' });
});

t.test('parses a retina factor', async (t) => {
  t.match(parseImageRequest('/photo_360_360_2x.png', 'fit=crop'), { id: 'photo', width: 360, height: 360, scale: 2, fit: 'crop', format: 'png' });
});

t.test('parses an original with each accepted extension', async (t) => {
  for (const [ext, format] of [['jpg', 'jpeg'], ['jpeg', 'jpeg'], ['jfif', 'jpeg'], ['jpe', 'jpeg'], ['png', 'png'], ['webp', 'webp'], ['avif', 'avif'], ['gif', 'gif'], ['JPG', 'jpeg']]) {
    t.match(parseImageRequest(`/photo.${ext}`), { id: 'photo', kind: 'original', format }, ext as string);
  }
});

t.test('reads fit, blur, quality, proxy and allow_webp from the query', async (t) => {
  const request = parseImageRequest('/p_10_10.webp', 'fit=cover&blur=true&quality=55&proxy=true&allow_webp=true&utm=x');
  t.match(request, { fit: 'cover', blur: true, quality: 55, proxy: true, allowWebp: true, hasFilters: true });
  t.equal(parseImageRequest('/p_10_10.webp', 'quality=auto').quality, 'auto');
});

t.test('reads gravity and frames from the query, undefined when not given', async (t) => {
  t.match(parseImageRequest('/p_10_10.webp', 'fit=crop&gravity=southwest&frames=3'), { gravity: 'southwest', frames: 3, hasFilters: true });
  for (const gravity of ['centre', 'north', 'south', 'east', 'west', 'northeast', 'northwest', 'southeast', 'southwest', 'attention', 'entropy', 'focus']) {
    t.equal(parseImageRequest('/p_10_10.jpg', `gravity=${gravity}`).gravity, gravity);
  }
  const plain = parseImageRequest('/p_10_10.gif');
  t.match(plain, { gravity: undefined, frames: undefined, hasFilters: false, format: 'gif' });
});

t.test('names the JSON answer of an id, and only that', async (t) => {
  t.equal(parseInfoPath('/photo.json'), 'photo');
  t.equal(parseInfoPath('/my_photo_10_10.json'), 'my_photo_10_10', 'the whole name is the id');
  t.equal(parseInfoPath('/photo.jpg'), undefined);
  t.equal(thrownCode(() => parseInfoPath('/../x.json')), 'BAD_REQUEST');
});

t.test('reads an upload focus as x,y, alone or with a crop', async (t) => {
  t.same(parseUploadQuery('focus=10,20'), { focus: { x: 10, y: 20 } });
  t.same(parseUploadQuery('x=1&y=2&width=30&height=40&focus=5,6'), { crop: { x: 1, y: 2, width: 30, height: 40 }, focus: { x: 5, y: 6 } });
  for (const bad of ['focus=10', 'focus=a,b', 'focus=-1,2', 'focus=1,2,3', 'focus=1.5,2', 'focus=1,2&focus=3,4']) {
    t.equal(thrownCode(() => parseUploadQuery(bad)), 'BAD_OPTION', bad);
  }
});

const badPaths: [string, string, string][] = [
  ['a width of 0', '/photo_0_100.jpg', 'BAD_OPTION'],
  ['a negative width', '/photo_-5_100.jpg', 'BAD_OPTION'],
  ['NaN', '/photo_NaN_100.jpg', 'BAD_OPTION'],
  ['1e9', '/photo_1e9_100.jpg', 'BAD_OPTION'],
  ['a fractional size', '/photo_10.5_100.jpg', 'BAD_OPTION'],
  ['a huge size', '/photo_100001_100.jpg', 'BAD_OPTION'],
  ['a 0x factor', '/photo_10_10_0x.jpg', 'BAD_OPTION'],
  ['a 9x factor', '/photo_10_10_9x.jpg', 'BAD_OPTION'],
  ['an unknown extension', '/photo_10_10.bmp', 'BAD_OPTION'],
  ['a traversal', '/../x.jpg', 'BAD_REQUEST'],
  ['an encoded traversal', '/%2e%2e%2fx.jpg', 'BAD_REQUEST'],
  ['a NUL in the id', '/pho\u0000to.jpg', 'BAD_REQUEST'],
  ['a nested path', '/a/b.jpg', 'BAD_REQUEST'],
  ['no extension', '/photo', 'BAD_REQUEST'],
  ['a 10 KB id', `/${'a'.repeat(10_240)}.jpg`, 'BAD_REQUEST'],
  ['an id of 129 characters', `/${'a'.repeat(129)}.jpg`, 'BAD_REQUEST'],
];
for (const [what, path, code] of badPaths) {
  t.test(`rejects ${what} with ${code}`, async (t) => {
    t.equal(thrownCode(() => parseImageRequest(path)), code);
  });
}

const badQueries: [string, string][] = [
  ['quality=101', 'quality=101'],
  ['quality=-1', 'quality=-1'],
  ['an unknown fit', 'fit=stretch'],
  ['a duplicate fit', 'fit=crop&fit=clip'],
  ['blur=maybe', 'blur=maybe'],
  ['an unknown gravity', 'fit=crop&gravity=middle'],
  ['a duplicate gravity', 'gravity=north&gravity=south'],
  ['frames=0', 'frames=0'],
  ['frames=1.5', 'frames=1.5'],
  ['a huge frames', 'frames=1000000'],
];
for (const [what, query] of badQueries) {
  t.test(`rejects ${what} with BAD_OPTION`, async (t) => {
    t.equal(thrownCode(() => parseImageRequest('/photo_10_10.jpg', query)), 'BAD_OPTION');
  });
}

t.test('parses upload and delete paths with or without an extension', async (t) => {
  t.equal(parseIdPath('/photo'), 'photo');
  t.equal(parseIdPath('/photo.jpg'), 'photo');
  t.equal(thrownCode(() => parseIdPath('/../etc')), 'BAD_REQUEST');
});
