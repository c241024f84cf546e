// What both native builds (the addon, better-sqlite3) need from node-gyp: the running Node's
// own headers (<prefix>/include/node), so node-gyp never tries to download them (no internet
// here), node-gyp itself, and one `node-gyp rebuild` call that fails with a clear line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
/** The running Node's prefix, whose include/node holds the headers node-gyp builds against. */
export const nodedir = path.resolve(path.dirname(process.execPath), '..');

/** Runs `node-gyp rebuild` in `cwd` against this Node's headers; exits with a clear line when a prerequisite is missing or the build fails. */
export function gypRebuild({ cwd, what, extraArgs = [], check = () => true }) {
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
    console.error(`iaas: node-gyp 12.x is needed to build ${what}; run \`npm ci\` (it is a devDependency).`);
    process.exit(1);
  }
  const jobs = String(Math.max(1, Math.min(4, os.availableParallelism())));
  const result = spawnSync(process.execPath, [gyp, 'rebuild', ...extraArgs, `--nodedir=${nodedir}`, '--jobs', jobs], { cwd, stdio: 'inherit' });
  if (result.status !== 0 || !check()) {
    console.error(`iaas: building ${what} failed (see the compiler output above).`);
    process.exit(result.status || 1);
  }
}
