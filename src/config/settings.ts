/**
 * Every setting: its config-file key (the original service's names), its
 * environment variable, its type, default and meaning. This table is the one
 * source for loading, validation and the README's config table.
 */

export type SettingType = 'int' | 'number' | 'bool' | 'string' | 'secret';

export interface Setting {
  /** Dotted key in config/default.json, e.g. `constraints.max_width`. */
  key: string;
  /** The environment variable that overrides it. */
  env: string;
  type: SettingType;
  /** The default, or a description of a computed default. */
  default: string | number | boolean | undefined;
  min?: number;
  max?: number;
  doc: string;
}

/** Defaults that depend on the machine or on other settings are marked `computed`. */
export const COMPUTED = 'computed';

export const SETTINGS: readonly Setting[] = [
  { key: 'port', env: 'PORT', type: 'int', default: 1337, min: 0, max: 65535, doc: 'HTTP port every cluster worker listens on (0 picks a free port).' },
  { key: 'listen_address', env: 'LISTEN_ADDRESS', type: 'string', default: '0.0.0.0', doc: 'Address to listen on.' },
  { key: 'workers', env: 'WORKERS', type: 'int', default: COMPUTED, min: 1, max: 256, doc: 'Cluster worker processes (default: 2 on 2+ cores, else 1).' },
  { key: 'pool.size', env: 'POOL_SIZE', type: 'int', default: COMPUTED, min: 1, max: 256, doc: 'Render slots of the machine: renders running at once across all workers (default: the cores). Each worker has this many render threads, so a granted render never waits for a thread.' },
  { key: 'pool.queue_wait_ms', env: 'QUEUE_WAIT_MS', type: 'int', default: 2000, min: 0, max: 600000, doc: 'A render is refused (503 with Retry-After) when the machine-wide queue means it would wait longer than this before starting, estimated from recent render times.' },
  { key: 'pool.queue_limit', env: 'QUEUE_LIMIT', type: 'int', default: 1000, min: 0, max: 100000, doc: 'Hard cap on renders waiting machine-wide; beyond it a render is refused whatever the wait estimate.' },
  { key: 'pool.background_limit', env: 'BACKGROUND_QUEUE_LIMIT', type: 'int', default: 1000, min: 0, max: 100000, doc: 'Background renders (after an answer) waiting machine-wide; more are dropped (logged, counted).' },
  { key: 'pool.negative_cache_seconds', env: 'NEGATIVE_CACHE_SECONDS', type: 'int', default: 300, min: 0, max: 86400, doc: 'How long a variant whose render failed in a way a repeat would meet again (timed out, too many pixels, undecodable, unencodable) is answered at once with the same error instead of being rendered again. 0 = never remembered.' },
  { key: 'timeout.conversion', env: 'RENDER_TIMEOUT_MS', type: 'int', default: 10000, min: 0, max: 600000, doc: 'Longest render in ms; past it the render is killed and the client gets 504. 0 = none.' },
  { key: 'vips_concurrency', env: 'VIPS_CONCURRENCY', type: 'int', default: 1, min: 1, max: 64, doc: 'libvips threads per image.' },
  { key: 'data_dir', env: 'DATA_DIR', type: 'string', default: './data', doc: 'Folder for the embedded defaults: SQLite file, originals, render cache, temp files.' },
  { key: 'originals_dir', env: 'ORIGINALS_DIR', type: 'string', default: COMPUTED, doc: 'Folder of local originals (default: DATA_DIR/originals).' },
  { key: 'cache_dir', env: 'CACHE_DIR', type: 'string', default: COMPUTED, doc: 'Folder of the local render cache (default: DATA_DIR/cache).' },
  { key: 'database_url', env: 'DATABASE_URL', type: 'secret', default: undefined, doc: 'PostgreSQL URL; when set (or postgresql.host), PostgreSQL replaces SQLite.' },
  { key: 'postgresql.user', env: 'POSTGRESQL_USER', type: 'string', default: undefined, doc: 'PostgreSQL user (the original config keys).' },
  { key: 'postgresql.password', env: 'POSTGRESQL_PASSWORD', type: 'secret', default: undefined, doc: 'PostgreSQL password.' },
  { key: 'postgresql.host', env: 'POSTGRESQL_HOST', type: 'string', default: undefined, doc: 'PostgreSQL host.' },
  { key: 'postgresql.port', env: 'POSTGRESQL_PORT', type: 'int', default: 5432, min: 1, max: 65535, doc: 'PostgreSQL port.' },
  { key: 'postgresql.database', env: 'POSTGRESQL_DATABASE', type: 'string', default: undefined, doc: 'PostgreSQL database.' },
  { key: 'aws.access_key', env: 'AWS_ACCESS_KEY_ID', type: 'secret', default: undefined, doc: 'S3 access key. S3 is used when aws.bucket is set.' },
  { key: 'aws.secret_key', env: 'AWS_SECRET_ACCESS_KEY', type: 'secret', default: undefined, doc: 'S3 secret key.' },
  { key: 'aws.region', env: 'AWS_REGION', type: 'string', default: 'us-east-1', doc: 'S3 region.' },
  { key: 'aws.bucket', env: 'S3_BUCKET', type: 'string', default: undefined, doc: 'S3 bucket of the render cache (and of originals with aws.store_originals).' },
  { key: 'aws.cache_host', env: 'CACHE_HOST', type: 'string', default: undefined, doc: 'Host that cache hits redirect to (a CDN); default: the bucket URL.' },
  { key: 'aws.endpoint', env: 'S3_ENDPOINT', type: 'string', default: undefined, doc: 'Endpoint of an S3-compatible store (path-style addressing).' },
  { key: 'aws.store_originals', env: 'S3_STORE_ORIGINALS', type: 'bool', default: false, doc: 'Keep originals in S3 too, so several machines share them.' },
  { key: 'allow_indexing', env: 'ALLOW_INDEXING', type: 'bool', default: false, doc: 'robots.txt allows (true) or disallows (false) all crawling.' },
  { key: 'constraints.max_width', env: 'MAX_WIDTH', type: 'int', default: 2048, min: 1, max: 16383, doc: 'Widest rendered image; wider requests get a 303 to the in-bounds URL.' },
  { key: 'constraints.max_height', env: 'MAX_HEIGHT', type: 'int', default: 2048, min: 1, max: 16383, doc: 'Tallest rendered image.' },
  { key: 'constraints.max_input', env: 'MAX_INPUT_MEGAPIXELS', type: 'number', default: 50, min: 0.001, max: 1000, doc: 'Megapixels an input may declare (all frames); more is refused (413 on upload).' },
  { key: 'constraints.max_pages', env: 'MAX_PAGES', type: 'int', default: 1000, min: 1, max: 100000, doc: 'Pages or frames an input may declare (GIF, WebP, TIFF, AVIF); more is refused (413 on upload).' },
  { key: 'avif.max_megapixels', env: 'AVIF_MAX_MEGAPIXELS', type: 'number', default: 4.2, min: 0.001, max: 1000, doc: 'Output megapixels of an AVIF render; larger AVIF requests get a 303 to the largest URL within it.' },
  { key: 'avif.effort', env: 'AVIF_EFFORT', type: 'int', default: 0, min: 0, max: 9, doc: 'AVIF encoder effort (0 fastest .. 9 smallest); see the README for the measured cost of each.' },
  { key: 'animation.max_frames', env: 'ANIMATION_MAX_FRAMES', type: 'int', default: 1, min: 1, max: 10000, doc: 'Frames an animated GIF or WebP keeps when rendered to .webp or .gif (each counted against MAX_INPUT_MEGAPIXELS); 1 renders the first frame only. JPEG, PNG and AVIF outputs always take the first frame.' },
  { key: 'metadata.at_upload', env: 'METADATA_AT_UPLOAD', type: 'bool', default: true, doc: 'Compute the dominant colour, BlurHash and LQIP of GET /{id}.json during the upload (in the pool); false computes them on the first GET /{id}.json instead.' },
  { key: 'prerender', env: 'PRERENDER', type: 'string', default: undefined, doc: 'Comma-separated URL suffixes (e.g. _320_320.webp?fit=crop,_1024_1024.jpg) rendered and stored in the background after each upload is answered, so the first visitor gets a cache hit.' },
  { key: 'originals.keep_metadata', env: 'KEEP_ORIGINAL_METADATA', type: 'bool', default: false, doc: 'Keep EXIF, XMP and IPTC metadata (GPS position, camera, author) in stored originals; by default it is stripped at upload, ICC profiles kept.' },
  { key: 'working_copy.enabled', env: 'WORKING_COPIES', type: 'bool', default: true, doc: 'Make working copies of expensive originals after each upload (and on the first miss of older ones), so misses decode a copy instead of the original.' },
  { key: 'working_copy.max_side', env: 'WORKING_COPY_MAX_SIDE', type: 'int', default: COMPUTED, min: 64, max: 16383, doc: 'Longest side of the largest working copy (default: what the largest in-bounds request of any fit needs, from constraints.max_width and max_height).' },
  { key: 'originals.cache_mb', env: 'ORIGINALS_CACHE_MB', type: 'int', default: 128, min: 0, max: 65536, doc: 'Megabytes of recently rendered originals each worker keeps in memory, so a run of misses of one image reads it once. 0 = read every miss from storage.' },
  { key: 'client_ip_header', env: 'CLIENT_IP_HEADER', type: 'string', default: undefined, doc: 'Behind a proxy: the request header holding the client address (e.g. x-real-ip), used for fair sharing of the render slots; default the socket address.' },
  { key: 'constraints.max_on_disk', env: 'MAX_ON_DISK_MEGAPIXELS', type: 'number', default: 40, min: 0.001, max: 1000, doc: 'Megapixels an original is stored at; larger uploads are downscaled.' },
  { key: 'max_upload_bytes', env: 'MAX_UPLOAD_BYTES', type: 'int', default: 25 * 1024 * 1024, min: 1, max: 2 ** 40, doc: 'Largest upload body in bytes (413 beyond, connection closed).' },
  { key: 'log.debug', env: 'LOG_DEBUG', type: 'bool', default: false, doc: 'Log debug lines.' },
  { key: 'log.info', env: 'LOG_INFO', type: 'bool', default: true, doc: 'Log info lines (one per request).' },
  { key: 'log.warn', env: 'LOG_WARN', type: 'bool', default: true, doc: 'Log warnings.' },
  { key: 'log.error', env: 'LOG_ERROR', type: 'bool', default: true, doc: 'Log errors.' },
  { key: 'redirect_cache_timeout', env: 'REDIRECT_CACHE_TIMEOUT', type: 'int', default: 86400, min: 0, max: 31536000, doc: 'max-age in seconds of a 303 to the cache.' },
  { key: 'webp.allow_dynamic_switch', env: 'WEBP_ALLOW_DYNAMIC_SWITCH', type: 'bool', default: false, doc: 'Serve WebP to clients whose Accept has image/webp.' },
  { key: 'webp.allow_opt_in', env: 'WEBP_ALLOW_OPT_IN', type: 'bool', default: false, doc: 'The same, only for requests with ?allow_webp=true.' },
  { key: 'formats.auto', env: 'AUTO_FORMATS', type: 'string', default: undefined, doc: 'Comma-separated, best first, from avif, webp: a .jpg/.jpeg/.png URL is answered in the first of these that the request\'s Accept names explicitly (with Vary: Accept). Unset: off. See "Web delivery" in the README.' },
  { key: 'formats.avif_deferred', env: 'AVIF_DEFERRED', type: 'bool', default: true, doc: 'When AVIF is chosen and not rendered yet, answer at once in the next acceptable format (briefly cacheable) and render the AVIF in the background; false renders AVIF in the request.' },
  { key: 'formats.deferred_max_age', env: 'DEFERRED_MAX_AGE', type: 'int', default: 0, min: 0, max: 86400, doc: 'max-age in seconds of an answer given in place of a deferred AVIF; 0 sends Cache-Control: no-cache (clients revalidate every time).' },
  { key: 'client_hints', env: 'CLIENT_HINTS', type: 'bool', default: false, doc: 'Send Accept-CH and render a sized URL without _Nx at the density of Sec-CH-DPR (or DPR), capped by Sec-CH-Width (or Width).' },
  { key: 'secret', env: 'SECRET', type: 'secret', default: undefined, doc: 'Shared secret for POST /token and DELETE; when unset, /token is open and DELETE is refused.' },
  { key: 'freshness', env: 'FRESHNESS', type: 'secret', default: undefined, doc: 'A request with header freshness-token equal to this renders fresh and stores nothing.' },
  { key: 'blur_sigma', env: 'BLUR_SIGMA', type: 'number', default: 4, min: 0.1, max: 100, doc: 'Gaussian sigma of ?blur=true.' },
  { key: 'token_ttl_seconds', env: 'TOKEN_TTL_SECONDS', type: 'int', default: 900, min: 1, max: 86400, doc: 'How long an upload token is valid.' },
  { key: 'metrics_port', env: 'METRICS_PORT', type: 'int', default: undefined, min: 0, max: 65535, doc: 'Serve /metrics on this port (primary process) instead of the public one.' },
  { key: 'shutdown_grace_ms', env: 'SHUTDOWN_GRACE_MS', type: 'int', default: 10000, min: 0, max: 600000, doc: 'On SIGTERM, how long in-flight requests may take before exit.' },
  { key: 'stats_interval_ms', env: 'STATS_INTERVAL_MS', type: 'int', default: 300000, min: 1000, max: 86400000, doc: 'Period of the stats log line.' },
  { key: 'lru_entries', env: 'LRU_ENTRIES', type: 'int', default: 10000, min: 0, max: 10000000, doc: 'Entries in each per-process LRU (original metadata, cache locations).' },
];
