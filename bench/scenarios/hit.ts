/**
 * Scenario 2, the hit path: one cached variant requested again and again, at
 * two sizes (a 120x120 thumbnail and a 720 px image). Contenders: iaas (a
 * 200 X-Cache: HIT from DATA_DIR/cache), the Node peer (the file read from its
 * cache folder), and nginx serving iaas' very cache file statically. Each is
 * measured with autocannon and, when installed, wrk: autocannon saturates
 * long before these servers do.
 */
import { runAutocannon, runWrk } from '../lib/load.js';
import { HIT_SIZES, PHOTO_ID, variantPath } from '../lib/plan.js';
import { alternate } from '../lib/rounds.js';
import { primeCache, startIaas, uploadPhoto } from '../lib/service.js';
import { getBytes } from '../../test/helpers/http.js';
import { startNginx } from '../peers/nginx.js';
import { startNodePeer } from '../peers/launch.js';
import { nodePeerOptions, started, startContenders, type BenchContext } from './context.js';

/** Measures one contender on one fixed path with every client, for one round. */
export async function measureFixed(
  ctx: BenchContext,
  scenario: string,
  contender: string,
  url: string,
  pathAndQuery: string,
  successClasses: number[],
): Promise<void> {
  const s = ctx.settings;
  const connections = s.connections.hit;
  const ac = await runAutocannon({
    url,
    connections,
    warmupSeconds: s.warmupSeconds,
    durationSeconds: s.durationSeconds,
    plan: { kind: 'fixed', path: pathAndQuery },
    successClasses,
  });
  ctx.collector.add(scenario, contender, connections, ac);
  if (!s.wrk) return;
  const wrk = await runWrk({
    wrk: s.wrk,
    scriptDir: ctx.root,
    url,
    pathAndQuery,
    connections,
    threads: s.wrkThreads,
    warmupSeconds: s.wrkWarmupSeconds,
    durationSeconds: s.wrkDurationSeconds,
  });
  ctx.collector.add(scenario, contender, connections, wrk);
}

/** The bytes iaas serves for a cached variant: what nginx then serves as a static file. */
async function cachedBytes(url: string, pathAndQuery: string): Promise<Uint8Array> {
  const response = await fetch(`${url}${pathAndQuery}`);
  if (response.status !== 200) throw new Error(`iaas answered ${response.status} for ${pathAndQuery}`);
  return new Uint8Array(await response.arrayBuffer());
}

export async function runHitScenario(ctx: BenchContext): Promise<void> {
  const s = ctx.settings;
  const { progress, resources } = ctx;
  progress.step('starting iaas and the Node peer; rendering the variants once');
  const { service, peer } = await startContenders(ctx, { service: startIaas({ label: 'hit', root: ctx.root }), peer: startNodePeer(nodePeerOptions(ctx)) });
  await uploadPhoto(service.url, ctx.photo.bytes);
  const bodies: Record<string, Record<string, number>> = { iaas: {}, 'node-peer': {}, nginx: {} };
  const files: Record<string, Uint8Array> = {};
  for (const size of HIT_SIZES) {
    const pathAndQuery = variantPath(size.width, size.height);
    (bodies.iaas as Record<string, number>)[size.name] = await primeCache(service.url, pathAndQuery, 'hit');
    (bodies['node-peer'] as Record<string, number>)[size.name] = await primeCache(peer.url, pathAndQuery, 'hit');
    // nginx serves the bytes of iaas' cache hit, under the same URL path (it ignores the query).
    files[`${PHOTO_ID}_${size.width}_${size.height}.jpg`] = await cachedBytes(service.url, pathAndQuery);
  }
  let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
  if (s.nginx) {
    nginx = await started(ctx, startNginx(s.nginx, { root: ctx.root, mode: 'static', files, workers: s.defaultSplit.workers }));
    for (const size of HIT_SIZES) {
      const answer = await getBytes(`${nginx.url}${variantPath(size.width, size.height)}`);
      if (answer.status !== 200) throw new Error(`nginx static answered ${answer.status}`);
      (bodies.nginx as Record<string, number>)[size.name] = answer.body.byteLength;
    }
  } else {
    ctx.notes.push('nginx not installed: no static-file reference for the hit path (apt-get install nginx)');
  }
  if (!s.wrk) ctx.notes.push('wrk not installed: apt-get install wrk (hit-path ratios rest on autocannon alone, which saturates first)');
  const servers: Record<string, string> = { iaas: service.url, 'node-peer': peer.url, ...(nginx ? { nginx: nginx.url } : {}) };
  const contenders = Object.keys(servers);
  try {
    for (const size of HIT_SIZES) {
      const scenario = `hit-${size.name}`;
      for (let r = 0; r < s.rounds; r++) {
        for (const contender of alternate(contenders, r)) {
          progress.step(`${size.width}x${size.height}: ${contender}, autocannon${s.wrk ? ' then wrk' : ''}, round ${r + 1}/${s.rounds}`);
          await measureFixed(ctx, scenario, contender, servers[contender] as string, variantPath(size.width, size.height), [2]);
        }
      }
      for (const contender of contenders) {
        const bodyBytes = bodies[contender]?.[size.name];
        for (const client of ['autocannon', 'wrk'] as const) ctx.collector.annotate(scenario, contender, client, { ...(bodyBytes !== undefined ? { bodyBytes } : {}) });
      }
    }
  } finally {
    for (const server of [nginx, peer, service]) if (server) await resources.release(server);
  }
}
