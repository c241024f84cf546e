// Makes better-sqlite3's native binding load on the running Node, with no user set-up.
//
// package.json's allowScripts keeps npm from running better-sqlite3's own install script
// (`prebuild-install || node-gyp rebuild`): offline, its node-gyp fallback tries to download
// Node's headers and the whole `npm ci` fails unless the user configured `nodedir`. This
// script, run by iaas' own `install`, does the same two steps, but the build uses the
// running Node's own headers (<prefix>/include/node), as the addon's build does:
//   1. a binding that already loads is kept (a repeated `npm install`, a warm Docker layer);
//   2. a prebuilt binary from better-sqlite3's releases, when that host answers in time;
//   3. otherwise node-gyp compiles it here (about two minutes on 2 cores), never downloading.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { gypRebuild } from './node-gyp-build.mjs';

const require = createRequire(import.meta.url);
/** How long the prebuilt download may take before compiling instead (a firewall that drops packets would otherwise hang the install). */
const PREBUILD_TIMEOUT_MS = 60_000;

let dir;
try {
  dir = path.dirname(require.resolve('better-sqlite3/package.json'));
} catch {
  console.error('iaas: better-sqlite3 is not installed; run `npm ci`.');
  process.exit(1);
}

/** True when the binding loads and opens a database, checked in a child so this process stays clean. */
function loads() {
  const probe = `const D = require(${JSON.stringify(dir)}); new D(':memory:').close();`;
  return spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore' }).status === 0;
}

if (loads()) process.exit(0);

const prebuild = (() => {
  try {
    return require.resolve('prebuild-install/bin.js', { paths: [dir] });
  } catch {
    return undefined;
  }
})();
if (prebuild) {
  const result = spawnSync(process.execPath, [prebuild], { cwd: dir, stdio: 'inherit', timeout: PREBUILD_TIMEOUT_MS });
  if (result.status === 0 && loads()) process.exit(0);
  console.error('iaas: no prebuilt better-sqlite3 binary could be fetched; compiling it against this Node\'s own headers.');
}

gypRebuild({ cwd: dir, what: 'better-sqlite3', extraArgs: ['--release'], check: loads });
