import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { loadUws, selectUws, uwsBuild, UWS_SUPPORTED_RUNTIMES, UwsUnavailableError, type UwsRequire, type UwsRuntime } from '../../src/http/uws.js';
import { packageRoot } from '../../src/util/package-root.js';

/** Where the fake packages live. */
const MODULES = '/app/node_modules';
const CURRENT_ENTRY = `${MODULES}/uws-current/uws.js`;
const LEGACY_ENTRY = `${MODULES}/uWebSockets.js/src/uws.js`;

/** Stands in for the native binding: what the loader checks for. */
const native = (label: string) => ({ label, App: () => ({}), us_listen_socket_close: () => {}, us_socket_local_port: () => 0 });

interface FakeOptions {
  /** Entry points that resolve (packages that are installed). */
  installed?: string[];
  /** What requiring each file gives; a function throws its error instead. */
  files?: Record<string, unknown>;
}

/** A fake `require` that records every file it is asked to load. */
function fakeRequire({ installed = ['uws-current', 'uWebSockets.js'], files = {} }: FakeOptions) {
  const loaded: string[] = [];
  const entries: Record<string, string> = { 'uws-current': CURRENT_ENTRY, 'uWebSockets.js': LEGACY_ENTRY };
  const require = ((id: string) => {
    loaded.push(id);
    if (!(id in files)) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    const value = files[id];
    if (value instanceof Error) throw value;
    return value;
  }) as UwsRequire;
  require.resolve = (id: string) => {
    const entry = entries[id];
    if (!entry || !installed.includes(id)) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    return entry;
  };
  return { require, loaded };
}

function runtime(node: string, modules: string, glibc: string | undefined): UwsRuntime & { glibcAsked: number } {
  const result = {
    node,
    platform: 'linux',
    arch: 'x64',
    modules,
    glibcAsked: 0,
    glibc() {
      result.glibcAsked++;
      return glibc;
    },
  };
  return result;
}

const glibcError = (file: string) =>
  new Error(`/lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.38' not found (required by ${file})\n    at Module._extensions..node`);

t.test('the current build is preferred when its binary loads', async (t) => {
  const binary = `${MODULES}/uws-current/uws_linux_x64_137.node`;
  const { require, loaded } = fakeRequire({
    files: {
      [binary]: native('current'),
      [`${MODULES}/uws-current/package.json`]: { name: '@btc-vision/uwebsockets.js', version: '20.57.0' },
    },
  });
  const node24 = runtime('v24.22.3', '137', '2.41');
  const { uws, build } = selectUws(require, node24);
  t.equal((uws as unknown as { label: string }).label, 'current');
  t.same(build, { alias: 'uws-current', package: '@btc-vision/uwebsockets.js', version: '20.57.0', binary });
  t.notOk(loaded.some((file) => file.includes('uWebSockets.js')), 'the older build is not touched');
  t.equal(node24.glibcAsked, 0, 'the C library is asked only for an error message');
});

t.test('the older build is loaded when the current one needs a newer glibc', async (t) => {
  const current = `${MODULES}/uws-current/uws_linux_x64_115.node`;
  const legacy = `${MODULES}/uWebSockets.js/binaries/uws_linux_x64_115.node`;
  const { require } = fakeRequire({
    files: {
      [current]: glibcError(current),
      [legacy]: native('legacy'),
      [`${MODULES}/uWebSockets.js/package.json`]: { name: '@trufflesuite/uws-js-unofficial', version: '20.30.0-unofficial.0' },
    },
  });
  const { uws, build } = selectUws(require, runtime('v20.20.2', '115', '2.36'));
  t.equal((uws as unknown as { label: string }).label, 'legacy');
  t.same(build, { alias: 'uWebSockets.js', package: '@trufflesuite/uws-js-unofficial', version: '20.30.0-unofficial.0', binary: legacy });
});

t.test('no package entry point is ever required, so the pure-JS fallback is never reached', async (t) => {
  const { require, loaded } = fakeRequire({
    files: {
      // What the older build's entry point gives when its binary does not load.
      [LEGACY_ENTRY]: { App: () => ({}) },
      [CURRENT_ENTRY]: native('entry'),
    },
  });
  t.throws(() => selectUws(require, runtime('v22.12.0', '127', '2.36')), UwsUnavailableError);
  t.notOk(loaded.includes(LEGACY_ENTRY) || loaded.includes(CURRENT_ENTRY), `only binaries were loaded: ${loaded.join(', ')}`);
  t.ok(loaded.every((file) => file.endsWith('.node')), 'every file loaded is a binary');
});

t.test('a binary that is not the native binding is refused and the next build is tried', async (t) => {
  const current = `${MODULES}/uws-current/uws_linux_x64_115.node`;
  const legacy = `${MODULES}/uWebSockets.js/binaries/uws_linux_x64_115.node`;
  const { require } = fakeRequire({ files: { [current]: { App: 'not a function' }, [legacy]: native('legacy') } });
  const { build } = selectUws(require, runtime('v20.20.2', '115', '2.36'));
  t.equal(build.alias, 'uWebSockets.js');
  t.equal(build.version, 'unknown', 'a missing package.json only leaves the version unknown');
});

t.test('when no binary loads, the error names the runtime, the supported ones and each build\'s failure', async (t) => {
  const current = `${MODULES}/uws-current/uws_linux_x64_137.node`;
  const { require } = fakeRequire({ installed: ['uws-current', 'uWebSockets.js'], files: { [current]: glibcError(current) } });
  const node24 = runtime('v24.22.3', '137', '2.36');
  const error = t.throws(() => selectUws(require, node24)) as UwsUnavailableError;
  t.ok(error instanceof UwsUnavailableError);
  t.equal(error.code, 'UWS_UNAVAILABLE');
  t.equal(
    error.message,
    'iaas: no native uWebSockets.js binary loads on Node v24.22.3 (linux-x64, ABI 137, glibc 2.36). ' +
      'iaas runs on Node 24 or 22 with glibc 2.38 or later (Debian 13, Ubuntu 24.04 and later), ' +
      'or on Node 20 with glibc 2.28 or later, on linux-x64: install one of them and run `npm ci` again. ' +
      'iaas does not start on the slow pure-JS fallback. ' +
      "Tried: uws-current (uws_linux_x64_137.node: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found " +
      `(required by ${current})); uWebSockets.js (uws_linux_x64_137.node: Cannot find module '${MODULES}/uWebSockets.js/binaries/uws_linux_x64_137.node').`,
  );
  t.same(
    error.attempts.map((attempt) => attempt.alias),
    ['uws-current', 'uWebSockets.js'],
  );
  t.equal(node24.glibcAsked, 1);
});

t.test('a build that is not installed is reported as such, and a C library other than glibc is named', async (t) => {
  const { require } = fakeRequire({ installed: [] });
  const error = t.throws(() => selectUws(require, runtime('v18.20.8', '108', undefined))) as UwsUnavailableError;
  t.match(error.message, /^iaas: no native uWebSockets\.js binary loads on Node v18\.20\.8 \(linux-x64, ABI 108, not glibc\)\. /);
  t.match(error.message, /Tried: uws-current \(not installed\); uWebSockets\.js \(not installed\)\.$/);
});

t.test('the README\'s limits table quotes the message for an unsupported runtime', async (t) => {
  const readme = readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
  const row = readme.split('\n').find((line) => line.startsWith('|') && line.includes('iaas: no native uWebSockets.js binary loads on Node'));
  t.ok(row, 'a limits table row quotes the message');
  t.ok(row?.includes(UWS_SUPPORTED_RUNTIMES), 'with the supported runtimes word for word');
  t.ok(row?.includes('install one of them and run `npm ci` again'), 'and what to do');
});

t.test('on this machine a native build loads, and only the loader knows which', async (t) => {
  const uws = loadUws();
  t.type(uws.App, 'function');
  const build = uwsBuild();
  t.ok(['uws-current', 'uWebSockets.js'].includes(build.alias), `loaded ${build.package} ${build.version}`);
  t.match(build.binary, new RegExp(`uws_${process.platform}_${process.arch}_${process.versions.modules}\\.node$`));

  // Every other source file reaches uWS through src/http/uws.ts (type imports of it are fine).
  const src = path.join(packageRoot(), 'src');
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  const offenders = files.filter((file) => {
    if (path.join('http', 'uws.ts') === file) return false;
    const text = readFileSync(path.join(src, file), 'utf8');
    return /(from|require\(|import\()\s*['"](uWebSockets\.js|uws-current)(\/[^'"]*)?['"]/.test(text);
  });
  t.same(offenders, [], 'no other file imports a uWS package');
});
