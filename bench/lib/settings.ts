/**
 * The benchmark's settings: durations, rounds and connections for a full or
 * a --quick run, the tools found on this machine, the service's default
 * cluster split (read from the service's own config loader), and the time
 * each scenario is expected to take (for the progress line).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { findNginx, hasImageFilter, nginxVersion } from '../peers/nginx.js';
import { findWrk, wrkVersion } from './load.js';
import { CORPUS_SIZES_DESCRIPTION, MISS_SIZES_DESCRIPTION } from './plan.js';
import { SERVICE_ENV } from './service.js';
import { CLIENT_BOUND_PERCENT, type BenchConfigRecord } from './types.js';

/** Every scenario, in the order they run. */
export const SCENARIOS = ['native', 'sweep', 'originals', 'miss', 'avif-flood', 'avif-deferred', 'hit', 'revalidate', 'redirect', 'upload', 'splits', 'memory'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Split {
  workers: number;
  pool: number;
}

/** The service's defaults on this machine, as its own config loader computes them. */
export interface ServiceDefaults extends Split {
  /** QUEUE_LIMIT: renders waiting per worker before a 503. */
  queueLimit: number;
}

export interface BenchSettings {
  quick: boolean;
  save: boolean;
  only: ScenarioName[] | null;
  rounds: number;
  /** Warm-up before each measured run, dropped. */
  warmupSeconds: number;
  durationSeconds: number;
  /** Hit paths: 8 keep-alive connections; the miss path and uploads: 4 (twice the render threads). */
  connections: { miss: number; hit: number; upload: number };
  cores: number;
  /** The service's defaults on this machine (WORKERS x POOL_SIZE, QUEUE_LIMIT). */
  defaultSplit: ServiceDefaults;
  splits: Split[];
  wrk: string | null;
  wrkVersion: string | null;
  /** One wrk thread: then "above 90% of a core" means exactly "the client is saturated". */
  wrkThreads: number;
  /** wrk takes whole seconds. In --quick its warm-up is the autocannon run just before it on the same path. */
  wrkWarmupSeconds: number;
  wrkDurationSeconds: number;
  nginx: string | null;
  nginxVersion: string | null;
  imageFilter: boolean;
  /** Renders before the two RSS readings of the memory scenario. */
  memory: { first: number; total: number; scaledDown: boolean };
  /** The native comparison: every task for 5 s each, or only the target (canonical, 2 in flight) briefly in --quick. */
  native: { tasks: string[] | undefined; inflights: number[] | undefined; ms: number | undefined };
  /** The miss-path concurrency sweep: levels, rounds per level, seconds per run, and the first level that is overload. */
  sweep: { levels: number[]; rounds: number; warmupSeconds: number; durationSeconds: number; overloadAt: number };
  /** Seconds the ordinary client is measured alone, and again beside the AVIF flood. */
  avifFlood: { seconds: number };
  /** AVIF-capable misses measured per service, and the AVIF efforts compared. */
  avifDeferred: { requests: number; efforts: number[] };
  /**
   * Realistic originals: the mix at `levels` for `rounds`, each source alone
   * at `sourceLevels` for `sourceRounds`, and `uploads` per upload run.
   */
  originals: { levels: number[]; rounds: number; sourceLevels: number[]; sourceRounds: number; warmupSeconds: number; durationSeconds: number; uploads: number };
  /** --corpus DIR: real originals instead of the ones generated from the photo. */
  corpusDir: string | undefined;
}

/** The service's WORKERS and POOL_SIZE defaults, from its own loader (an empty config folder, no env). */
export function serviceDefaults(): ServiceDefaults {
  const dir = mkdtempSync(path.join(tmpdir(), 'iaas-bench-config-'));
  try {
    const config = loadConfig({ env: {}, configDir: dir });
    return { workers: config.workers, pool: config.pool.size, queueLimit: config.pool.queueLimit };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The splits compared: all threads in one process, one thread per process,
 * and twice the cores; --quick keeps the first two (the default among them).
 */
export function splitsFor(cores: number, defaults: Split, quick: boolean): Split[] {
  const all = [{ workers: 1, pool: cores }, { workers: cores, pool: 1 }, { workers: cores, pool: cores }];
  const isDefault = (s: Split) => s.workers === defaults.workers && s.pool === defaults.pool;
  const seen = new Set<string>();
  const unique = [...all, { workers: defaults.workers, pool: defaults.pool }].filter((s) => !seen.has(splitName(s)) && !!seen.add(splitName(s)));
  if (!quick) return unique;
  const other = unique.find((s) => !isDefault(s));
  return unique.filter((s) => isDefault(s) || s === other);
}

export function splitName(split: Split): string {
  return `${split.workers}x${split.pool}`;
}

export function resolveSettings(args: { quick: boolean; save: boolean; only: ScenarioName[] | null; corpusDir?: string | undefined }): BenchSettings {
  const cores = availableParallelism();
  const defaultSplit = serviceDefaults();
  const wrk = findWrk();
  const nginx = findNginx();
  return {
    quick: args.quick,
    save: args.save,
    only: args.only,
    corpusDir: args.corpusDir,
    rounds: args.quick ? 1 : 3,
    warmupSeconds: args.quick ? 0.5 : 2,
    durationSeconds: args.quick ? 1 : 20,
    connections: { miss: 4, hit: 8, upload: 4 },
    cores,
    defaultSplit,
    splits: splitsFor(cores, defaultSplit, args.quick),
    wrk,
    wrkVersion: wrk ? wrkVersion(wrk) : null,
    wrkThreads: 1,
    wrkWarmupSeconds: args.quick ? 0 : 2,
    wrkDurationSeconds: args.quick ? 1 : 20,
    nginx,
    nginxVersion: nginx ? nginxVersion(nginx) : null,
    imageFilter: hasImageFilter(),
    memory: args.quick ? { first: 20, total: 60, scaledDown: true } : { first: 1_000, total: 10_000, scaledDown: false },
    native: args.quick ? { tasks: ['canonical'], inflights: [2], ms: 700 } : { tasks: undefined, inflights: undefined, ms: undefined },
    sweep: args.quick
      ? { levels: [1, 8, 128], rounds: 1, warmupSeconds: 0.5, durationSeconds: 1, overloadAt: 128 }
      : { levels: [1, 2, 4, 8, 16, 32, 128, 512], rounds: 3, warmupSeconds: 2, durationSeconds: 10, overloadAt: 128 },
    avifFlood: { seconds: args.quick ? 2 : 20 },
    avifDeferred: { requests: args.quick ? 5 : 20, efforts: [0, 4] },
    originals: args.quick
      ? { levels: [4], rounds: 1, sourceLevels: [4], sourceRounds: 1, warmupSeconds: 0.5, durationSeconds: 2, uploads: 8 }
      : { levels: [1, 2, 4, 8, 16, 32, 128, 512], rounds: 3, sourceLevels: [4, 32], sourceRounds: 2, warmupSeconds: 2, durationSeconds: 10, uploads: 32 },
  };
}

/** Rough seconds per scenario: measured time, warm-ups, and process start-ups. */
export function estimateSeconds(name: ScenarioName, s: BenchSettings): number {
  const run = s.warmupSeconds + s.durationSeconds + 0.5; // one autocannon run with its child process
  const wrkRun = s.wrk ? s.wrkWarmupSeconds + s.wrkDurationSeconds + 0.2 : 0;
  const start = 3.5; // a service start plus its upload
  const peers = 1 + (s.nginx ? 1 : 0);
  switch (name) {
    case 'native': {
      const runs = (s.native.tasks?.length ?? 3) * (s.native.inflights?.length ?? 2);
      return runs * s.rounds * 2 * ((s.native.ms ?? 5_000) / 1000 + 1.5);
    }
    case 'miss':
      return start + peers + s.rounds * (2 + peers) * run;
    case 'hit':
      return start + peers + 2 * s.rounds * (1 + peers) * (run + wrkRun);
    case 'redirect':
      return start + 1 + 2 * s.rounds * (run + wrkRun);
    case 'upload':
      // Three services: without the summary, with it, and with pre-rendering (plus its drains).
      return 3 * start + 3 * s.rounds * (run + 3);
    case 'splits':
      return start + s.splits.length * (1 + s.rounds * run);
    case 'avif-flood':
      return start + 2 * s.avifFlood.seconds + 3;
    case 'avif-deferred':
      // Four services; an in-request AVIF of the miss sizes takes ~0.2 s at effort 0, ~3 s at effort 4.
      return 4 * start + (s.avifDeferred.requests + 2) * (0.5 + 3.5);
    case 'revalidate':
      return start + 1 + s.rounds * 2 * wrkRun;
    case 'sweep':
      return start + 2 + s.sweep.levels.length * s.sweep.rounds * 2 * (s.sweep.warmupSeconds + s.sweep.durationSeconds + 0.5);
    case 'originals': {
      const o = s.originals;
      const run = o.warmupSeconds + o.durationSeconds + 0.5;
      const misses = 2 * run * (o.levels.length * o.rounds + 4 * o.sourceLevels.length * o.sourceRounds);
      // Generating the corpus, its uploads and copies, and the upload runs (a few uploads a second with copies).
      return 30 + start + misses + s.rounds * 2 * (o.uploads / 3);
    }
    case 'memory':
      // Renders at roughly 20 per second on two cores.
      return start + s.memory.total / 20 + 2;
  }
}

/** What the result file records of the settings. */
export function configRecord(s: BenchSettings, input: BenchConfigRecord['input']): BenchConfigRecord {
  return {
    quick: s.quick,
    only: s.only,
    rounds: s.rounds,
    warmupSeconds: s.warmupSeconds,
    durationSeconds: s.durationSeconds,
    connections: s.connections,
    pipelining: 1,
    serviceEnv: { ...SERVICE_ENV, PORT: '0', LISTEN_ADDRESS: '127.0.0.1', DATA_DIR: '<fresh temp folder>', NODE_CONFIG_DIR: '<empty temp folder>' },
    serviceDefaults: s.defaultSplit,
    memoryConnections: s.defaultSplit.workers * s.defaultSplit.pool,
    wrk: { path: s.wrk, threads: s.wrkThreads, version: s.wrkVersion, warmupSeconds: s.wrkWarmupSeconds, durationSeconds: s.wrkDurationSeconds },
    nginx: { path: s.nginx, version: s.nginxVersion },
    peer: { workers: s.defaultSplit.workers, sharpConcurrency: 1, sharpCache: false },
    floor: { processes: s.defaultSplit.workers, poolSize: s.defaultSplit.pool, inflight: Math.max(1, Math.round(s.connections.miss / s.defaultSplit.workers)) },
    missSizes: MISS_SIZES_DESCRIPTION,
    corpusSizes: CORPUS_SIZES_DESCRIPTION,
    input,
    clientBoundPercent: CLIENT_BOUND_PERCENT,
  };
}
