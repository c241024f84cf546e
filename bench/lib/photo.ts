/**
 * The benchmark input: a 2725x2225 photo-like JPEG saved at q90, synthesized
 * deterministically (the size of sharp's published benchmark photo), unless
 * `--input FILE` names a real photo.
 */
import { readFileSync } from 'node:fs';
import { encodeRaw } from '../../src/index.js';
// The same deterministic generator the test fixtures use.
import { random } from '../../test/helpers/fixtures.js';

/** Photo-like pixels: gradients, soft blobs and per-pixel noise. */
export function synthesizePhoto(width = 2725, height = 2225, quality = 90, seed = 42): Uint8Array {
  const next = random(seed);
  const pixels = new Uint8Array(width * height * 3);
  const blobs = Array.from({ length: 24 }, () => ({
    x: next() * width,
    y: next() * height,
    r: (0.03 + next() * 0.2) * width,
    c: [next() * 255, next() * 255, next() * 255] as const,
  }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 40 + (x / width) * 150;
      let g = 50 + (y / height) * 140;
      let b = 30 + ((x + y) / (width + height)) * 180;
      for (const blob of blobs) {
        const dx = x - blob.x;
        const dy = y - blob.y;
        const d2 = (dx * dx + dy * dy) / (blob.r * blob.r);
        if (d2 < 1) {
          const w = (1 - Math.sqrt(d2)) * 0.7;
          r += (blob.c[0] - r) * w;
          g += (blob.c[1] - g) * w;
          b += (blob.c[2] - b) * w;
        }
      }
      const n = (next() - 0.5) * 28;
      const i = (y * width + x) * 3;
      pixels[i] = Math.max(0, Math.min(255, r + n));
      pixels[i + 1] = Math.max(0, Math.min(255, g + n));
      pixels[i + 2] = Math.max(0, Math.min(255, b + n));
    }
  }
  return encodeRaw(pixels, { width, height, channels: 3, format: 'jpeg', quality });
}

/** The real photo named by `--input FILE`, or the synthesized one. */
export function benchInput(file: string | undefined): { bytes: Uint8Array; name: string } {
  if (file) return { bytes: new Uint8Array(readFileSync(file)), name: file };
  return { bytes: synthesizePhoto(), name: 'synthesized 2725x2225 photo-like JPEG q90' };
}
