/**
 * An upload: consume the token atomically, check and prepare the image in the
 * pool, write the original durably, then record it. Any failure frees the
 * token again, so the client can retry with it.
 */
import { readFile, stat } from 'node:fs/promises';
import { ImageError } from '../errors.js';
import type { PrepareOptions } from '../render/options.js';
import { contentTypeOf } from './keys.js';
import type { Originals } from './originals.js';
import { checkToken, tokenDigest } from './tokens.js';
import { NO_EVENTS, type ImageDeps } from './types.js';

export interface UploadInput {
  id: string;
  token: string;
  /** The temp file holding the uploaded image part. */
  file: string;
  crop?: PrepareOptions['crop'];
  /** Tells whether the client went away; nothing is written after that. */
  aborted?: () => boolean;
}

export interface UploadResult {
  id: string;
  width: number;
  height: number;
}

/** Runs an upload whose body is already in `input.file`. */
export async function upload(deps: ImageDeps, originals: Originals, input: UploadInput): Promise<UploadResult> {
  const digest = tokenDigest(checkToken(input.token));
  const now = deps.now?.() ?? new Date();
  if (!(await deps.store.consumeToken(input.id, digest, now))) {
    throw new ImageError('BAD_TOKEN', 'The upload token is invalid, expired, used, or for another id');
  }
  (deps.events ?? NO_EVENTS).token('consumed');
  let recorded = false;
  try {
    const { size } = await stat(input.file);
    const bytes = new Uint8Array(await readFile(input.file));
    const prepared = await deps.pool.prepareOriginal(bytes, {
      ...(input.crop ? { crop: input.crop } : {}),
      maxPixels: deps.config.constraints.maxOnDiskPixels,
      maxInputPixels: deps.config.constraints.maxInputPixels,
    });
    if (input.aborted?.()) throw new ImageError('BAD_REQUEST', 'The client aborted the upload');
    const key = originals.keyFor(input.id);
    const contentType = contentTypeOf(prepared.format);
    // Durable before the 200: fsync'd file or an acknowledged S3 PUT.
    if (prepared.changed) await deps.originals.put(key, prepared.data, contentType);
    else await deps.originals.putFile(key, input.file, contentType);
    const record = {
      id: input.id,
      format: prepared.format,
      width: prepared.width,
      height: prepared.height,
      bytes: prepared.changed ? prepared.data.byteLength : size,
      storageKey: key,
      uploadedAt: now,
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
