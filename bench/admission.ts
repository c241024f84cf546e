/**
 * `npm run bench:admission`: what a render pays for machine-wide admission.
 * The broker runs in this process as the cluster primary hosts it, and a
 * forked process asks it for slots over its IPC channel with the worker's
 * own AdmissionClient: admit, wait for the grant, release, one at a time.
 * The round trip is the whole cost a granted render adds (a render costs
 * 30-300 ms). Saves bench/results/admission-<date>-<sha>.json.
 *
 *   npm run bench:admission [-- --quick] [-- --no-save]
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BrokerHost } from '../src/admission/host.js';
import { isAdmissionMessage, type ToBroker } from '../src/admission/protocol.js';
import { machineInfo, type MachineInfo } from './lib/machine.js';
import { runIfMain, saveReport } from './lib/results.js';
import { percentile } from '../test/helpers/measure.js';
import { round } from './lib/stats.js';

export interface AdmissionReport {
  kind: 'admission';
  machine: MachineInfo;
  /** Sequential admit-grant-release round trips measured (after a warm-up). */
  samples: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

export async function runAdmissionBench(samples: number): Promise<AdmissionReport> {
  const host = new BrokerHost({ slots: 2, queueLimit: 1000, queueWaitMs: 2000, backgroundLimit: 1000, negativeTtlMs: 0, negativeEntries: 10 });
  const child = fork(path.join(here, 'admission-runner.js'), [String(samples)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  host.attach('worker', (message) => child.connected && child.send(message));
  const result = await new Promise<number[]>((resolve, reject) => {
    child.on('message', (message: unknown) => {
      if (isAdmissionMessage(message)) return host.receive('worker', message as ToBroker);
      const done = message as { times?: number[] };
      if (done.times) resolve(done.times);
    });
    child.on('exit', (code) => reject(new Error(`the admission runner exited with ${code}`)));
  });
  child.kill();
  host.detach('worker');
  return {
    kind: 'admission',
    machine: machineInfo(),
    samples: result.length,
    p50Ms: round(percentile(result, 50), 3),
    p99Ms: round(percentile(result, 99), 3),
    meanMs: round(result.reduce((a, b) => a + b, 0) / result.length, 3),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'no-save': { type: 'boolean', default: false } } });
  const report = await runAdmissionBench(values.quick ? 500 : 20_000);
  console.log(`admission round trip over IPC (admit, grant, release), ${report.samples} samples: p50 ${report.p50Ms} ms, p99 ${report.p99Ms} ms, mean ${report.meanMs} ms`);
  if (!values['no-save']) saveReport('admission', report);
}

runIfMain(import.meta.url, main);
