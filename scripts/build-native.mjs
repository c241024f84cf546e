// Builds the native addon with node-gyp against the running Node's own headers.
// The headers ship with Node under <prefix>/include/node; pointing --nodedir at
// that prefix means node-gyp never tries to download them (no internet here).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nodedir = path.resolve(path.dirname(process.execPath), '..');
const header = path.join(nodedir, 'include', 'node', 'node_api.h');

if (!existsSync(header)) {
  console.error(
    `iaas: Node's own headers are missing (${header}). Install Node with its headers ` +
      '(the official tarball and Debian/NodeSource packages include them); iaas never downloads them.',
  );
  process.exit(1);
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  console.error('iaas: node-gyp 12.x is needed to build the addon; run `npm ci` (it is a devDependency).');
  process.exit(1);
}

const jobs = String(Math.max(1, Math.min(4, (await import('node:os')).availableParallelism())));
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs', jobs];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('iaas: building the native addon failed (see the compiler output above).');
  process.exit(result.status ?? 1);
}
