/**
 * Reads the configuration once: defaults, then config/default.json, then
 * config/<NODE_ENV>.json (the `config` package's layering), then environment
 * variables. Validates every value and freezes the result. This is the only
 * module that reads process.env.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Util } from 'config/lib/util.js';
import { AUTO_FORMATS, type AutoFormat } from '../options/grammar.js';
import { parseImageRequest } from '../options/parse.js';
import { COMPUTED, SETTINGS, type Setting } from './settings.js';
import type { Config } from './types.js';

/** A bad setting stops the start; the message names the key and its variable. */
export class ConfigError extends Error {
  readonly code = 'BAD_CONFIG';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to NODE_CONFIG_DIR or ./config. */
  configDir?: string;
  /** Values by file key (e.g. `{ 'constraints.max_width': 100 }`), applied last; for tests and tools. */
  overrides?: Record<string, unknown>;
  /** Cores to plan for; defaults to availableParallelism(). */
  cores?: number;
}

function readPath(object: unknown, key: string): unknown {
  let current = object;
  for (const part of key.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function describe(setting: Setting, from: string): string {
  return `${setting.key} (${from === 'env' ? `environment variable ${setting.env}` : `config key, or ${setting.env}`})`;
}

/** Converts and checks one raw value. Environment values arrive as strings. */
function coerce(setting: Setting, raw: unknown, from: 'env' | 'file'): unknown {
  const fail = (what: string): never => {
    throw new ConfigError(setting.key, `Expected ${what} for ${describe(setting, from)} but received ${JSON.stringify(raw)}`);
  };
  switch (setting.type) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return fail('true or false');
    }
    case 'int':
    case 'number': {
      const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      const integer = setting.type === 'int';
      const range = `between ${setting.min ?? '-inf'} and ${setting.max ?? 'inf'}`;
      if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
        return fail(integer ? `an integer ${range}` : `a number ${range}`);
      }
      if ((setting.min !== undefined && value < setting.min) || (setting.max !== undefined && value > setting.max)) {
        return fail(integer ? `an integer ${range}` : `a number ${range}`);
      }
      return value;
    }
    case 'string':
    case 'secret':
      if (typeof raw !== 'string' || raw === '') return fail('a non-empty string');
      return raw;
  }
}

/** Resolves every setting to a value (or undefined) by its file key. */
function resolveValues(env: NodeJS.ProcessEnv, fileConfig: unknown, overrides: Record<string, unknown>): Map<string, unknown> {
  const values = new Map<string, unknown>();
  for (const setting of SETTINGS) {
    let value: unknown = setting.default === COMPUTED ? undefined : setting.default;
    const fromFile = readPath(fileConfig, setting.key);
    if (fromFile !== undefined && fromFile !== null) value = coerce(setting, fromFile, 'file');
    const fromEnv = env[setting.env];
    if (fromEnv !== undefined && fromEnv !== '') value = coerce(setting, fromEnv, 'env');
    if (setting.key in overrides) value = overrides[setting.key] === undefined ? undefined : coerce(setting, overrides[setting.key], 'file');
    values.set(setting.key, value);
  }
  return values;
}

/**
 * PRERENDER's suffixes, each checked now: one that does not parse as an image URL would
 * otherwise fail after every upload.
 */
function prerenderSuffixes(raw: string | undefined): string[] {
  if (raw === undefined) return [];
  const suffixes = raw.split(',').map((suffix) => suffix.trim()).filter(Boolean);
  for (const suffix of suffixes) {
    const fail = (): never => {
      throw new ConfigError('prerender', `Expected URL suffixes like _320_320.webp?fit=crop for prerender (config key, or PRERENDER) but received ${JSON.stringify(suffix)}`);
    };
    if (!/^[_.]/.test(suffix)) fail();
    const [path = '', query = ''] = suffix.split('?', 2);
    try {
      const request = parseImageRequest(`/prerender${path}`, query);
      if (request.id !== 'prerender') fail();
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      fail();
    }
  }
  return suffixes;
}

/** AUTO_FORMATS: known formats, each once, in the order given (the order of preference). */
function autoFormats(raw: string | undefined): AutoFormat[] {
  if (raw === undefined) return [];
  const names = raw.split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  const known = names.every((name) => (AUTO_FORMATS as readonly string[]).includes(name));
  if (!known || new Set(names).size !== names.length) {
    throw new ConfigError('formats.auto', `Expected a comma-separated list of distinct formats from ${AUTO_FORMATS.join(', ')} for formats.auto (config key, or AUTO_FORMATS) but received ${JSON.stringify(raw)}`);
  }
  return names as AutoFormat[];
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Loads, validates and freezes the configuration. Throws ConfigError naming the bad key. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const configDir = options.configDir ?? env.NODE_CONFIG_DIR ?? path.resolve('config');
  const nodeEnv = env.NODE_ENV ?? 'development';
  const fileConfig = Util.loadFileConfigs({ configDir, nodeEnv: [nodeEnv], skipConfigSources: true }).config as unknown;
  const v = resolveValues(env, fileConfig, options.overrides ?? {});
  const get = <T>(key: string) => v.get(key) as T;

  const cores = options.cores ?? availableParallelism();
  const workers = get<number | undefined>('workers') ?? (cores >= 2 ? 2 : 1);
  const poolSize = get<number | undefined>('pool.size') ?? Math.max(1, cores);
  const dataDir = path.resolve(get<string>('data_dir'));
  const bucket = get<string | undefined>('aws.bucket');
  const pgHost = get<string | undefined>('postgresql.host');
  const maxWidth = get<number>('constraints.max_width');

  const config: Config = {
    nodeEnv,
    configDir,
    port: get('port'),
    listenAddress: get('listen_address'),
    workers,
    pool: {
      size: poolSize,
      queueLimit: get('pool.queue_limit'),
      queueWaitMs: get('pool.queue_wait_ms'),
      backgroundLimit: get('pool.background_limit'),
      negativeCacheMs: get<number>('pool.negative_cache_seconds') * 1000,
      timeoutMs: get('timeout.conversion'),
      vipsConcurrency: get('vips_concurrency'),
    },
    dataDir,
    originalsDir: path.resolve(get<string | undefined>('originals_dir') ?? path.join(dataDir, 'originals')),
    cacheDir: path.resolve(get<string | undefined>('cache_dir') ?? path.join(dataDir, 'cache')),
    tempDir: path.join(dataDir, 'tmp'),
    sqlitePath: path.join(dataDir, 'iaas.sqlite'),
    database:
      get<string | undefined>('database_url') || pgHost
        ? {
            url: get('database_url'),
            user: get('postgresql.user'),
            password: get('postgresql.password'),
            host: pgHost,
            port: get('postgresql.port'),
            database: get('postgresql.database'),
          }
        : undefined,
    s3: bucket
      ? {
          bucket,
          region: get('aws.region'),
          accessKeyId: get('aws.access_key'),
          secretAccessKey: get('aws.secret_key'),
          endpoint: get('aws.endpoint'),
          cacheHost: get('aws.cache_host'),
          storeOriginals: get('aws.store_originals'),
        }
      : undefined,
    allowIndexing: get('allow_indexing'),
    constraints: {
      maxWidth,
      maxHeight: get('constraints.max_height'),
      maxInputPixels: Math.round(get<number>('constraints.max_input') * 1_000_000),
      maxOnDiskPixels: Math.round(get<number>('constraints.max_on_disk') * 1_000_000),
      maxPages: get('constraints.max_pages'),
    },
    avif: { maxPixels: Math.round(get<number>('avif.max_megapixels') * 1_000_000), effort: get('avif.effort') },
    originals: { keepMetadata: get('originals.keep_metadata'), cacheBytes: get<number>('originals.cache_mb') * 1024 * 1024 },
    workingCopy: { enabled: get('working_copy.enabled'), maxSide: get<number | undefined>('working_copy.max_side') },
    animation: { maxFrames: get('animation.max_frames') },
    metadata: { atUpload: get('metadata.at_upload') },
    prerender: prerenderSuffixes(get<string | undefined>('prerender')),
    clientIpHeader: get<string | undefined>('client_ip_header')?.toLowerCase(),
    maxUploadBytes: get('max_upload_bytes'),
    log: { debug: get('log.debug'), info: get('log.info'), warn: get('log.warn'), error: get('log.error') },
    redirectCacheTimeout: get('redirect_cache_timeout'),
    webp: { allowDynamicSwitch: get('webp.allow_dynamic_switch'), allowOptIn: get('webp.allow_opt_in') },
    formats: { auto: autoFormats(get<string | undefined>('formats.auto')), avifDeferred: get('formats.avif_deferred'), deferredMaxAge: get('formats.deferred_max_age') },
    clientHints: get('client_hints'),
    secret: get('secret'),
    freshness: get('freshness'),
    blurSigma: get('blur_sigma'),
    tokenTtlSeconds: get('token_ttl_seconds'),
    metricsPort: get('metrics_port'),
    shutdownGraceMs: get('shutdown_grace_ms'),
    statsIntervalMs: get('stats_interval_ms'),
    lruEntries: get('lru_entries'),
  };
  return deepFreeze(config);
}
