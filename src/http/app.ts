/**
 * The uWS application of one worker process: routes, listening on a shared
 * port (uWS sets SO_REUSEPORT), and a drain that stops accepting and waits
 * for in-flight work.
 */
import type { ImageService } from '../images/service.js';
import type { Logger } from '../log.js';
import { Exchange, InFlight } from './exchange.js';
import { HotFiles } from './files.js';
import { RefusalPacer } from './pacer.js';
import { routeTable, serve, type Route, type RouteDeps } from './routes.js';
import { loadUws, type TemplatedApp, type us_listen_socket } from './uws.js';

export interface HttpAppOptions {
  service: ImageService;
  log: Logger;
  allowIndexing: boolean;
  maxUploadBytes: number;
  tempDir: string;
  /** The header holding the client address behind a proxy; undefined: the socket's address. */
  clientIpHeader?: string | undefined;
  extraGet?: RouteDeps['extraGet'];
  observe?: RouteDeps['observe'];
  deleted?: RouteDeps['deleted'];
}

/** The uWS registration of each method of the route table. */
const UWS_METHOD = { GET: 'get', HEAD: 'head', POST: 'post', PATCH: 'patch', DELETE: 'del', OPTIONS: 'options' } as const satisfies Record<Route['method'], keyof TemplatedApp>;

/** Bytes of the hottest cached files each worker keeps in memory (the README's 64 MB). */
const HOT_FILE_BYTES = 64 * 1024 * 1024;

export interface HttpApp {
  /** Listens; resolves with the bound port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting, marks health 503, waits up to `graceMs` for in-flight work. Resolves true when drained. */
  drain(graceMs: number): Promise<boolean>;
  readonly inflight: InFlight;
  /** Drops the in-memory copies of cached files (another process deleted an id). */
  forgetFiles(): void;
}

export function createHttpApp(options: HttpAppOptions): HttpApp {
  const uws = loadUws();
  const app = uws.App();
  const inflight = new InFlight();
  let draining = false;
  let listenSocket: us_listen_socket | undefined;
  const deps: RouteDeps = {
    service: options.service,
    log: options.log,
    inflight,
    hot: new HotFiles(HOT_FILE_BYTES),
    allowIndexing: options.allowIndexing,
    maxUploadBytes: options.maxUploadBytes,
    tempDir: options.tempDir,
    clientIpHeader: options.clientIpHeader,
    pacer: new RefusalPacer(),
    draining: () => draining,
    ...(options.extraGet ? { extraGet: options.extraGet } : {}),
    ...(options.observe ? { observe: options.observe } : {}),
    ...(options.deleted ? { deleted: options.deleted } : {}),
  };
  for (const route of routeTable(deps)) app[UWS_METHOD[route.method]](route.path, serve(deps, route));
  // Any other method: refused as it arrives, before the door check (nothing of it is read).
  app.any('/*', (res, req) => {
    const exchange = new Exchange(res, req.getCaseSensitiveMethod(), req.getUrl(), options.log, inflight);
    exchange.json(405, { error: 'Method not allowed', code: 'BAD_REQUEST' }, { Allow: 'GET, HEAD, POST, PATCH, DELETE' });
  });

  return {
    inflight,
    forgetFiles: () => deps.hot.forget(''),
    listen(host, port) {
      return new Promise((resolve, reject) => {
        app.listen(host, port, (socket) => {
          if (!socket) return reject(new Error(`iaas: cannot listen on ${host}:${port}`));
          listenSocket = socket;
          resolve(uws.us_socket_local_port(socket));
        });
      });
    },
    async drain(graceMs) {
      draining = true;
      if (listenSocket) uws.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      return inflight.idle(graceMs);
    },
  };
}
