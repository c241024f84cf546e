import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ImageError, render } from '../../src/index.js';
import { packageRoot } from '../../src/util/package-root.js';

const dir = path.join(packageRoot(), 'native', 'fuzz', 'regressions');
const files = readdirSync(dir).filter((name) => !name.endsWith('.md'));

t.test('replays every fuzzer finding without a crash, each ending in an image or a coded error', async (t) => {
  if (files.length === 0) t.comment('no fuzzer findings recorded yet (native/fuzz/regressions is empty)');
  for (const name of files) {
    const input = new Uint8Array(readFileSync(path.join(dir, name)));
    try {
      render(input, { width: 64, height: 64, fit: 'crop', format: 'png', timeoutMs: 2000, maxInputPixels: 4_000_000 });
      t.pass(`${name} rendered`);
    } catch (error) {
      t.ok(error instanceof ImageError && error.code !== 'INTERNAL', `${name} failed with a coded error: ${(error as ImageError).code}`);
    }
  }
});
