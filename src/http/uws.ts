/**
 * Loads uWebSockets.js' native binding directly, from whichever installed
 * build has a binary that loads on this runtime. Two builds are installed
 * because no single one covers both today's runtimes and the older ones:
 *
 * - `uws-current` (@btc-vision/uwebsockets.js, a current uWS release):
 *   Node 20, 22, 24 and 25, but its Linux binaries need glibc 2.38 or later.
 * - `uWebSockets.js` (@trufflesuite/uws-js-unofficial, uWS v20.30): Node 20
 *   and older only, on glibc 2.27 or later.
 *
 * The current build is preferred. Both packages' entry points are skipped:
 * the older one silently falls back to a slow pure-JS server when its binary
 * does not load (and then a second listener on the same port fails without an
 * error), so iaas never requires an entry point, only a binary, and refuses
 * to start when none loads.
 *
 * This is the only module that knows which build runs: every other file uses
 * the API both builds share, through the types re-exported here.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as UWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
/** The native module's API, as both builds provide it. */
export type Uws = typeof UWS;

/** One installed build of uWebSockets.js, in the loader's order of preference. */
interface Build {
  /** Its name in package.json's dependencies. */
  readonly alias: string;
  /** Its package folder, relative to the folder of its entry point. */
  readonly root: string;
  /** Where its binaries are, relative to its package folder. */
  readonly binaries: string;
}

const BUILDS: readonly Build[] = [
  { alias: 'uws-current', root: '.', binaries: '.' },
  { alias: 'uWebSockets.js', root: '..', binaries: 'binaries' },
];

/**
 * The runtimes iaas runs on, as the error for any other one states them (and
 * the README's limits table quotes them).
 */
export const UWS_SUPPORTED_RUNTIMES =
  'iaas runs on Node 24 or 22 with glibc 2.38 or later (Debian 13, Ubuntu 24.04 and later), ' +
  'or on Node 20 with glibc 2.28 or later, on linux-x64';

/** What the loader needs from `require`: loading a file, and resolving a package's entry point. */
export interface UwsRequire {
  (id: string): unknown;
  resolve(id: string): string;
}

/** The runtime the loader picks a binary for. */
export interface UwsRuntime {
  /** `process.version`, e.g. `v24.22.3`. */
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  /** `process.versions.modules`, the ABI the binary's name carries. */
  readonly modules: string;
  /** The C library's version (`2.36`), or undefined when it is not glibc; asked only for the error message. */
  glibc(): string | undefined;
}

/** Which build loaded, for the startup log line. */
export interface UwsBuildInfo {
  /** Its name in package.json's dependencies. */
  readonly alias: string;
  /** The registry package and version behind the alias. */
  readonly package: string;
  readonly version: string;
  /** The binary file that loaded. */
  readonly binary: string;
}

/** Why one build did not load. */
export interface UwsAttempt {
  readonly alias: string;
  readonly reason: string;
}

/** No native uWS binary loads on this runtime; iaas does not start. */
export class UwsUnavailableError extends Error {
  readonly code = 'UWS_UNAVAILABLE';
  constructor(
    message: string,
    /** Each build tried, and why it did not load. */
    readonly attempts: readonly UwsAttempt[],
  ) {
    super(message);
    this.name = 'UwsUnavailableError';
  }
}

/** The first line of an error's message (dlopen errors are long and multi-line). */
function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0] ?? text;
}

/** True for the native binding: the pure-JS fallback and unrelated modules lack these. */
function isNative(module: unknown): module is Uws {
  const candidate = module as Partial<Record<keyof Uws, unknown>> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.App === 'function' &&
    typeof candidate.us_listen_socket_close === 'function' &&
    typeof candidate.us_socket_local_port === 'function'
  );
}

/**
 * Picks the first build whose binary for this runtime loads. Never requires a
 * package's entry point (the older build's falls back to pure JS).
 * @throws UwsUnavailableError naming the supported runtimes and each build's failure.
 */
export function selectUws(require: UwsRequire, runtime: UwsRuntime): { uws: Uws; build: UwsBuildInfo } {
  const file = `uws_${runtime.platform}_${runtime.arch}_${runtime.modules}.node`;
  const attempts: UwsAttempt[] = [];
  for (const build of BUILDS) {
    let entry: string;
    try {
      entry = require.resolve(build.alias);
    } catch {
      attempts.push({ alias: build.alias, reason: 'not installed' });
      continue;
    }
    const root = path.join(path.dirname(entry), build.root);
    const binary = path.join(root, build.binaries, file);
    let native: unknown;
    try {
      native = require(binary);
    } catch (error) {
      attempts.push({ alias: build.alias, reason: `${file}: ${firstLine(error)}` });
      continue;
    }
    if (!isNative(native)) {
      attempts.push({ alias: build.alias, reason: `${file} is not the native binding` });
      continue;
    }
    let manifest: { name?: string; version?: string } = {};
    try {
      // By absolute path: the current build's `exports` does not list its package.json.
      manifest = require(path.join(root, 'package.json')) as typeof manifest;
    } catch {
      // The version only labels the log line; the binding itself loaded.
    }
    return {
      uws: native,
      build: { alias: build.alias, package: manifest.name ?? build.alias, version: manifest.version ?? 'unknown', binary },
    };
  }
  const glibc = runtime.glibc();
  const libc = glibc === undefined ? 'not glibc' : `glibc ${glibc}`;
  throw new UwsUnavailableError(
    `iaas: no native uWebSockets.js binary loads on Node ${runtime.node} ` +
      `(${runtime.platform}-${runtime.arch}, ABI ${runtime.modules}, ${libc}). ` +
      `${UWS_SUPPORTED_RUNTIMES}: install one of them and run \`npm ci\` again. ` +
      'iaas does not start on the slow pure-JS fallback. ' +
      `Tried: ${attempts.map((attempt) => `${attempt.alias} (${attempt.reason})`).join('; ')}.`,
    attempts,
  );
}

/** This process' runtime. */
function currentRuntime(): UwsRuntime {
  return {
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    modules: process.versions.modules,
    glibc() {
      const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
      return header?.glibcVersionRuntime;
    },
  };
}

let loaded: { uws: Uws; build: UwsBuildInfo } | undefined;

/** The native uWS module, or an error saying which runtimes work. */
export function loadUws(): Uws {
  loaded ??= selectUws(createRequire(import.meta.url), currentRuntime());
  return loaded.uws;
}

/** Which build {@link loadUws} loaded (loading it first if needed), for the startup log line. */
export function uwsBuild(): UwsBuildInfo {
  loadUws();
  return (loaded as { build: UwsBuildInfo }).build;
}
