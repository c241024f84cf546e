/**
 * AVIF as a denial of service, measured: four clients (one address,
 * 127.0.0.2) loop on the most expensive AVIF request the service allows (the
 * largest in-bounds size, a new one each time so the cache never answers),
 * while an ordinary client (127.0.0.3) asks for ordinary misses one after the
 * other. Its p50 under the flood is compared with its p50 alone.
 */
import { Agent, request } from 'node:http';
import { missPath, PHOTO_ID } from '../lib/plan.js';
import { startIaas, uploadPhoto } from '../lib/service.js';
import { percentile } from '../../test/helpers/measure.js';
import type { AvifFloodResult } from '../lib/types.js';
import { started, type BenchContext } from './context.js';

const FLOOD_ADDRESS = '127.0.0.2';
const ORDINARY_ADDRESS = '127.0.0.3';
const FLOODERS = 4;

/** One GET from `localAddress`; resolves with the status and the time it took. */
function timed(agent: Agent, base: string, path: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const url = new URL(base);
    const req = request({ agent, host: url.hostname, port: url.port, path }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end();
  });
}

/** The n-th largest in-bounds AVIF of the photo: a 2048 px box, a new height each time (the output stays 2048 wide). */
function avifPath(n: number): string {
  return `/${PHOTO_ID}_2048_${1700 + n}.avif`;
}

export async function runAvifFloodScenario(ctx: BenchContext): Promise<AvifFloodResult> {
  const s = ctx.settings;
  ctx.progress.step('starting iaas');
  const service = await started(ctx, startIaas({ label: 'avif-flood', root: ctx.root }));
  try {
    await uploadPhoto(service.url, ctx.photo.bytes);
    const ordinary = new Agent({ keepAlive: true, maxSockets: 1, localAddress: ORDINARY_ADDRESS });
    const flood = new Agent({ keepAlive: true, maxSockets: FLOODERS, localAddress: FLOOD_ADDRESS });
    let cursor = 0;
    const misses = async (until: () => boolean) => {
      const times: number[] = [];
      let failed = 0;
      while (until()) {
        const answer = await timed(ordinary, service.url, missPath(cursor++));
        if (answer.status === 200) times.push(answer.ms);
        else failed++;
      }
      return { times, failed };
    };
    // Warm-up, then the ordinary client alone.
    await misses(((n) => () => n-- > 0)(5));
    ctx.progress.step('the ordinary client alone');
    const aloneUntil = performance.now() + s.avifFlood.seconds * 1000;
    const alone = await misses(() => performance.now() < aloneUntil);

    ctx.progress.step(`${FLOODERS} clients looping on 2048 px AVIFs, and the ordinary client`);
    let stop = false;
    let floodCursor = 0;
    const floodAnswers: Record<string, number> = {};
    const flooders = Array.from({ length: FLOODERS }, async () => {
      while (!stop) {
        const answer = await timed(flood, service.url, avifPath(floodCursor++));
        floodAnswers[answer.status] = (floodAnswers[answer.status] ?? 0) + 1;
      }
    });
    // Let the flood take hold (and the broker learn what AVIF costs) before measuring.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const loadedUntil = performance.now() + s.avifFlood.seconds * 1000;
    const loaded = await misses(() => performance.now() < loadedUntil);
    stop = true;
    await Promise.all(flooders);
    ordinary.destroy();
    flood.destroy();
    const result: AvifFloodResult = {
      flooders: FLOODERS,
      aloneP50: percentile(alone.times, 50),
      aloneCount: alone.times.length,
      floodedP50: percentile(loaded.times, 50),
      floodedP99: percentile(loaded.times, 99),
      floodedCount: loaded.times.length,
      ordinaryFailed: alone.failed + loaded.failed,
      floodAnswers,
      seconds: s.avifFlood.seconds,
    };
    ctx.notes.push(
      `avif-flood: the ordinary client's miss p50 ${result.aloneP50.toFixed(0)} ms alone (${result.aloneCount} misses), ${result.floodedP50.toFixed(0)} ms beside ${FLOODERS} clients looping on 2048 px AVIFs (${result.floodedCount} misses, p99 ${result.floodedP99.toFixed(0)} ms); the flood got ${JSON.stringify(floodAnswers)}`,
    );
    return result;
  } finally {
    await ctx.resources.release(service);
  }
}
