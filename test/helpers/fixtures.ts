/**
 * Test fixtures, generated (mostly by the addon itself) and referenced by
 * name, so a fresh clone anywhere has everything the suite needs.
 */
import { randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import { encodeRaw } from '../../src/index.js';

/** A deterministic pseudo-random sequence (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Photo-like pixels: smooth gradients, soft shapes and fine noise, like a real photo compresses. */
export function photoPixels(width: number, height: number, seed = 1): Uint8Array {
  const next = random(seed);
  const pixels = new Uint8Array(width * height * 3);
  const blobs = Array.from({ length: 12 }, () => ({
    x: next() * width,
    y: next() * height,
    r: (0.05 + next() * 0.25) * Math.max(width, height),
    c: [next() * 255, next() * 255, next() * 255],
  }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = (x / width) * 180 + 30;
      let g = (y / height) * 160 + 40;
      let b = ((x + y) / (width + height)) * 200 + 20;
      for (const blob of blobs) {
        const d = Math.hypot(x - blob.x, y - blob.y) / blob.r;
        if (d < 1) {
          const w = (1 - d) * 0.6;
          r = r * (1 - w) + (blob.c[0] ?? 0) * w;
          g = g * (1 - w) + (blob.c[1] ?? 0) * w;
          b = b * (1 - w) + (blob.c[2] ?? 0) * w;
        }
      }
      const noise = (next() - 0.5) * 24;
      const i = (y * width + x) * 3;
      pixels[i] = clamp(r + noise);
      pixels[i + 1] = clamp(g + noise);
      pixels[i + 2] = clamp(b + noise);
    }
  }
  return pixels;
}

function clamp(value: number): number {
  return Math.max(0, Math.min(255, Math.round(value)));
}

/** A photo-like JPEG of the given size and quality. */
export function photoJpeg(width: number, height: number, quality = 90, seed = 1): Uint8Array {
  return encodeRaw(photoPixels(width, height, seed), { width, height, channels: 3, format: 'jpeg', quality });
}

/** A solid image in one colour. */
export function solid(width: number, height: number, colour: number[], format: 'png' | 'jpeg' | 'webp' = 'png'): Uint8Array {
  const channels = colour.length;
  const pixels = new Uint8Array(width * height * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = colour[i % channels] ?? 0;
  return encodeRaw(pixels, { width, height, channels, format, quality: 95 });
}

/**
 * The stored pixel for a displayed pixel under EXIF orientation `o`:
 * display(x, y) = stored(map(x, y)). Written from the EXIF definitions, not
 * from libvips, so the test checks libvips rather than itself.
 */
export function storedCoordinate(o: number, x: number, y: number, storedW: number, storedH: number): [number, number] {
  switch (o) {
    case 2: return [storedW - 1 - x, y];
    case 3: return [storedW - 1 - x, storedH - 1 - y];
    case 4: return [x, storedH - 1 - y];
    case 5: return [y, x];
    case 6: return [y, storedH - 1 - x];
    case 7: return [storedW - 1 - y, storedH - 1 - x];
    case 8: return [storedW - 1 - y, x];
    default: return [x, y];
  }
}

export const DISPLAY = { width: 96, height: 64 } as const;
export const RED = [230, 20, 20] as const;
export const BLUE = [20, 20, 230] as const;

/**
 * A JPEG with EXIF orientation `o` that displays as a 96x64 grey image with a
 * red block at the top left and a blue block at the top right.
 */
export function orientedJpeg(o: number): Uint8Array {
  const { width, height } = DISPLAY;
  const storedW = o >= 5 ? height : width;
  const storedH = o >= 5 ? width : height;
  const stored = new Uint8Array(storedW * storedH * 3).fill(128);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = y < 24 && x < 32 ? RED : y < 24 && x >= width - 32 ? BLUE : undefined;
      if (!colour) continue;
      const [sx, sy] = storedCoordinate(o, x, y, storedW, storedH);
      stored.set(colour, (sy * storedW + sx) * 3);
    }
  }
  return encodeRaw(stored, { width: storedW, height: storedH, channels: 3, format: 'jpeg', quality: 95, orientation: o });
}

/** A 40x40 PNG: the left half opaque red, the right half fully transparent (black beneath). */
export function alphaPng(): Uint8Array {
  const pixels = new Uint8Array(40 * 40 * 4);
  for (let y = 0; y < 40; y++) {
    for (let x = 0; x < 40; x++) {
      pixels.set(x < 20 ? [220, 0, 0, 255] : [0, 0, 0, 0], (y * 40 + x) * 4);
    }
  }
  return encodeRaw(pixels, { width: 40, height: 40, channels: 4, format: 'png' });
}

/** A CMYK JPEG of pure cyan (C=100%, M=Y=K=0). */
export function cmykJpeg(): Uint8Array {
  const pixels = new Uint8Array(32 * 32 * 4);
  for (let i = 0; i < pixels.length; i += 4) pixels[i] = 255;
  return encodeRaw(pixels, { width: 32, height: 32, channels: 4, format: 'jpeg', quality: 95, cmyk: true });
}

/** An animated GIF whose frames are solid red, green, blue, ... (20x20 each), with optional frame delays (ms) and loop count. */
export function animatedGif(frames = 3, size = 20, timing: { delays?: number[]; loop?: number } = {}): Uint8Array {
  const colours = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
  const pixels = new Uint8Array(size * size * frames * 3);
  for (let f = 0; f < frames; f++) {
    const colour = colours[f % colours.length] ?? [0, 0, 0];
    for (let p = 0; p < size * size; p++) pixels.set(colour, (f * size * size + p) * 3);
  }
  return encodeRaw(pixels, { width: size, height: size * frames, channels: 3, format: 'gif', pageHeight: size, ...timing });
}

/** A flat grey image (PNG) with a bright square of `side` pixels whose top left corner is at `x`, `y`: a subject off-centre. */
export function subjectPng(width: number, height: number, x: number, y: number, side: number): Uint8Array {
  const pixels = new Uint8Array(width * height * 3).fill(90);
  for (let row = y; row < Math.min(height, y + side); row++) {
    for (let column = x; column < Math.min(width, x + side); column++) pixels.set([250, 240, 40], (row * width + column) * 3);
  }
  return encodeRaw(pixels, { width, height, channels: 3, format: 'png' });
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid PNG of a few hundred bytes whose header declares width x height. */
export function pngDeclaring(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(Buffer.alloc(256))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A little-endian TIFF header declaring a greyscale width x height image with almost no data. */
export function tiffDeclaring(width: number, height: number): Uint8Array {
  const entries: [number, number, number, number][] = [
    [256, 4, 1, width], // ImageWidth, LONG
    [257, 4, 1, height], // ImageLength
    [258, 3, 1, 8], // BitsPerSample
    [259, 3, 1, 1], // Compression: none
    [262, 3, 1, 1], // Photometric: black is zero
    [273, 4, 1, 8 + 2 + 12 * 9 + 4], // StripOffsets
    [277, 3, 1, 1], // SamplesPerPixel
    [278, 4, 1, height], // RowsPerStrip
    [279, 4, 1, 16], // StripByteCounts
  ];
  const buffer = Buffer.alloc(8 + 2 + 12 * entries.length + 4 + 16);
  buffer.write('II', 0, 'latin1');
  buffer.writeUInt16LE(42, 2);
  buffer.writeUInt32LE(8, 4);
  buffer.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, count, value], i) => {
    const at = 10 + i * 12;
    buffer.writeUInt16LE(tag, at);
    buffer.writeUInt16LE(type, at + 2);
    buffer.writeUInt32LE(count, at + 4);
    if (type === 3) buffer.writeUInt16LE(value, at + 8);
    else buffer.writeUInt32LE(value, at + 8);
  });
  return buffer;
}

/** Hostile or unsupported payloads, each named `.jpg` by an attacker. */
export const hostile = {
  svg: Buffer.from(
    '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100">' +
      '<script>alert(1)</script><image xlink:href="file:///etc/passwd" width="100" height="100"/></svg>',
  ),
  mvg: Buffer.from('push graphic-context\nviewbox 0 0 640 480\nfill \'url(https://example.com/image.jpg"|ls "-la)\'\npop graphic-context\n'),
  msl: Buffer.from('<?xml version="1.0" encoding="UTF-8"?><image><read filename="/etc/passwd"/><write filename="/tmp/x"/></image>'),
  pdf: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
  psd: Buffer.concat([Buffer.from('8BPS'), Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 10, 0, 0, 0, 10, 0, 8, 0, 3]), Buffer.alloc(64)]),
  heic: Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic'), Buffer.from([0, 0, 0, 0]), Buffer.from('mif1heic'), Buffer.alloc(64)]),
  empty: new Uint8Array(0),
  text: Buffer.from('hello, this is not an image'),
} as const;

/** The JPEG cut in half. */
export function truncated(bytes: Uint8Array): Uint8Array {
  return bytes.slice(0, Math.floor(bytes.length / 2));
}

/** A JPEG whose start-of-image is followed by garbage instead of valid segments. */
export function corruptHeaderJpeg(): Uint8Array {
  const next = random(7);
  const bytes = new Uint8Array(600);
  bytes.set([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]);
  for (let i = 6; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
  return bytes;
}

/** Finds a JPEG marker (e.g. 0xc2 for progressive) before the first scan. */
export function hasJpegMarker(bytes: Uint8Array, marker: number): boolean {
  let i = 2;
  while (i + 4 <= bytes.length && bytes[i] === 0xff) {
    const m = bytes[i + 1] ?? 0;
    if (m === marker) return true;
    if (m === 0xda) return false;
    i += 2 + (((bytes[i + 2] ?? 0) << 8) | (bytes[i + 3] ?? 0));
  }
  return false;
}

/**
 * A little-endian TIFF of `pages` greyscale pages of 1x1, written by hand
 * (every IFD points at the same byte): a few hundred KB that declare as many
 * pages as an attacker likes.
 */
export function manyPageTiff(pages: number): Uint8Array {
  const ENTRIES = 8;
  const ifdSize = 2 + 12 * ENTRIES + 4;
  const pixelAt = 8;
  const buffer = Buffer.alloc(8 + 2 + pages * ifdSize);
  buffer.write('II', 0, 'latin1');
  buffer.writeUInt16LE(42, 2);
  buffer.writeUInt32LE(10, 4);
  buffer[pixelAt] = 128;
  for (let page = 0; page < pages; page++) {
    const at = 10 + page * ifdSize;
    const entries: [number, number, number][] = [
      [256, 4, 1], // ImageWidth
      [257, 4, 1], // ImageLength
      [258, 3, 8], // BitsPerSample
      [259, 3, 1], // Compression: none
      [262, 3, 1], // Photometric: black is zero
      [273, 4, pixelAt], // StripOffsets
      [278, 4, 1], // RowsPerStrip
      [279, 4, 1], // StripByteCounts
    ];
    buffer.writeUInt16LE(ENTRIES, at);
    entries.forEach(([tag, type, value], i) => {
      const entry = at + 2 + i * 12;
      buffer.writeUInt16LE(tag, entry);
      buffer.writeUInt16LE(type, entry + 2);
      buffer.writeUInt32LE(1, entry + 4);
      if (type === 3) buffer.writeUInt16LE(value, entry + 8);
      else buffer.writeUInt32LE(value, entry + 8);
    });
    buffer.writeUInt32LE(page === pages - 1 ? 0 : at + ifdSize, at + 2 + 12 * ENTRIES);
  }
  return buffer;
}

/** A JPEG carrying EXIF (a GPS-like private text in the EXIF segment) and a COM comment, built around a real JPEG. */
export function jpegWithPrivateMetadata(): { bytes: Uint8Array; secret: string } {
  const secret = 'GPS 52.3702N 4.8952E serial 0xC0FFEE';
  const plain = Buffer.from(photoJpeg(64, 48, 90, 31));
  const segment = (marker: number, payload: Buffer) => {
    const head = Buffer.from([0xff, marker, 0, 0]);
    head.writeUInt16BE(payload.length + 2, 2);
    return Buffer.concat([head, payload]);
  };
  const exif = segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), Buffer.from(secret, 'latin1')]));
  const comment = segment(0xfe, Buffer.from(secret, 'latin1'));
  // After SOI: the private segments first, then the JPEG's own.
  return { bytes: Buffer.concat([plain.subarray(0, 2), exif, comment, plain.subarray(2)]), secret };
}

/** A PNG with a tEXt chunk holding a private text, built around a real PNG. */
export function pngWithPrivateText(): { bytes: Uint8Array; secret: string } {
  const secret = 'Author Jane Doe, home address';
  const plain = Buffer.from(solid(16, 16, [10, 200, 30], 'png'));
  const ihdrEnd = 8 + 12 + 13;
  const text = pngChunk('tEXt', Buffer.from(`Comment\0${secret}`, 'latin1'));
  return { bytes: Buffer.concat([plain.subarray(0, ihdrEnd), text, plain.subarray(ihdrEnd)]), secret };
}

/** A random suffix for ids, buckets and databases (letters, digits, `-`): every test uses its own. */
export function unique(prefix = 'r'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}
