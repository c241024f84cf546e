import t from 'tap';
import { probe, render } from '../../src/index.js';
import { BLUE, DISPLAY, orientedJpeg, RED } from '../helpers/fixtures.js';
import { decode, near } from '../helpers/pixels.js';

for (let orientation = 1; orientation <= 8; orientation++) {
  t.test(`renders EXIF orientation ${orientation} upright, red marker top left and blue top right`, async (t) => {
    const input = orientedJpeg(orientation);
    t.equal(probe(input).orientation, orientation, 'the fixture carries the tag');
    for (const box of [{}, { width: 48, height: 48 }]) {
      const result = render(input, { ...box, format: 'png' });
      const expected = box.width ? [48, 32] : [DISPLAY.width, DISPLAY.height];
      t.same([result.width, result.height], expected, `displayed size for ${JSON.stringify(box)}`);
      const image = decode(result.data);
      const inset = box.width ? 3 : 6;
      t.ok(near(image.at(inset, inset), RED, 60), `red at top left: ${image.at(inset, inset)}`);
      t.ok(near(image.at(image.width - 1 - inset, inset), BLUE, 60), `blue at top right`);
      t.ok(near(image.at(inset, image.height - 1 - inset), [128, 128, 128], 40), 'grey at bottom left');
    }
  });
}

t.test('strips the orientation tag from the output', async (t) => {
  const result = render(orientedJpeg(6), { width: 40, height: 40 });
  t.equal(probe(new Uint8Array(result.data)).orientation, 1);
});
