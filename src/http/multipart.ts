/**
 * Upload intake: the request body streams from uWS into busboy and on to a
 * temp file, never whole in memory. uWS has no body limit of its own, so the
 * bytes are counted here; past the limit the answer is 413 and the temp file goes.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import busboy from 'busboy';
import { ImageError } from '../errors.js';
import type { Exchange } from './exchange.js';

export interface IntakeLimits {
  maxBytes: number;
  /** Must exist (the server creates it at start). */
  tempDir: string;
}

export interface Intake {
  /** The temp file holding the `image` part. */
  file: string;
  bytes: number;
  /** Removes the temp file; safe to call twice. */
  cleanup(): Promise<void>;
}

/** Multipart limits: one file, a handful of small fields, few parts. */
const PART_LIMITS = { files: 1, fields: 20, parts: 32, fieldSize: 4096, headerPairs: 20 };

/**
 * Reads a multipart body whose `image` part becomes a temp file. Must be
 * called synchronously in the uWS handler (before any await): onData is
 * registered here.
 */
export function receiveUpload(exchange: Exchange, contentType: string, limits: IntakeLimits): Promise<Intake> {
  const res = exchange.res;
  const file = path.join(limits.tempDir, `upload-${process.pid}-${randomBytes(8).toString('hex')}`);
  // The temp file may still be opening when a refusal comes: remove it only once its stream closed.
  let outClosed: Promise<void> = Promise.resolve();
  const cleanup = async () => {
    await outClosed;
    await rm(file, { force: true });
  };
  return new Promise<Intake>((resolve, reject) => {
    let settled = false;
    let received = 0;
    let fileParts = 0;
    let out: WriteStream | undefined;
    let fileDone: Promise<void> | undefined;
    let parser: busboy.Busboy | undefined;
    const fail = (error: ImageError) => {
      if (settled) return;
      settled = true;
      out?.destroy();
      parser?.destroy();
      void cleanup().finally(() => reject(error));
    };
    const writeFailed = (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      const disk = code === 'ENOSPC' || code === 'EIO' || code === 'EACCES' || code === 'EROFS' || code === 'EDQUOT';
      fail(
        disk
          ? new ImageError('UNAVAILABLE', code === 'ENOSPC' ? 'The disk is full' : 'Cannot write the upload', { detail: String(error) })
          : new ImageError('BAD_REQUEST', 'The multipart body is malformed or incomplete', { detail: String(error) }),
      );
    };
    try {
      parser = busboy({ headers: { 'content-type': contentType }, limits: { ...PART_LIMITS, fileSize: limits.maxBytes } });
    } catch {
      fail(new ImageError('BAD_REQUEST', 'Expected a multipart/form-data body with a boundary'));
    }
    exchange.onAbort(() => fail(new ImageError('BAD_REQUEST', 'The client aborted the upload')));
    // Registered synchronously: uWS delivers body chunks only to a handler set in the route callback.
    res.onData((chunk, isLast) => {
      if (settled || !parser) return;
      received += chunk.byteLength;
      if (received > limits.maxBytes) {
        return fail(new ImageError('PAYLOAD_TOO_LARGE', `The upload is larger than ${limits.maxBytes} bytes`));
      }
      // The chunk is only valid during this callback: copy it.
      const accepted = parser.write(Buffer.from(new Uint8Array(chunk)));
      if (isLast) parser.end();
      else if (!accepted) {
        res.pause();
        parser.once('drain', () => !exchange.aborted && !settled && res.resume());
      }
    });
    if (!parser) return;
    parser.on('file', (name, stream) => {
      fileParts++;
      // Destroying busboy errors the part being read; every part stream gets a handler.
      stream.on('error', () => {});
      if (name !== 'image' || fileParts > 1) {
        stream.resume();
        return fail(new ImageError('BAD_REQUEST', name !== 'image' ? `Unexpected file part ${name}; send the image as the field "image"` : 'Expected exactly one image part'));
      }
      const target = createWriteStream(file, { flags: 'wx' });
      out = target;
      outClosed = new Promise((done) => target.once('close', () => done()));
      fileDone = new Promise((done, error) => {
        target.on('finish', done);
        target.on('error', error);
        // pipe() does not forward errors: a truncated part must not become an uncaught exception.
        stream.on('error', error);
      });
      // A write error (disk full) is answered now: pipe() stops reading, so busboy would never close.
      fileDone.catch(writeFailed);
      stream.on('limit', () => fail(new ImageError('PAYLOAD_TOO_LARGE', `The upload is larger than ${limits.maxBytes} bytes`)));
      stream.pipe(target);
    });
    parser.on('filesLimit', () => fail(new ImageError('BAD_REQUEST', 'Expected exactly one image part')));
    parser.on('partsLimit', () => fail(new ImageError('BAD_REQUEST', 'Too many parts in the upload')));
    parser.on('fieldsLimit', () => fail(new ImageError('BAD_REQUEST', 'Too many fields in the upload')));
    parser.on('error', () => fail(new ImageError('BAD_REQUEST', 'The multipart body is malformed or incomplete')));
    parser.on('close', () => {
      if (settled) return;
      if (!fileDone) return fail(new ImageError('NO_IMAGE_PART', 'The upload has no "image" part'));
      fileDone.then(() => {
        if (settled) return;
        settled = true;
        resolve({ file, bytes: received, cleanup });
      }, writeFailed);
    });
  });
}

/** Reads a small body (JSON for /token) with a hard size limit. Call before any await. */
export function receiveSmallBody(exchange: Exchange, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    exchange.onAbort(() => {
      if (!done) reject(new ImageError('BAD_REQUEST', 'The client aborted the request'));
      done = true;
    });
    exchange.res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        done = true;
        return reject(new ImageError('PAYLOAD_TOO_LARGE', `The body is larger than ${maxBytes} bytes`));
      }
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) {
        done = true;
        resolve(Buffer.concat(chunks));
      }
    });
  });
}
