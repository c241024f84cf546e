'use strict';
// Where the npm-shipped libvips lives, found the way sharp finds it, so that
// binding.gyp never depends on a system libvips or on LD_LIBRARY_PATH.
const path = require('node:path');

function resolveDir(specifier) {
  try {
    return require(specifier);
  } catch (err) {
    throw new Error(
      `iaas: cannot find ${specifier}, which npm installs with iaas (libvips binaries exist for ` +
        `linux-x64, where iaas is tested, and linux-arm64; this is ${process.platform}-${process.arch}): ${err.message}`,
      { cause: err },
    );
  }
}

// The binary package for this machine, named as sharp names them. package.json lists the
// linux-x64 one (tested) and the linux-arm64 one (not tested) as optional dependencies, so
// npm installs the one matching this machine.
const binaryPackage = `@img/sharp-libvips-${process.platform}-${process.arch}`;
const includeDir = resolveDir('@img/sharp-libvips-dev/include');
const libDir = resolveDir(`${binaryPackage}/lib`);
const versions = require(`${binaryPackage}/versions`);
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
