import t from 'tap';
import { probe, render } from '../../src/index.js';
import { photoJpeg, solid } from '../helpers/fixtures.js';

// Sizes worked out by hand from the fit definitions, not from the code.
const sources = {
  landscape: solid(300, 200, [90, 120, 150]),
  portrait: solid(200, 300, [90, 120, 150]),
  square: solid(250, 250, [90, 120, 150]),
};

type Row = [keyof typeof sources, number, number, 'clip' | 'crop' | 'canvas' | 'cover', number, number];
const table: Row[] = [
  ['landscape', 100, 100, 'clip', 100, 67],
  ['landscape', 100, 100, 'crop', 100, 100],
  ['landscape', 100, 100, 'canvas', 100, 100],
  ['landscape', 100, 100, 'cover', 150, 100],
  ['landscape', 600, 600, 'clip', 600, 400],
  ['landscape', 600, 600, 'crop', 600, 600],
  ['landscape', 600, 600, 'canvas', 600, 600],
  ['landscape', 600, 600, 'cover', 900, 600],
  ['landscape', 120, 60, 'clip', 90, 60],
  ['landscape', 120, 60, 'crop', 120, 60],
  ['landscape', 120, 60, 'canvas', 120, 60],
  ['landscape', 120, 60, 'cover', 120, 80],
  ['portrait', 100, 100, 'clip', 67, 100],
  ['portrait', 100, 100, 'crop', 100, 100],
  ['portrait', 100, 100, 'canvas', 100, 100],
  ['portrait', 100, 100, 'cover', 100, 150],
  ['portrait', 600, 600, 'clip', 400, 600],
  ['portrait', 600, 600, 'crop', 600, 600],
  ['portrait', 600, 600, 'canvas', 600, 600],
  ['portrait', 600, 600, 'cover', 600, 900],
  ['portrait', 120, 60, 'clip', 40, 60],
  ['portrait', 120, 60, 'crop', 120, 60],
  ['portrait', 120, 60, 'canvas', 120, 60],
  ['portrait', 120, 60, 'cover', 120, 180],
  ['square', 100, 100, 'clip', 100, 100],
  ['square', 100, 100, 'crop', 100, 100],
  ['square', 100, 100, 'canvas', 100, 100],
  ['square', 100, 100, 'cover', 100, 100],
  ['square', 600, 600, 'clip', 600, 600],
  ['square', 600, 600, 'crop', 600, 600],
  ['square', 600, 600, 'canvas', 600, 600],
  ['square', 600, 600, 'cover', 600, 600],
  ['square', 120, 60, 'clip', 60, 60],
  ['square', 120, 60, 'crop', 120, 60],
  ['square', 120, 60, 'canvas', 120, 60],
  ['square', 120, 60, 'cover', 120, 120],
];

for (const [source, width, height, fit, expectedWidth, expectedHeight] of table) {
  const direction = width > 300 ? 'up' : 'down';
  t.test(`fits a ${source} source into ${width}x${height} with ${fit} (${direction}) as ${expectedWidth}x${expectedHeight}`, async (t) => {
    const result = render(sources[source], { width, height, fit, format: 'png' });
    t.equal(result.width, expectedWidth, 'width');
    t.equal(result.height, expectedHeight, 'height');
    const header = probe(new Uint8Array(result.data));
    t.equal(header.width, expectedWidth, 'encoded width');
    t.equal(header.height, expectedHeight, 'encoded height');
  });
}

t.test('scales by width alone, keeping the aspect ratio', async (t) => {
  const result = render(sources.landscape, { width: 150, format: 'png' });
  t.same([result.width, result.height], [150, 100]);
});

t.test('scales by height alone, keeping the aspect ratio', async (t) => {
  const result = render(sources.landscape, { height: 50, format: 'png' });
  t.same([result.width, result.height], [75, 50]);
});

t.test('converts at the original size when no width or height is given', async (t) => {
  const result = render(sources.portrait, { format: 'webp' });
  t.same([result.width, result.height, result.format], [200, 300, 'webp']);
});

t.test('never rounds a side to 0', async (t) => {
  const strip = solid(1000, 2, [0, 0, 0]);
  const result = render(strip, { width: 100, height: 100, format: 'png' });
  t.same([result.width, result.height], [100, 1]);
});

t.test('fits the canonical 2725x2225 photo into 720x720 as 720x588, with shrink-on-load', async (t) => {
  const photo = photoJpeg(2725, 2225, 90);
  t.same([render(photo, { width: 720, height: 720 }).width, render(photo, { width: 720, height: 720 }).height], [720, 588]);
  for (const [width, height, fit, ew, eh] of [
    [100, 100, 'crop', 100, 100],
    [100, 100, 'clip', 100, 82],
    [341, 100, 'cover', 341, 278],
    [2000, 2000, 'canvas', 2000, 2000],
  ] as const) {
    const result = render(photo, { width, height, fit });
    t.same([result.width, result.height], [ew, eh], `${width}x${height} ${fit}`);
  }
});
