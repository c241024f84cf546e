/**
 * Where a crop box sits: generated images with a bright square on a flat
 * background, rendered with each gravity, and the square looked for in the output.
 */
import t from 'tap';
import { render, type Gravity } from '../../src/index.js';
import { subjectPng } from '../helpers/fixtures.js';
import { decode, subjectPixels } from '../helpers/pixels.js';


function crop(source: Uint8Array, width: number, height: number, gravity: Gravity, focus?: { x: number; y: number }): ArrayBuffer {
  const result = render(source, { width, height, fit: 'crop', format: 'png', gravity, ...(focus ? { focus } : {}) });
  if (result.width !== width || result.height !== height) throw new Error(`${gravity} rendered ${result.width}x${result.height}, not the box`);
  return result.data;
}

t.test('attention keeps a subject off-centre that centre cuts', async (t) => {
  // 400x200; the subject (40x40) sits near the right edge; the crop is 100x100 of a 200x100 fit.
  const source = subjectPng(400, 200, 330, 80, 40);
  const whole = (20 / 1) * (20 / 1); // the subject is 20x20 after the halving resize
  t.ok(subjectPixels(crop(source, 100, 100, 'attention')) >= whole * 0.8, 'attention keeps the subject');
  t.ok(subjectPixels(crop(source, 100, 100, 'entropy')) >= whole * 0.8, 'entropy keeps it too');
  t.equal(subjectPixels(crop(source, 100, 100, 'centre')), 0, 'centre cuts it');
});

t.test('each compass gravity keeps its edge', async (t) => {
  // Landscape: the crop keeps the full height and slides along x. Portrait: along y.
  const landscape = { east: subjectPng(400, 100, 360, 30, 40), west: subjectPng(400, 100, 0, 30, 40) };
  const portrait = { north: subjectPng(100, 400, 30, 0, 40), south: subjectPng(100, 400, 30, 360, 40) };
  const cases: [Gravity, Uint8Array, Uint8Array][] = [
    ['east', landscape.east, landscape.west],
    ['west', landscape.west, landscape.east],
    ['north', portrait.north, portrait.south],
    ['south', portrait.south, portrait.north],
  ];
  for (const [gravity, kept, opposite] of cases) {
    t.ok(subjectPixels(crop(kept, 100, 100, gravity)) >= 1500, `${gravity} keeps a subject at its edge`);
    t.equal(subjectPixels(crop(opposite, 100, 100, gravity)), 0, `${gravity} cuts a subject at the opposite edge`);
  }
  // Corners: a crop slides along one axis only, so each corner keeps the two edges it names.
  const corners: [Gravity, keyof typeof landscape, keyof typeof portrait][] = [
    ['northeast', 'east', 'north'],
    ['northwest', 'west', 'north'],
    ['southeast', 'east', 'south'],
    ['southwest', 'west', 'south'],
  ];
  for (const [gravity, across, down] of corners) {
    t.ok(subjectPixels(crop(landscape[across], 100, 100, gravity)) >= 1500, `${gravity} keeps a subject at the ${across} edge`);
    t.ok(subjectPixels(crop(portrait[down], 100, 100, gravity)) >= 1500, `${gravity} keeps a subject at the ${down} edge`);
  }
});

t.test('a focal point near a corner stays in the crop, as near its centre as the image allows', async (t) => {
  const source = subjectPng(400, 400, 8, 352, 40); // near the bottom left corner
  const kept = crop(source, 60, 30, 'focus', { x: 28, y: 372 });
  t.ok(subjectPixels(kept) > 0, 'the subject around the focal point is in the crop');
  t.equal(subjectPixels(crop(source, 60, 30, 'centre')), 0, 'centre cuts it');
  // The 400x400 source fits as 60x60; the crop 60x30 can only slide down, to the bottom edge.
  const image = decode(kept);
  const [r = 0] = image.at(5, 25);
  t.ok(r > 200, 'the box went as far towards the point as the image allows (the bottom edge)');
});

t.test('focus without a focal point is centre', async (t) => {
  const source = subjectPng(400, 200, 330, 80, 40);
  t.equal(subjectPixels(crop(source, 100, 100, 'focus')), 0);
});

t.test('gravity changes nothing for fits that crop nothing', async (t) => {
  const source = subjectPng(400, 200, 330, 80, 40);
  for (const fit of ['clip', 'cover', 'canvas'] as const) {
    const east = render(source, { width: 100, height: 100, fit, format: 'png', gravity: 'east' });
    const centre = render(source, { width: 100, height: 100, fit, format: 'png' });
    t.ok(Buffer.from(east.data).equals(Buffer.from(centre.data)), `${fit} ignores the gravity`);
  }
});
