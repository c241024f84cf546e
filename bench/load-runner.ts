/**
 * The load generator: autocannon in its own process, so the harness can tell
 * the client's CPU from the server's. Reads one job as JSON on stdin, runs the
 * warm-up (dropped), then the measured run, and prints one JSON line: a
 * LoadResult with the CPU this process used during the measured run.
 *
 *   echo '{"url":...}' | node dist/bench/load-runner.js
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CLIENT_BOUND_PERCENT, type LoadResult } from './lib/types.js';
import { corpusPath, missPath } from './lib/plan.js';

/** Which paths a job requests. */
export type PathPlan =
  /** One path, again and again (hit paths). */
  | { kind: 'fixed'; path: string }
  /** The miss sequence from `start` on: every request a new size. */
  | { kind: 'miss'; start: number }
  /** The realistic-originals sequence from `start` on, over these originals: every request a new size. */
  | { kind: 'corpus'; start: number; ids: string[] }
  /** One upload per pre-issued token: POST /{id}.jpg with X-Token and a multipart body (the files in turn). */
  | { kind: 'upload'; tokens: { id: string; token: string }[]; bodyFile: string | string[]; boundary: string };

export interface AutocannonJob {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  connections: number;
  warmupSeconds: number;
  /** Measured seconds; ignored when `amount` is set. */
  durationSeconds: number;
  /** Stop after this many responses instead of after a duration. */
  amount?: number;
  plan: PathPlan;
  /** Status classes that count as success: [2], or [2, 3] where a redirect is the answer. */
  successClasses: number[];
}

/** The part of autocannon's options used here (it ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  pipelining: number;
  duration?: number;
  amount?: number;
  timeout: number;
  sampleInt: number;
  excludeErrorStats: boolean;
  requests: AutocannonRequest[];
}
interface Histogram {
  p50: number;
  p97_5: number;
  p99: number;
  max: number;
  total: number;
}
interface AutocannonResult {
  duration: number;
  latency: Histogram;
  requests: Histogram;
  throughput: Histogram;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (options: AutocannonOptions) => Promise<AutocannonResult>;

// autocannon is CommonJS without types: loaded through require with a typed cast.
const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as Autocannon;

/** Builds the request list; `cursor()` tells how far a sequence got. */
function requestsFor(plan: PathPlan): { requests: AutocannonRequest[]; cursor: () => number } {
  switch (plan.kind) {
    case 'fixed':
      return { requests: [{ method: 'GET', path: plan.path }], cursor: () => 0 };
    case 'miss': {
      let n = plan.start;
      // setupRequest runs for every request built, so each gets the next size.
      const setupRequest = (request: AutocannonRequest): AutocannonRequest => ({ ...request, method: 'GET', path: missPath(n++) });
      return { requests: [{ setupRequest }], cursor: () => n };
    }
    case 'corpus': {
      let n = plan.start;
      const setupRequest = (request: AutocannonRequest): AutocannonRequest => ({ ...request, method: 'GET', path: corpusPath(n++, plan.ids) });
      return { requests: [{ setupRequest }], cursor: () => n };
    }
    case 'upload': {
      const bodies = (Array.isArray(plan.bodyFile) ? plan.bodyFile : [plan.bodyFile]).map((file) => readFileSync(file));
      let i = 0;
      const setupRequest = (request: AutocannonRequest): AutocannonRequest => {
        // autocannon builds one request per connection beyond the last one sent; those
        // extras find no token left and are never sent (the run stops at `amount`).
        const entry = plan.tokens[i++] ?? { id: 'spent', token: '0'.repeat(64) };
        return {
          ...request,
          method: 'POST',
          path: `/${entry.id}.jpg`,
          headers: { 'Content-Type': `multipart/form-data; boundary=${plan.boundary}`, 'X-Token': entry.token },
          body: bodies[(i - 1) % bodies.length] as Buffer,
        };
      };
      return { requests: [{ setupRequest }], cursor: () => i };
    }
  }
}

/** Runs a job in this process and returns its measurement. */
export async function runJob(job: AutocannonJob): Promise<LoadResult> {
  const { requests, cursor } = requestsFor(job.plan);
  // autocannon stops on its next sample tick after the duration: sampling every 100 ms keeps
  // a 0.5 s warm-up at 0.5 s. Throughput here comes from totals, not from the samples.
  // Latencies of successful answers only: a fast 503 must not make a slow path look fast. Where a
  // redirect is the answer, autocannon's filter (2xx only) would drop every latency, so it is off.
  const excludeErrorStats = !job.successClasses.includes(3);
  const base = { url: job.url, connections: job.connections, pipelining: 1, timeout: 10, sampleInt: 100, excludeErrorStats, requests };
  if (job.warmupSeconds > 0) await autocannon({ ...base, duration: job.warmupSeconds });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await autocannon(job.amount ? { ...base, amount: job.amount } : { ...base, duration: job.durationSeconds });
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const clientCpuPercent = ((cpu.user + cpu.system) / 1e6 / wall) * 100;
  let responses = 0;
  let successes = 0;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats)) {
    statusCodes[code] = count;
    responses += count;
    if (job.successClasses.includes(Math.floor(Number(code) / 100))) successes += count;
  }
  const seconds = result.duration > 0 ? result.duration : wall;
  return {
    client: 'autocannon',
    rps: successes / seconds,
    totalRps: responses / seconds,
    requests: responses,
    seconds,
    latency: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: responses - successes,
    statusCodes,
    bytesPerSecond: result.throughput.total / seconds,
    clientCpuPercent,
    clientBound: clientCpuPercent > CLIENT_BOUND_PERCENT,
    nextCursor: cursor(),
  };
}

async function main(): Promise<void> {
  // A harness stopped by a signal leaves no reader: the result has nowhere to go, and that is fine.
  process.stdout.on('error', () => process.exit(1));
  const job = JSON.parse(readFileSync(0, 'utf8')) as AutocannonJob;
  const result = await runJob(job);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
