/**
 * `npm run bench:copy-formats`: the candidates for working copies of images
 * with transparency, by size, encode time and what a miss then costs (decode
 * and shrink to 480 px, JPEG q80 out): PNG at zlib 1 and 6, lossless WebP at
 * effort 0 and 4. (libvips' own format is not a candidate: it loads from a
 * file only, never from memory, and copies are read as bytes from storage,
 * S3 included.) sharp on the same libvips, one thread; medians of 7. Saves bench/results/copy-formats-<date>-<sha>.json.
 *
 *   npm run bench:copy-formats [-- --input PHOTO] [-- --no-save]
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { runIfMain, saveReport } from './lib/results.js';
import { benchInput } from './lib/photo.js';
import { median, round } from './lib/stats.js';

export interface CopyFormat {
  name: string;
  bytes: number;
  encodeMs: number;
  missMs: number;
}

export interface CopyFormatsReport {
  kind: 'copy-formats';
  machine: MachineInfo;
  input: string;
  width: number;
  height: number;
  formats: CopyFormat[];
}

const RUNS = 7;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return round(median(times), 1);
}

export async function runCopyFormats(input: { bytes: Uint8Array; name: string }): Promise<CopyFormatsReport> {
  sharp.concurrency(1);
  sharp.cache(false);
  // The photo at a level-1 size, with an alpha channel: opaque on the left half, half-transparent on the right.
  const { data, info } = await sharp(input.bytes).resize(2048, 2048, { fit: 'inside' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  for (let i = 0; i < data.length; i += 4) data[i + 3] = (i / 4) % info.width < info.width / 2 ? 255 : 128;
  const image = () => sharp(data, { raw: { width: info.width, height: info.height, channels: 4 } });
  const encoders: Record<string, () => Promise<Buffer>> = {
    'png zlib 1': () => image().png({ compressionLevel: 1, adaptiveFiltering: false }).toBuffer(),
    'png zlib 6': () => image().png({ compressionLevel: 6 }).toBuffer(),
    'webp lossless effort 0': () => image().webp({ lossless: true, effort: 0 }).toBuffer(),
    'webp lossless effort 4': () => image().webp({ lossless: true, effort: 4 }).toBuffer(),
  };
  const formats: CopyFormat[] = [];
  for (const [name, encode] of Object.entries(encoders)) {
    const encodeMs = await timed(encode);
    const made = await encode();
    const bytes = made.byteLength;
    const missMs = await timed(() => sharp(made).resize(480, 480, { fit: 'inside' }).jpeg({ quality: 80 }).toBuffer());
    formats.push({ name, bytes, encodeMs, missMs });
  }
  return { kind: 'copy-formats', machine: machineInfo(), input: input.name, width: info.width, height: info.height, formats };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { input: { type: 'string' }, 'no-save': { type: 'boolean', default: false } } });
  const input = benchInput(values.input);
  const report = await runCopyFormats(input);
  console.log(`working-copy candidates with alpha, ${report.width}x${report.height} from ${report.input}:`);
  for (const f of report.formats) console.log(`  ${f.name.padEnd(26)} ${(f.bytes / 1e6).toFixed(2).padStart(6)} MB  encode ${String(f.encodeMs).padStart(7)} ms  miss (480 px) ${f.missMs} ms`);
  if (!values['no-save']) saveReport('copy-formats', report);
}

runIfMain(import.meta.url, main);
