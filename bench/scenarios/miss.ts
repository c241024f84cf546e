/**
 * Scenario 1, the miss path: every request asks for a size of the photo not
 * rendered before, so each one renders a JPEG. Contenders: iaas, the Node
 * peer, nginx `image_filter resize` (when installed) and the floor (the
 * render pool without HTTP). Peak RSS of each server's process tree is
 * sampled while it is measured.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runJsonChild } from '../lib/child.js';
import { runAutocannon } from '../lib/load.js';
import { MISS_SEQUENCE_LENGTH, missPath } from '../lib/plan.js';
import { startRssSampler, treeThreadCpuMs, type ThreadCpu } from '../lib/proc.js';
import { alternate } from '../lib/rounds.js';
import { SERVICE_ENV, startIaas, uploadPhoto } from '../lib/service.js';
import { getBytes } from '../../test/helpers/http.js';
import { directResult, median } from '../lib/stats.js';
import type { LoadResult } from '../lib/types.js';
import { startNginx } from '../peers/nginx.js';
import { startNodePeer } from '../peers/launch.js';
import { nodePeerOptions, startContenders, type BenchContext } from './context.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const floorRunner = path.resolve(here, '..', 'floor-runner.js');

export const MISS = 'miss';

/** One request far from the measured range, to prove a contender renders before it is measured. */
export async function checkRenders(url: string, name: string, cacheHeader: boolean): Promise<void> {
  const answer = await getBytes(`${url}${missPath(MISS_SEQUENCE_LENGTH - 1)}`);
  const cache = answer.headers.get('x-cache');
  if (answer.status !== 200 || answer.body.byteLength === 0 || (cacheHeader && cache !== 'MISS')) {
    throw new Error(`${name} did not render a miss: ${answer.status}, X-Cache ${cache}, ${answer.body.byteLength} bytes`);
  }
}

/**
 * Runs the floor (the pool without HTTP) for one round: one process per
 * cluster worker, each with the worker's pool size and its share of the
 * connections, all at once and with the service's environment, so that only
 * HTTP, routing and the store separate it from the service. (A single process
 * with all the threads is slower on libvips work: see the 1xN split.)
 */
export async function runFloor(ctx: BenchContext, start: number): Promise<LoadResult & { cpuMsPerRender: number }> {
  const s = ctx.settings;
  const { workers, pool } = s.defaultSplit;
  const inflight = Math.max(1, Math.round(s.connections.miss / workers));
  const runs = await Promise.all(
    Array.from({ length: workers }, (_, i) =>
      runJsonChild<LoadResult & { latencies: number[]; cpuMs: number }>(
        floorRunner,
        [
          '--input', ctx.photo.file,
          '--pool', String(pool),
          '--inflight', String(inflight),
          '--warmup', String(s.warmupSeconds),
          '--duration', String(s.durationSeconds),
          // The floor caches nothing, so sizes may repeat; offsets only keep the processes out of step.
          '--start', String((start + i * 997) % MISS_SEQUENCE_LENGTH),
        ],
        { ...process.env, ...SERVICE_ENV },
      ),
    ),
  );
  const requests = runs.reduce((sum, r) => sum + r.requests, 0);
  const cpuMsPerRender = runs.reduce((sum, r) => sum + r.cpuMs, 0) / Math.max(1, requests);
  return { ...mergeDirect(runs, start + requests), cpuMsPerRender };
}

/** One LoadResult from the floor's processes: their rates add up, their latencies pool. */
export function mergeDirect(runs: (LoadResult & { latencies: number[] })[], nextCursor: number): LoadResult {
  const latencies = runs.flatMap((r) => r.latencies);
  const seconds = Math.max(...runs.map((r) => r.seconds));
  const rps = runs.reduce((sum, r) => sum + r.rps, 0);
  // Each process measured its own seconds: their rates add up (the pooled count over the longest run would understate them).
  return { ...directResult(latencies, seconds, runs.reduce((sum, r) => sum + r.bytesPerSecond, 0), nextCursor), rps, totalRps: rps };
}

/** CPU ms per rendered response, by thread role, over one round (warm-up included in the CPU, so a slight overestimate). */
function perRender(before: ThreadCpu, after: ThreadCpu, result: LoadResult): ThreadCpu {
  const rendered = Math.max(1, result.statusCodes['200'] ?? 0);
  const per = (role: keyof ThreadCpu) => (after[role] - before[role]) / rendered;
  return { primary: per('primary'), main: per('main'), rest: per('rest') };
}

/** The median per role over the rounds, as a note: it shows what the HTTP path adds to the render itself. */
function cpuNote(rounds: ThreadCpu[], floor: number[]): string {
  const medianOf = (role: keyof ThreadCpu) => median(rounds.map((round) => round[role]));
  const roles: (keyof ThreadCpu)[] = ['rest', 'main', 'primary'];
  const total = roles.reduce((sum, role) => sum + medianOf(role), 0);
  const parts = roles.map((role) => `${role} ${medianOf(role).toFixed(1)} ms (${((medianOf(role) / total) * 100).toFixed(0)}%)`);
  return `miss path: iaas CPU per rendered response, by thread (median of rounds; warm-up included): ${parts.join(', ')}; "main" is the workers' event loops (HTTP, routing, the store), "rest" their other threads (render pool, libvips, libuv's file I/O)${floor.length > 0 ? `; the floor used ${median(floor).toFixed(1)} ms per render` : ''}`;
}

/** Measures one HTTP contender's miss path for one round, sampling its memory. */
export async function measureMiss(ctx: BenchContext, url: string, pid: number, start: number): Promise<{ result: LoadResult; peakRss: number }> {
  const s = ctx.settings;
  const sampler = startRssSampler(pid);
  try {
    const result = await runAutocannon({
      url,
      connections: s.connections.miss,
      warmupSeconds: s.warmupSeconds,
      durationSeconds: s.durationSeconds,
      plan: { kind: 'miss', start },
      successClasses: [2],
    });
    return { result, peakRss: sampler.stop() };
  } finally {
    sampler.stop();
  }
}

export async function runMissScenario(ctx: BenchContext): Promise<void> {
  const s = ctx.settings;
  const { resources, progress } = ctx;
  progress.step(`starting iaas, the Node peer${s.nginx && s.imageFilter ? ' and nginx' : ''}`);
  const { service, peer, nginx } = await startContenders(ctx, {
    service: startIaas({ label: 'miss', root: ctx.root }),
    peer: startNodePeer(nodePeerOptions(ctx)),
    nginx:
      s.nginx && s.imageFilter
        ? startNginx(s.nginx, { root: ctx.root, mode: 'resize', files: { 'original.jpg': ctx.photo.bytes }, workers: s.defaultSplit.workers })
        : Promise.resolve(undefined),
  });
  await uploadPhoto(service.url, ctx.photo.bytes);
  await checkRenders(service.url, 'iaas', true);
  await checkRenders(peer.url, 'node peer', true);
  if (nginx) await checkRenders(nginx.url, 'nginx image_filter', false);
  const servers: Record<string, { url: string; pid: number }> = { iaas: service, 'node-peer': peer, ...(nginx ? { nginx } : {}) };
  const contenders = [...Object.keys(servers), 'floor'];
  const cpuPerRender: ThreadCpu[] = [];
  const floorCpuPerRender: number[] = [];
  // Each contender walks the size sequence from 0: the same sizes for all, none twice.
  const cursors = new Map(contenders.map((c) => [c, 0]));
  try {
    for (let r = 0; r < s.rounds; r++) {
      for (const contender of alternate(contenders, r)) {
        progress.step(`${contender}, round ${r + 1}/${s.rounds}`);
        const start = cursors.get(contender) ?? 0;
        if (contender === 'floor') {
          const { cpuMsPerRender, ...result } = await runFloor(ctx, start);
          floorCpuPerRender.push(cpuMsPerRender);
          cursors.set(contender, result.nextCursor ?? start);
          ctx.collector.add(MISS, contender, s.connections.miss, result);
          continue;
        }
        const server = servers[contender] as { url: string; pid: number };
        const cpuBefore = treeThreadCpuMs(server.pid);
        const { result, peakRss } = await measureMiss(ctx, server.url, server.pid, start);
        if (contender === 'iaas') cpuPerRender.push(perRender(cpuBefore, treeThreadCpuMs(server.pid), result));
        cursors.set(contender, result.nextCursor ?? start);
        ctx.collector.add(MISS, contender, s.connections.miss, result);
        ctx.collector.annotate(MISS, contender, 'autocannon', { peakRssBytes: peakRss });
      }
    }
  } finally {
    for (const server of [nginx, peer, service]) if (server) await resources.release(server);
  }
  const { workers, pool } = s.defaultSplit;
  ctx.collector.annotate(MISS, 'floor', 'direct', {
    notes: [`${workers} processes x pool of ${pool}, ${Math.max(1, Math.round(s.connections.miss / workers))} in flight each, no HTTP`],
  });
  if (cpuPerRender.length > 0) ctx.notes.push(cpuNote(cpuPerRender, floorCpuPerRender));
  if (!nginx) ctx.notes.push(s.nginx ? 'nginx image_filter module missing: apt-get install libnginx-mod-http-image-filter' : 'nginx not installed: no nginx reference (apt-get install nginx libnginx-mod-http-image-filter)');
}
