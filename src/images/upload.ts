/**
 * An upload: reserve the token atomically before a byte of the body is read,
 * then receive the body, check and prepare the image in the pool, write the
 * original durably under a new generation, and record it. Any failure before
 * the record frees the token again, so the client can retry with it.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ImageError } from '../errors.js';
import type { UploadCrop, UploadFocus } from '../options/upload.js';
import { contentTypeOf, originalKey } from './keys.js';
import type { Originals } from './originals.js';
import { checkToken, tokenDigest } from './tokens.js';
import { NO_EVENTS, type ImageDeps } from './types.js';

export interface UploadInput {
  id: string;
  token: string;
  crop?: UploadCrop;
  /** A focal point in the uploaded image's displayed pixels, after the crop. */
  focus?: UploadFocus;
  /** Who uploads (for fair admission to the render slots). */
  client?: string;
  /** Reads the body into a temp file; called only once the token is reserved. */
  receive(): Promise<{ file: string }>;
  /** Tells whether the client went away; nothing is written after that. */
  aborted?: () => boolean;
}

export interface UploadResult {
  id: string;
  width: number;
  height: number;
}

/** A new generation: names this upload's bytes, so nothing rendered from an earlier upload of the id is ever served for it. */
export function newGeneration(): string {
  return randomBytes(6).toString('hex');
}

/** Runs an upload: the token first, then the body, then the image. */
export async function upload(deps: ImageDeps, originals: Originals, input: UploadInput): Promise<UploadResult> {
  const digest = tokenDigest(checkToken(input.token));
  const now = deps.now?.() ?? new Date();
  // Refused before the body is read: a bad token never costs a whole upload.
  if (!(await deps.store.consumeToken(input.id, digest, now))) {
    throw new ImageError('BAD_TOKEN', 'The upload token is invalid, expired, used, or for another id');
  }
  (deps.events ?? NO_EVENTS).token('consumed');
  let recorded = false;
  try {
    const { file } = await input.receive();
    // The addon decodes from memory. The pool moves these bytes to its thread (they read as empty here afterwards).
    const bytes = new Uint8Array(await readFile(file));
    const size = bytes.byteLength;
    const prepared = await deps.renders.prepareOriginal(
      bytes,
      {
        ...(input.crop ? { crop: input.crop } : {}),
        ...(input.focus ? { focus: input.focus } : {}),
        summarise: deps.config.metadata.atUpload,
        maxPixels: deps.config.constraints.maxOnDiskPixels,
        maxInputPixels: deps.config.constraints.maxInputPixels,
        maxPages: deps.config.constraints.maxPages,
        keepMetadata: deps.config.originals.keepMetadata,
      },
      { client: input.client ?? '' },
    );
    if (input.aborted?.()) throw new ImageError('BAD_REQUEST', 'The client aborted the upload');
    const generation = newGeneration();
    const key = originalKey(deps.originals, input.id, generation);
    const contentType = contentTypeOf(prepared.format);
    // Durable before the 200: fsync'd file or an acknowledged S3 PUT.
    if (prepared.changed) await deps.originals.put(key, prepared.data, contentType);
    else await deps.originals.putFile(key, file, contentType);
    const record = {
      id: input.id,
      format: prepared.format,
      width: prepared.width,
      height: prepared.height,
      bytes: prepared.changed ? prepared.data.byteLength : size,
      storageKey: key,
      uploadedAt: now,
      generation,
      jpegQuality: prepared.format === 'jpeg' ? prepared.jpegQuality : null,
      // Not decided yet: made in the background once the upload is acknowledged.
      copies: null,
      frames: prepared.frames,
      focus: prepared.focus ?? null,
      summary: prepared.summary ?? null,
    };
    await deps.store.insertOriginal(record);
    recorded = true;
    await deps.store.completeToken(input.id, digest, now);
    originals.remember(record);
    (deps.events ?? NO_EVENTS).upload(record.bytes);
    return { id: input.id, width: record.width, height: record.height };
  } catch (error) {
    if (!recorded) {
      await deps.store.releaseToken(input.id, digest).catch((releaseError: unknown) => {
        deps.log.error({ err: releaseError, id: input.id }, 'could not free the upload token');
      });
    }
    throw error;
  }
}
