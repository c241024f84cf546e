import t from 'tap';
import { imageUrl, picture } from '../../src/client/index.js';
import { parseImageRequest } from '../../src/options/parse.js';

t.test('accepts jpg as well as jpeg for the format', async (t) => {
  t.equal(imageUrl('', 'photo', { width: 10, height: 10, format: 'jpg' }), '/photo_10_10.jpg');
  t.equal(imageUrl('', 'photo', { width: 10, height: 10, format: 'jpeg' }), '/photo_10_10.jpg');
  t.throws(() => imageUrl('', 'photo', { format: 'bmp' as never }), /Expected one of .* for format but received "bmp"/);
});

t.test('picture() gives AVIF and WebP sources ahead of a JPEG img', async (t) => {
  const built = picture('https://img.example.com', 'photo', { width: 300, height: 200, fit: 'crop', alt: 'A "photo"' });
  t.same(built.sources.map((source) => source.type), ['image/avif', 'image/webp']);
  t.equal(built.sources[0]?.srcset, 'https://img.example.com/photo_300_200.avif?fit=crop 1x, https://img.example.com/photo_300_200_2x.avif?fit=crop 2x, https://img.example.com/photo_300_200_3x.avif?fit=crop 3x');
  t.equal(built.img.src, 'https://img.example.com/photo_300_200.jpg?fit=crop');
  t.equal(built.img.width, 300);
  t.match(built.html, /^<picture><source type="image\/avif" srcset="[^"]+"><source type="image\/webp" srcset="[^"]+"><img src="[^"]+" srcset="[^"]+" width="300" height="200" alt="A &quot;photo&quot;"><\/picture>$/);
  for (const source of built.sources) {
    for (const candidate of source.srcset.split(', ')) {
      const url = new URL(candidate.split(' ')[0] ?? '');
      t.equal(parseImageRequest(url.pathname, url.search.slice(1)).fit, 'crop', 'the server parses every candidate');
    }
  }
});

t.test('picture() offers no source in the format of its img', async (t) => {
  const built = picture('', 'photo', { width: 64, height: 64, format: 'webp' }, [1, 2]);
  t.same(built.sources.map((source) => source.type), ['image/avif']);
  t.equal(built.img.srcset, '/photo_64_64.webp 1x, /photo_64_64_2x.webp 2x');
});
