/**
 * One worker process: its store client, storage clients, render pool and uWS
 * app, built from the frozen config. Used by the cluster (cluster/worker.ts) and by tests.
 */
import { mkdir } from 'node:fs/promises';
import { localAdmitter } from './admission/client.js';
import type { Admitter, BrokerSettings } from './admission/types.js';
import type { Config } from './config/types.js';
import { createHttpApp, type HttpApp } from './http/app.js';
import type { RouteDeps } from './http/routes.js';
import { createImageService, type ImageService } from './images/service.js';
import { Renders } from './images/renders.js';
import type { ImageEvents } from './images/types.js';
import { createLogger, type Logger } from './log.js';
import { createRenderPool, type RenderPool } from './render/pool.js';
import { createStorage } from './storage/index.js';
import type { ObjectStorage } from './storage/types.js';
import { createStore } from './store/index.js';
import type { Store } from './store/types.js';

export interface Server {
  readonly port: number;
  readonly app: HttpApp;
  readonly service: ImageService;
  readonly store: Store;
  readonly pool: RenderPool;
  /** The machine's admission point as this process sees it. */
  readonly admitter: Admitter;
  readonly originals: ObjectStorage;
  readonly cache: ObjectStorage;
  /** Drains (up to the configured grace) and releases everything. Resolves true when drained in time. */
  close(): Promise<boolean>;
}

export interface ServerOptions {
  log?: Logger;
  events?: ImageEvents;
  extraGet?: RouteDeps['extraGet'];
  observe?: RouteDeps['observe'];
  deleted?: RouteDeps['deleted'];
  /** The machine's admission point; default: a broker of its own (a single process). */
  admitter?: Admitter;
}

/** The broker's settings from the config: the machine's slots and queue rules. */
export function brokerSettings(config: Config): BrokerSettings {
  const { pool } = config;
  return {
    slots: pool.size,
    queueLimit: pool.queueLimit,
    queueWaitMs: pool.queueWaitMs,
    backgroundLimit: pool.backgroundLimit,
    negativeTtlMs: pool.negativeCacheMs,
    negativeEntries: Math.max(1, config.lruEntries),
  };
}

/** The store the config asks for: PostgreSQL when configured, else SQLite in DATA_DIR. */
export function storeFor(config: Config): Store {
  const db = config.database;
  return createStore({
    sqlitePath: config.sqlitePath,
    ...(db?.url ? { databaseUrl: db.url } : {}),
    ...(db && !db.url
      ? { postgres: { user: db.user, password: db.password, host: db.host, port: db.port, database: db.database } }
      : {}),
  });
}

function s3Options(config: Config) {
  const s3 = config.s3;
  if (!s3) throw new Error('S3 is not configured');
  return {
    kind: 's3' as const,
    bucket: s3.bucket,
    region: s3.region,
    ...(s3.accessKeyId ? { accessKeyId: s3.accessKeyId } : {}),
    ...(s3.secretAccessKey ? { secretAccessKey: s3.secretAccessKey } : {}),
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    ...(s3.cacheHost ? { cacheHost: s3.cacheHost } : {}),
  };
}

/** Originals: S3 with aws.store_originals, else the originals folder. */
export function originalsStorageFor(config: Config): ObjectStorage {
  return config.s3?.storeOriginals ? createStorage(s3Options(config)) : createStorage({ kind: 'local', rootDir: config.originalsDir });
}

/** Render cache: S3 when configured, else the cache folder. */
export function cacheStorageFor(config: Config): ObjectStorage {
  return config.s3 ? createStorage(s3Options(config)) : createStorage({ kind: 'local', rootDir: config.cacheDir });
}

/** Starts one worker's server and listens on config.port. */
export async function startServer(config: Config, options: ServerOptions = {}): Promise<Server> {
  const log = options.log ?? createLogger(config.log);
  await mkdir(config.tempDir, { recursive: true });
  const store = storeFor(config);
  const originals = originalsStorageFor(config);
  const cache = cacheStorageFor(config);
  // A thread per machine slot: the broker never grants this process more renders than that,
  // so a granted render never waits for a thread here.
  const pool = createRenderPool({
    size: config.pool.size,
    queueLimit: config.pool.size,
    timeoutMs: config.pool.timeoutMs,
    vipsConcurrency: config.pool.vipsConcurrency,
  });
  const admitter = options.admitter ?? localAdmitter(brokerSettings(config));
  const renders = new Renders(pool, admitter);
  // Listen while the render threads load the addon: health checks and cache hits need no thread.
  const service = createImageService({ config, store, originals, cache, renders, log, ...(options.events ? { events: options.events } : {}) });
  const app = createHttpApp({
    service,
    log,
    allowIndexing: config.allowIndexing,
    maxUploadBytes: config.maxUploadBytes,
    tempDir: config.tempDir,
    clientIpHeader: config.clientIpHeader,
    ...(options.extraGet ? { extraGet: options.extraGet } : {}),
    ...(options.observe ? { observe: options.observe } : {}),
    ...(options.deleted ? { deleted: options.deleted } : {}),
  });
  const port = await app.listen(config.listenAddress, config.port);
  let closing: Promise<boolean> | undefined;
  return {
    port,
    app,
    service,
    store,
    pool,
    admitter,
    originals,
    cache,
    close() {
      closing ??= (async () => {
        const drained = await app.drain(config.shutdownGraceMs);
        await pool.close();
        admitter.close();
        await store.close();
        return drained;
      })();
      return closing;
    },
  };
}
