/**
 * The summary a person reads: machine and settings, the native comparison,
 * one table of every HTTP measurement (median of the rounds), the cluster
 * splits and the memory check, then every target with its ratio, what it
 * must reach, and MET, MISSED or N/A with the reason.
 */
import { formatNativeReport } from '../native.js';
import { evidentLimit } from './targets.js';
import type { BenchResult, Measurement, RatioResult } from './types.js';

/** Milliseconds with as many decimals as their size deserves; `-` for none. */
export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '-';
  if (value < 1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  return value.toFixed(1);
}

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${(bytes / 2 ** 20).toFixed(0)}M`;
}

function kb(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  return bytes >= 1024 * 1024 ? `${(bytes / 2 ** 20).toFixed(1)}MB` : `${(bytes / 1024).toFixed(1)}KB`;
}

function rps(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

/** A plain text table: first row is the header, columns padded (text left, numbers right). */
export function table(rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => row.map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
    .join('\n');
}

/** Sort key: scenarios in run order, then contenders. */
const SCENARIO_ORDER = ['miss', 'hit-thumb', 'hit-720', 'redirect-thumb', 'redirect-720', 'upload'];
const CONTENDER_ORDER = ['iaas', 'node-peer', 'nginx', 'floor'];

function order(m: Measurement): number {
  const s = SCENARIO_ORDER.indexOf(m.scenario);
  const c = CONTENDER_ORDER.indexOf(m.contender);
  return (s === -1 ? 50 : s) * 100 + (c === -1 ? 9 : c) * 10 + (m.client === 'wrk' ? 1 : 0);
}

/** Failed answers by status, e.g. `503x17` (success is 2xx, and 3xx where a redirect is the answer). */
export function failedCodes(m: Measurement): string {
  const redirectOk = m.scenario.startsWith('redirect');
  return Object.entries(m.summary.statusCodes)
    .filter(([code]) => !code.startsWith('2') && !(redirectOk && code.startsWith('3')))
    .map(([code, count]) => `${code}x${count}`)
    .join(' ');
}

/** The table of HTTP measurements. */
export function measurementTable(measurements: readonly Measurement[]): string {
  const header = ['scenario', 'contender', 'client', 'conns', 'req/s', 'p50 ms', 'p97.5', 'p99', 'max', 'errors', 'non-2xx', 'timeouts', 'client CPU', 'body', 'peak RSS', 'flags'];
  const rows = [...measurements]
    .filter((m) => !m.scenario.startsWith('split-') && !m.scenario.startsWith('sweep-'))
    .sort((a, b) => order(a) - order(b))
    .map((m) => {
      const s = m.summary;
      const evident = evidentLimit(m, measurements);
      const flags = [
        s.clientBound ? `CLIENT-BOUND ${s.clientBoundRounds}/${m.rounds.length}` : '',
        evident ? `CLIENT-LIMITED (${evident.by} ${evident.factor.toFixed(1)}x)` : '',
        failedCodes(m),
        ...(m.notes ?? []).filter((n) => n.length < 30),
      ]
        .filter(Boolean)
        .join(', ');
      return [
        m.scenario,
        m.contender,
        m.client,
        String(m.connections),
        rps(s.rps),
        ms(s.latency.p50),
        ms(s.latency.p97_5),
        ms(s.latency.p99),
        ms(s.latency.max),
        String(s.errors),
        String(s.non2xx),
        String(s.timeouts),
        m.client === 'direct' ? '-' : `${s.clientCpuPercent.toFixed(0)}%`,
        kb(m.bodyBytes),
        mib(m.peakRssBytes),
        flags,
      ];
    });
  return table([header, ...rows], new Set([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]));
}

/** The targets table with reasons under the rows that have one. */
export function ratioTable(ratios: readonly RatioResult[]): string {
  const header = ['target', 'ratio', 'required', 'client', 'status'];
  const rows = ratios.map((r) => [
    r.label,
    r.value === null ? '-' : `${r.lowerBound ? '>=' : ''}${r.value.toFixed(3)}`,
    r.target,
    r.client ?? '-',
    r.status + (r.p99 ? ` (p99 ${ms(r.p99.service)} vs ${ms(r.p99.other)} ms)` : ''),
  ]);
  const lines = table([header, ...rows], new Set([1])).split('\n');
  const out = [lines[0] as string];
  ratios.forEach((r, i) => {
    out.push(lines[i + 1] as string);
    if (r.reason) out.push(`    ${r.reason}`);
  });
  return out.join('\n');
}

/** The sweep: one row per level, iaas and the peer side by side. */
export function sweepTable(result: BenchResult): string {
  const sweep = result.sweep;
  if (!sweep) return '';
  const of = (c: number, contender: string) => result.measurements.find((m) => m.scenario === `sweep-${c}` && m.contender === contender);
  const rows = sweep.levels.map((c) => {
    const mine = of(c, 'iaas');
    const theirs = of(c, 'node-peer');
    const ratio = mine && theirs && theirs.summary.rps > 0 ? (mine.summary.rps / theirs.summary.rps).toFixed(2) : '-';
    return [
      String(c),
      mine ? rps(mine.summary.rps) : '-',
      theirs ? rps(theirs.summary.rps) : '-',
      ratio,
      ms(mine?.summary.latency.p50),
      ms(theirs?.summary.latency.p50),
      ms(mine?.summary.latency.p99),
      ms(theirs?.summary.latency.p99),
      String(mine?.summary.statusCodes['503'] ?? 0),
      String(theirs?.summary.statusCodes['503'] ?? 0),
      `${mine?.summary.errors ?? 0}/${theirs?.summary.errors ?? 0}`,
    ];
  });
  const header = ['conns', 'iaas rps', 'peer rps', 'ratio', 'iaas p50', 'peer p50', 'iaas p99', 'peer p99', 'iaas 503', 'peer 503', 'errors'];
  return table([header, ...rows], new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
}

/** The whole summary. */
export function formatSummary(result: BenchResult): string {
  const { machine, config } = result;
  const parts: string[] = [];
  parts.push(
    `iaas benchmark${config.quick ? ' (--quick: numbers are a smoke test)' : ''}: ${machine.cores} cores ${machine.cpuModel}, Node ${machine.node}, libvips ${machine.libvips}, git ${machine.gitSha}`,
    `rounds ${config.rounds} (median), warm-up ${config.warmupSeconds} s, ${config.durationSeconds} s measured; connections: miss ${config.connections.miss}, hit ${config.connections.hit}, upload ${config.connections.upload}; no pipelining; service defaults ${config.serviceDefaults.workers}x${config.serviceDefaults.pool} (WORKERS x POOL_SIZE), QUEUE_LIMIT ${config.serviceDefaults.queueLimit}, MALLOC_ARENA_MAX=${config.serviceEnv.MALLOC_ARENA_MAX}`,
    `clients: autocannon (own process), ${config.wrk.path ? `wrk ${config.wrk.threads} thread` : 'wrk not installed: apt-get install wrk'}; client-bound above ${config.clientBoundPercent}% of a core`,
  );
  if (result.native) parts.push('', formatNativeReport(result.native));
  if (result.measurements.some((m) => !m.scenario.startsWith('split-'))) parts.push('', 'HTTP (median of rounds; latencies in ms)', measurementTable(result.measurements));
  if (result.sweep) parts.push('', 'Miss-path concurrency sweep (median of rounds)', sweepTable(result));
  if (result.splits) {
    const rows = result.splits.results.map((s) => [
      `${s.workers}x${s.pool}${s.isDefault ? ' (default)' : ''}`,
      rps(s.measurement.summary.rps),
      ms(s.measurement.summary.latency.p50),
      ms(s.measurement.summary.latency.p99),
      String(s.measurement.summary.errors + s.measurement.summary.non2xx),
      mib(s.measurement.peakRssBytes),
    ]);
    const winner = result.splits.results.find((s) => `${s.workers}x${s.pool}` === result.splits?.winner);
    const fallback = result.splits.results.find((s) => s.isDefault);
    const verdict =
      result.splits.winner === result.splits.defaultSplit
        ? `the default ${result.splits.defaultSplit} won`
        : `the default ${result.splits.defaultSplit} reached ${winner && fallback ? ((fallback.measurement.summary.rps / winner.measurement.summary.rps) * 100).toFixed(0) : '?'}% of the winner`;
    parts.push('', 'Cluster splits, miss path (WORKERS x POOL_SIZE)', table([['split', 'req/s', 'p50 ms', 'p99', 'failed', 'peak RSS'], ...rows], new Set([1, 2, 3, 4, 5])), `winner: ${result.splits.winner}; ${verdict}`);
  }
  if (result.memory) {
    const m = result.memory;
    parts.push(
      '',
      `Memory: service RSS ${mib(m.rssAtFirstBytes)} after ${m.rendered[0]} renders, ${mib(m.rssAtTotalBytes)} after ${m.rendered[1]} (${(m.change * 100).toFixed(1)}%), peak ${mib(m.peakRssBytes)}, ${m.errors} failed requests, ${m.seconds.toFixed(0)} s${m.scaledDown ? ' (scaled down for --quick)' : ''}`,
      `RSS along the way: ${(m.series ?? []).map((point) => `${point.renders}: ${mib(point.rssBytes)}`).join(', ')}`,
    );
  }
  parts.push('', 'Targets', ratioTable(result.ratios));
  if (result.notes.length) parts.push('', 'Notes', ...result.notes.map((n) => `- ${n}`));
  return parts.join('\n');
}
