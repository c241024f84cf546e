/**
 * A throwaway S3-compatible server (s3rver) for tests: its own temp folder,
 * a random port on 127.0.0.1 and one bucket, removed on stop.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The part of s3rver's API used here (it ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  configureBuckets: { name: string; configs?: Buffer[] }[];
}) => S3rverInstance;

// s3rver is CommonJS without types, so it is loaded through require with a typed cast.
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverConstructor;

/** The credentials s3rver accepts. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' } as const;

/** A running s3rver. */
export interface RunningS3rver {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  bucket: string;
  port: number;
  /** Closes the server and removes its folder. */
  stop(): Promise<void>;
}

/** Starts s3rver on a random port with `bucket` (default 'iaas-test') created. */
export async function startS3rver(options: { bucket?: string } = {}): Promise<RunningS3rver> {
  const bucket = options.bucket ?? 'iaas-test';
  const directory = await mkdtemp(join(tmpdir(), 'iaas-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  let address: AddressInfo;
  try {
    address = await server.run();
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    port: address.port,
    async stop() {
      try {
        await server.close();
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}
