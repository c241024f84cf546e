/** Animated sources: the frames, delays and loop count a WebP or GIF output keeps, and the first frame elsewhere. */
import t from 'tap';
import { probe, render } from '../../src/index.js';
import { animatedGif } from '../helpers/fixtures.js';
import { decode, near } from '../helpers/pixels.js';

const delays = [100, 250, 400, 550, 700];
const gif = animatedGif(5, 40, { delays, loop: 3 });

t.test('an animated GIF of 5 frames rendered to WebP keeps its 5 frames, their delays and its loop count', async (t) => {
  const result = render(gif, { width: 20, height: 20, format: 'webp', frames: 10 });
  t.same([result.width, result.height], [20, 20], 'the size is one frame');
  const header = probe(new Uint8Array(result.data));
  t.equal(header.pages, 5, 'five frames');
  t.same(header.delays, delays, 'their delays');
  t.equal(header.loop, 3, 'the loop count');
});

t.test('an animated GIF rendered to GIF keeps its frames too, each fitted the same way', async (t) => {
  const result = render(gif, { width: 30, height: 10, fit: 'crop', format: 'gif', frames: 10 });
  const header = probe(new Uint8Array(result.data));
  t.same([header.width, header.height, header.pages], [30, 10, 5]);
  t.same(header.delays, delays);
});

t.test('frames caps the frames kept: the first ones, with their delays', async (t) => {
  const header = probe(new Uint8Array(render(gif, { width: 20, format: 'webp', frames: 2 }).data));
  t.equal(header.pages, 2);
  t.same(header.delays, delays.slice(0, 2));
});

t.test('frames 1 (the default) gives a still of the first frame', async (t) => {
  for (const frames of [1, undefined]) {
    const result = render(gif, { width: 20, format: 'webp', ...(frames ? { frames } : {}) });
    const header = probe(new Uint8Array(result.data));
    t.equal(header.pages, 1, `frames ${frames}`);
    t.ok(near(decode(result.data).at(10, 10), [255, 0, 0]), 'the first frame (red)');
  }
});

t.test('JPEG, PNG and AVIF outputs take the first frame whatever frames says', async (t) => {
  for (const format of ['jpeg', 'png', 'avif'] as const) {
    const result = render(gif, { width: 20, format, frames: 10 });
    t.equal(probe(new Uint8Array(result.data)).pages, 1, format);
    t.same([result.width, result.height], [20, 20], `${format} is one frame high`);
  }
});
