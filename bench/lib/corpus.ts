/**
 * The realistic originals: what phones and the web upload, generated
 * deterministically from the bench photo (so a real photo given by --input
 * gives a real corpus), or read from a folder given by --corpus DIR.
 *
 * - a 12 MP progressive JPEG (libjpeg cannot shrink those cheaply on load)
 * - a 12 MP baseline JPEG (the cheap case: shrink-on-load works)
 * - a 12 MP PNG (no shrink-on-load at all)
 * - a 5 MP AVIF (slow to decode, no shrink-on-load)
 *
 * sharp makes them (the same libvips as the service): the corpus is the
 * input, so who made it does not favour either side.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { probe } from '../../src/index.js';

/** One original of the corpus. */
export interface CorpusEntry {
  /** The id it is uploaded (or copied) under, also its kind: `progressive`, `baseline`, `png`, `avif`, or a file's name. */
  id: string;
  describe: string;
  bytes: Uint8Array;
  /** A file holding the bytes (for upload bodies). */
  file: string;
  width: number;
  height: number;
}

const TWELVE_MP = { width: 4000, height: 3000 };
const FIVE_MP = { width: 2592, height: 1944 };

/** Generates the four originals from `photo` into `dir`. */
export async function generateCorpus(photo: Uint8Array, dir: string): Promise<CorpusEntry[]> {
  const base = () => sharp(photo).rotate();
  const at12 = () => base().resize(TWELVE_MP.width, TWELVE_MP.height, { fit: 'cover' });
  const made: [string, string, Promise<Buffer>][] = [
    ['progressive', '12 MP progressive JPEG q90', at12().jpeg({ quality: 90, progressive: true }).toBuffer()],
    ['baseline', '12 MP baseline JPEG q90', at12().jpeg({ quality: 90, progressive: false }).toBuffer()],
    ['png', '12 MP PNG (zlib 6)', at12().png({ compressionLevel: 6 }).toBuffer()],
    ['avif', '5 MP AVIF q60', base().resize(FIVE_MP.width, FIVE_MP.height, { fit: 'cover' }).avif({ quality: 60, effort: 2 }).toBuffer()],
  ];
  const out: CorpusEntry[] = [];
  for (const [id, describe, bytes] of made) out.push(entry(dir, id, describe, new Uint8Array(await bytes)));
  return out;
}

/** The images in `dir` (JPEG, PNG, WebP, AVIF, TIFF, GIF by content), each under its file name without extension. */
export function readCorpus(dir: string, into: string): CorpusEntry[] {
  const out: CorpusEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    const bytes = new Uint8Array(readFileSync(path.join(dir, name)));
    try {
      probe(bytes);
    } catch {
      continue;
    }
    const id = name.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9-]/g, '-');
    out.push(entry(into, id, name, bytes));
  }
  if (out.length === 0) throw new Error(`--corpus ${dir}: no image the service reads`);
  return out;
}

function entry(dir: string, id: string, describe: string, bytes: Uint8Array): CorpusEntry {
  const header = probe(bytes);
  const upright = header.orientation >= 5;
  const file = path.join(dir, `corpus-${id}`);
  writeFileSync(file, bytes);
  const kind = header.format === 'jpeg' ? (header.interlaced ? 'progressive JPEG' : 'baseline JPEG') : header.format.toUpperCase();
  return {
    id,
    describe: `${describe} (${kind}, ${(bytes.byteLength / 1e6).toFixed(2)} MB)`,
    bytes,
    file,
    width: upright ? header.height : header.width,
    height: upright ? header.width : header.height,
  };
}
