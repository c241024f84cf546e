/**
 * The Node peer: what a Node developer would write instead of iaas, the way
 * the original service ran (node:http under pm2's cluster mode, sharp for the
 * pixels). Same URL parsing as iaas, same local cache semantics: a hit is the
 * file read from the cache folder; a miss renders with sharp (fit like iaas'
 * fits, JPEG progressive), answers, then writes the file to the cache folder.
 *
 * This file is the request handler; node-sharp-cluster.ts is the entry.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { ImageError, statusOf } from '../../src/errors.js';
import { parseImageRequest, type VariantRequest } from '../../src/options/parse.js';
import { JPEG_QUALITY } from '../lib/plan.js';

/** Where the peer keeps originals (a file named by the id alone: sharp reads any format by its content) and rendered variants. */
export interface PeerDirs {
  originals: string;
  cache: string;
}

/** iaas' fits in sharp's words: clip fits inside, crop fills and crops, canvas pads, cover fills without cropping. */
const FITS = { clip: 'inside', crop: 'cover', canvas: 'contain', cover: 'outside' } as const;
/** iaas' default BLUR_SIGMA. */
const BLUR_SIGMA = 4;
const YEAR_SECONDS = 365 * 24 * 3600;

/** The cache file of a variant, named as iaas names it: `{id}/{w}x{h}-{fit}-q{quality}-b{blur}.jpg`. */
export function cacheFile(dirs: PeerDirs, request: VariantRequest): string {
  const blur = request.blur ? BLUR_SIGMA : 0;
  const name = `${request.width * request.scale}x${request.height * request.scale}-${request.fit}-q${request.quality}-b${blur}.jpg`;
  return path.join(dirs.cache, request.id, name);
}

/** Renders a variant of `original` as iaas would (JPEG only: the peer does no format switching). */
export async function renderVariant(original: Buffer, request: VariantRequest): Promise<Buffer> {
  let image = sharp(original)
    .rotate() // EXIF orientation, as iaas' autorot
    .resize(request.width * request.scale, request.height * request.scale, { fit: FITS[request.fit], background: '#ffffff', kernel: 'lanczos3' });
  if (request.blur) image = image.blur(BLUR_SIGMA);
  const quality = request.quality === 'auto' ? JPEG_QUALITY : Math.max(1, request.quality);
  return image.jpeg({ quality, progressive: true }).toBuffer();
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string): void {
  res.writeHead(status, headers);
  res.end(body);
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** Writes the file where a concurrent reader never sees half of it. */
async function storeFile(file: string, data: Buffer): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temp, data);
  await rename(temp, file);
}

/** The request handler of one worker. */
export function createPeerHandler(dirs: PeerDirs): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      try {
        const url = req.url ?? '/';
        const mark = url.indexOf('?');
        const request = parseImageRequest(mark === -1 ? url : url.slice(0, mark), mark === -1 ? '' : url.slice(mark + 1));
        if (request.kind !== 'variant') throw new ImageError('NOT_FOUND', 'The peer serves variants only');
        if (request.format !== 'jpeg') throw new ImageError('BAD_OPTION', 'The peer renders JPEG only');
        const file = cacheFile(dirs, request);
        const headers = { 'Content-Type': 'image/jpeg', 'Cache-Control': `public, max-age=${YEAR_SECONDS}` };
        try {
          const cached = await readFile(file);
          return send(res, 200, { ...headers, 'X-Cache': 'HIT' }, cached);
        } catch (error) {
          if (!isMissing(error)) throw error;
        }
        let original: Buffer;
        try {
          original = await readFile(path.join(dirs.originals, request.id));
        } catch (error) {
          if (isMissing(error)) throw new ImageError('NOT_FOUND', 'No such image');
          throw error;
        }
        const data = await renderVariant(original, request);
        send(res, 200, { ...headers, 'X-Cache': 'MISS' }, data);
        // Stored after the answer, as iaas does; a failure only costs a render next time.
        storeFile(file, data).catch((error: unknown) => console.error('peer: caching failed', error));
      } catch (error) {
        const status = error instanceof ImageError ? statusOf(error.code) : 500;
        if (status === 500) console.error('peer:', error);
        send(res, status, { 'Content-Type': 'text/plain' }, error instanceof ImageError ? error.message : 'Internal error');
      }
    })();
  };
}
