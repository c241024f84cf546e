/**
 * The URL grammar of image requests, shared by the server's parser and the
 * client helper. No imports: this file also runs in browsers.
 *
 *   /{id}_{w}_{h}.{ext}          a variant fitted into w x h
 *   /{id}_{w}_{h}_{n}x.{ext}     the same at (w*n) x (h*n)
 *   /{id}.{ext}                  the original (converted if ext names another format)
 *   /{id}.json                   what is known of the original (size, focus, placeholders)
 */

/** The longest id. */
export const MAX_ID_LENGTH = 128;
/** Ids: 1..MAX_ID_LENGTH letters, digits, `-` and `_`. Nothing else can reach a folder. */
export const ID_PATTERN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_ID_LENGTH}}$`);
/** What an id must be, as error messages say it. */
export const ID_EXPECTED = `an id of 1-${MAX_ID_LENGTH} letters, digits, - or _`;

/**
 * Returns `id` when it is an id; else `refuse` throws the caller's own error
 * (the server's 400, the client helper's TypeError) for what was expected.
 */
export function checkId(id: string, refuse: (expected: string, id: string) => never): string {
  if (!ID_PATTERN.test(id)) refuse(ID_EXPECTED, id);
  return id;
}

/** The largest number the URL grammar accepts for a side, before the configured bounds apply. */
export const MAX_URL_SIDE = 100_000;
/** The largest retina factor `_{n}x`. */
export const MAX_SCALE = 4;

/** The formats a URL can ask for (and the renderer writes). */
export const URL_FORMATS = ['jpeg', 'png', 'webp', 'avif', 'gif'] as const;
export type UrlFormat = (typeof URL_FORMATS)[number];

/** File extensions and the format each names. */
export const EXTENSIONS: Readonly<Record<string, UrlFormat>> = {
  jpg: 'jpeg',
  jpeg: 'jpeg',
  jfif: 'jpeg',
  jpe: 'jpeg',
  png: 'png',
  webp: 'webp',
  avif: 'avif',
  gif: 'gif',
};

/** Formats accepted as input, recognised by their bytes (the stored format of an original). */
export const INPUT_FORMATS = ['jpeg', 'png', 'gif', 'webp', 'avif', 'tiff'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

/** The canonical extension written for each format. */
export const FORMAT_EXTENSION: Readonly<Record<UrlFormat, string>> = { jpeg: 'jpg', png: 'png', webp: 'webp', avif: 'avif', gif: 'gif' };

/** The media type of each URL format (what `Accept` names and `Content-Type` says). */
export const MEDIA_TYPES: Readonly<Record<UrlFormat, string>> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif', gif: 'image/gif' };

/** Formats that `formats.auto` may list: served instead of a JPEG or PNG URL to clients whose Accept names them. */
export const AUTO_FORMATS = ['avif', 'webp'] as const;
export type AutoFormat = (typeof AUTO_FORMATS)[number];

/** URL formats that negotiation may replace. */
export const NEGOTIABLE_FORMATS: readonly UrlFormat[] = ['jpeg', 'png'];

/** Output formats that keep an alpha channel: a PNG URL is only ever negotiated into one of these. */
export const ALPHA_FORMATS: readonly UrlFormat[] = ['png', 'webp', 'avif', 'gif'];

/** Output formats that keep the frames of an animated source (up to animation.max_frames). */
export const ANIMATED_FORMATS: readonly UrlFormat[] = ['webp', 'gif'];

export const URL_FITS = ['clip', 'crop', 'canvas', 'cover'] as const;
export type UrlFit = (typeof URL_FITS)[number];

/**
 * Where a `crop` box sits: a compass point, libvips' smart crop (`attention`,
 * `entropy`), or the original's focal point (`focus`). `centre` is the default,
 * unless the original has a focal point: then `focus` is.
 */
export const URL_GRAVITIES = ['centre', 'north', 'south', 'east', 'west', 'northeast', 'northwest', 'southeast', 'southwest', 'attention', 'entropy', 'focus'] as const;
export type UrlGravity = (typeof URL_GRAVITIES)[number];

/** The largest `?frames=` a URL may ask for (animation.max_frames caps it further). */
export const MAX_URL_FRAMES = 100_000;

/** The extension of the JSON answer `GET /{id}.json`. */
export const INFO_EXTENSION = 'json';

/** The query parameters the service reads; any other is ignored (CDN cache busters). */
export const QUERY_KEYS = ['fit', 'blur', 'quality', 'proxy', 'allow_webp', 'gravity', 'frames'] as const;
