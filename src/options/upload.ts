/**
 * The query of an upload (`POST /{id}.{ext}?x=&y=&width=&height=&focus=x,y`),
 * parsed before any byte of the body is read. Pure: no I/O; throws only BAD_OPTION.
 */
import { badOption } from '../errors.js';

/** A crop of the original, in displayed (orientation-applied) pixels. */
export interface UploadCrop {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** A focal point in displayed pixels of the uploaded image (after its crop). */
export interface UploadFocus {
  readonly x: number;
  readonly y: number;
}

/** What an upload's query asks for. */
export interface UploadQuery {
  readonly crop?: UploadCrop;
  readonly focus?: UploadFocus;
}

const CROP_KEYS = ['x', 'y', 'width', 'height'] as const;
/** The largest crop coordinate accepted: far beyond any image the pixel limits let in. */
const MAX_CROP_VALUE = 999_999;

/** `x,y`: two integers; whether they lie inside the image is known only once it is decoded. */
function parseFocus(params: URLSearchParams): UploadFocus | undefined {
  const all = params.getAll('focus');
  if (all.length > 1) throw badOption('one value', 'focus', all);
  const raw = all[0];
  if (raw === undefined) return undefined;
  const match = /^(\d{1,6}),(\d{1,6})$/.exec(raw);
  if (!match) throw badOption('x,y in pixels', 'focus', raw.slice(0, 20));
  return Object.freeze({ x: Number(match[1]), y: Number(match[2]) });
}

/** Parses the upload query; a crop needs all four of x, y, width and height, each given once. */
export function parseUploadQuery(query: string): UploadQuery {
  const params = new URLSearchParams(query);
  const focus = parseFocus(params);
  const withFocus = <T extends object>(parsed: T): T & UploadQuery => Object.freeze({ ...parsed, ...(focus ? { focus } : {}) });
  const values = new Map<string, string>();
  for (const key of CROP_KEYS) {
    const all = params.getAll(key);
    if (all.length > 1) throw badOption('one value', key, all);
    if (all.length === 1) values.set(key, all[0] as string);
  }
  if (values.size === 0) return withFocus({});
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
  return withFocus({ crop: Object.freeze({ x: read('x', 0), y: read('y', 0), width: read('width', 1), height: read('height', 1) }) });
}
