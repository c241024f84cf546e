/**
 * /metrics of the real cluster (two worker processes): every metric family
 * the issue lists, counted across both workers, the separate METRICS_PORT,
 * and the periodic stats log line.
 */
import t from 'tap';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { freshRequest, postImage, requestToken } from '../helpers/http.js';
import { parseExposition, scrapeMetrics, total } from '../helpers/metrics.js';
import { type Cluster, startCluster } from '../helpers/processes.js';
import { eventually } from '../helpers/timing.js';

/**
 * Sends at least `count` health checks over fresh connections, and more until
 * both workers have answered some (the cluster announces itself when the
 * first worker listens). Returns how many were sent and the statuses seen.
 */
async function healthChecks(cluster: Cluster, count: number): Promise<{ sent: number; statuses: number[] }> {
  let sent = 0;
  const statuses = new Set<number>();
  const deadline = Date.now() + 60_000;
  while (sent < count || (cluster.servingPids().length < 2 && Date.now() < deadline)) {
    statuses.add((await freshRequest(`${cluster.url}/_health`)).status);
    sent++;
    if (sent >= count && cluster.servingPids().length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { sent, statuses: [...statuses] };
}

t.test('the exposition parser reads HELP, TYPE, labels, escapes and histogram suffixes', async (t) => {
  const families = parseExposition(
    [
      '# HELP a_total Things',
      '# TYPE a_total counter',
      'a_total{route="x",status="200"} 3',
      'a_total{route="say \\"hi\\"",status="404"} 1',
      '# HELP h_seconds Time',
      '# TYPE h_seconds histogram',
      'h_seconds_bucket{le="0.1",fit="clip"} 1',
      'h_seconds_bucket{le="+Inf",fit="clip"} 2',
      'h_seconds_sum{fit="clip"} 0.3',
      'h_seconds_count{fit="clip"} 2',
      '',
    ].join('\n'),
  );
  t.equal(families.get('a_total')?.type, 'counter');
  t.equal(total(families, 'a_total', 'a_total'), 4);
  t.equal(families.get('a_total')?.samples[1]?.labels.route, 'say "hi"');
  t.equal(families.get('h_seconds')?.type, 'histogram');
  t.equal(total(families, 'h_seconds', 'h_seconds_bucket', { le: '+Inf' }), 2);
  t.equal(total(families, 'h_seconds', 'h_seconds_count'), 2);
  t.equal(families.get('h_seconds_bucket'), undefined);
});

t.test('a cluster of two workers reports every metric family, summed across workers, and logs stats', async (t) => {
  let cluster: Cluster;
  try {
    cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1', STATS_INTERVAL_MS: '1000' }, { timeoutMs: 60_000 });
  } catch (error) {
    t.fail(`the cluster did not start: ${(error as Error).message}`);
    return;
  }
  t.teardown(() => cluster.stop());
  const url = cluster.url;
  const id = unique('metrics');

  // A token, an upload of a generated JPEG, a miss, a hit, a 404.
  const issued = await requestToken(url, id);
  t.equal(issued.status, 200, 'a token is issued');
  const token = String(issued.body.token);
  const jpeg = photoJpeg(400, 300);
  const uploaded = await postImage(url, id, token, jpeg);
  t.equal(uploaded.status, 200, 'the upload is stored');
  await uploaded.arrayBuffer();

  const variant = `${url}/${id}_120_90.jpg`;
  const miss = await freshRequest(variant);
  t.equal(miss.status, 200, 'the first render answers 200');
  t.equal(miss.headers['x-cache'], 'MISS', 'the first render is a miss');
  // The variant is stored after the response: poll until a request finds it.
  const hit = await eventually(async () => (await freshRequest(variant)).headers['x-cache'] === 'HIT', 20_000);
  t.ok(hit, 'a later request is a cache hit');
  const missing = await freshRequest(`${url}/${unique('nothing')}_10_10.jpg`);
  t.equal(missing.status, 404, 'an unknown id is 404');

  // Health checks over fresh connections, until both workers have answered some.
  const { sent, statuses } = await healthChecks(cluster, 40);
  t.same(statuses, [200], 'every health check answers 200');
  t.equal(cluster.servingPids().length, 2, 'both workers served requests');

  const scraped = await scrapeMetrics(`${url}/metrics`);
  t.equal(scraped.status, 200, '/metrics answers 200');
  t.match(scraped.contentType, /^text\/plain/, '/metrics is Prometheus text');
  const families = scraped.families;

  // Requests by route class and status, summed across both workers.
  const requests = families.get('iaas_http_requests_total');
  t.equal(requests?.type, 'counter', 'iaas_http_requests_total is a counter');
  t.equal(total(families, 'iaas_http_requests_total', 'iaas_http_requests_total', { route: 'health', status: '200' }), sent, 'health requests of both workers add up to the number sent');
  t.ok(total(families, 'iaas_http_requests_total', 'iaas_http_requests_total', { route: 'token', status: '200' }) >= 1, 'token requests are counted');
  t.equal(total(families, 'iaas_http_requests_total', 'iaas_http_requests_total', { route: 'upload', status: '200' }), 1, 'the upload is counted');
  t.ok(total(families, 'iaas_http_requests_total', 'iaas_http_requests_total', { route: 'variant', status: '200' }) >= 2, 'variant requests are counted');
  t.ok(total(families, 'iaas_http_requests_total', 'iaas_http_requests_total', { route: 'variant', status: '404' }) >= 1, 'the 404 is counted');

  // Render durations: a histogram by output format and fit.
  t.equal(families.get('iaas_render_duration_seconds')?.type, 'histogram', 'iaas_render_duration_seconds is a histogram');
  const renders = total(families, 'iaas_render_duration_seconds', 'iaas_render_duration_seconds_count', { format: 'jpeg', fit: 'clip' });
  t.ok(renders >= 1, 'the render is counted by format and fit');
  t.equal(total(families, 'iaas_render_duration_seconds', 'iaas_render_duration_seconds_bucket', { format: 'jpeg', fit: 'clip', le: '+Inf' }), renders, 'the +Inf bucket holds every render');
  t.ok(total(families, 'iaas_render_duration_seconds', 'iaas_render_duration_seconds_sum', { format: 'jpeg', fit: 'clip' }) > 0, 'render time adds up');

  // The machine's render queue, by priority, and its slots: gauges from the primary's broker.
  t.equal(families.get('iaas_render_queue_depth')?.type, 'gauge', 'iaas_render_queue_depth is a gauge');
  t.same(families.get('iaas_render_queue_depth')?.samples.map((s) => s.labels.priority).sort(), ['background', 'foreground'], 'one value per priority, for the machine');
  t.equal(total(families, 'iaas_render_slots', 'iaas_render_slots'), 1, 'the machine has POOL_SIZE=1 render slot, whatever the number of workers');
  t.ok(total(families, 'iaas_render_slots_in_use', 'iaas_render_slots_in_use') >= 0, 'slots in use are reported');
  t.ok(families.has('iaas_render_wait_estimate_seconds'), 'the wait estimate is reported');
  t.ok(total(families, 'iaas_render_admissions_total', 'iaas_render_admissions_total', { outcome: 'granted' }) >= 2, 'granted slots are counted (the upload and the miss)');
  t.equal(families.get('iaas_render_pool_utilization')?.type, 'gauge', 'iaas_render_pool_utilization is a gauge');
  const utilization = total(families, 'iaas_render_pool_utilization', 'iaas_render_pool_utilization');
  t.ok(utilization >= 0 && utilization <= 1, 'utilization is a share');

  // Cache hits and misses (and redirects, which need S3).
  t.equal(families.get('iaas_cache_requests_total')?.type, 'counter', 'iaas_cache_requests_total is a counter');
  const hits = total(families, 'iaas_cache_requests_total', 'iaas_cache_requests_total', { outcome: 'hit' });
  const misses = total(families, 'iaas_cache_requests_total', 'iaas_cache_requests_total', { outcome: 'miss' });
  t.ok(hits >= 1, 'cache hits are counted');
  t.ok(misses >= 1, 'cache misses are counted');

  // Uploads and bytes.
  t.equal(total(families, 'iaas_uploads_total', 'iaas_uploads_total'), 1, 'one upload is counted');
  t.ok(total(families, 'iaas_upload_bytes_total', 'iaas_upload_bytes_total') > 0, 'uploaded bytes are counted');

  // Tokens issued and consumed.
  t.equal(total(families, 'iaas_tokens_total', 'iaas_tokens_total', { event: 'issued' }), 1, 'the issued token is counted');
  t.equal(total(families, 'iaas_tokens_total', 'iaas_tokens_total', { event: 'consumed' }), 1, 'the consumed token is counted');

  // The memory libvips tracks.
  t.ok(families.has('iaas_libvips_memory_bytes'), 'iaas_libvips_memory_bytes is reported');
  t.ok(total(families, 'iaas_libvips_memory_highwater_bytes', 'iaas_libvips_memory_highwater_bytes') > 0, 'the libvips memory high-water mark is above zero after a render');

  // The stats line: one JSON entry per interval with the cluster-wide totals.
  // The first line logged after the hit: it counts everything done before it.
  const stats = await cluster.waitForLog((line) => line.message === 'stats' && ((line.stats as { hits?: number } | undefined)?.hits ?? 0) >= 1, 15_000);
  const fields = stats.stats as Record<string, unknown>;
  for (const field of ['hits', 'misses', 'uploads', 'uptime', 'generationsPerMinute', 'cacheHitRatio']) {
    t.ok(field in fields, `the stats line has ${field}`);
  }
  t.ok(Number(fields.hits) >= 1, 'the stats line counts hits');
  t.ok(Number(fields.misses) >= 1, 'the stats line counts misses');
  t.equal(fields.uploads, 1, 'the stats line counts the upload');
  t.ok(typeof fields.uptime === 'number' && fields.uptime >= 0, 'the stats line has the uptime in seconds');
  t.ok(typeof fields.cacheHitRatio === 'number' && fields.cacheHitRatio > 0 && fields.cacheHitRatio < 1, 'the hit ratio is a share');
  t.equal(stats.role, 'primary', 'the primary logs the stats line once for the cluster');

  t.equal(await cluster.stop(), 0, 'the cluster exits 0 on SIGTERM');
});

t.test('with METRICS_PORT the metrics move to their own port and leave the public one', async (t) => {
  let cluster: Cluster;
  try {
    cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1', METRICS_PORT: '0' }, { timeoutMs: 60_000 });
  } catch (error) {
    t.fail(`the cluster did not start: ${(error as Error).message}`);
    return;
  }
  t.teardown(() => cluster.stop());
  const announced = await cluster.waitForLog((line) => typeof line.metricsPort === 'number', 10_000);
  const metricsPort = Number(announced.metricsPort);
  t.ok(metricsPort > 0 && metricsPort !== cluster.port, 'the metrics port is its own');

  const { sent, statuses } = await healthChecks(cluster, 10);
  t.same(statuses, [200], 'every health check answers 200');
  t.equal(cluster.servingPids().length, 2, 'both workers served requests');

  const scraped = await scrapeMetrics(`http://127.0.0.1:${metricsPort}/metrics`);
  t.equal(scraped.status, 200, 'METRICS_PORT serves /metrics');
  t.equal(total(scraped.families, 'iaas_http_requests_total', 'iaas_http_requests_total', { route: 'health', status: '200' }), sent, 'it reports the workers\' requests');
  t.ok(scraped.families.has('iaas_render_duration_seconds'), 'it reports the render histogram');

  const other = await freshRequest(`http://127.0.0.1:${metricsPort}/other`);
  t.equal(other.status, 404, 'the metrics port serves nothing else');

  const publicScrape = await freshRequest(`${cluster.url}/metrics`);
  t.ok(publicScrape.status === 404 || publicScrape.status === 400, `the public port no longer serves /metrics (got ${publicScrape.status})`);
  t.notMatch(publicScrape.body.toString('utf8'), /iaas_http_requests_total/, 'no metric leaks on the public port');

  const started = Date.now();
  t.equal(await cluster.stop(), 0, 'the cluster exits 0 on SIGTERM');
  t.comment(`stopped in ${Date.now() - started} ms`);
});

t.test('what a worker counted survives its crash: the primary keeps the totals', async (t) => {
  const cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1' }, { timeoutMs: 60_000 });
  t.teardown(() => cluster.stop());
  // Tokens over fresh connections, until both workers have issued some.
  let issued = 0;
  while (issued < 20 || cluster.servingPids().length < 2) {
    const answer = await freshRequest(`${cluster.url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: unique('crash') }) });
    if (answer.status === 200) issued++;
    if (issued > 200) break;
  }
  const counted = async () => total((await scrapeMetrics(`${cluster.url}/metrics`)).families, 'iaas_tokens_total', 'iaas_tokens_total', { event: 'issued' });
  t.ok(await eventually(async () => (await counted()) === issued, 10_000), `the cluster counts ${issued} tokens`);
  const victim = cluster.servingPids()[0] ?? 0;
  process.kill(victim, 'SIGKILL');
  await cluster.waitForLog((line) => line.message === 'worker exited; respawning' && line.worker === victim, 10_000);
  await cluster.waitForLog((line) => line.message === 'worker ready' && line.worker !== victim && cluster.logs().indexOf(line) > cluster.logs().findIndex((l) => l.message === 'worker exited; respawning'), 30_000);
  t.ok(await eventually(async () => (await counted()) === issued, 10_000), `after worker ${victim} was killed and replaced, still ${issued}`);
});

t.test('a flood of /metrics costs one aggregation a second, and every scrape is answered', async (t) => {
  const cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1' }, { timeoutMs: 60_000 });
  t.teardown(() => cluster.stop());
  const aggregations = async () => total((await scrapeMetrics(`${cluster.url}/metrics`)).families, 'iaas_metrics_aggregations_total', 'iaas_metrics_aggregations_total');
  const before = await aggregations();
  const started = Date.now();
  const scrapes = await Promise.all(Array.from({ length: 200 }, () => freshRequest(`${cluster.url}/metrics`)));
  const seconds = (Date.now() - started) / 1000;
  t.same([...new Set(scrapes.map((s) => s.status))], [200], '200 scrapes at once: every one answered 200');
  const after = await aggregations();
  t.ok(after - before <= Math.ceil(seconds) + 2, `${after - before} aggregations for 200 scrapes over ${seconds.toFixed(1)} s`);
});
