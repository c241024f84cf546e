/**
 * Writes small seed images for the libFuzzer corpus (scripts/fuzz.sh): every
 * accepted format, with alpha, orientation, CMYK, animation and truncations.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeRaw } from '../src/index.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: fuzz-seeds <corpus dir>');
mkdirSync(dir, { recursive: true });

function pixels(width: number, height: number, channels: number): Uint8Array {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5)) & 255;
  return data;
}

const seeds: [string, Uint8Array][] = [];
for (const format of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const) {
  seeds.push([`rgb.${format}`, encodeRaw(pixels(24, 16, 3), { width: 24, height: 16, channels: 3, format })]);
}
seeds.push(['alpha.png', encodeRaw(pixels(16, 16, 4), { width: 16, height: 16, channels: 4, format: 'png' })]);
seeds.push(['alpha.webp', encodeRaw(pixels(16, 16, 4), { width: 16, height: 16, channels: 4, format: 'webp' })]);
seeds.push(['grey.png', encodeRaw(pixels(16, 16, 1), { width: 16, height: 16, channels: 1, format: 'png' })]);
seeds.push(['oriented.jpg', encodeRaw(pixels(16, 24, 3), { width: 16, height: 24, channels: 3, format: 'jpeg', orientation: 6 })]);
seeds.push(['cmyk.jpg', encodeRaw(pixels(16, 16, 4), { width: 16, height: 16, channels: 4, format: 'jpeg', cmyk: true })]);
seeds.push(['animated.gif', encodeRaw(pixels(8, 24, 3), { width: 8, height: 24, channels: 3, format: 'gif', pageHeight: 8 })]);
for (const [name, bytes] of [...seeds]) seeds.push([`truncated-${name}`, bytes.slice(0, Math.max(8, bytes.length >> 1))]);
for (const [name, bytes] of seeds) writeFileSync(path.join(dir, name), bytes);
console.log(`wrote ${seeds.length} seeds to ${dir}`);
