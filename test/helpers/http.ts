/**
 * HTTP clients over fetch for tests and the bench: tokens, uploads, GETs and
 * reading JSON and error bodies, and one request over its own connection.
 * Raw sockets are in wire.ts.
 */
import http from 'node:http';

/** A parsed JSON body of an answer (`{ raw }` when it is not JSON). */
export type Json = Record<string, unknown>;

/** The body as JSON, or `{ raw: text }` when it is not JSON. */
export async function jsonOf(response: Response): Promise<Json> {
  const text = await response.text();
  try {
    return JSON.parse(text) as Json;
  } catch {
    return { raw: text };
  }
}

/** The whole body, as bytes. */
export async function bytesOf(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

/** The answer's JSON error body. */
export async function errorOf(response: Response): Promise<{ error: unknown; code: unknown }> {
  const body = (await response.json()) as Json;
  return { error: body.error, code: body.code };
}

/** GET /_health: its status, or how it failed. */
export async function healthStatus(url: string, timeoutMs = 5_000): Promise<number | 'timeout' | 'error'> {
  try {
    const response = await fetch(`${url}/_health`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    return (error as Error).name === 'TimeoutError' ? 'timeout' : 'error';
  }
}

/** An answer to POST /token. */
export interface TokenAnswer {
  status: number;
  body: Json;
  /** The token, when one was issued. */
  token?: string;
  response: Response;
}

/** POST /token with `{ id, secret }` (id as given: tests send wrong ones); the answer, whatever it is. */
export async function requestToken(url: string, id: unknown, options: { secret?: string; timeoutMs?: number } = {}): Promise<TokenAnswer> {
  const payload: Record<string, unknown> = { id };
  if (options.secret !== undefined) payload.secret = options.secret;
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const body = await jsonOf(response);
  return { status: response.status, body, response, ...(typeof body.token === 'string' ? { token: body.token } : {}) };
}

/** A token for `id`, or throws naming the answer. */
export async function issueToken(url: string, id: string, options: { secret?: string } = {}): Promise<string> {
  const issued = await requestToken(url, id, options);
  if (issued.status !== 200 || issued.token === undefined) throw new Error(`POST /token for ${id} answered ${issued.status} ${JSON.stringify(issued.body)}`);
  return issued.token;
}

/** How to send an upload. */
export interface UploadOptions {
  /** The secret sent with the token request. */
  secret?: string;
  /** Use this token instead of requesting one. */
  token?: string;
  /** The path's extension: `POST /{id}.{ext}`; null for `POST /{id}`. Default 'jpg'. */
  ext?: string | null;
  /** The query string (without `?`), e.g. a crop. */
  query?: string;
  /** The multipart field name; default `image`. */
  field?: string;
  /** The part's file name (default `{id}.jpg`) and media type (default image/jpeg). */
  filename?: string;
  type?: string;
  /** Post to this id instead of the one the token is for. */
  postId?: string;
  /** Give up after this long; default 30 s. */
  timeoutMs?: number;
}

/** The answer to an upload, read. */
export interface UploadAnswer {
  status: number;
  body: Json;
  /** The token the upload carried. */
  token: string;
  headers: Headers;
  response: Response;
  /** ms from sending to the whole answer. */
  ms: number;
}

/** Posts `bytes` (none: an empty form) as one multipart part with X-Token, to `POST /{id}.{ext}` (or `POST /{id}`). */
export function postImage(url: string, id: string, token: string, bytes: Uint8Array | null, options: UploadOptions = {}): Promise<Response> {
  const form = new FormData();
  if (bytes) form.append(options.field ?? 'image', new Blob([bytes], { type: options.type ?? 'image/jpeg' }), options.filename ?? `${id}.jpg`);
  const ext = options.ext === undefined ? 'jpg' : options.ext;
  const target = `${url}/${id}${ext === null ? '' : `.${ext}`}${options.query ? `?${options.query}` : ''}`;
  return fetch(target, { method: 'POST', headers: { 'X-Token': token }, body: form, signal: AbortSignal.timeout(options.timeoutMs ?? 30_000) });
}

/** Uploads `bytes` as `id` with `options.token`, or with a token issued first (throws when none is). */
export async function uploadImage(url: string, id: string, bytes: Uint8Array, options: UploadOptions = {}): Promise<UploadAnswer> {
  const token = options.token ?? (await issueToken(url, id, options.secret !== undefined ? { secret: options.secret } : {}));
  const started = performance.now();
  const response = await postImage(url, options.postId ?? id, token, bytes, options);
  const body = await jsonOf(response);
  return { status: response.status, body, token, headers: response.headers, response, ms: performance.now() - started };
}

/** A GET without following redirects. */
export function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', headers });
}

/** A GET (no redirects followed), read: status, headers, bytes and the time taken. */
export async function getBytes(url: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<{ status: number; headers: Headers; body: Buffer; ms: number }> {
  const started = performance.now();
  const response = await fetch(url, { redirect: 'manual', ...init, signal: init.signal ?? AbortSignal.timeout(init.timeoutMs ?? 30_000) });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body, ms: performance.now() - started };
}

/** One request over its own TCP connection (no keep-alive), so the kernel may hand it to either worker. */
export function freshRequest(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: options.method ?? 'GET', agent: false, headers: { Connection: 'close', ...options.headers } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.setTimeout(30_000, () => request.destroy(new Error(`no answer from ${url}`)));
    request.on('error', reject);
    request.end(options.body);
  });
}
