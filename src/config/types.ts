/** The validated, frozen configuration every part of iaas receives. */
import type { AutoFormat } from '../options/grammar.js';

export interface PoolConfig {
  /** Render slots of the machine (and render threads of each worker). */
  size: number;
  /** Machine-wide cap on waiting foreground renders. */
  queueLimit: number;
  /** Refuse a render that would wait longer than this. */
  queueWaitMs: number;
  /** Machine-wide cap on waiting background renders. */
  backgroundLimit: number;
  /** How long a failed render's key is refused at once; 0 = never. */
  negativeCacheMs: number;
  timeoutMs: number;
  vipsConcurrency: number;
}

export interface DatabaseConfig {
  url: string | undefined;
  user: string | undefined;
  password: string | undefined;
  host: string | undefined;
  port: number;
  database: string | undefined;
}

export interface S3Config {
  bucket: string;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  endpoint: string | undefined;
  cacheHost: string | undefined;
  storeOriginals: boolean;
}

export interface Config {
  readonly nodeEnv: string;
  readonly configDir: string;
  readonly port: number;
  readonly listenAddress: string;
  readonly workers: number;
  readonly pool: Readonly<PoolConfig>;
  readonly dataDir: string;
  readonly originalsDir: string;
  readonly cacheDir: string;
  readonly tempDir: string;
  readonly sqlitePath: string;
  /** PostgreSQL when set, else SQLite at sqlitePath. */
  readonly database: Readonly<DatabaseConfig> | undefined;
  /** S3 render cache (and originals with storeOriginals) when set, else local folders. */
  readonly s3: Readonly<S3Config> | undefined;
  readonly allowIndexing: boolean;
  readonly constraints: Readonly<{ maxWidth: number; maxHeight: number; maxInputPixels: number; maxOnDiskPixels: number; maxPages: number }>;
  readonly avif: Readonly<{ maxPixels: number; effort: number }>;
  readonly originals: Readonly<{ keepMetadata: boolean; cacheBytes: number }>;
  /** maxSide undefined: as the constraints need. */
  readonly workingCopy: Readonly<{ enabled: boolean; maxSide: number | undefined }>;
  /** Frames an animated output keeps at most (1: the first frame only). */
  readonly animation: Readonly<{ maxFrames: number }>;
  /** Whether uploads compute the summary of GET /{id}.json (else its first request does). */
  readonly metadata: Readonly<{ atUpload: boolean }>;
  /** URL suffixes (`_320_320.webp?fit=crop`) rendered in the background after each upload. */
  readonly prerender: readonly string[];
  /** The request header naming the client address behind a proxy; undefined = the socket address. */
  readonly clientIpHeader: string | undefined;
  readonly maxUploadBytes: number;
  readonly log: Readonly<{ debug: boolean; info: boolean; warn: boolean; error: boolean }>;
  readonly redirectCacheTimeout: number;
  readonly webp: Readonly<{ allowDynamicSwitch: boolean; allowOptIn: boolean }>;
  /**
   * Negotiation by Accept: `auto` best first (empty: off); `avifDeferred`
   * answers a missing AVIF with the next format and renders it in the
   * background; `deferredMaxAge` is that answer's max-age (0: no-cache).
   */
  readonly formats: Readonly<{ auto: readonly AutoFormat[]; avifDeferred: boolean; deferredMaxAge: number }>;
  /** Whether Client Hints (DPR, Width) choose the density of sized URLs without `_Nx`. */
  readonly clientHints: boolean;
  readonly secret: string | undefined;
  readonly freshness: string | undefined;
  readonly blurSigma: number;
  readonly tokenTtlSeconds: number;
  readonly metricsPort: number | undefined;
  readonly shutdownGraceMs: number;
  readonly statsIntervalMs: number;
  readonly lruEntries: number;
}
