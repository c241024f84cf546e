/**
 * Loads uWebSockets.js' native binding directly. The registry build silently
 * falls back to a slow pure-JS server when its binary does not load (and then
 * a second listener on the same port fails without an error), so iaas refuses
 * to start instead.
 */
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
export type Uws = typeof UWS;

let loaded: Uws | undefined;

/** The native uWS module, or a clear error saying why the server will not start. */
export function loadUws(): Uws {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  let native: Uws;
  try {
    native = require(binary) as Uws;
  } catch (error) {
    throw new Error(
      `iaas: the native uWebSockets.js binding (${binary}) did not load: ${(error as Error).message}. ` +
        'Refusing to start on the slow pure-JS fallback. Use Node 20 on linux-x64 (glibc) and reinstall with `npm ci`.',
    );
  }
  if (typeof native.App !== 'function' || typeof native.us_listen_socket_close !== 'function') {
    throw new Error('iaas: the uWebSockets.js module is not the native binding; refusing to start.');
  }
  loaded = native;
  return native;
}
