/**
 * Object storage in an S3 bucket (AWS or any S3-compatible endpoint). Every
 * request has bounded time (connect, idle and time-to-response limits) and at
 * most two attempts, so an unreachable store fails fast with UNAVAILABLE
 * instead of holding a request open.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { ImageError } from '../errors.js';
import { assertValidKey, objectUrl, s3PublicBase } from './keys.js';
import type { ObjectStorage } from './types.js';

/** Options of the S3 backend. */
export interface S3StorageOptions {
  /** The bucket holding originals and the render cache. */
  bucket: string;
  /** Defaults to us-east-1. */
  region?: string;
  /** Both or neither; without them the SDK's default credential chain applies. */
  accessKeyId?: string;
  /** See accessKeyId. */
  secretAccessKey?: string;
  /** An S3-compatible endpoint such as `http://127.0.0.1:9000`. */
  endpoint?: string;
  /** Path-style URLs; defaults to true when an endpoint is set. */
  forcePathStyle?: boolean;
  /** The public base URL of the bucket for redirects (a CDN); see publicUrl. */
  cacheHost?: string;
  /** Bound on connecting, on any silence mid-request and on waiting for a response; default 10 s. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_ATTEMPTS = 2;
/** S3's limit of keys per DeleteObjects request. */
const DELETE_BATCH = 1000;
/** Uploads get extra time at this floor throughput (1 MiB/s), so a large original is not cut off. */
const UPLOAD_BYTES_PER_MS = 1024 * 1024 / 1000;

/** The SDK logs to console by default; errors reach callers as ImageError instead. */
const QUIET_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Creates the S3 backend; `localPath` is null and `publicUrl` points under `cacheHost`. */
export function createS3Storage(options: S3StorageOptions): ObjectStorage {
  const { bucket, endpoint } = options;
  const region = options.region ?? 'us-east-1';
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const base = s3PublicBase(options);

  const client = new S3Client({
    region,
    endpoint,
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    credentials:
      options.accessKeyId !== undefined && options.secretAccessKey !== undefined
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
        : undefined,
    maxAttempts: MAX_ATTEMPTS,
    // requestTimeout alone only logs a warning in this SDK; throwOnRequestTimeout
    // makes it an error. socketTimeout bounds silence while a body flows.
    requestHandler: {
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
    },
    // Default checksums send aws-chunked bodies that S3-compatible stores
    // (MinIO before 2025, s3rver, …) store verbatim; checksum only where S3 requires it.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: QUIET_LOGGER,
  });

  /** Time allowed until the response of an upload of `bytes`. */
  function uploadTimeout(bytes: number): number {
    return timeoutMs + Math.ceil(bytes / UPLOAD_BYTES_PER_MS);
  }

  async function upload(input: PutObjectCommandInput, bytes: number): Promise<void> {
    await client.send(new PutObjectCommand(input), { requestTimeout: uploadTimeout(bytes) });
  }

  return {
    kind: 's3',

    async put(key, data, contentType) {
      assertValidKey(key);
      try {
        await upload({ Bucket: bucket, Key: key, Body: data, ContentLength: data.byteLength, ContentType: contentType }, data.byteLength);
      } catch (error) {
        throw unavailable('put', key, error);
      }
    },

    async putFile(key, file, contentType) {
      assertValidKey(key);
      // The SDK never retries a streamed body (the stream is spent), so each
      // attempt here opens the file afresh.
      for (let attempt = 1; ; attempt++) {
        try {
          const { size } = await stat(file);
          await upload({ Bucket: bucket, Key: key, Body: createReadStream(file), ContentLength: size, ContentType: contentType }, size);
          return;
        } catch (error) {
          if (attempt >= MAX_ATTEMPTS || !isTransient(error)) throw unavailable('putFile', key, error);
        }
      }
    },

    async get(key) {
      assertValidKey(key);
      try {
        const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        if (!output.Body) return new Uint8Array(0);
        return await output.Body.transformToByteArray();
      } catch (error) {
        if (isMissing(error)) return null;
        throw unavailable('get', key, error);
      }
    },

    async exists(key) {
      assertValidKey(key);
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (error) {
        if (isMissing(error)) return false;
        throw unavailable('exists', key, error);
      }
    },

    async delete(keys) {
      for (const key of keys) assertValidKey(key);
      for (let start = 0; start < keys.length; start += DELETE_BATCH) {
        const batch = keys.slice(start, start + DELETE_BATCH);
        let failures: string[];
        try {
          const output = await client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          );
          failures = (output.Errors ?? [])
            .filter((entry) => entry.Code !== 'NoSuchKey')
            .map((entry) => `${entry.Key ?? '?'}: ${entry.Code ?? 'error'}`);
        } catch (error) {
          throw unavailable('delete', batch[0] ?? '', error);
        }
        if (failures.length > 0) {
          throw new ImageError('UNAVAILABLE', 'Storage is unavailable', {
            detail: `s3 delete: ${failures.length} failed, first ${failures[0] ?? ''}`,
          });
        }
      }
    },

    async list(prefix, limit = 1000) {
      const keys: string[] = [];
      let token: string | undefined;
      try {
        do {
          const output = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1000, ContinuationToken: token }),
          );
          for (const entry of output.Contents ?? []) if (entry.Key !== undefined) keys.push(entry.Key);
          token = output.IsTruncated ? output.NextContinuationToken : undefined;
        } while (token !== undefined && keys.length < limit);
      } catch (error) {
        throw unavailable('list', prefix, error);
      }
      return keys.sort().slice(0, limit);
    },

    localPath() {
      return null;
    },

    publicUrl(key) {
      assertValidKey(key);
      return objectUrl(base, key);
    },
  };
}

interface SdkError {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** A missing object, as opposed to a missing bucket (a configuration fault). */
function isMissing(error: unknown): boolean {
  const { name, $metadata } = (error ?? {}) as SdkError;
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  return $metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket';
}

/** No response at all (network, timeout) or a 5xx: worth another attempt. */
function isTransient(error: unknown): boolean {
  const status = ((error ?? {}) as SdkError).$metadata?.httpStatusCode;
  return status === undefined || status >= 500;
}

function unavailable(op: string, key: string, error: unknown): ImageError {
  if (error instanceof ImageError) return error;
  const { name, code, $metadata } = (error ?? {}) as SdkError;
  const status = $metadata?.httpStatusCode;
  const reason = [typeof name === 'string' ? name : '', typeof code === 'string' ? code : '', status ?? '']
    .filter((part) => part !== '')
    .join(' ');
  const message = error instanceof Error ? error.message : String(error);
  return new ImageError('UNAVAILABLE', 'Storage is unavailable', {
    detail: `s3 ${op} ${key}: ${reason} ${message}`.trim(),
    cause: error,
  });
}
