/**
 * Upload intake: the request body streams from the exchange's body reader
 * into busboy and on to a temp file. uWS has no body limit of its own, so the
 * bytes are counted here; past the limit the answer is 413. Whatever ends the
 * exchange (an answer from anywhere, or an abort) stops the parser and
 * removes the temp file.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import busboy from 'busboy';
import { ImageError } from '../errors.js';
import type { RequestBody } from './body.js';
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

/**
 * Multipart limits: one file part and up to 31 small fields, 32 parts in all
 * (the README's limits table states these numbers).
 */
export const PART_LIMITS = { files: 1, fields: 31, parts: 32, fieldSize: 4096, headerPairs: 20 } as const;

function tooLarge(maxBytes: number): ImageError {
  return new ImageError('PAYLOAD_TOO_LARGE', `The upload is larger than ${maxBytes} bytes`);
}

/**
 * Reads a multipart body whose `image` part becomes a temp file. The temp
 * file is removed when the exchange settles, whoever answered it; on success
 * the caller removes it with `cleanup()` once it has been stored.
 */
export function receiveUpload(exchange: Exchange, body: RequestBody, contentType: string, limits: IntakeLimits): Promise<Intake> {
  const file = path.join(limits.tempDir, `upload-${process.pid}-${randomBytes(8).toString('hex')}`);
  // The temp file may still be opening when a refusal comes: remove it only once its stream closed.
  let outClosed: Promise<void> = Promise.resolve();
  const cleanup = async () => {
    await outClosed;
    await rm(file, { force: true });
  };
  return new Promise<Intake>((resolve, reject) => {
    let settled = false;
    let fileParts = 0;
    let out: WriteStream | undefined;
    let fileDone: Promise<void> | undefined;
    let parser: busboy.Busboy | undefined;
    const stop = () => {
      out?.destroy();
      parser?.destroy();
      void cleanup();
    };
    const fail = (error: ImageError) => {
      if (settled) return;
      settled = true;
      stop();
      reject(error);
    };
    // Answered elsewhere (a refusal) or aborted: stop reading and drop the temp file.
    exchange.onSettle(() => {
      if (settled) return;
      settled = true;
      stop();
      reject(new ImageError('BAD_REQUEST', exchange.aborted ? 'The client aborted the upload' : 'The upload was answered before it was read'));
    });
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
      // busboy reports partsLimit once the Nth part has ended (the last one included): N + 1 lets N in.
      parser = busboy({ headers: { 'content-type': contentType }, limits: { ...PART_LIMITS, parts: PART_LIMITS.parts + 1, fileSize: limits.maxBytes } });
    } catch {
      return fail(new ImageError('BAD_REQUEST', 'Expected a multipart/form-data body with a boundary'));
    }
    const active = parser;
    active.on('file', (name, stream) => {
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
      stream.on('limit', () => fail(tooLarge(limits.maxBytes)));
      stream.pipe(target);
    });
    active.on('filesLimit', () => fail(new ImageError('BAD_REQUEST', 'Expected exactly one image part')));
    active.on('partsLimit', () => fail(new ImageError('BAD_REQUEST', `Too many parts in the upload (at most ${PART_LIMITS.parts})`)));
    active.on('fieldsLimit', () => fail(new ImageError('BAD_REQUEST', `Too many fields in the upload (at most ${PART_LIMITS.fields})`)));
    active.on('error', () => fail(new ImageError('BAD_REQUEST', 'The multipart body is malformed or incomplete')));
    active.on('close', () => {
      if (settled) return;
      if (!fileDone) return fail(new ImageError('NO_IMAGE_PART', 'The upload has no "image" part'));
      fileDone.then(() => {
        if (settled) return;
        settled = true;
        resolve({ file, bytes: body.bytes, cleanup });
      }, writeFailed);
    });
    // Last: what arrived while the token was checked is parsed at once, and must find the handlers above.
    body.pipe({
      write(chunk, last) {
        if (settled) return true;
        if (body.bytes > limits.maxBytes) {
          fail(tooLarge(limits.maxBytes));
          return true;
        }
        const accepted = chunk.byteLength === 0 ? true : active.write(chunk);
        if (last) active.end();
        else if (!accepted) active.once('drain', () => !settled && body.resume());
        return accepted;
      },
    });
  });
}

/** Reads a small body (JSON for /token) with a hard size limit. */
export function receiveSmallBody(exchange: Exchange, body: RequestBody, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    exchange.onSettle(() => {
      if (!done) reject(new ImageError('BAD_REQUEST', 'The client aborted the request'));
      done = true;
    });
    body.pipe({
      write(chunk, last) {
        if (done) return true;
        if (body.bytes > maxBytes) {
          done = true;
          reject(new ImageError('PAYLOAD_TOO_LARGE', `The body is larger than ${maxBytes} bytes`));
          return true;
        }
        chunks.push(chunk);
        if (last) {
          done = true;
          resolve(Buffer.concat(chunks));
        }
        return true;
      },
    });
  });
}
