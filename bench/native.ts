/**
 * `npm run bench:native`: the addon against sharp 0.35 on sharp's published
 * task, both on the same libvips 8.18.7, one libvips thread per image, with
 * 1 and 2 renders in flight. Each measurement runs in a fresh process; rounds
 * alternate which contender goes first, and the median of the rounds counts.
 *
 *   npm run bench:native [-- --quick] [-- --input FILE] [-- --rounds N] [-- --ms N]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runJsonChild } from './lib/child.js';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { runIfMain, saveReport } from './lib/results.js';
import { benchInput } from './lib/photo.js';
import { median, round } from './lib/stats.js';
import { TASKS, type RunnerResult } from './native-runner.js';

export interface NativeComparison {
  task: string;
  describe: string;
  inflight: number;
  iaasOpsPerSecond: number;
  sharpOpsPerSecond: number;
  ratio: number;
  iaasP99: number;
  sharpP99: number;
  rounds: { iaas: RunnerResult; sharp: RunnerResult }[];
}

export interface NativeReport {
  kind: 'native';
  machine: MachineInfo;
  input: string;
  msPerRun: number;
  rounds: number;
  comparisons: NativeComparison[];
  /** The target: ratio >= 1.0 with 2 in flight on the canonical task. */
  target: { task: string; inflight: number; ratio: number; met: boolean };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const runner = path.join(here, 'native-runner.js');

/** Runs the comparison and returns the report (without printing or saving). */
export async function runNativeBench(options: {
  quick?: boolean;
  input?: string;
  /** The input itself, when the caller already has it (saves synthesizing it again). */
  inputBytes?: { bytes: Uint8Array; name: string };
  rounds?: number;
  ms?: number;
  /** Only these tasks (default: all); the target task is `canonical`. */
  tasks?: string[];
  /** Renders in flight to measure (default: 1 and 2); the target is at 2. */
  inflights?: number[];
  onProgress?: (message: string) => void;
}): Promise<NativeReport> {
  const rounds = options.rounds ?? (options.quick ? 1 : 3);
  const ms = options.ms ?? (options.quick ? 1_000 : 5_000);
  const { bytes, name } = options.inputBytes ?? benchInput(options.input);
  const dir = mkdtempSync(path.join(tmpdir(), 'iaas-bench-'));
  const file = path.join(dir, 'input.jpg');
  writeFileSync(file, bytes);
  const tasks = Object.keys(TASKS).filter((task) => !options.tasks || options.tasks.includes(task));
  const plan = tasks.flatMap((task) => (options.inflights ?? [1, 2]).map((inflight) => ({ task, inflight })));
  const comparisons: NativeComparison[] = [];
  try {
    let step = 0;
    for (const { task, inflight } of plan) {
      const results: { iaas: RunnerResult; sharp: RunnerResult }[] = [];
      for (let r = 0; r < rounds; r++) {
        step++;
        const left = ((plan.length * rounds - step + 1) * 2 * (ms + 1_500)) / 1000;
        options.onProgress?.(`native ${step}/${plan.length * rounds}: ${task}, ${inflight} in flight, round ${r + 1} (~${Math.round(left)} s left)`);
        const order = r % 2 === 0 ? (['iaas', 'sharp'] as const) : (['sharp', 'iaas'] as const);
        const pair: Partial<Record<'iaas' | 'sharp', RunnerResult>> = {};
        for (const contender of order) {
          const args = ['--contender', contender, '--task', task, '--inflight', String(inflight), '--ms', String(ms), '--input', file];
          pair[contender] = await runJsonChild<RunnerResult>(runner, args);
        }
        results.push(pair as { iaas: RunnerResult; sharp: RunnerResult });
      }
      const iaasOps = median(results.map((x) => x.iaas.opsPerSecond));
      const sharpOps = median(results.map((x) => x.sharp.opsPerSecond));
      comparisons.push({
        task,
        describe: TASKS[task]?.describe ?? task,
        inflight,
        iaasOpsPerSecond: round(iaasOps),
        sharpOpsPerSecond: round(sharpOps),
        ratio: round(iaasOps / sharpOps, 3),
        iaasP99: round(median(results.map((x) => x.iaas.p99))),
        sharpP99: round(median(results.map((x) => x.sharp.p99))),
        rounds: results,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const canonical = comparisons.find((c) => c.task === 'canonical' && c.inflight === 2);
  return {
    kind: 'native',
    machine: machineInfo(),
    input: name,
    msPerRun: ms,
    rounds,
    comparisons,
    target: { task: 'canonical', inflight: 2, ratio: canonical?.ratio ?? 0, met: (canonical?.ratio ?? 0) >= 1.0 },
  };
}

/** The table a person reads. */
export function formatNativeReport(report: NativeReport): string {
  const lines = [
    `Native: iaas addon vs sharp ${'0.35'} on libvips ${report.machine.libvips} (${report.input})`,
    `${'task'.padEnd(12)} ${'in flight'.padStart(9)} ${'iaas ops/s'.padStart(11)} ${'sharp ops/s'.padStart(12)} ${'ratio'.padStart(7)} ${'p99 iaas'.padStart(9)} ${'p99 sharp'.padStart(10)}`,
  ];
  for (const c of report.comparisons) {
    lines.push(
      `${c.task.padEnd(12)} ${String(c.inflight).padStart(9)} ${c.iaasOpsPerSecond.toFixed(2).padStart(11)} ${c.sharpOpsPerSecond.toFixed(2).padStart(12)} ${c.ratio.toFixed(3).padStart(7)} ${c.iaasP99.toFixed(1).padStart(9)} ${c.sharpP99.toFixed(1).padStart(10)}`,
    );
  }
  const t = report.target;
  lines.push(`target: canonical ratio >= 1.00 with 2 in flight: ${t.ratio.toFixed(3)} ${t.met ? 'MET' : 'MISSED'}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      input: { type: 'string' },
      rounds: { type: 'string' },
      ms: { type: 'string' },
      'no-save': { type: 'boolean', default: false },
    },
  });
  const report = await runNativeBench({
    quick: values.quick,
    input: values.input,
    rounds: values.rounds ? Number(values.rounds) : undefined,
    ms: values.ms ? Number(values.ms) : undefined,
    onProgress: (message) => process.stderr.write(`${message}\n`),
  });
  console.log(formatNativeReport(report));
  if (!values['no-save']) saveReport('native', report);
}

runIfMain(import.meta.url, main);
