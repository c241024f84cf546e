/**
 * The floor of the miss path: the same renders through the same render pool,
 * with the same number in flight, but no HTTP, routing or store. The gap to
 * the miss path is what those cost. One process of the floor stands for one
 * cluster worker (the harness runs WORKERS of them at once, each with a pool
 * of POOL_SIZE threads). Prints one JSON line: a LoadResult with client
 * `direct` and, for merging, every latency.
 *
 *   node dist/bench/floor-runner.js --input FILE --pool 1 --inflight 2 --warmup 2 --duration 20 --start 0
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRenderPool, type RenderOptions } from '../src/index.js';
import { JPEG_QUALITY, missSize } from './lib/plan.js';
import { directResult } from './lib/stats.js';
import type { LoadResult } from './lib/types.js';

/** The options iaas' miss path passes to the pool for a `/{id}_{w}_{h}.jpg?quality=80` (see src/images/variants.ts). */
export function missRenderOptions(n: number): RenderOptions {
  const { width, height } = missSize(n);
  return { width, height, fit: 'clip', format: 'jpeg', quality: JPEG_QUALITY, maxInputPixels: 50_000_000, timeoutMs: 10_000 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      input: { type: 'string' },
      pool: { type: 'string', default: '2' },
      inflight: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '2' },
      duration: { type: 'string', default: '20' },
      start: { type: 'string', default: '0' },
    },
  });
  if (!values.input) throw new Error('--input is required');
  const input = new Uint8Array(readFileSync(values.input));
  const size = Number(values.pool);
  const inflight = Number(values.inflight);
  // The service's default queue (at least 8) never refuses these few in flight; neither may the floor's.
  const pool = createRenderPool({ size, queueLimit: Math.max(8, inflight), vipsConcurrency: 1, timeoutMs: 10_000 });
  await pool.ready();
  let n = Number(values.start);

  async function lanes(seconds: number, latencies: number[] | undefined): Promise<number> {
    const deadline = performance.now() + seconds * 1000;
    let bytes = 0;
    await Promise.all(
      Array.from({ length: inflight }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          // A copy per render: the pool transfers (detaches) what it is given, as in the service.
          const result = await pool.render(input.slice(), missRenderOptions(n++));
          latencies?.push(performance.now() - t0);
          bytes += result.data.byteLength;
        }
      }),
    );
    return bytes;
  }

  // Warm-up included, as in the service's reading: the same bias on both sides.
  const cpuAtStart = process.cpuUsage();
  await lanes(Number(values.warmup), undefined);
  const latencies: number[] = [];
  const started = performance.now();
  const bytes = await lanes(Number(values.duration), latencies);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  await pool.close();
  const result: LoadResult & { latencies: number[]; cpuMs: number } = {
    ...directResult(latencies, seconds, bytes / seconds, n),
    latencies,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
