'use strict';
// Where the npm-shipped libvips lives, found the way sharp finds it, so that
// binding.gyp never depends on a system libvips or on LD_LIBRARY_PATH.
const path = require('node:path');

function resolveDir(specifier) {
  try {
    return require(specifier);
  } catch (err) {
    throw new Error(
      `iaas: cannot find ${specifier}. Install it with npm (it is a dependency of iaas): ${err.message}`,
    );
  }
}

const includeDir = resolveDir('@img/sharp-libvips-dev/include');
const libDir = resolveDir('@img/sharp-libvips-linux-x64/lib');
const versions = require('@img/sharp-libvips-linux-x64/versions');
const releaseDir = path.resolve(__dirname, '..', 'build', 'Release');

module.exports = {
  includeDir,
  libDir,
  vipsVersion: versions.vips,
  /** The rpath of the addon, relative to the addon itself ($ORIGIN), so the tree can move. */
  rpath: path.relative(releaseDir, libDir),
};

if (require.main === module) {
  const key = process.argv[2];
  if (!(key in module.exports)) throw new Error(`Unknown key ${key}`);
  process.stdout.write(String(module.exports[key]));
}
