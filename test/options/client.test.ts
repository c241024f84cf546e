import t from 'tap';
import { imageUrl, srcset } from '../../src/client/index.js';
import { parseImageRequest } from '../../src/options/parse.js';

t.test('builds a sized URL with a retina factor and a fit', async (t) => {
  t.equal(imageUrl('https://img.example.com/', 'photo', { width: 360, height: 360, scale: 2, fit: 'crop' }), 'https://img.example.com/photo_360_360_2x.jpg?fit=crop');
});

t.test('builds the URL of an original in another format', async (t) => {
  t.equal(imageUrl('', 'photo', { format: 'webp' }), '/photo.webp');
});

t.test('gives 1x, 2x and 3x srcset candidates that the server parses', async (t) => {
  const set = srcset('', 'photo', { width: 100, height: 80, format: 'webp' });
  t.equal(set, '/photo_100_80.webp 1x, /photo_100_80_2x.webp 2x, /photo_100_80_3x.webp 3x');
  for (const candidate of set.split(', ')) {
    const path = candidate.split(' ')[0] ?? '';
    t.equal(parseImageRequest(path).id, 'photo');
  }
});

t.test('refuses options the server would refuse', async (t) => {
  t.throws(() => imageUrl('', '../x', {}));
  t.throws(() => imageUrl('', 'p', { width: 0, height: 10 }));
  t.throws(() => imageUrl('', 'p', { width: 10, height: 10, scale: 9 }));
  t.throws(() => imageUrl('', 'p', { width: 10, height: 10, quality: 101 }));
});
