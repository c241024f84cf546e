/**
 * Saving a standalone bench's report and running its `main`: what
 * `bench:native`, `bench:admission` and `bench:copy-formats` share.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resultStamp, type MachineInfo } from './machine.js';

/** bench/results in the source tree (this file runs from dist/bench/lib). */
export const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results');

/** Writes `report` to bench/results/<prefix>-<date>-<sha>.json and says where. */
export function saveReport(prefix: string, report: { machine: MachineInfo }): string {
  const out = path.join(RESULTS_DIR, `${prefix}-${resultStamp(report.machine)}.json`);
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`saved ${path.relative(process.cwd(), out)}`);
  return out;
}

/** Runs `main` when `moduleUrl` is the script node was started with; exits 1 on a failure. */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
