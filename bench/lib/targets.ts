/**
 * The targets, each a ratio next to what it must reach, and the rules for
 * when a ratio may be computed at all:
 *
 * - A ratio comes from one client measuring both sides. For the hit paths wrk
 *   is preferred (it saturates much later than autocannon); autocannon is used
 *   only when wrk is missing or its numbers cannot decide.
 * - If the other side's run was client-bound, its number is too low and the
 *   ratio too flattering: it cannot be computed.
 * - If iaas' run was client-bound, its number is a lower bound: a ratio that
 *   still meets the target is MET (and marked as a lower bound); one that does
 *   not cannot be judged, and says why. A target is never loosened.
 * - Throughput counts successful responses only, so failures cannot inflate it.
 */
import type { NativeReport } from '../native.js';
import { round } from './stats.js';
import type { AvifFloodResult, ClientName, Measurement, MemoryResult, OriginalsResult, RatioResult, SweepResult } from './types.js';

/** Limits of the memory check: RSS after 10 000 renders within 10% of RSS after 1 000. */
export const MEMORY_TOLERANCE = 0.1;

/**
 * The ratios whose target is a ceiling (counts of failures, a slowdown, memory growth): for
 * these a smaller value is the better one, which is how bench:compare judges a change.
 */
export const LOWER_IS_BETTER: ReadonlySet<string> = new Set(['sweep-clean', 'sweep-p99', 'avif-flood', 'memory-flat']);

export interface HttpTarget {
  id: string;
  label: string;
  scenario: string;
  other: string;
  required: number;
  p99?: 'lower' | 'no worse';
  /** (iaas client, other client) pairs in order of preference. */
  pairs: [ClientName, ClientName][];
}

/** The HTTP targets of the issue. */
export const HTTP_TARGETS: HttpTarget[] = [
  { id: 'miss-vs-floor', label: 'miss path rps / floor (pool, no HTTP)', scenario: 'miss', other: 'floor', required: 0.9, pairs: [['autocannon', 'direct']] },
  { id: 'miss-vs-peer', label: 'miss path rps / Node peer', scenario: 'miss', other: 'node-peer', required: 1.1, p99: 'no worse', pairs: [['autocannon', 'autocannon']] },
  { id: 'hit-thumb-vs-peer', label: 'hit 120x120 rps / Node peer', scenario: 'hit-thumb', other: 'node-peer', required: 1.5, p99: 'lower', pairs: [['wrk', 'wrk'], ['autocannon', 'autocannon']] },
  { id: 'hit-720-vs-peer', label: 'hit 720 px rps / Node peer', scenario: 'hit-720', other: 'node-peer', required: 1.5, p99: 'lower', pairs: [['wrk', 'wrk'], ['autocannon', 'autocannon']] },
  { id: 'hit-thumb-vs-nginx', label: 'hit 120x120 rps / nginx static', scenario: 'hit-thumb', other: 'nginx', required: 1.0, pairs: [['wrk', 'wrk'], ['autocannon', 'autocannon']] },
];

function targetText(target: { required: number; p99?: 'lower' | 'no worse' }): string {
  const p99 = target.p99 === 'lower' ? ', p99 lower' : target.p99 === 'no worse' ? ', p99 no worse' : '';
  return `>= ${target.required.toFixed(2)}${p99}`;
}

function find(measurements: readonly Measurement[], scenario: string, contender: string, client: ClientName): Measurement | undefined {
  return measurements.find((m) => m.scenario === scenario && m.contender === contender && m.client === client);
}

/**
 * A client that got less than 1/1.25 of what another client got from the same
 * server on the same path was itself the limit, whatever its CPU says: on two
 * cores the server can starve the client of the core it would need to show 90%.
 */
export const CROSS_CLIENT_FACTOR = 1.25;

/** How many times more another client got from the same contender, when that marks this client as the limit. */
export function evidentLimit(m: Measurement, measurements: readonly Measurement[]): { factor: number; by: ClientName } | undefined {
  if (m.client === 'direct' || m.summary.rps <= 0) return undefined;
  let worst: { factor: number; by: ClientName } | undefined;
  for (const o of measurements) {
    if (o === m || o.scenario !== m.scenario || o.contender !== m.contender || o.client === 'direct') continue;
    const factor = o.summary.rps / m.summary.rps;
    if (factor > CROSS_CLIENT_FACTOR && (!worst || factor > worst.factor)) worst = { factor, by: o.client };
  }
  return worst;
}

/** Why a measurement's numbers are a floor, or undefined when they are not. */
function limited(m: Measurement, measurements: readonly Measurement[]): string | undefined {
  if (m.summary.clientBound) {
    return `${m.contender} via ${m.client}: the client used ${m.summary.clientCpuPercent.toFixed(0)}% of a core (client-bound in ${m.summary.clientBoundRounds}/${m.rounds.length} rounds)`;
  }
  const evident = evidentLimit(m, measurements);
  if (evident) return `${m.contender} via ${m.client}: ${evident.by} got ${evident.factor.toFixed(1)}x its rate from the same server, so ${m.client} was the limit`;
  return undefined;
}

type Verdict = { decided: true; result: RatioResult } | { decided: false; reason: string };

/** Why a contender or client has no runs (e.g. `wrk` -> `wrk not installed: apt-get install wrk`). */
export type Missing = ReadonlyMap<string, string>;

function evaluate(target: HttpTarget, measurements: readonly Measurement[], [mine, theirs]: [ClientName, ClientName], missing: Missing): Verdict {
  const service = find(measurements, target.scenario, 'iaas', mine);
  const other = find(measurements, target.scenario, target.other, theirs);
  if (!service) return { decided: false, reason: missing.get(mine) ?? `no iaas run via ${mine}` };
  if (!other) return { decided: false, reason: missing.get(target.other) ?? missing.get(theirs) ?? `no ${target.other} run via ${theirs}` };
  if (other.summary.rps <= 0) return { decided: false, reason: `${target.other} had no successful responses` };
  const value = round(service.summary.rps / other.summary.rps, 3);
  const p99 = target.p99 ? { service: service.summary.latency.p99, other: other.summary.latency.p99, rule: target.p99 } : undefined;
  const p99ok = !p99 || (p99.rule === 'lower' ? p99.service < p99.other : p99.service <= p99.other);
  const meets = value >= target.required && p99ok;
  const base = { id: target.id, label: target.label, target: targetText(target), required: target.required, value, client: mine, ...(p99 ? { p99 } : {}) };
  const failures = service.summary.errors + service.summary.non2xx;
  const codes = Object.entries(service.summary.statusCodes).filter(([code]) => !code.startsWith('2') && !code.startsWith('3'));
  const detail = codes.length ? ` (${codes.map(([code, count]) => `${count}x ${code}`).join(', ')})` : '';
  const notes = failures > 0 ? [`iaas had ${failures} failed responses${detail}, not counted as throughput`] : [];
  if (mine === 'autocannon' && p99 && !p99ok && p99.service === p99.other) notes.push('p99 equal at autocannon\'s 1 ms resolution');
  const otherLimit = limited(other, measurements);
  if (otherLimit) return { decided: false, reason: `${otherLimit}; its number is a floor, the ratio would flatter iaas` };
  const serviceLimit = limited(service, measurements);
  if (serviceLimit) {
    if (meets) return { decided: true, result: { ...base, lowerBound: true, status: 'MET', reason: [`lower bound: ${serviceLimit}`, ...notes].join('; ') } };
    return { decided: false, reason: `${serviceLimit}; ${value} is only a lower bound` };
  }
  return { decided: true, result: { ...base, lowerBound: false, status: meets ? 'MET' : 'MISSED', ...(notes.length ? { reason: notes.join('; ') } : {}) } };
}

/** One HTTP target: the first client pair that can decide, or N/A with every reason. */
export function httpRatio(target: HttpTarget, measurements: readonly Measurement[], missing: Missing = new Map(), why?: string): RatioResult {
  const reasons: string[] = [];
  if (!why) {
    for (const pair of target.pairs) {
      const verdict = evaluate(target, measurements, pair, missing);
      if (verdict.decided) {
        // Say why the preferred client was not used.
        const fallback = reasons.length ? [`${reasons.join('; ')}; so from ${pair[0]}`] : [];
        const reason = [...fallback, ...(verdict.result.reason ? [verdict.result.reason] : [])].join('; ');
        return { ...verdict.result, ...(reason ? { reason } : {}) };
      }
      reasons.push(`${pair[0]}: ${verdict.reason}`);
    }
  }
  return { id: target.id, label: target.label, target: targetText(target), required: target.required, value: null, lowerBound: false, status: 'N/A', reason: why ?? reasons.join('; ') };
}

/** The native target: the addon at least as fast as sharp on the canonical task, 2 in flight. */
export function nativeRatio(report: NativeReport | undefined, why?: string): RatioResult {
  const base = { id: 'native-vs-sharp', label: 'native addon ops/s / sharp (canonical, 2 in flight)', target: '>= 1.00', required: 1.0, lowerBound: false };
  if (!report) return { ...base, value: null, status: 'N/A', reason: why ?? 'native comparison not run' };
  return { ...base, value: report.target.ratio, status: report.target.met ? 'MET' : 'MISSED' };
}

/** The memory target: RSS after the second reading within 10% of the first. */
export function memoryRatio(memory: MemoryResult | undefined, why?: string): RatioResult {
  const label = memory ? `service RSS after ${memory.totalRenders} renders / after ${memory.firstRenders}` : 'service RSS after 10000 renders / after 1000';
  const base = { id: 'memory-flat', label, target: `${(1 - MEMORY_TOLERANCE).toFixed(2)}..${(1 + MEMORY_TOLERANCE).toFixed(2)}`, required: 1 + MEMORY_TOLERANCE, lowerBound: false };
  if (!memory) return { ...base, value: null, status: 'N/A', reason: why ?? 'memory scenario not run' };
  const value = round(1 + memory.change, 3);
  if (memory.scaledDown) {
    return { ...base, value, status: 'N/A', reason: `--quick: ${memory.firstRenders} -> ${memory.totalRenders} renders, scaled down; judged only in a full run` };
  }
  if (memory.rendered[0] < memory.firstRenders || memory.rendered[1] < memory.totalRenders) {
    return { ...base, value, status: 'N/A', reason: `only ${memory.rendered[0]} and ${memory.rendered[1]} renders succeeded (${memory.errors} failed)` };
  }
  const flat = Math.abs(memory.change) <= MEMORY_TOLERANCE;
  return { ...base, value, status: flat ? 'MET' : 'MISSED', ...(memory.errors ? { reason: `${memory.errors} failed renders` } : {}) };
}

/** The sweep levels whose ratio to the peer is a target (4 to 32 connections). */
export const SWEEP_RATIO_LEVELS = [4, 8, 16, 32];
/** Throughput required of iaas against the peer at those levels; 1.0 is the floor reported beside it. */
export const SWEEP_REQUIRED = 1.15;

function sweepOf(measurements: readonly Measurement[], connections: number, contender: string): Measurement | undefined {
  return find(measurements, `sweep-${connections}`, contender, 'autocannon');
}

function notApplicable(id: string, label: string, target: string, required: number, reason: string): RatioResult {
  return { id, label, target, required, value: null, lowerBound: false, status: 'N/A', reason };
}

const SWEEP_LABELS = {
  clean: 'sweep: 503s and socket errors of iaas at 1-16 connections',
  ratio: `sweep: min over ${SWEEP_RATIO_LEVELS.join('/')} connections of iaas rps / Node peer rps`,
  p99: "sweep: levels (1-32) where iaas p99 > the peer's",
  overload: 'sweep: accepted rps at overload / best below it',
};

/** The sweep's targets: no 503 or error up to 16, the throughput and p99 ratios from 4 to 32, and the overload level. */
export function sweepRatios(sweep: SweepResult | undefined, measurements: readonly Measurement[], why?: string): RatioResult[] {
  const L = SWEEP_LABELS;
  if (!sweep) {
    const reason = why ?? 'sweep not run';
    return [
      notApplicable('sweep-clean', L.clean, '= 0', 0, reason),
      notApplicable('sweep-vs-peer', L.ratio, `>= ${SWEEP_REQUIRED.toFixed(2)}`, SWEEP_REQUIRED, reason),
      notApplicable('sweep-p99', L.p99, '= 0', 0, reason),
      notApplicable('sweep-overload', L.overload, '>= 0.80', 0.8, reason),
    ];
  }
  const below = sweep.levels.filter((c) => c < sweep.overloadAt);

  const cleanLevels = below.filter((c) => c <= 16);
  const failures = cleanLevels.map((c) => {
    const m = sweepOf(measurements, c, 'iaas');
    return m ? m.summary.errors + (m.summary.statusCodes['503'] ?? 0) : 0;
  });
  const clean: RatioResult = {
    id: 'sweep-clean',
    label: L.clean,
    target: '= 0',
    required: 0,
    value: failures.reduce((a, b) => a + b, 0),
    lowerBound: false,
    status: failures.every((f) => f === 0) ? 'MET' : 'MISSED',
    reason: `per level ${cleanLevels.map((c, i) => `${c}: ${failures[i]}`).join(', ')}`,
  };

  const ratios = SWEEP_RATIO_LEVELS.filter((c) => sweep.levels.includes(c)).flatMap((c) => {
    const mine = sweepOf(measurements, c, 'iaas');
    const theirs = sweepOf(measurements, c, 'node-peer');
    return mine && theirs && theirs.summary.rps > 0 ? [{ c, value: round(mine.summary.rps / theirs.summary.rps, 3) }] : [];
  });
  const min = ratios.length ? Math.min(...ratios.map((r) => r.value)) : null;
  const ratio: RatioResult =
    min === null
      ? notApplicable('sweep-vs-peer', L.ratio, `>= ${SWEEP_REQUIRED.toFixed(2)}`, SWEEP_REQUIRED, 'no level from 4 to 32 was measured (--quick runs 1, 8 and 128)')
      : {
          id: 'sweep-vs-peer',
          label: L.ratio,
          target: `>= ${SWEEP_REQUIRED.toFixed(2)} (floor 1.00)`,
          required: SWEEP_REQUIRED,
          value: min,
          lowerBound: false,
          client: 'autocannon',
          status: min >= SWEEP_REQUIRED ? 'MET' : 'MISSED',
          reason: `per level ${ratios.map((r) => `${r.c}: ${r.value.toFixed(3)}`).join(', ')}${min < SWEEP_REQUIRED && min >= 1 ? '; above the 1.00 floor' : ''}`,
        };

  const p99Levels = below
    .filter((c) => c <= 32)
    .map((c) => ({ c, mine: sweepOf(measurements, c, 'iaas')?.summary.latency.p99, theirs: sweepOf(measurements, c, 'node-peer')?.summary.latency.p99 }));
  const worse = p99Levels.filter((l) => l.mine !== undefined && l.theirs !== undefined && l.mine > l.theirs);
  const p99: RatioResult = {
    id: 'sweep-p99',
    label: L.p99,
    target: '= 0',
    required: 0,
    value: worse.length,
    lowerBound: false,
    status: worse.length === 0 ? 'MET' : 'MISSED',
    reason: `p99 iaas vs peer: ${p99Levels.map((l) => `${l.c}: ${l.mine ?? '-'} vs ${l.theirs ?? '-'} ms`).join(', ')}`,
  };

  // Every level from overloadAt up is overload for the contract, whether or not this machine sheds
  // there: accepted throughput holds at each, and the top level must show the shedding itself.
  const overLevels = sweep.levels.filter((c) => c >= sweep.overloadAt);
  const best = Math.max(0, ...below.map((c) => sweepOf(measurements, c, 'iaas')?.summary.rps ?? 0));
  const levels = overLevels.flatMap((c) => {
    const m = sweepOf(measurements, c, 'iaas');
    return m ? [{ c, m, probe: sweep.probes[c] }] : [];
  });
  const top = levels.at(-1);
  if (!top || levels.length !== overLevels.length || best <= 0) {
    return [clean, ratio, p99, notApplicable('sweep-overload', L.overload, '>= 0.80', 0.8, 'the overload levels or the levels below them were not measured')];
  }
  const value = round(Math.min(...levels.map(({ m }) => m.summary.rps)) / best, 3);
  const shedAtTop = top.m.summary.statusCodes['503'] ?? 0;
  const healthy = levels.every(({ probe }) => probe !== undefined && Object.keys(probe.health).every((status) => status === '200'));
  const retryAfter = levels.every(({ probe }) => probe !== undefined && probe.miss503 === probe.miss503WithRetryAfter);
  const errors = levels.reduce((sum, { m }) => sum + m.summary.errors, 0);
  const overload: RatioResult = {
    id: 'sweep-overload',
    label: L.overload,
    target: `>= 0.80 at ${overLevels.join(' and ')} connections, 503s with Retry-After at ${top.c}, /_health 200`,
    required: 0.8,
    value,
    lowerBound: false,
    client: 'autocannon',
    status: value >= 0.8 && shedAtTop > 0 && healthy && retryAfter && errors === 0 ? 'MET' : 'MISSED',
    reason:
      `best below overload ${best.toFixed(1)} rps; ` +
      levels
        .map(
          ({ c, m, probe }) =>
            `${c} connections: ${m.summary.rps.toFixed(1)} rps accepted, ${m.summary.statusCodes['503'] ?? 0} x 503, ${m.summary.errors} socket errors, ` +
            `probe /_health ${JSON.stringify(probe?.health ?? {})}, ${probe?.miss503WithRetryAfter ?? 0} of ${probe?.miss503 ?? 0} probe 503s with Retry-After`,
        )
        .join('; '),
  };
  return [clean, ratio, p99, overload];
}

/** The AVIF-flood target: an ordinary client's miss p50 beside the flood within 2x its p50 alone. */
export function avifFloodRatio(flood: AvifFloodResult | undefined, why?: string): RatioResult {
  const base = { id: 'avif-flood', label: "ordinary miss p50 beside 4 clients looping on 2048 px AVIFs / alone", target: '<= 2.00', required: 2, lowerBound: false };
  if (!flood) return { ...base, value: null, status: 'N/A', reason: why ?? 'avif-flood not run' };
  if (!(flood.aloneP50 > 0) || flood.floodedCount === 0) return { ...base, value: null, status: 'N/A', reason: 'no ordinary miss succeeded' };
  const value = round(flood.floodedP50 / flood.aloneP50, 3);
  return {
    ...base,
    value,
    status: value <= 2 && flood.ordinaryFailed === 0 ? 'MET' : 'MISSED',
    reason: `${flood.floodedP50.toFixed(0)} vs ${flood.aloneP50.toFixed(0)} ms (${flood.floodedCount} and ${flood.aloneCount} misses, ${flood.ordinaryFailed} failed); the flood's answers ${JSON.stringify(flood.floodAnswers)}`,
  };
}

/** The realistic-originals mix: iaas at least 2x the Node peer's miss throughput at every level. */
export const ORIGINALS_REQUIRED = 2;
/** Uploads with working copies at least half as fast as without. */
export const ORIGINALS_UPLOAD_REQUIRED = 0.5;

function perLevel(measurements: readonly Measurement[], source: string, levels: readonly number[]): { c: number; value: number }[] {
  return levels.flatMap((c) => {
    const mine = find(measurements, `originals-${source}-${c}`, 'iaas', 'autocannon');
    const theirs = find(measurements, `originals-${source}-${c}`, 'node-peer', 'autocannon');
    return mine && theirs && theirs.summary.rps > 0 ? [{ c, value: round(mine.summary.rps / theirs.summary.rps, 3) }] : [];
  });
}

/** The realistic-originals targets: the mix against the peer (each source reported beside it), and the upload cost of the copies. */
export function originalsRatios(originals: OriginalsResult | undefined, measurements: readonly Measurement[], why?: string): RatioResult[] {
  const mixLabel = 'realistic originals: min over levels of iaas miss rps / Node peer (the mix)';
  const uploadLabel = 'realistic originals: uploads/s with working copies / without';
  if (!originals) {
    const reason = why ?? 'originals not run';
    return [
      notApplicable('originals-vs-peer', mixLabel, `>= ${ORIGINALS_REQUIRED.toFixed(2)}`, ORIGINALS_REQUIRED, reason),
      notApplicable('originals-upload', uploadLabel, `>= ${ORIGINALS_UPLOAD_REQUIRED.toFixed(2)}`, ORIGINALS_UPLOAD_REQUIRED, reason),
    ];
  }
  const mix = perLevel(measurements, 'mix', originals.levels);
  const sources = originals.corpus.map((entry) => `${entry.id} ${perLevel(measurements, entry.id, originals.sourceLevels).map((r) => `${r.c}: ${r.value.toFixed(2)}`).join(', ')}`);
  const min = mix.length ? Math.min(...mix.map((r) => r.value)) : null;
  const vsPeer: RatioResult =
    min === null
      ? notApplicable('originals-vs-peer', mixLabel, `>= ${ORIGINALS_REQUIRED.toFixed(2)}`, ORIGINALS_REQUIRED, 'no level measured both contenders')
      : {
          id: 'originals-vs-peer',
          label: mixLabel,
          target: `>= ${ORIGINALS_REQUIRED.toFixed(2)}`,
          required: ORIGINALS_REQUIRED,
          value: min,
          lowerBound: false,
          client: 'autocannon',
          status: min >= ORIGINALS_REQUIRED ? 'MET' : 'MISSED',
          reason: `mix per level ${mix.map((r) => `${r.c}: ${r.value.toFixed(2)}`).join(', ')}; each source alone: ${sources.join('; ')}`,
        };
  const withCopies = find(measurements, 'originals-upload', 'copies', 'autocannon');
  const without = find(measurements, 'originals-upload', 'no-copies', 'autocannon');
  if (!withCopies || !without || without.summary.rps <= 0) return [vsPeer, notApplicable('originals-upload', uploadLabel, `>= ${ORIGINALS_UPLOAD_REQUIRED.toFixed(2)}`, ORIGINALS_UPLOAD_REQUIRED, 'the upload runs were not measured')];
  const value = round(withCopies.summary.rps / without.summary.rps, 3);
  const settled = originals.uploads.copiesSettledSeconds.map((v) => v.toFixed(1)).join(', ');
  const failures = withCopies.summary.non2xx + withCopies.summary.errors + without.summary.non2xx + without.summary.errors;
  const upload: RatioResult = {
    id: 'originals-upload',
    label: uploadLabel,
    target: `>= ${ORIGINALS_UPLOAD_REQUIRED.toFixed(2)}`,
    required: ORIGINALS_UPLOAD_REQUIRED,
    value,
    lowerBound: false,
    client: 'autocannon',
    status: value >= ORIGINALS_UPLOAD_REQUIRED && failures === 0 ? 'MET' : 'MISSED',
    reason:
      `${withCopies.summary.rps.toFixed(2)} vs ${without.summary.rps.toFixed(2)} uploads/s (${originals.uploads.perRun} per run, ${failures} failed); ` +
      `every copy decided ${settled} s after each run's start; copies by outcome ${JSON.stringify(originals.uploads.outcomes)}`,
  };
  return [vsPeer, upload];
}

/** Every target, in the order of the summary. `skipped` names scenarios that did not run, with why. */
export function computeRatios(input: {
  measurements: readonly Measurement[];
  native?: NativeReport;
  memory?: MemoryResult;
  sweep?: SweepResult;
  avifFlood?: AvifFloodResult;
  originals?: OriginalsResult;
  skipped: ReadonlyMap<string, string>;
  missing: Missing;
}): RatioResult[] {
  return [
    nativeRatio(input.native, input.skipped.get('native')),
    ...sweepRatios(input.sweep, input.measurements, input.skipped.get('sweep')),
    ...originalsRatios(input.originals, input.measurements, input.skipped.get('originals')),
    ...HTTP_TARGETS.map((t) => httpRatio(t, input.measurements, input.missing, input.skipped.get(t.scenario.startsWith('hit') ? 'hit' : t.scenario))),
    avifFloodRatio(input.avifFlood, input.skipped.get('avif-flood')),
    memoryRatio(input.memory, input.skipped.get('memory')),
  ];
}
