// tap is installed with its default plugin set, which includes the TypeScript
// loader; package.json's tap config removes it (tests run compiled from dist/).
// tap rebuilds its plugin set on the first run, but that first run still
// starts every test with the loader, so rebuild once at install time instead.
// Skipped when dev dependencies are not installed.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let bin;
try {
  bin = require.resolve('tap/package.json').replace(/package\.json$/, 'dist/esm/run.mjs');
} catch {
  process.exit(0);
}
const result = spawnSync(process.execPath, [bin, 'build'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
