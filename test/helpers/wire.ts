/**
 * Raw HTTP/1.1 on sockets, for what fetch hides or refuses to do: request
 * heads and multipart and chunked bodies built by hand, HEAD bodies, answers
 * sent before the request body, pipelined and follow-up requests on one
 * connection, and clients that vanish mid-upload.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { sleep } from './timing.js';

// ---------------------------------------------------------------------------
// Building requests

/** A complete HTTP/1.1 request head; `Host` (default 127.0.0.1) comes first. */
export function head(method: string, target: string, headers: Record<string, string | number>, host = '127.0.0.1'): string {
  return `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

/** One part of a multipart body. */
export interface Part {
  name: string;
  filename?: string;
  type?: string;
  data: Uint8Array | string;
}

/** A multipart/form-data body; `close: false` leaves out the closing boundary. */
export function multipart(parts: Part[], options: { close?: boolean; boundary?: string } = {}): { body: Buffer; contentType: string } {
  const boundary = options.boundary ?? `rel${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.filename !== undefined ? `; filename="${part.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${part.type ? `Content-Type: ${part.type}\r\n` : ''}\r\n`));
    chunks.push(typeof part.data === 'string' ? Buffer.from(part.data) : Buffer.from(part.data));
    chunks.push(Buffer.from('\r\n'));
  }
  if (options.close !== false) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Chunked transfer encoding of `body` in chunks of `size`, with the last chunk. */
export function chunked(body: Uint8Array, size = 16 * 1024): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < body.byteLength; at += size) {
    const piece = body.subarray(at, at + size);
    out.push(Buffer.from(`${piece.byteLength.toString(16)}\r\n`), Buffer.from(piece), Buffer.from('\r\n'));
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}

// ---------------------------------------------------------------------------
// Reading answers

/** One answer read off the wire. */
export interface WireResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
  /**
   * False for a chunked answer cut off before its last chunk: a refusal of an
   * upload goes out at once and ends only once the rest of the body is read
   * (or the connection is closed, past the bound).
   */
  complete: boolean;
}

/** The status and lower-cased headers of a head block (without its blank line). */
function parseHead(block: Buffer): { status: number; headers: Record<string, string> } {
  const lines = block.toString('latin1').split('\r\n');
  const status = Number((lines[0] ?? '').split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers };
}

/**
 * The chunks of a chunked body starting at `at`: `pieces` (the last may be
 * cut off), how many of them arrived whole, whether the last chunk came,
 * and where the body ended.
 */
function readChunks(data: Buffer, at: number): { pieces: Buffer[]; whole: number; complete: boolean; end: number } {
  const pieces: Buffer[] = [];
  let whole = 0;
  while (at < data.byteLength) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) break;
    if (size === 0) return { pieces, whole, complete: true, end: lineEnd + 4 };
    pieces.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    if (lineEnd + 2 + size <= data.byteLength) whole++;
    at = lineEnd + 2 + size + 2;
  }
  return { pieces, whole, complete: false, end: at };
}

/** Parses every complete response in `data` (Content-Length or chunked bodies), and a last chunked one cut off after whole chunks. */
export function parseResponses(data: Buffer): WireResponse[] {
  const responses: WireResponse[] = [];
  let at = 0;
  while (at < data.byteLength) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const { status, headers } = parseHead(data.subarray(at, end));
    const bodyStart = end + 4;
    let body: Buffer;
    if (headers['transfer-encoding']?.includes('chunked')) {
      const chunks = readChunks(data, bodyStart);
      if (!chunks.complete) {
        if (chunks.pieces.length > 0) responses.push({ status, headers, body: Buffer.concat(chunks.pieces), complete: false });
        break;
      }
      body = Buffer.concat(chunks.pieces);
      at = chunks.end;
    } else {
      const length = Number(headers['content-length'] ?? '0');
      if (data.byteLength < bodyStart + length) break;
      body = data.subarray(bodyStart, bodyStart + length);
      at = bodyStart + length;
    }
    responses.push({ status, headers, body, complete: true });
  }
  return responses;
}

// ---------------------------------------------------------------------------
// Conversations on one connection

/** What came back on a connection, and how it ended. */
export interface WireResult {
  responses: WireResponse[];
  /** How the connection ended: closed by the server (fin or reset), or still open when we stopped listening. */
  ended: 'fin' | 'reset' | 'open';
  /** ms from connect to the end. */
  ms: number;
  raw: Buffer;
}

/** When `wire` stops listening, and how it writes. */
export interface WireOptions {
  /** Stop listening after this long (the connection is then reported 'open'). Default 5 s. */
  timeoutMs?: number;
  /** Stop as soon as this holds for the responses parsed so far. */
  until?: (responses: WireResponse[]) => boolean;
  /** Stop as soon as this holds for the bytes received so far. */
  untilRaw?: (raw: Buffer) => boolean;
  /** Pause between writes, ms. */
  gapMs?: number;
}

/**
 * Opens a connection, writes `writes` in order (a function may write as it
 * likes), and collects every byte until the server closes the connection,
 * `until` holds, or the time is up.
 */
export function wire(port: number, writes: (string | Uint8Array)[] | ((socket: Socket) => Promise<void>), options: WireOptions = {}): Promise<WireResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    let reset = false;
    const finish = (ended: WireResult['ended']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      if (ended === 'open') socket.destroy();
      resolve({ responses: parseResponses(raw), ended, ms: performance.now() - started, raw });
    };
    const timer = setTimeout(() => finish('open'), options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const raw = Buffer.concat(chunks);
      if (options.until?.(parseResponses(raw)) || options.untilRaw?.(raw)) finish('open');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => finish(reset ? 'reset' : 'fin'));
    socket.on('connect', () => {
      void (async () => {
        try {
          if (typeof writes === 'function') {
            await writes(socket);
            return;
          }
          for (const piece of writes) {
            if (socket.destroyed) return;
            socket.write(piece);
            if (options.gapMs) await sleep(options.gapMs);
          }
        } catch {
          // the server closed the connection while we wrote
        }
      })();
    });
  });
}

/** Writes `data` to `socket` and waits until it is flushed (or the socket is gone). */
export function writeAll(socket: Socket, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.write(data, () => resolve());
  });
}

/** The status line and JSON `code` of one request on its own connection (`Connection: close`). */
export async function rawStatus(
  port: number,
  method: string,
  target: string,
  headers: Record<string, string | number> = {},
  body?: Uint8Array,
  timeoutMs = 10_000,
): Promise<{ status: number | string; code?: string }> {
  const answer = await wire(port, body ? [head(method, target, { Connection: 'close', ...headers }), body] : [head(method, target, { Connection: 'close', ...headers })], {
    untilRaw: (raw) => (method === 'HEAD' ? raw.includes('\r\n\r\n') : parseResponses(raw).length > 0),
    timeoutMs,
  });
  const line = /^HTTP\/1\.1 (\d{3})/.exec(answer.raw.toString('latin1'));
  if (!line) return { status: `no answer (${answer.ended})` };
  const first = parseResponses(answer.raw)[0];
  let code: string | undefined;
  try {
    code = (JSON.parse(first?.body.toString() ?? '') as { code?: string }).code;
  } catch {
    code = undefined;
  }
  return { status: Number(line[1]), ...(code !== undefined ? { code } : {}) };
}

/**
 * Sends `first` on a keep-alive connection, waits for its answer, then sends
 * `second` on the same connection: a server that refused the first request
 * must answer the second or close the connection, never leave it hanging.
 */
export function followUp(
  port: number,
  first: (string | Uint8Array)[],
  second: string,
  timeoutMs = 4_000,
): Promise<{ first?: WireResponse; second?: WireResponse; ended: 'fin' | 'reset' | 'open' }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sentSecond = false;
    let settled = false;
    let reset = false;
    let timer = setTimeout(() => finish('open'), timeoutMs);
    const finish = (ended: 'fin' | 'reset' | 'open') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const responses = parseResponses(Buffer.concat(chunks));
      resolve({ ...(responses[0] ? { first: responses[0] } : {}), ...(responses[1] ? { second: responses[1] } : {}), ended });
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const responses = parseResponses(Buffer.concat(chunks));
      if (responses.length >= 1 && !sentSecond) {
        sentSecond = true;
        clearTimeout(timer);
        timer = setTimeout(() => finish('open'), timeoutMs);
        socket.write(second);
      }
      if (responses.length >= 2) finish('open');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
    });
    socket.on('close', () => finish(reset ? 'reset' : 'fin'));
    socket.on('connect', () => {
      for (const piece of first) if (!socket.destroyed) socket.write(piece);
    });
  });
}

// ---------------------------------------------------------------------------
// One request, read to the end of what comes back

/** An answer read off the wire by `rawRequest`. Header names are lower case. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  /** The body after the header block (chunked bodies decoded), until the connection closed or went quiet. */
  body: Buffer;
}

/** A request for `rawRequest`. */
export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent after the headers, unless the answer arrives first. */
  body?: Uint8Array;
  /** How long to wait for more bytes after the header block, when the connection stays open. Default 300 ms. */
  quietMs?: number;
  timeoutMs?: number;
}

/**
 * One request over its own TCP connection (`Connection: close`), reading every
 * byte that comes back: for HEAD (no body may follow the headers) and for
 * answers sent before the request body.
 */
export function rawRequest(url: string, request: RawRequest): Promise<RawAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    let headerEnd = -1;
    let quiet: NodeJS.Timeout | undefined;
    let settled = false;
    const overall = setTimeout(() => finish(new Error(`no answer to ${request.method} ${request.path} in time`)), request.timeoutMs ?? 10_000);
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      if (quiet) clearTimeout(quiet);
      socket.destroy();
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end === -1) return reject(error ?? new Error(`incomplete answer: ${JSON.stringify(all.toString('latin1').slice(0, 200))}`));
      const { status, headers } = parseHead(all.subarray(0, end));
      const body = all.subarray(end + 4);
      if (headers['transfer-encoding'] !== 'chunked') return resolve({ status, headers, body });
      // As far as whole chunks arrived.
      const { pieces, whole } = readChunks(body, 0);
      resolve({ status, headers, body: Buffer.concat(pieces.slice(0, whole)) });
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (headerEnd === -1) headerEnd = Buffer.concat(chunks).indexOf('\r\n\r\n');
      if (headerEnd !== -1) {
        if (quiet) clearTimeout(quiet);
        // A GET whose declared body has fully arrived is complete; anything else waits for quiet or close.
        const all = Buffer.concat(chunks);
        const declared = /\r\ncontent-length:\s*(\d+)/i.exec(all.subarray(0, headerEnd).toString('latin1'));
        if (request.method !== 'HEAD' && declared && all.byteLength - headerEnd - 4 >= Number(declared[1])) return finish();
        quiet = setTimeout(() => finish(), request.quietMs ?? 300);
      }
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish());
    // A server that answers and closes while the body is still being sent resets the connection.
    socket.on('error', (error) => finish(error));
    socket.on('connect', () => {
      socket.write(head(request.method, request.path, { Connection: 'close', ...request.headers }, `${hostname}:${port}`));
      if (request.body) socket.write(request.body);
    });
  });
}

/**
 * Starts a request that declares `body` in full, sends only its first
 * `sendBytes` bytes, then drops the connection: a client going away mid-upload.
 */
export function abortedRequest(url: string, request: { method: string; path: string; headers: Record<string, string>; body: Uint8Array; sendBytes: number }): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    socket.on('connect', () => {
      socket.write(head(request.method, request.path, { 'Content-Length': String(request.body.byteLength), ...request.headers }, `${hostname}:${port}`));
      socket.write(request.body.subarray(0, request.sendBytes));
      // Let the server start on the body, then vanish.
      setTimeout(() => {
        socket.destroy();
        setTimeout(resolve, 100);
      }, 200);
    });
    socket.setTimeout(10_000, () => reject(new Error('the aborted request hung')));
  });
}
