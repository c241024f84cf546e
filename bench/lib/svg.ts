/**
 * bench/results/latest.svg: one self-contained SVG (hand-written text, no
 * dependencies) with each scenario's p50 and p99 for the service and its
 * peers, on a logarithmic axis because a miss takes a hundred times a hit.
 * For the hit paths the wrk numbers are drawn when there are any.
 */
import type { BenchResult, Measurement } from './types.js';

const COLOURS: Record<string, string> = { iaas: '#1f6fb4', 'node-peer': '#e07b10', nginx: '#2b9a3a' };
const ROW = 18;
const LEFT = 250;
const WIDTH = 760;
const RIGHT = 20;
const TOP = 48;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** One bar row per (scenario, contender): the measurement with the preferred client. */
export function chartRows(measurements: readonly Measurement[]): Measurement[] {
  const rows: Measurement[] = [];
  const scenarios = [...new Set(measurements.map((m) => m.scenario))].filter((s) => !s.startsWith('split-') && !s.startsWith('sweep-'));
  for (const scenario of scenarios) {
    for (const contender of Object.keys(COLOURS)) {
      const of = measurements.filter((m) => m.scenario === scenario && m.contender === contender);
      const pick = of.find((m) => m.client === 'wrk') ?? of.find((m) => m.client === 'autocannon');
      if (pick && pick.summary.latency.p99 > 0) rows.push(pick);
    }
  }
  return rows;
}

function label(value: number): string {
  return value >= 1 ? `${value} ms` : `${value.toFixed(Math.ceil(-Math.log10(value)))} ms`;
}

/** The SVG text. */
export function renderSvg(result: BenchResult): string {
  const rows = chartRows(result.measurements);
  const values = rows.flatMap((m) => [m.summary.latency.p50, m.summary.latency.p99]).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values, 1))));
  const plot = WIDTH - LEFT - RIGHT;
  const x = (v: number) => LEFT + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * plot;
  const height = TOP + rows.length * ROW + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="18" font-size="13" font-weight="bold">${escape(`iaas bench ${result.machine.date.slice(0, 10)} ${result.machine.gitSha}${result.config.quick ? ' (quick)' : ''}: latency, ms (log scale)`)}</text>`,
    `<text x="10" y="34" fill="#555">${escape(`solid: p50, light: p99; ${result.machine.cores} cores, ${result.machine.cpuModel}`)}</text>`,
  ];
  for (let d = lo; d <= hi; d++) {
    const gx = x(10 ** d).toFixed(1);
    out.push(`<line x1="${gx}" y1="${TOP - 4}" x2="${gx}" y2="${TOP + rows.length * ROW}" stroke="#ddd"/>`);
    out.push(`<text x="${gx}" y="${TOP + rows.length * ROW + 14}" text-anchor="middle" fill="#555">${escape(label(10 ** d))}</text>`);
  }
  rows.forEach((m, i) => {
    const y = TOP + i * ROW;
    const colour = COLOURS[m.contender] ?? '#777';
    const { p50, p99 } = m.summary.latency;
    out.push(`<g><title>${escape(`${m.scenario} ${m.contender} via ${m.client}: p50 ${p50} ms, p99 ${p99} ms`)}</title>`);
    out.push(`<text x="${LEFT - 6}" y="${y + 12}" text-anchor="end">${escape(`${m.scenario} ${m.contender} (${m.client})`)}</text>`);
    out.push(`<rect x="${LEFT}" y="${y + 2}" width="${(x(p99) - LEFT).toFixed(1)}" height="${ROW - 4}" fill="${colour}" fill-opacity="0.35"/>`);
    out.push(`<rect x="${LEFT}" y="${y + 2}" width="${(x(p50) - LEFT).toFixed(1)}" height="${ROW - 4}" fill="${colour}"/></g>`);
  });
  let lx = LEFT;
  for (const [name, colour] of Object.entries(COLOURS)) {
    out.push(`<rect x="${lx}" y="${height - 16}" width="10" height="10" fill="${colour}"/><text x="${lx + 14}" y="${height - 7}">${escape(name)}</text>`);
    lx += 90;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * bench/results/sweep.svg: the miss-path concurrency sweep, two panels side by
 * side: throughput (req/s, linear) and p99 (ms, log) against connections
 * (log), one line per contender.
 */
export function renderSweepSvg(result: BenchResult): string {
  const sweep = result.sweep;
  if (!sweep) return '';
  const contenders = ['iaas', 'node-peer'];
  const point = (c: number, contender: string) => result.measurements.find((m) => m.scenario === `sweep-${c}` && m.contender === contender);
  const W = 380;
  const H = 260;
  const M = { left: 56, right: 14, top: 40, bottom: 44 };
  const cx = (c: number) => M.left + (Math.log2(c) / Math.log2(Math.max(...sweep.levels, 2))) * (W - M.left - M.right);
  const rpsMax = Math.max(1, ...sweep.levels.flatMap((c) => contenders.map((k) => point(c, k)?.summary.rps ?? 0))) * 1.1;
  const p99s = sweep.levels.flatMap((c) => contenders.map((k) => point(c, k)?.summary.latency.p99 ?? 0)).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...p99s, 10)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...p99s, 10))));
  const panel = (offset: number, title: string, y: (v: number) => number, value: (m: Measurement) => number, ticks: number[], tick: (v: number) => string) => {
    const out: string[] = [`<g transform="translate(${offset},0)">`, `<text x="${M.left}" y="${M.top - 14}" font-weight="bold">${escape(title)}</text>`];
    for (const t of ticks) out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/><text x="${M.left - 4}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" fill="#555">${escape(tick(t))}</text>`);
    for (const c of sweep.levels) out.push(`<text x="${cx(c).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle" fill="#555">${c}</text>`);
    out.push(`<text x="${(W / 2).toFixed(0)}" y="${H - 10}" text-anchor="middle" fill="#555">connections</text>`);
    for (const contender of contenders) {
      const pts = sweep.levels.flatMap((c) => {
        const m = point(c, contender);
        return m && value(m) > 0 ? [[cx(c), y(value(m))] as const] : [];
      });
      const colour = COLOURS[contender] ?? '#777';
      out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${pts.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`);
      for (const [px, py] of pts) out.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="${colour}"/>`);
    }
    out.push('</g>');
    return out.join('\n');
  };
  const yRps = (v: number) => H - M.bottom - (v / rpsMax) * (H - M.top - M.bottom);
  const yP99 = (v: number) => H - M.bottom - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (H - M.top - M.bottom);
  const rpsTicks = Array.from({ length: 5 }, (_, i) => (rpsMax / 1.1) * (i / 4));
  const p99Ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
  const width = 2 * W;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 24}" viewBox="0 0 ${width} ${H + 24}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="16" font-size="13" font-weight="bold">${escape(`miss-path sweep ${result.machine.date.slice(0, 10)} ${result.machine.gitSha}${result.config.quick ? ' (quick)' : ''}: every request a new size, ${result.machine.cores} cores`)}</text>`,
    panel(0, 'throughput, successful req/s', yRps, (m) => m.summary.rps, rpsTicks, (v) => v.toFixed(0)),
    panel(W, 'p99 latency, ms (log)', yP99, (m) => m.summary.latency.p99, p99Ticks, (v) => String(v)),
  ];
  let lx = 60;
  for (const contender of contenders) {
    out.push(`<rect x="${lx}" y="${H + 8}" width="10" height="10" fill="${COLOURS[contender] ?? '#777'}"/><text x="${lx + 14}" y="${H + 17}">${escape(contender)}</text>`);
    lx += 100;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
