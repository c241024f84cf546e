/**
 * The routes: each copies what it needs out of the uWS request synchronously,
 * then awaits the use case and writes the answer corked.
 */
import { ImageError } from '../errors.js';
import type { ImageService } from '../images/service.js';
import { checkToken } from '../images/tokens.js';
import type { ImageReply } from '../images/types.js';
import type { Logger } from '../log.js';
import { parseIdPath, parseImageRequest } from '../options/parse.js';
import { Exchange } from './exchange.js';
import type { HotFiles } from './files.js';
import { receiveSmallBody, receiveUpload } from './multipart.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import type { InFlight } from './exchange.js';

export interface RouteDeps {
  service: ImageService;
  log: Logger;
  inflight: InFlight;
  hot: HotFiles;
  allowIndexing: boolean;
  maxUploadBytes: number;
  tempDir: string;
  /** True once a drain started: health answers 503. */
  draining: () => boolean;
  /** Told of every finished request (metrics). */
  observe?: (method: string, path: string, status: number) => void;
  /** Tells the other processes an id was deleted; resolves once they forgot it. */
  deleted?: (id: string) => Promise<void>;
  /** Optional extra GET routes (metrics), by path. */
  extraGet?: Record<string, (exchange: Exchange) => Promise<void> | void>;
}


/** Request headers beyond this many bytes are refused: uWS itself accepts up to its buffer size. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Why a request must be refused at the door, if it must; `drop` when it smells of smuggling. */
function doorCheck(req: HttpRequest): { reason: string; drop: boolean } | undefined {
  let total = 0;
  const lengths = new Set<string>();
  let lengthHeaders = 0;
  let chunked = false;
  req.forEach((key, value) => {
    total += key.length + value.length + 4;
    if (key === 'content-length') {
      lengthHeaders++;
      lengths.add(value.trim());
    } else if (key === 'transfer-encoding') chunked = true;
  });
  if (total > MAX_HEADER_BYTES) return { reason: `Request headers larger than ${MAX_HEADER_BYTES} bytes`, drop: false };
  // RFC 9112: differing Content-Length values, or both framings, are request smuggling.
  if (lengths.size > 1) return { reason: 'Conflicting Content-Length headers', drop: true };
  if (chunked && lengthHeaders > 0) return { reason: 'Both Transfer-Encoding and Content-Length', drop: true };
  return undefined;
}

function begin(deps: RouteDeps, res: HttpResponse, req: HttpRequest): Exchange {
  const exchange = new Exchange(res, req.getCaseSensitiveMethod(), req.getUrl(), deps.log, deps.inflight);
  exchange.observer = deps.observe;
  const refusal = doorCheck(req);
  if (refusal) {
    exchange.oversized = true;
    // A smuggled request may already sit behind this one in the buffer: close at once, so uWS
    // parses nothing more from this connection (it drops what it cannot frame the same way).
    if (refusal.drop) exchange.drop(refusal.reason);
    else exchange.fail(new ImageError('BAD_REQUEST', refusal.reason), true);
  }
  return exchange;
}

/** Writes an image answer. Runs `after` (storing a miss) once the response is out, still counted in flight. */
async function writeImage(deps: RouteDeps, exchange: Exchange, reply: ImageReply): Promise<void> {
  const headers = reply.headers;
  exchange.logFields.cache = reply.headers['X-Cache'] ?? reply.type;
  switch (reply.type) {
    case 'redirect':
      return exchange.send(303, { ...headers, Location: reply.location });
    case 'head':
      return exchange.sendHead(200, { ...headers, 'Content-Type': reply.contentType }, reply.size);
    case 'file': {
      const data = await deps.hot.read(reply.path);
      if (!data && reply.stale) return writeImage(deps, exchange, await reply.stale());
      if (!data) throw new ImageError('NOT_FOUND', 'The image file is gone');
      return exchange.sendBody(200, { ...headers, 'Content-Type': reply.contentType }, data);
    }
    case 'bytes': {
      exchange.sendBody(200, { ...headers, 'Content-Type': reply.contentType }, reply.data);
      if (reply.after) {
        deps.inflight.enter();
        setImmediate(() => void reply.after?.().finally(() => deps.inflight.leave()));
      }
      return;
    }
  }
}

/** GET and HEAD of everything: service paths first, then images. */
export function getRoute(deps: RouteDeps, method: 'GET' | 'HEAD') {
  return (res: HttpResponse, req: HttpRequest): void => {
    const exchange = begin(deps, res, req);
    if (exchange.oversized) return;
    const path = exchange.path;
    const query = req.getQuery() ?? '';
    const accept = req.getHeader('accept');
    const freshnessToken = req.getHeader('freshness-token');
    void (async () => {
      try {
        if (path === '/_health') {
          if (deps.draining()) throw new ImageError('UNAVAILABLE', 'Shutting down');
          await deps.service.health();
          return exchange.send(200, { 'Content-Type': 'text/plain' }, 'OK');
        }
        if (path === '/robots.txt') {
          return exchange.send(200, { 'Content-Type': 'text/plain' }, `User-agent: *\n${deps.allowIndexing ? 'Allow' : 'Disallow'}: /\n`);
        }
        if (path === '/favicon.ico') throw new ImageError('NOT_FOUND', 'No favicon');
        const extra = deps.extraGet?.[path];
        if (extra) return await extra(exchange);
        const request = parseImageRequest(path, query);
        exchange.logFields.id = request.id;
        const reply = await deps.service.get(request, { method, accept, freshnessToken, query });
        // The client went away: write nothing, not even the cache entry.
        if (exchange.aborted) return;
        await writeImage(deps, exchange, reply);
      } catch (error) {
        exchange.fail(error);
      }
    })();
  };
}

/** POST /token with {"id", "secret"?}. */
export function tokenRoute(deps: RouteDeps) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const exchange = begin(deps, res, req);
    if (exchange.oversized) return;
    const body = receiveSmallBody(exchange, 16 * 1024);
    void (async () => {
      try {
        let parsed: unknown;
        try {
          parsed = JSON.parse((await body).toString('utf8') || '{}');
        } catch {
          throw new ImageError('BAD_REQUEST', 'Expected a JSON body like {"id": "photo"}');
        }
        if (!parsed || typeof parsed !== 'object') throw new ImageError('BAD_REQUEST', 'Expected a JSON object');
        const token = await deps.service.issueToken(parsed as { id?: unknown; secret?: unknown });
        exchange.json(200, { token });
      } catch (error) {
        exchange.fail(error);
      }
    })();
  };
}

/** Reads ?x=&y=&width=&height= as a crop; all four or none. */
function parseCrop(query: string): { x: number; y: number; width: number; height: number } | undefined {
  const params = new URLSearchParams(query);
  const keys = ['x', 'y', 'width', 'height'] as const;
  const given = keys.filter((key) => params.has(key));
  if (given.length === 0) return undefined;
  if (given.length !== 4) throw new ImageError('BAD_OPTION', 'Expected all of x, y, width and height for a crop');
  const values = keys.map((key) => {
    const raw = params.get(key) ?? '';
    if (!/^\d{1,6}$/.test(raw)) throw new ImageError('BAD_OPTION', `Expected a non-negative integer for ${key} but received ${JSON.stringify(raw.slice(0, 20))}`);
    return Number(raw);
  });
  return { x: values[0] as number, y: values[1] as number, width: values[2] as number, height: values[3] as number };
}

/** POST /{id}[.{ext}] with X-Token and a multipart field `image`. */
export function uploadRoute(deps: RouteDeps) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const exchange = begin(deps, res, req);
    if (exchange.oversized) return;
    const token = req.getHeader('x-token');
    const contentType = req.getHeader('content-type');
    const declared = Number(req.getHeader('content-length') || '0');
    const query = req.getQuery() ?? '';
    let id: string;
    try {
      id = parseIdPath(exchange.path);
      if (declared > deps.maxUploadBytes) throw new ImageError('PAYLOAD_TOO_LARGE', `The upload is larger than ${deps.maxUploadBytes} bytes`);
      checkToken(token);
    } catch (error) {
      // The body is not read: close the connection rather than leave it half-consumed.
      return exchange.fail(error, true);
    }
    exchange.logFields.id = id;
    const intake = receiveUpload(exchange, contentType, { maxBytes: deps.maxUploadBytes, tempDir: deps.tempDir });
    void (async () => {
      let cleanup: (() => Promise<void>) | undefined;
      let bodyRead = false;
      try {
        const crop = parseCrop(query);
        const received = await intake;
        bodyRead = true;
        cleanup = received.cleanup;
        const result = await deps.service.upload({ id, token, file: received.file, ...(crop ? { crop } : {}), aborted: () => exchange.aborted });
        exchange.json(200, { status: 'OK', id: result.id, original_width: result.width, original_height: result.height });
      } catch (error) {
        // Refused before the body was read through: the connection holds unread bytes, close it.
        exchange.fail(error, !bodyRead);
      } finally {
        await cleanup?.();
      }
    })();
  };
}

/** DELETE /{id}, authorised by X-Secret. */
export function deleteRoute(deps: RouteDeps) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const exchange = begin(deps, res, req);
    if (exchange.oversized) return;
    const secret = req.getHeader('x-secret');
    void (async () => {
      try {
        const id = parseIdPath(exchange.path);
        const result = await deps.service.delete(id, secret);
        deps.hot.forget('');
        // Answer only once every worker has forgotten the id, so no later request sees it.
        await deps.deleted?.(id);
        exchange.json(200, { status: 'OK', id, variants: result.variants });
      } catch (error) {
        exchange.fail(error);
      }
    })();
  };
}

/** CORS preflight: pages on other origins may get tokens, upload and delete. */
export function preflightRoute(deps: RouteDeps) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const exchange = begin(deps, res, req);
    if (exchange.oversized) return;
    exchange.send(204, {
      'Access-Control-Allow-Methods': 'GET, HEAD, POST, DELETE',
      'Access-Control-Allow-Headers': 'Content-Type, X-Token, X-Secret, freshness-token',
      'Access-Control-Max-Age': '86400',
    });
  };
}
