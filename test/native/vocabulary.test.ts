/** The addon's vocabulary (native/vocabulary.h) is the URL grammar's (src/options/grammar.ts), word for word. */
import t from 'tap';
import { native } from '../../src/render/native.js';
import { INPUT_FORMATS, URL_FITS, URL_FORMATS, URL_GRAVITIES } from '../../src/options/grammar.js';

t.test('the addon names the same fits, gravities, output and input formats as the grammar, in the same order', async (t) => {
  const vocabulary = native().vocabulary();
  t.same(vocabulary.fits, URL_FITS, 'fits');
  t.same(vocabulary.gravities, URL_GRAVITIES, 'gravities');
  t.same(vocabulary.outputFormats, URL_FORMATS, 'output formats');
  t.same(vocabulary.inputFormats, INPUT_FORMATS, 'input formats');
});
