/**
 * Metrics across the cluster: workers ask the primary over IPC, the primary
 * aggregates every worker (prom-client's AggregatorRegistry), serves them on
 * METRICS_PORT when set, and logs the periodic stats line.
 */
import cluster from 'node:cluster';
import http from 'node:http';
import client from 'prom-client';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { register, totalsFrom, type StatsTotals } from './metrics.js';

type MetricsMessage = { type: 'iaas:metrics-req'; id: number } | { type: 'iaas:metrics-res'; id: number; text?: string; error?: string };

/** The primary side. Returns a stop function. */
export function startPrimaryMetrics(config: Config, log: Logger): { port: Promise<number | undefined>; stop(): void } {
  const aggregator = new client.AggregatorRegistry();
  const aggregate = () => aggregator.clusterMetrics();
  cluster.on('message', (worker, message: MetricsMessage) => {
    if (message?.type !== 'iaas:metrics-req') return;
    aggregate().then(
      (text) => worker.send({ type: 'iaas:metrics-res', id: message.id, text } satisfies MetricsMessage),
      (error: Error) => worker.send({ type: 'iaas:metrics-res', id: message.id, error: error.message } satisfies MetricsMessage),
    );
  });

  let server: http.Server | undefined;
  const port = new Promise<number | undefined>((resolve) => {
    if (config.metricsPort === undefined) return resolve(undefined);
    server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      aggregate().then(
        (text) => res.writeHead(200, { 'Content-Type': aggregator.contentType }).end(text),
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
    aggregate().then((text) => {
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
    port,
    stop() {
      clearInterval(timer);
      server?.close();
    },
  };
}

let nextId = 0;
const waiting = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void }>();
let listening = false;

/** The exposition text for a scrape on the public port: the whole cluster's when clustered. */
export function metricsText(): Promise<string> {
  if (!cluster.isWorker || !process.send) return register.metrics();
  if (!listening) {
    listening = true;
    process.on('message', (message: MetricsMessage) => {
      if (message?.type !== 'iaas:metrics-res') return;
      const pending = waiting.get(message.id);
      waiting.delete(message.id);
      if (message.text !== undefined) pending?.resolve(message.text);
      else pending?.reject(new Error(message.error ?? 'metrics aggregation failed'));
    });
  }
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error('metrics aggregation timed out'));
    }, 10_000);
    waiting.set(id, {
      resolve: (text) => (clearTimeout(timer), resolve(text)),
      reject: (error) => (clearTimeout(timer), reject(error)),
    });
    process.send?.({ type: 'iaas:metrics-req', id } satisfies MetricsMessage);
  });
}

/** The content type of the exposition text. */
export const METRICS_CONTENT_TYPE = register.contentType;
