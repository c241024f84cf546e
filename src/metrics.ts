/**
 * Prometheus metrics with prom-client. Each worker records into the global
 * registry; the primary aggregates every worker's numbers with its own
 * (metrics-cluster.ts) for /metrics, on the public port or on METRICS_PORT.
 */
import client from 'prom-client';
import type { ImageEvents } from './images/types.js';
import type { RenderPool } from './render/pool.js';
import { vipsStats } from './render/tools.js';

export const register = client.register;

/** The metric families a worker records. */
export interface Metrics {
  readonly events: ImageEvents;
  /** One finished request: its route class and status. */
  request(route: string, status: number): void;
  /** Reports the pool's threads and utilization at each scrape. */
  watchPool(pool: RenderPool): void;
}

let created: Metrics | undefined;

/** Creates (once per process) the metrics in the global registry. */
export function createMetrics(): Metrics {
  if (created) return created;
  client.collectDefaultMetrics({ register });
  const requests = new client.Counter({ name: 'iaas_http_requests_total', help: 'HTTP requests by route class and status', labelNames: ['route', 'status'] });
  const renders = new client.Histogram({
    name: 'iaas_render_duration_seconds',
    help: 'Render time in the pool (queue wait included) by output format and fit',
    labelNames: ['format', 'fit'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8],
  });
  const cache = new client.Counter({ name: 'iaas_cache_requests_total', help: 'Render cache outcomes: hit, miss, redirect', labelNames: ['outcome'] });
  const uploads = new client.Counter({ name: 'iaas_uploads_total', help: 'Uploads stored' });
  const uploadBytes = new client.Counter({ name: 'iaas_upload_bytes_total', help: 'Bytes stored by uploads: the originals, and the working copies made of them', labelNames: ['kind'] });
  const tokens = new client.Counter({ name: 'iaas_tokens_total', help: 'Upload tokens issued and consumed', labelNames: ['event'] });
  const sources = new client.Counter({ name: 'iaas_render_sources_total', help: 'Renders by what they read: the original, or a working copy (copy-1, copy-2)', labelNames: ['source'] });
  const copies = new client.Counter({ name: 'iaas_working_copies_total', help: 'Originals whose working copies were decided: made, none (not worth it), dropped (under load; made on a later miss), failed', labelNames: ['outcome'] });
  const dropped = new client.Counter({ name: 'iaas_background_renders_dropped_total', help: 'Background renders dropped because the machine was shedding or the background queue was full' });
  const prerenders = new client.Counter({ name: 'iaas_prerenders_total', help: 'Variants pre-rendered after uploads, by outcome', labelNames: ['outcome'] });
  const pools: RenderPool[] = [];
  // Queue depth, slots in use and the wait estimate are the machine's: the primary reports them.
  new client.Gauge({
    name: 'iaas_render_pool_threads',
    help: 'Pool threads',
    collect() {
      this.set(pools.reduce((sum, pool) => sum + pool.stats().size, 0));
    },
  });
  new client.Gauge({
    name: 'iaas_render_pool_utilization',
    help: 'Share of pool thread time spent rendering since start (0..1)',
    aggregator: 'average',
    collect() {
      this.set(pools.length ? pools.reduce((sum, pool) => sum + pool.stats().utilization, 0) / pools.length : 0);
    },
  });
  new client.Gauge({
    name: 'iaas_libvips_memory_bytes',
    help: 'Memory libvips tracks (pixel buffers) in this process',
    collect() {
      this.set(vipsStats().memory);
    },
  });
  new client.Gauge({
    name: 'iaas_libvips_memory_highwater_bytes',
    help: 'Highest memory libvips tracked in this process',
    aggregator: 'max',
    collect() {
      this.set(vipsStats().memoryHighwater);
    },
  });
  created = {
    events: {
      cache: (outcome) => cache.inc({ outcome }),
      render: (format, fit, seconds) => renders.observe({ format, fit }, seconds),
      upload: (bytes) => {
        uploads.inc();
        uploadBytes.inc({ kind: 'original' }, bytes);
      },
      token: (event) => tokens.inc({ event }),
      backgroundDropped: () => dropped.inc(),
      renderSource: (source) => sources.inc({ source }),
      workingCopies: (outcome, bytes) => {
        copies.inc({ outcome });
        if (bytes > 0) uploadBytes.inc({ kind: 'working_copy' }, bytes);
      },
      prerender: (outcome) => prerenders.inc({ outcome }),
    },
    request: (route, status) => requests.inc({ route, status: String(status) }),
    watchPool: (pool) => void pools.push(pool),
  };
  return created;
}

/** The route class of a request, for labels with a bounded set of values. */
export function routeClass(method: string, path: string): string {
  if (path === '/_health') return 'health';
  if (path === '/metrics') return 'metrics';
  if (path === '/token') return 'token';
  if (path === '/robots.txt' || path === '/favicon.ico') return 'static';
  const verb = method.toUpperCase();
  if (verb === 'POST') return 'upload';
  if (verb === 'DELETE') return 'delete';
  return /_\d+_\d+(_\d+x)?\.[A-Za-z]+$/.test(path) ? 'variant' : 'original';
}

/** Totals read from the aggregated metrics, for the periodic stats line. */
export interface StatsTotals {
  hits: number;
  misses: number;
  redirects: number;
  uploads: number;
  renders: number;
}

/** Sums the samples of one series in Prometheus text, optionally filtered by a label. */
function sumSeries(text: string, name: string, label?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (label && !line.includes(label)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** Reads the totals the stats line needs from exposition text. */
export function totalsFrom(text: string): StatsTotals {
  return {
    hits: sumSeries(text, 'iaas_cache_requests_total', 'outcome="hit"'),
    redirects: sumSeries(text, 'iaas_cache_requests_total', 'outcome="redirect"'),
    misses: sumSeries(text, 'iaas_cache_requests_total', 'outcome="miss"'),
    uploads: sumSeries(text, 'iaas_uploads_total'),
    renders: sumSeries(text, 'iaas_render_duration_seconds_count'),
  };
}
