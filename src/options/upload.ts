/**
 * The query of an upload (`POST /{id}.{ext}?x=&y=&width=&height=`), parsed
 * before any byte of the body is read. Pure: no I/O; throws only BAD_OPTION.
 */
import { badOption } from '../errors.js';

/** A crop of the original, in displayed (orientation-applied) pixels. */
export interface UploadCrop {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** What an upload's query asks for. */
export interface UploadQuery {
  readonly crop?: UploadCrop;
}

const CROP_KEYS = ['x', 'y', 'width', 'height'] as const;
/** The largest crop coordinate accepted: far beyond any image the pixel limits let in. */
const MAX_CROP_VALUE = 999_999;

/** Parses the upload query; a crop needs all four of x, y, width and height, each given once. */
export function parseUploadQuery(query: string): UploadQuery {
  const params = new URLSearchParams(query);
  const values = new Map<string, string>();
  for (const key of CROP_KEYS) {
    const all = params.getAll(key);
    if (all.length > 1) throw badOption('one value', key, all);
    if (all.length === 1) values.set(key, all[0] as string);
  }
  if (values.size === 0) return {};
  if (values.size !== CROP_KEYS.length) {
    const missing = CROP_KEYS.filter((key) => !values.has(key));
    throw badOption('all of x, y, width and height for a crop', missing.join(', '), 'nothing');
  }
  const read = (key: (typeof CROP_KEYS)[number], min: number): number => {
    const raw = values.get(key) ?? '';
    if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > MAX_CROP_VALUE) {
      throw badOption(`an integer between ${min} and ${MAX_CROP_VALUE}`, key, raw.slice(0, 20));
    }
    return Number(raw);
  };
  return Object.freeze({ crop: Object.freeze({ x: read('x', 0), y: read('y', 0), width: read('width', 1), height: read('height', 1) }) });
}
