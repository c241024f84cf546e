/**
 * `npm run bench:compare`: the newest result in bench/results against the one
 * before it (or two named files): the change of every scenario's throughput
 * and p99, and of every ratio. A ratio that moved more than 10% the wrong way
 * is flagged as a REGRESSION, and the exit status is then 1.
 *
 *   npm run bench:compare [-- OLD.json NEW.json]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ms, table } from './lib/report.js';
import { LOWER_IS_BETTER } from './lib/targets.js';
import type { BenchResult, Measurement, RatioResult } from './lib/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.resolve(here, '..', '..', 'bench', 'results');

/** A ratio moving more than this the wrong way is a regression. */
export const REGRESSION_THRESHOLD = 0.1;


export interface RatioChange {
  id: string;
  label: string;
  old: number | null;
  new: number | null;
  /** new / old - 1, signed so that negative is worse. */
  better: number | null;
  oldStatus: string;
  newStatus: string;
  regression: boolean;
}

export interface ScenarioChange {
  key: string;
  oldRps: number;
  newRps: number;
  rpsChange: number;
  oldP99: number;
  newP99: number;
  p99Change: number;
}

/** Full HTTP results in the folder, oldest first (names start with the ISO date). */
export function resultFiles(dir = RESULTS_DIR): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /^\d{4}-\d{2}-\d{2}T.*\.json$/.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

export function loadResult(file: string): BenchResult {
  const value = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  if (value.kind !== 'http-bench') throw new Error(`${file} is not a result of npm run bench`);
  return value;
}

function key(m: Measurement): string {
  return `${m.scenario} ${m.contender} ${m.client}`;
}

/** Per-scenario changes, for measurements present in both results. */
export function compareScenarios(before: BenchResult, after: BenchResult): ScenarioChange[] {
  const old = new Map(before.measurements.map((m) => [key(m), m]));
  const out: ScenarioChange[] = [];
  for (const m of after.measurements) {
    const o = old.get(key(m));
    if (!o) continue;
    out.push({
      key: key(m),
      oldRps: o.summary.rps,
      newRps: m.summary.rps,
      rpsChange: m.summary.rps / o.summary.rps - 1,
      oldP99: o.summary.latency.p99,
      newP99: m.summary.latency.p99,
      p99Change: m.summary.latency.p99 / o.summary.latency.p99 - 1,
    });
  }
  return out;
}

/** Per-ratio changes; a regression is a move of more than 10% the wrong way, or MET turned MISSED. */
export function compareRatios(before: BenchResult, after: BenchResult): RatioChange[] {
  const old = new Map(before.ratios.map((r) => [r.id, r]));
  return after.ratios.map((r: RatioResult) => {
    const o = old.get(r.id);
    const oldValue = o?.value ?? null;
    let better: number | null = null;
    if (oldValue !== null && r.value !== null && oldValue > 0) {
      const change = r.value / oldValue - 1;
      better = LOWER_IS_BETTER.has(r.id) ? -change : change;
    }
    const flipped = o?.status === 'MET' && r.status === 'MISSED';
    return {
      id: r.id,
      label: r.label,
      old: oldValue,
      new: r.value,
      better,
      oldStatus: o?.status ?? '-',
      newStatus: r.status,
      regression: (better !== null && better < -REGRESSION_THRESHOLD) || flipped,
    };
  });
}

function pct(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)}%`;
}

/** The report text and whether it found a regression. */
export function formatComparison(before: BenchResult, after: BenchResult, names: [string, string]): { text: string; regressions: number } {
  const lines = [`before: ${names[0]} (${before.machine.date}, ${before.machine.gitSha})`, `after:  ${names[1]} (${after.machine.date}, ${after.machine.gitSha})`];
  if (before.machine.cores !== after.machine.cores || before.machine.cpuModel !== after.machine.cpuModel) {
    lines.push(`warning: different machines (${before.machine.cores}x ${before.machine.cpuModel} vs ${after.machine.cores}x ${after.machine.cpuModel})`);
  }
  if (before.config.quick !== after.config.quick) lines.push('warning: comparing a --quick run with a full run');
  const scenarios = compareScenarios(before, after);
  lines.push('', 'Scenarios (median req/s and p99)');
  lines.push(
    table(
      [['scenario contender client', 'req/s before', 'after', 'change', 'p99 before', 'after', 'change'], ...scenarios.map((s) => [s.key, s.oldRps.toFixed(1), s.newRps.toFixed(1), pct(s.rpsChange), ms(s.oldP99), ms(s.newP99), pct(s.p99Change)])],
      new Set([1, 2, 3, 4, 5, 6]),
    ),
  );
  const ratios = compareRatios(before, after);
  lines.push('', `Ratios (a move of more than ${REGRESSION_THRESHOLD * 100}% the wrong way is a regression)`);
  lines.push(
    table(
      [['target', 'before', 'after', 'better by', 'status', ''], ...ratios.map((r) => [r.label, r.old?.toFixed(3) ?? '-', r.new?.toFixed(3) ?? '-', pct(r.better), `${r.oldStatus} -> ${r.newStatus}`, r.regression ? 'REGRESSION' : ''])],
      new Set([1, 2, 3]),
    ),
  );
  const regressions = ratios.filter((r) => r.regression).length;
  lines.push('', regressions ? `${regressions} regression(s)` : 'no regression');
  return { text: lines.join('\n'), regressions };
}

function main(): number {
  const args = process.argv.slice(2).filter((a) => a !== '--');
  let files: [string, string];
  if (args.length === 2) files = [args[0] as string, args[1] as string];
  else if (args.length === 0) {
    const all = resultFiles();
    if (all.length < 2) {
      console.error(`bench:compare needs two results in ${path.relative(process.cwd(), RESULTS_DIR)} (found ${all.length}); run npm run bench, or name two files`);
      return 2;
    }
    files = [all[all.length - 2] as string, all[all.length - 1] as string];
  } else {
    console.error('usage: npm run bench:compare [-- OLD.json NEW.json]');
    return 2;
  }
  const { text, regressions } = formatComparison(loadResult(files[0]), loadResult(files[1]), [path.basename(files[0]), path.basename(files[1])]);
  console.log(text);
  return regressions > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(main());
