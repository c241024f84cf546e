/**
 * The shapes shared by the HTTP benchmark: one load-generator run, a
 * measurement (rounds of runs, summarised by medians), a target ratio, and
 * the result file that `npm run bench` writes and `npm run bench:compare` reads.
 */
import type { MachineInfo } from './machine.js';
import type { NativeReport } from '../native.js';

/** Which tool produced a number. `direct` is the floor: the pool called without HTTP. */
export type ClientName = 'autocannon' | 'wrk' | 'direct';

/** Latencies in milliseconds. `p97_5` is null when the client cannot give it. */
export interface Latency {
  p50: number;
  p97_5: number | null;
  p99: number;
  max: number;
}

/** One measured run of one client against one contender (warm-up already dropped). */
export interface LoadResult {
  client: ClientName;
  /** Successful responses per second (2xx, plus 3xx where a redirect is the answer). */
  rps: number;
  /** Every response per second, failures included. */
  totalRps: number;
  requests: number;
  seconds: number;
  latency: Latency;
  /** Connection errors (timeouts included). */
  errors: number;
  timeouts: number;
  /** Responses outside 2xx (3xx excluded where it counts as success). */
  non2xx: number;
  /** Responses by status code, when the client reports them. */
  statusCodes: Record<string, number>;
  /** Response body bytes per second. */
  bytesPerSecond: number;
  /** CPU the load generator itself used, in % of one core (100 = one full core). */
  clientCpuPercent: number;
  /** True when the client used more than CLIENT_BOUND_PERCENT of a core: its numbers are a floor. */
  clientBound: boolean;
  /** For request sequences: the next unused sequence number. */
  nextCursor?: number;
}

/** The load generator counts as the bottleneck above this share of one core. */
export const CLIENT_BOUND_PERCENT = 90;

/** The median of each number over the rounds; counters are summed. */
export interface Summary {
  rps: number;
  latency: Latency;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** Responses by status code, summed over the rounds (autocannon only). */
  statusCodes: Record<string, number>;
  clientCpuPercent: number;
  /** True when any round was client-bound (conservative). */
  clientBound: boolean;
  clientBoundRounds: number;
}

/** Rounds of one client against one contender in one scenario. */
export interface Measurement {
  scenario: string;
  contender: string;
  client: ClientName;
  connections: number;
  rounds: LoadResult[];
  summary: Summary;
  /** Body size of one answer, when it is one fixed resource. */
  bodyBytes?: number;
  /** Peak RSS of all the contender's processes while it was measured. */
  peakRssBytes?: number;
  notes?: string[];
}

export type TargetStatus = 'MET' | 'MISSED' | 'N/A';

/** A target: a ratio next to what it must reach. */
export interface RatioResult {
  id: string;
  /** e.g. `miss path rps / floor`. */
  label: string;
  /** e.g. `>= 0.90` (plus the p99 condition, if any). */
  target: string;
  required: number;
  /** The ratio, or null when it cannot be computed. */
  value: number | null;
  /** True when the value is only a lower bound (the service's client was saturated). */
  lowerBound: boolean;
  /** Which client the ratio comes from. */
  client?: ClientName;
  /** The p99 condition, when the target has one (ms). */
  p99?: { service: number; other: number; rule: 'lower' | 'no worse' };
  status: TargetStatus;
  /** Why it is N/A, or what to know about the value. */
  reason?: string;
}

/** One configuration of the cluster split scenario. */
export interface SplitResult {
  workers: number;
  pool: number;
  isDefault: boolean;
  measurement: Measurement;
}

/** The RSS-after-N-renders check. */
export interface MemoryResult {
  /** Renders before the first and second readings (1 000 and 10 000 in a full run). */
  firstRenders: number;
  totalRenders: number;
  /** Successful renders actually done at each reading. */
  rendered: [number, number];
  rssAtFirstBytes: number;
  rssAtTotalBytes: number;
  /** A reading after every `firstRenders` renders: shows whether RSS levels off or keeps rising. */
  series: { renders: number; rssBytes: number }[];
  /** rssAtTotal / rssAtFirst - 1. */
  change: number;
  peakRssBytes: number;
  scaledDown: boolean;
  seconds: number;
  errors: number;
}

/** What a probe saw while the overload level of the sweep ran against iaas. */
export interface SweepProbe {
  /** /_health answers by status (or `error <name>`). */
  health: Record<string, number>;
  /** 503 answers to the probe's own misses, and how many carried Retry-After. */
  miss503: number;
  miss503WithRetryAfter: number;
}

/** The concurrency sweep: its measurements are `sweep-<connections>` in `measurements`. */
export interface SweepResult {
  levels: number[];
  /** The first level that is overload: it and every level above it are probed. */
  overloadAt: number;
  probes: Record<number, SweepProbe>;
}

/** An ordinary client's misses alone and beside clients looping on the most expensive AVIF allowed. */
export interface AvifFloodResult {
  flooders: number;
  aloneP50: number;
  aloneCount: number;
  floodedP50: number;
  floodedP99: number;
  floodedCount: number;
  /** Answers other than 200 to the ordinary client. */
  ordinaryFailed: number;
  /** The flood's answers by status. */
  floodAnswers: Record<string, number>;
  seconds: number;
}

/** The AVIF miss path: first-byte p50 of AVIF-capable misses, deferred (WebP now, AVIF later) and in-request, per AVIF effort. */
export interface AvifDeferredResult {
  /** Measured misses per service. */
  requests: number;
  efforts: {
    effort: number;
    deferredP50: number;
    immediateP50: number;
    /** deferredP50 / immediateP50: below 1, deferring answers the first visitor sooner. */
    ratio: number;
    /** Answers by Content-Type. */
    deferredFormats: Record<string, number>;
    immediateFormats: Record<string, number>;
  }[];
}

/** The realistic-originals scenario: what was uploaded, the levels, and the upload runs. */
export interface OriginalsResult {
  /** Each original, its size, and the bytes its working copies took (0: none made). */
  corpus: { id: string; describe: string; width: number; height: number; bytes: number; copyBytes: number }[];
  levels: number[];
  sourceLevels: number[];
  uploads: {
    perRun: number;
    /** With copies: seconds from the run's start until every upload's copies were decided. */
    copiesSettledSeconds: number[];
    /** With copies: originals by what became of their copies (cumulative over the runs). */
    outcomes: Record<string, number>;
  };
}

/** What `npm run bench` writes to bench/results/<stamp>.json. */
export interface BenchResult {
  kind: 'http-bench';
  version: 1;
  machine: MachineInfo;
  config: BenchConfigRecord;
  native?: NativeReport;
  measurements: Measurement[];
  splits?: { results: SplitResult[]; winner: string; defaultSplit: string };
  memory?: MemoryResult;
  sweep?: SweepResult;
  avifFlood?: AvifFloodResult;
  avifDeferred?: AvifDeferredResult;
  originals?: OriginalsResult;
  ratios: RatioResult[];
  notes: string[];
  durationSeconds: number;
}

/** The settings a run used, as recorded in its result. */
export interface BenchConfigRecord {
  quick: boolean;
  only: string[] | null;
  rounds: number;
  warmupSeconds: number;
  durationSeconds: number;
  connections: { miss: number; hit: number; upload: number };
  pipelining: 1;
  /** Set on every service instance; all else is the embedded defaults (splits also set WORKERS and POOL_SIZE). */
  serviceEnv: Record<string, string>;
  /** The default WORKERS x POOL_SIZE on this machine, as the service computes them. */
  serviceDefaults: { workers: number; pool: number; queueLimit: number };
  /** Connections of the memory scenario: one per render thread, so no render is refused. */
  memoryConnections: number;
  wrk: { path: string | null; threads: number; version: string | null; warmupSeconds: number; durationSeconds: number };
  nginx: { path: string | null; version: string | null };
  peer: { workers: number; sharpConcurrency: number; sharpCache: false };
  /** The floor: `processes` at once, each a pool of `poolSize` threads with `inflight` renders in flight. */
  floor: { processes: number; poolSize: number; inflight: number };
  missSizes: string;
  /** The requests of the realistic-originals scenario. */
  corpusSizes: string;
  input: { photo: string; photoBytes: number; uploadBytes: number };
  clientBoundPercent: number;
}
