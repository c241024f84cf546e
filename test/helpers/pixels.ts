/** Pixel reading helpers for assertions on rendered images. */
import { decodeRaw } from '../../src/index.js';

export interface Decoded {
  width: number;
  height: number;
  channels: number;
  at(x: number, y: number): number[];
}

/** Decodes an image (as stored, 8-bit sRGB) for pixel assertions. */
export function decode(bytes: Uint8Array | ArrayBuffer): Decoded {
  const raw = decodeRaw(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  return {
    width: raw.width,
    height: raw.height,
    channels: raw.channels,
    at(x, y) {
      const i = (y * raw.width + x) * raw.channels;
      return Array.from(raw.pixels.subarray(i, i + raw.channels));
    },
  };
}

/** True when every channel is within `tolerance` of the expected colour. */
export function near(actual: number[], expected: readonly number[], tolerance = 30): boolean {
  return expected.every((value, i) => Math.abs((actual[i] ?? -999) - value) <= tolerance);
}

/** Calls `visit` with each pair of channel values of two same-size images, over at most `channels` channels. */
function eachChannelPair(a: Decoded, b: Decoded, channels: number, visit: (pa: number, pb: number) => void): number {
  let count = 0;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      const pa = a.at(x, y);
      const pb = b.at(x, y);
      for (let c = 0; c < Math.min(channels, pa.length, pb.length); c++) {
        visit(pa[c] ?? 0, pb[c] ?? 0);
        count++;
      }
    }
  }
  return count;
}

/** Mean absolute difference between two same-size decoded images. */
export function meanDifference(a: Decoded, b: Decoded): number {
  let sum = 0;
  const count = eachChannelPair(a, b, Number.POSITIVE_INFINITY, (pa, pb) => (sum += Math.abs(pa - pb)));
  return count ? sum / count : 0;
}

/** Peak signal-to-noise ratio of two same-size decoded images over their colour channels, in dB (Infinity when equal). */
export function psnr(a: Decoded, b: Decoded): number {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`psnr of ${a.width}x${a.height} and ${b.width}x${b.height}`);
  let sum = 0;
  const count = eachChannelPair(a, b, 3, (pa, pb) => (sum += (pa - pb) * (pa - pb)));
  const mse = sum / count;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

/** Pixels of the bright yellow subject (see subjectPng in fixtures.ts) in a rendered image. */
export function subjectPixels(bytes: Uint8Array | ArrayBuffer): number {
  const image = decode(bytes);
  let count = 0;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const [r = 0, g = 0, b = 0] = image.at(x, y);
      if (r > 200 && g > 190 && b < 120) count++;
    }
  }
  return count;
}
