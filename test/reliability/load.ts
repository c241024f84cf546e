/**
 * Offered load for the overload tests (short in npm test, long under
 * `npm run test:reliability`): the unloaded latency of miss renders, then an
 * open-loop arrival rate of ten times the measured capacity.
 */
import { Agent, request } from 'node:http';
import type { Test } from 'tap';
import { photoJpeg } from '../helpers/fixtures.js';
import { uploadImage } from '../helpers/http.js';
import { percentile, tally } from '../helpers/measure.js';
import { type Cluster, startCluster } from '../helpers/processes.js';
import { sleep } from '../helpers/timing.js';

export interface Answer {
  status: number | 'error';
  /** The client error, when status is 'error'. */
  error?: string;
  /** Whether the request went out on a reused keep-alive connection. */
  reused?: boolean;
  ms: number;
  retryAfter?: string;
  /** When the request was sent, ms since the load started. */
  at: number;
}

/** One GET over a keep-alive agent; never rejects. */
export function timedGet(agent: Agent, base: string, path: string, startedAt = performance.now(), timeoutMs = 30_000): Promise<Answer> {
  const sent = performance.now();
  return new Promise((resolve) => {
    const url = new URL(path, base);
    const req = request({ agent, host: url.hostname, port: url.port, path: `${url.pathname}${url.search}`, method: 'GET', timeout: timeoutMs }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        const retryAfter = res.headers['retry-after'];
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - sent, at: sent - startedAt, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) });
      });
      res.on('error', () => resolve({ status: 'error', ms: performance.now() - sent, at: sent - startedAt }));
    });
    let reused = false;
    req.on('socket', () => {
      reused = req.reusedSocket;
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ status: 'error', error: error.code ?? error.message, reused, ms: performance.now() - sent, at: sent - startedAt }),
    );
    req.end();
  });
}

/** Distinct sizes, so every request is a miss that needs a render. */
export function missPaths(id: string): () => string {
  let n = 0;
  return () => {
    const k = n++;
    return `/${id}_${500 + (k % 500)}_${375 + Math.floor(k / 500)}.jpg`;
  };
}

export interface LoadReport {
  unloadedMs: number[];
  unloadedP99: number;
  meanRenderMs: number;
  rate: number;
  answers: Answer[];
  recoveredInMs: number | undefined;
}

/**
 * The cluster with one worker, one render thread and no waiting renders
 * (WORKERS=1, POOL_SIZE=1, QUEUE_LIMIT=0): capacity is then exactly one render
 * at a time, the same on any machine, so "ten times capacity"
 * is well defined; a single worker keeps every request on one queue (with two,
 * SO_REUSEPORT splits connections unevenly); and one render thread leaves the
 * second core to the load generator and the other test files. Its logs go to
 * a file (ClusterOptions.logToFile says why).
 */
export async function startLoadCluster(t: Test, extra: Record<string, string> = {}): Promise<{ cluster: Cluster; id: string }> {
  const cluster = await startCluster({ WORKERS: '1', POOL_SIZE: '1', QUEUE_LIMIT: '0', ...extra }, { logToFile: true });
  t.teardown(() => cluster.stop());
  const id = 'load';
  const answer = await uploadImage(cluster.url, id, photoJpeg(1600, 1200, 85, 31));
  if (answer.status !== 200) throw new Error(`the load original was not stored: ${answer.status}`);
  return { cluster, id };
}

/**
 * Measures `samples` sequential miss renders, then offers ten times the
 * capacity they imply for `durationMs` (open loop: arrivals do not wait for
 * answers), then measures how long until a render succeeds again.
 */
export async function tenTimesCapacity(cluster: Cluster, id: string, durationMs: number, samples = 60): Promise<LoadReport> {
  // Idle sockets are closed after 8 s, before uWS closes them (about 10 s): reusing a socket
  // the server is closing at that moment would fail in the client, not in the service.
  // No socket limit: the load is open loop, and refusals beyond the pacer's rate are held a
  // second, so at 10x a fast machine's capacity (about 650/s) several hundred requests are
  // open at once; a capped agent would queue them in this process and time its own queue.
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, timeout: 8_000 });
  try {
    const next = missPaths(id);
    for (let i = 0; i < 5; i++) await timedGet(agent, cluster.url, next());
    const unloaded: number[] = [];
    for (let i = 0; i < samples; i++) {
      const answer = await timedGet(agent, cluster.url, next());
      if (answer.status !== 200) throw new Error(`an unloaded render answered ${answer.status}`);
      unloaded.push(answer.ms);
    }
    const meanRenderMs = unloaded.reduce((sum, ms) => sum + ms, 0) / unloaded.length;
    const rate = (10 * 1000) / meanRenderMs; // POOL_SIZE=1: one render at a time
    const started = performance.now();
    const pending: Promise<Answer>[] = [];
    for (let i = 0; ; i++) {
      const due = started + (i * 1000) / rate;
      if (due - started >= durationMs) break;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      pending.push(timedGet(agent, cluster.url, next(), started));
    }
    const stoppedAt = performance.now();
    const answers = await Promise.all(pending);
    let recoveredInMs: number | undefined;
    for (;;) {
      const probe = await timedGet(agent, cluster.url, next());
      const elapsed = performance.now() - stoppedAt;
      if (probe.status === 200) {
        recoveredInMs = elapsed;
        break;
      }
      if (elapsed > 10_000) break;
      await sleep(50);
    }
    return { unloadedMs: unloaded, unloadedP99: percentile(unloaded, 99), meanRenderMs, rate, answers, recoveredInMs };
  } finally {
    agent.destroy();
  }
}

/** The assertions shared by the short and the long version. */
export function assertOverload(t: Test, report: LoadReport, cluster: Cluster): void {
  const { answers } = report;
  const accepted = answers.filter((answer) => answer.status === 200);
  const shed = answers.filter((answer) => answer.status === 503);
  const acceptedP99 = percentile(accepted.map((answer) => answer.ms), 99);
  t.comment(
    `unloaded renders: mean ${report.meanRenderMs.toFixed(1)} ms, p99 ${report.unloadedP99.toFixed(1)} ms; offered ${report.rate.toFixed(0)}/s (10x); ` +
      `${answers.length} sent: ${JSON.stringify(tally(answers.map((answer) => answer.status)))}`,
  );
  t.comment(
    `accepted p50 ${percentile(accepted.map((a) => a.ms), 50).toFixed(1)} ms, p99 ${acceptedP99.toFixed(1)} ms; 503 p50 ${percentile(shed.map((a) => a.ms), 50).toFixed(1)} ms, p99 ${percentile(shed.map((a) => a.ms), 99).toFixed(1)} ms`,
  );
  const serverMs = cluster
    .logs()
    .filter((line) => line.message === 'request' && line.status === 200 && typeof line.path === 'string' && line.path.startsWith('/load_'))
    .map((line) => Number(line.ms));
  if (serverMs.length > 0) t.comment(`server-side ms of 200 renders (whole run): p50 ${percentile(serverMs, 50)}, p99 ${percentile(serverMs, 99)}`);
  t.same(
    answers.filter((answer) => answer.status !== 200 && answer.status !== 503).map((answer) => `${answer.status}${answer.error ? ` ${answer.error}${answer.reused ? ' (reused connection)' : ''}` : ''} at ${answer.at.toFixed(0)} ms`),
    [],
    'every request is either rendered (200) or shed (503): no error, no timeout, no 5xx other than 503',
  );
  t.ok(accepted.length > 0, `renders were accepted (${accepted.length})`);
  t.ok(shed.length > answers.length / 2, `most of the excess was shed (${shed.length} of ${answers.length})`);
  t.ok(shed.every((answer) => answer.retryAfter === '1'), 'every 503 carries Retry-After: 1');
  t.ok(acceptedP99 <= 3 * report.unloadedP99, `accepted renders' p99 ${acceptedP99.toFixed(1)} ms <= 3 x the unloaded p99 ${report.unloadedP99.toFixed(1)} ms`);
  t.ok(report.recoveredInMs !== undefined && report.recoveredInMs <= 3_000, `a render succeeds ${report.recoveredInMs?.toFixed(0) ?? 'never'} ms after the load stopped (limit 3 s)`);
}
