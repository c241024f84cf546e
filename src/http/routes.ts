/**
 * The routes, as one table registered by app.ts: each copies what it needs
 * out of the uWS request synchronously, then awaits the use case and writes
 * the answer corked. One wrapper (`serve`) opens the exchange, refuses at the
 * door, and answers whatever the route's work throws.
 */
import { ImageError } from '../errors.js';
import { readHints } from '../images/client-hints.js';
import type { ImageService } from '../images/service.js';
import { checkToken } from '../images/tokens.js';
import type { ImageReply } from '../images/types.js';
import type { Logger } from '../log.js';
import { checkNewId, parseIdPath, parseImageRequest, parseInfoPath } from '../options/parse.js';
import { parseUploadQuery } from '../options/upload.js';
import type { DiscardBound } from './body.js';
import { doorCheck } from './door.js';
import { Exchange } from './exchange.js';
import type { HotFiles } from './files.js';
import { receiveSmallBody, receiveUpload } from './multipart.js';
import type { RefusalPacer } from './pacer.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import type { InFlight } from './exchange.js';
import { isNotModified, matchesNone, notModifiedHeaders, validatorHeaders, type Conditions } from './validators.js';

export interface RouteDeps {
  service: ImageService;
  log: Logger;
  inflight: InFlight;
  hot: HotFiles;
  allowIndexing: boolean;
  maxUploadBytes: number;
  tempDir: string;
  /** The header holding the client address behind a proxy (lower case); undefined: the socket's. */
  clientIpHeader: string | undefined;
  /** Holds refusals of clients that keep asking at once. */
  pacer: RefusalPacer;
  /** True once a drain started: health answers 503. */
  draining: () => boolean;
  /** Told of every finished request (metrics). */
  observe?: (method: string, path: string, status: number) => void;
  /** Tells the other processes an id was deleted (or its focal point moved); resolves once they forgot it. */
  deleted?: (id: string) => Promise<void>;
  /** Optional extra GET (and HEAD) routes (metrics), by path. */
  extraGet?: Record<string, (exchange: Exchange) => Promise<void> | void>;
}

/** What a route's synchronous part sees: the uWS request is valid only until it returns. */
export interface RouteRequest {
  exchange: Exchange;
  req: HttpRequest;
  res: HttpResponse;
  /** Who asks (see clientOf); read only for paced routes, empty for the others. */
  client: string;
}

/**
 * A route's asynchronous part; what it throws is answered by the wrapper.
 * `defer` registers a cleanup run after that answer (an upload's temp file).
 */
export type RouteWork = (defer: (cleanup: () => Promise<void>) => void) => Promise<void>;

/** One entry of the route table. */
export interface Route {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE' | 'OPTIONS';
  /** A uWS pattern: an exact path (matched against the raw URL path, no query) or `/*`; exact paths win. */
  path: string;
  /** Its refusals for overload are held a moment for a client that keeps asking (pacer.ts). */
  paced?: boolean;
  /** Reads the request; returns the work to await, or nothing when it answered already. */
  handle(request: RouteRequest): RouteWork | undefined;
}

function begin(deps: RouteDeps, res: HttpResponse, req: HttpRequest): Exchange {
  const exchange = new Exchange(res, req.getCaseSensitiveMethod(), req.getUrl(), deps.log, deps.inflight);
  exchange.observer = deps.observe;
  const refusal = doorCheck(req);
  if (refusal) {
    exchange.oversized = true;
    // A smuggled request may already sit behind this one in the buffer: close at once, so uWS
    // parses nothing more from this connection (it drops what it cannot frame the same way).
    if (refusal.drop) exchange.drop(refusal.error.message);
    else exchange.fail(refusal.error, true);
  }
  return exchange;
}

/** Who is asking: the configured proxy header, else the socket's address. Read synchronously in the handler. */
function clientOf(deps: RouteDeps, res: HttpResponse, req: HttpRequest): string {
  if (deps.clientIpHeader) {
    const forwarded = req.getHeader(deps.clientIpHeader);
    if (forwarded) return forwarded.split(',')[0]?.trim().slice(0, 64) ?? '';
  }
  return Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
}

/** An abort signal that fires when the exchange's client goes away. */
function abortSignalOf(exchange: Exchange): AbortSignal {
  const controller = new AbortController();
  exchange.onSettle(() => exchange.aborted && controller.abort());
  return controller.signal;
}

/**
 * Answers an error; a 503 of a client that keeps asking at once is held a
 * moment first (see pacer.ts).
 */
function answerError(deps: RouteDeps, exchange: Exchange, error: unknown, client: string): void {
  if ((error as { code?: unknown } | null)?.code === 'OVERLOADED') {
    const delay = deps.pacer.delayFor(client);
    if (delay > 0) {
      exchange.logFields.held = delay;
      setTimeout(() => exchange.fail(error), delay);
      return;
    }
  }
  exchange.fail(error);
}

/** How much of a refused upload body is read (and dropped) so the client can read the refusal. */
function discardBound(deps: RouteDeps): DiscardBound {
  return { bytes: 2 * deps.maxUploadBytes, ms: 5_000 };
}

/** Runs a miss' `after` (storing it) once the response is out, still counted in flight. */
function runAfter(deps: RouteDeps, after: (() => Promise<void>) | undefined): void {
  if (!after) return;
  deps.inflight.enter();
  setImmediate(() => void after().finally(() => deps.inflight.leave()));
}

/**
 * Writes an image answer: 304 with no body when the client holds this
 * version already (judged before a cached file is read), else the answer
 * with its validators.
 */
async function writeImage(deps: RouteDeps, exchange: Exchange, reply: ImageReply, conditions: Conditions): Promise<void> {
  const headers = reply.type !== 'redirect' && reply.validators ? { ...reply.headers, ...validatorHeaders(reply.validators) } : reply.headers;
  exchange.logFields.cache = reply.headers['X-Cache'] ?? reply.type;
  if (reply.type !== 'redirect' && reply.validators && isNotModified(conditions, reply.validators)) {
    exchange.logFields.cache = 'NOT_MODIFIED';
    // Headers only: a 304 must not say Content-Length: 0 (RFC 9110 8.6), which a body write would.
    exchange.sendHead(304, notModifiedHeaders(headers));
    // A miss revalidated (an ETag known from elsewhere) is still stored for the next client.
    return runAfter(deps, reply.after);
  }
  switch (reply.type) {
    case 'redirect':
      exchange.send(303, { ...headers, Location: reply.location });
      return runAfter(deps, reply.after);
    case 'head':
      exchange.sendHead(200, { ...headers, 'Content-Type': reply.contentType }, reply.size);
      return runAfter(deps, reply.after);
    case 'file': {
      const data = await deps.hot.read(reply.path);
      if (!data && reply.stale) return writeImage(deps, exchange, await reply.stale(), conditions);
      if (!data) throw new ImageError('NOT_FOUND', 'The image file is gone');
      exchange.sendBody(200, { ...headers, 'Content-Type': reply.contentType }, data);
      return runAfter(deps, reply.after);
    }
    case 'bytes': {
      if (exchange.aborted) return reply.abandon?.();
      exchange.sendBody(200, { ...headers, 'Content-Type': reply.contentType }, reply.data);
      return runAfter(deps, reply.after);
    }
  }
}

/** How long the JSON of an original may be kept: as long as its images (a PATCH shows once that runs out, or on revalidation). */
const INFO_CACHE_CONTROL = 'public, max-age=31536000';

/** Writes GET /{id}.json: 304 when the client holds this version already. */
function writeInfo(exchange: Exchange, method: 'GET' | 'HEAD', info: { body: string; etag: string }, ifNoneMatch: string): void {
  const headers = { ETag: info.etag, 'Cache-Control': INFO_CACHE_CONTROL };
  if (ifNoneMatch && matchesNone(ifNoneMatch, info.etag)) return exchange.sendHead(304, headers);
  if (method === 'HEAD') return exchange.sendHead(200, { ...headers, 'Content-Type': 'application/json' }, Buffer.byteLength(info.body));
  exchange.send(200, { ...headers, 'Content-Type': 'application/json' }, info.body);
}

/** The one wrapper of every route: the exchange, the door check, and the answer to what the work throws. */
export function serve(deps: RouteDeps, route: Route) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const exchange = begin(deps, res, req);
    if (exchange.oversized) return;
    const client = route.paced ? clientOf(deps, res, req) : '';
    const work = route.handle({ exchange, req, res, client });
    if (!work) return;
    void (async () => {
      let cleanup: (() => Promise<void>) | undefined;
      try {
        await work((fn) => (cleanup = fn));
      } catch (error) {
        if (route.paced) answerError(deps, exchange, error, client);
        else exchange.fail(error);
      } finally {
        await cleanup?.();
      }
    })();
  };
}

/** GET /_health: 503 once draining or when the store cannot be reached. */
function health(deps: RouteDeps, { exchange }: RouteRequest): RouteWork {
  return async () => {
    if (deps.draining()) throw new ImageError('UNAVAILABLE', 'Shutting down');
    await deps.service.health();
    exchange.send(200, { 'Content-Type': 'text/plain' }, 'OK');
  };
}

/** GET /robots.txt: crawling allowed only with allow_indexing. */
function robots(deps: RouteDeps, { exchange }: RouteRequest): RouteWork {
  return async () => exchange.send(200, { 'Content-Type': 'text/plain' }, `User-agent: *\n${deps.allowIndexing ? 'Allow' : 'Disallow'}: /\n`);
}

/** GET /favicon.ico: there is none, and browsers ask for it on every page. */
function favicon(): RouteWork {
  return async () => {
    throw new ImageError('NOT_FOUND', 'No favicon');
  };
}

/** GET and HEAD of everything else: /{id}.json, then images. */
function readImage(deps: RouteDeps, method: 'GET' | 'HEAD', { exchange, req, client }: RouteRequest): RouteWork {
  const path = exchange.path;
  const query = req.getQuery() ?? '';
  const accept = req.getHeader('accept');
  const freshnessToken = req.getHeader('freshness-token');
  const ifNoneMatch = req.getHeader('if-none-match');
  const conditions: Conditions = { ifNoneMatch, ifModifiedSince: req.getHeader('if-modified-since') };
  const hints = readHints((name) => req.getHeader(name));
  return async () => {
    const infoId = parseInfoPath(path);
    if (infoId !== undefined) {
      exchange.logFields.id = infoId;
      return writeInfo(exchange, method, await deps.service.info(infoId, client), ifNoneMatch);
    }
    const request = parseImageRequest(path, query);
    exchange.logFields.id = request.id;
    const reply = await deps.service.get(request, { method, accept, hints, freshnessToken, query, client, signal: abortSignalOf(exchange) });
    // The client went away: write nothing, not even the cache entry.
    if (exchange.aborted) return reply.type === 'bytes' ? reply.abandon?.() : undefined;
    await writeImage(deps, exchange, reply, conditions);
  };
}

/** POST /token with {"id", "secret"?}. */
function token(deps: RouteDeps, { exchange }: RouteRequest): RouteWork {
  const body = receiveSmallBody(exchange, exchange.acceptBody({ bytes: 64 * 1024, ms: 5_000 }), 16 * 1024);
  return async () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse((await body).toString('utf8') || '{}');
    } catch {
      throw new ImageError('BAD_REQUEST', 'Expected a JSON body like {"id": "photo"}');
    }
    if (!parsed || typeof parsed !== 'object') throw new ImageError('BAD_REQUEST', 'Expected a JSON object');
    const token = await deps.service.issueToken(parsed as { id?: unknown; secret?: unknown });
    exchange.json(200, { token });
  };
}

/**
 * POST /{id}[.{ext}] with X-Token and a multipart field `image`. Everything
 * that can be judged without the body (path, query, declared length, token
 * shape, then the token itself in the store) is judged before a byte of it
 * is read; a refusal is answered at once and the body drained behind it.
 */
function upload(deps: RouteDeps, { exchange, req, client }: RouteRequest): RouteWork | undefined {
  const token = req.getHeader('x-token');
  const contentType = req.getHeader('content-type');
  const declared = Number(req.getHeader('content-length') || '0');
  const query = req.getQuery() ?? '';
  const body = exchange.acceptBody(discardBound(deps));
  let id: string;
  let uploadQuery: ReturnType<typeof parseUploadQuery>;
  try {
    id = checkNewId(parseIdPath(exchange.path));
    uploadQuery = parseUploadQuery(query);
    if (declared > deps.maxUploadBytes) throw new ImageError('PAYLOAD_TOO_LARGE', `The upload is larger than ${deps.maxUploadBytes} bytes`);
    checkToken(token);
  } catch (error) {
    exchange.fail(error);
    return undefined;
  }
  exchange.logFields.id = id;
  // Nothing more is read until the token is known to be good.
  body.pause();
  return async (defer) => {
    const result = await deps.service.upload({
      id,
      token,
      client,
      ...(uploadQuery.crop ? { crop: uploadQuery.crop } : {}),
      ...(uploadQuery.focus ? { focus: uploadQuery.focus } : {}),
      receive: async () => {
        body.resume();
        const intake = await receiveUpload(exchange, body, contentType, { maxBytes: deps.maxUploadBytes, tempDir: deps.tempDir });
        defer(intake.cleanup);
        return { file: intake.file };
      },
      aborted: () => exchange.aborted,
    });
    exchange.json(200, { status: 'OK', id: result.id, original_width: result.width, original_height: result.height });
    // Only now, and counted in flight so a clean shutdown lets them finish: working copies, pre-renders.
    deps.inflight.enter();
    setImmediate(() =>
      void Promise.all([
        deps.service.makeWorkingCopies(result.id).catch((error: unknown) => deps.log.warn({ err: error, id: result.id }, 'making working copies failed')),
        deps.service.prerender(result.id).catch((error: unknown) => deps.log.warn({ err: error, id: result.id }, 'prerendering failed')),
      ]).finally(() => deps.inflight.leave()),
    );
  };
}

/** DELETE /{id}, authorised by X-Secret. */
function remove(deps: RouteDeps, { exchange, req }: RouteRequest): RouteWork {
  const secret = req.getHeader('x-secret');
  return async () => {
    const id = parseIdPath(exchange.path);
    const result = await deps.service.delete(id, secret);
    deps.hot.forget('');
    // Answer only once every worker has forgotten the id, so no later request sees it.
    await deps.deleted?.(id);
    exchange.json(200, { status: 'OK', id, variants: result.variants });
  };
}

/** PATCH /{id} with X-Secret and `{"focus": {"x", "y"}}` or `{"focus": null}`. */
function patch(deps: RouteDeps, { exchange, req }: RouteRequest): RouteWork {
  const secret = req.getHeader('x-secret');
  const body = receiveSmallBody(exchange, exchange.acceptBody({ bytes: 64 * 1024, ms: 5_000 }), 16 * 1024);
  return async () => {
    const id = parseIdPath(exchange.path);
    exchange.logFields.id = id;
    let parsed: unknown;
    try {
      parsed = JSON.parse((await body).toString('utf8'));
    } catch {
      throw new ImageError('BAD_REQUEST', 'Expected a JSON body like {"focus": {"x": 10, "y": 20}}');
    }
    const result = await deps.service.changeFocus(id, secret, parsed);
    deps.hot.forget('');
    // Answer only once every worker has forgotten the old point, so no later request renders with it.
    await deps.deleted?.(id);
    exchange.json(200, { status: 'OK', id, focus: result.focus, variants: result.variants });
  };
}

/** CORS preflight: pages on other origins may get tokens, upload and delete. */
function preflight({ exchange }: RouteRequest): undefined {
  exchange.send(204, {
    'Access-Control-Allow-Methods': 'GET, HEAD, POST, PATCH, DELETE',
    'Access-Control-Allow-Headers': 'Content-Type, X-Token, X-Secret, freshness-token',
    'Access-Control-Max-Age': '86400',
  });
  return undefined;
}

/**
 * Every route. GET and HEAD answer the same paths: the service's own (and the
 * extra ones, such as /metrics), then /{id}.json and images for the rest. A
 * method no entry names is answered 405 by app.ts.
 */
export function routeTable(deps: RouteDeps): Route[] {
  const reads = (['GET', 'HEAD'] as const).flatMap((method): Route[] => [
    { method, path: '/_health', paced: true, handle: (request) => health(deps, request) },
    { method, path: '/robots.txt', paced: true, handle: (request) => robots(deps, request) },
    { method, path: '/favicon.ico', paced: true, handle: () => favicon() },
    ...Object.entries(deps.extraGet ?? {}).map(([path, answer]): Route => ({ method, path, paced: true, handle: ({ exchange }) => async () => answer(exchange) })),
    { method, path: '/*', paced: true, handle: (request) => readImage(deps, method, request) },
  ]);
  return [
    ...reads,
    { method: 'POST', path: '/token', handle: (request) => token(deps, request) },
    { method: 'POST', path: '/*', paced: true, handle: (request) => upload(deps, request) },
    { method: 'PATCH', path: '/*', handle: (request) => patch(deps, request) },
    { method: 'DELETE', path: '/*', handle: (request) => remove(deps, request) },
    { method: 'OPTIONS', path: '/*', handle: preflight },
  ];
}
