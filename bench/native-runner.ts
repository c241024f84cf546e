/**
 * One contender of the native benchmark, in its own process so that the two
 * never share libvips' global state (threads, cache). Prints one JSON line.
 *
 *   node dist/bench/native-runner.js --contender iaas|sharp --task NAME --inflight N --ms N --input FILE
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createRenderPool, type RenderOptions } from '../src/index.js';
import { percentile } from '../test/helpers/measure.js';

export interface RunnerResult {
  contender: string;
  task: string;
  inflight: number;
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50: number;
  p99: number;
  cpuPercent: number;
}

/** The tasks, described once for both contenders so they do the same work. */
export const TASKS: Record<string, { iaas: RenderOptions; describe: string }> = {
  canonical: {
    iaas: { width: 720, height: 720, fit: 'clip', format: 'jpeg', quality: 80 },
    describe: '2725x2225 JPEG -> 720x588 progressive JPEG q80, lanczos3',
  },
  'crop-webp': {
    iaas: { width: 200, height: 200, fit: 'crop', format: 'webp', quality: 80 },
    describe: 'centre crop to 200x200 WebP q80',
  },
  blur: {
    iaas: { width: 720, height: 720, fit: 'clip', format: 'jpeg', quality: 80, blur: { sigma: 2 } },
    describe: '720x588 JPEG q80 with a sigma 2 blur',
  },
};

type Op = () => Promise<unknown>;

async function iaasOp(input: Uint8Array, task: string, inflight: number): Promise<{ op: Op; close: () => Promise<void> }> {
  const pool = createRenderPool({ size: inflight, queueLimit: inflight, vipsConcurrency: 1, timeoutMs: 0 });
  await pool.ready();
  const options = TASKS[task]?.iaas ?? {};
  // sharp reads the same Buffer every time without a copy; the pool does the same with a SharedArrayBuffer.
  const shared = new Uint8Array(new SharedArrayBuffer(input.byteLength));
  shared.set(input);
  return { op: () => pool.render(shared, options), close: () => pool.close() };
}

async function sharpOp(input: Uint8Array, task: string): Promise<{ op: Op; close: () => Promise<void> }> {
  const { default: sharp } = await import('sharp');
  // Same settings as the addon: one libvips thread per image, no operation cache.
  sharp.concurrency(1);
  sharp.cache(false);
  const buffer = Buffer.from(input);
  const ops: Record<string, Op> = {
    canonical: () =>
      sharp(buffer).resize(720, 720, { fit: 'inside', kernel: 'lanczos3' }).jpeg({ quality: 80, progressive: true }).toBuffer(),
    'crop-webp': () => sharp(buffer).resize(200, 200, { fit: 'cover' }).webp({ quality: 80, effort: 4 }).toBuffer(),
    blur: () =>
      sharp(buffer).resize(720, 720, { fit: 'inside' }).blur(2).jpeg({ quality: 80, progressive: true }).toBuffer(),
  };
  const op = ops[task];
  if (!op) throw new Error(`unknown task ${task}`);
  return { op, close: async () => {} };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      contender: { type: 'string' },
      task: { type: 'string', default: 'canonical' },
      inflight: { type: 'string', default: '1' },
      ms: { type: 'string', default: '3000' },
      input: { type: 'string' },
    },
  });
  const contender = values.contender ?? 'iaas';
  const task = values.task ?? 'canonical';
  const inflight = Number(values.inflight);
  const ms = Number(values.ms);
  if (!values.input) throw new Error('--input is required');
  const input = new Uint8Array(readFileSync(values.input));
  const { op, close } = contender === 'sharp' ? await sharpOp(input, task) : await iaasOp(input, task, inflight);

  // Warm-up: not measured.
  await Promise.all(Array.from({ length: inflight * 2 }, () => op()));

  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + ms;
  async function lane(): Promise<void> {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await op();
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  await close();
  const result: RunnerResult = {
    contender,
    task,
    inflight,
    ops: latencies.length,
    seconds,
    opsPerSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
