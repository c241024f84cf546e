/**
 * Metrics across the cluster. The primary keeps the last snapshot of every
 * worker's registry and, when a worker dies, folds its counters and
 * histograms into totals it keeps, so nothing a crashed worker counted
 * vanishes. A scrape is served from an aggregation at most a second old
 * (one aggregation at a time), so a flood of /metrics costs the workers next
 * to nothing. The primary adds the machine-wide admission numbers, served on
 * METRICS_PORT or relayed to a worker for the public /metrics, and logs the
 * periodic stats line.
 */
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import client, { type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { BrokerHost } from './admission/host.js';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { register, totalsFrom, type StatsTotals } from './metrics.js';

type Snapshot = MetricObjectWithValues<MetricValue<string>>[];

type MetricsMessage =
  | { type: 'iaas:metrics-req'; id: number }
  | { type: 'iaas:metrics-res'; id: number; text?: string; error?: string }
  | { type: 'iaas:snapshot-req'; id: number }
  | { type: 'iaas:snapshot-res'; id: number; snapshot: Snapshot };

/** How old an aggregation may be when it answers a scrape. */
const FRESH_MS = 1_000;
/** Snapshots are refreshed this often without scrapes: a crash loses at most this much of a worker's counts. */
const REFRESH_MS = 2_000;
/** A worker that does not send its snapshot in time keeps its previous one. */
const SNAPSHOT_TIMEOUT_MS = 2_000;

/** Counters and histograms of a dead worker stay in the totals; its gauges described a process that is gone. */
function lasting(snapshot: Snapshot): Snapshot {
  return snapshot.filter((metric) => String(metric.type) === 'counter' || String(metric.type) === 'histogram');
}

/** The admission broker's numbers, as metrics of the primary. */
function admissionRegistry(admission: BrokerHost): client.Registry {
  const registry = new client.Registry();
  const stats = () => admission.broker.stats();
  const gauge = (name: string, help: string, read: () => number) =>
    new client.Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  gauge('iaas_render_slots', 'Render slots of the machine (renders at once across all workers)', () => stats().slots);
  gauge('iaas_render_slots_in_use', 'Render slots in use, machine-wide', () => stats().inUse);
  gauge('iaas_render_wait_estimate_seconds', 'How long a render arriving now would wait for a slot (estimated from recent render times)', () => stats().waitEstimateMs / 1000);
  new client.Gauge({
    name: 'iaas_render_queue_depth',
    help: 'Renders waiting for a slot, machine-wide, by priority',
    labelNames: ['priority'],
    registers: [registry],
    collect() {
      const { queuedForeground, queuedBackground } = stats();
      this.set({ priority: 'foreground' }, queuedForeground);
      this.set({ priority: 'background' }, queuedBackground);
    },
  });
  new client.Counter({
    name: 'iaas_render_admissions_total',
    help: 'Admission decisions: granted a slot, refused (503), joined another render of the same variant, answered from the negative cache, background dropped',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const s = stats();
      this.reset();
      this.inc({ outcome: 'granted' }, s.granted);
      this.inc({ outcome: 'refused' }, s.refused);
      this.inc({ outcome: 'joined' }, s.joined);
      this.inc({ outcome: 'negative' }, s.negativeHits);
      this.inc({ outcome: 'dropped' }, s.droppedBackground);
    },
  });
  return registry;
}

/** The primary's side: snapshots, totals of dead workers, the cached aggregation. */
export class ClusterMetrics {
  private readonly snapshots = new Map<number, Snapshot>();
  private retired: Snapshot = [];
  /** Retirements one after the other: each folds into the totals the previous one left. */
  private retiring: Promise<void> = Promise.resolve();
  private readonly own: client.Registry;
  private readonly aggregations = new client.Counter({ name: 'iaas_metrics_aggregations_total', help: 'Aggregations of the workers\' metrics (scrapes are served from one at most a second old)', registers: [] });
  private cached: { at: number; text: Promise<string> } | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, (snapshot: Snapshot) => void>();
  private readonly timer: NodeJS.Timeout;

  constructor(admission: BrokerHost) {
    this.own = admissionRegistry(admission);
    this.own.registerMetric(this.aggregations);
    cluster.on('message', (worker, message: MetricsMessage) => this.receive(worker, message));
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  private receive(worker: Worker, message: MetricsMessage): void {
    if (message?.type === 'iaas:snapshot-res') {
      this.waiting.get(message.id)?.(message.snapshot);
      return;
    }
    if (message?.type !== 'iaas:metrics-req') return;
    this.text().then(
      (text) => worker.isConnected() && worker.send({ type: 'iaas:metrics-res', id: message.id, text } satisfies MetricsMessage),
      (error: Error) => worker.isConnected() && worker.send({ type: 'iaas:metrics-res', id: message.id, error: error.message } satisfies MetricsMessage),
    );
  }

  /** A worker exited: what it counted stays in the totals. */
  retire(worker: Worker): void {
    const last = this.snapshots.get(worker.id);
    this.snapshots.delete(worker.id);
    if (!last) return;
    this.retiring = this.retiring.then(async () => {
      this.retired = (await client.AggregatorRegistry.aggregate([this.retired, lasting(last)]).getMetricsAsJSON()) as Snapshot;
    });
  }

  private snapshotOf(worker: Worker): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(done, SNAPSHOT_TIMEOUT_MS);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiting.set(id, (snapshot) => {
        this.waiting.delete(id);
        if (worker.isConnected()) this.snapshots.set(worker.id, snapshot);
        done();
      });
      try {
        worker.send({ type: 'iaas:snapshot-req', id } satisfies MetricsMessage);
      } catch {
        this.waiting.delete(id);
        done();
      }
    });
  }

  private async refresh(): Promise<void> {
    const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => !!worker && worker.isConnected());
    await Promise.all(workers.map((worker) => this.snapshotOf(worker)));
  }

  /** A fresh aggregation of the whole cluster (the stats line uses it; scrapes go through `text`). */
  async aggregate(): Promise<string> {
    this.aggregations.inc();
    await Promise.all([this.refresh(), this.retiring]);
    const own = (await this.own.getMetricsAsJSON()) as Snapshot;
    return client.AggregatorRegistry.aggregate([...this.snapshots.values(), this.retired, own]).metrics();
  }

  /** The exposition text for a scrape: an aggregation at most FRESH_MS old, one at a time. */
  text(): Promise<string> {
    if (this.cached && performance.now() - this.cached.at < FRESH_MS) return this.cached.text;
    const text = this.aggregate();
    this.cached = { at: performance.now(), text };
    text.catch(() => (this.cached = undefined));
    return text;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** The primary side: aggregation, METRICS_PORT, the stats line. */
export function startPrimaryMetrics(config: Config, log: Logger, admission: BrokerHost): { metrics: ClusterMetrics; port: Promise<number | undefined>; stop(): void } {
  const metrics = new ClusterMetrics(admission);
  let server: http.Server | undefined;
  const port = new Promise<number | undefined>((resolve) => {
    if (config.metricsPort === undefined) return resolve(undefined);
    server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      metrics.text().then(
        (text) => res.writeHead(200, { 'Content-Type': register.contentType }).end(text),
        (error: Error) => res.writeHead(503, { 'Content-Type': 'text/plain' }).end(error.message),
      );
    });
    server.listen(config.metricsPort, config.listenAddress, () => {
      const address = server?.address();
      resolve(typeof address === 'object' && address ? address.port : undefined);
    });
  });

  // The original service's stats line: one JSON entry per interval, cluster-wide.
  const started = Date.now();
  let previous: StatsTotals = { hits: 0, misses: 0, redirects: 0, uploads: 0, renders: 0 };
  const timer = setInterval(() => {
    metrics.aggregate().then((text) => {
      const totals = totalsFrom(text);
      const hits = totals.hits + totals.redirects;
      const minutes = config.statsIntervalMs / 60_000;
      log.info(
        {
          stats: {
            hits,
            misses: totals.misses,
            uploads: totals.uploads,
            uptime: Math.round((Date.now() - started) / 1000),
            generationsPerMinute: Math.round(((totals.renders - previous.renders) / minutes) * 100) / 100,
            cacheHitRatio: hits + totals.misses ? Math.round((hits / (hits + totals.misses)) * 1000) / 1000 : null,
          },
        },
        'stats',
      );
      previous = totals;
    }, (error: Error) => log.warn({ err: error }, 'stats: metrics aggregation failed'));
  }, config.statsIntervalMs);
  timer.unref();

  return {
    metrics,
    port,
    stop() {
      clearInterval(timer);
      metrics.stop();
      server?.close();
    },
  };
}

// ---------------------------------------------------------------------------
// The worker's side

let nextId = 0;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
let listening = false;
let cachedText: { at: number; text: Promise<string> } | undefined;

function listen(): void {
  if (listening) return;
  listening = true;
  process.on('message', (message: MetricsMessage) => {
    if (message?.type === 'iaas:snapshot-req') {
      void register.getMetricsAsJSON().then((snapshot) => {
        if (process.connected) process.send?.({ type: 'iaas:snapshot-res', id: message.id, snapshot: snapshot as Snapshot } satisfies MetricsMessage);
      });
      return;
    }
    if (message?.type !== 'iaas:metrics-res') return;
    const pending = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.text !== undefined) pending?.resolve(message.text);
    else pending?.reject(new Error(message.error ?? 'metrics aggregation failed'));
  });
}

/** Makes this worker answer the primary's snapshot requests. Call once at start. */
export function answerSnapshots(): void {
  if (cluster.isWorker) listen();
}

/** The exposition text for a scrape on the public port: the whole cluster's when clustered, at most a second old. */
export function metricsText(): Promise<string> {
  if (!cluster.isWorker || !process.send) return register.metrics();
  listen();
  if (cachedText && performance.now() - cachedText.at < FRESH_MS) return cachedText.text;
  const id = nextId++;
  const text = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error('metrics aggregation timed out'));
    }, 10_000);
    waiting.set(id, {
      resolve: (value) => (clearTimeout(timer), resolve(value)),
      reject: (error) => (clearTimeout(timer), reject(error)),
    });
    process.send?.({ type: 'iaas:metrics-req', id } satisfies MetricsMessage);
  });
  cachedText = { at: performance.now(), text };
  text.catch(() => (cachedText = undefined));
  return text;
}

/** The content type of the exposition text. */
export const METRICS_CONTENT_TYPE = register.contentType;
