/**
 * Rounds: contenders take turns in an order that reverses every round (A B C,
 * C B A, A B C), so a drift of the machine during a run hits all of them
 * alike; each number of a measurement is the median over its rounds.
 */
import { median, round } from './stats.js';
import type { ClientName, LoadResult, Measurement, Summary } from './types.js';

/** The order of the contenders in round `index` (0-based). */
export function alternate<T>(items: readonly T[], index: number): T[] {
  return index % 2 === 0 ? [...items] : [...items].reverse();
}

function sumCodes(rounds: readonly LoadResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rounds) for (const [code, count] of Object.entries(r.statusCodes)) out[code] = (out[code] ?? 0) + count;
  return out;
}

/** Medians of the rounds; counters summed; client-bound when any round was. */
export function summarize(rounds: readonly LoadResult[]): Summary {
  const m = (pick: (r: LoadResult) => number) => round(median(rounds.map(pick)), 3);
  const p975 = rounds.map((r) => r.latency.p97_5);
  const bound = rounds.filter((r) => r.clientBound).length;
  return {
    rps: m((r) => r.rps),
    latency: {
      p50: m((r) => r.latency.p50),
      p97_5: p975.every((v): v is number => v !== null) ? round(median(p975), 3) : null,
      p99: m((r) => r.latency.p99),
      max: m((r) => r.latency.max),
    },
    errors: rounds.reduce((sum, r) => sum + r.errors, 0),
    timeouts: rounds.reduce((sum, r) => sum + r.timeouts, 0),
    non2xx: rounds.reduce((sum, r) => sum + r.non2xx, 0),
    statusCodes: sumCodes(rounds),
    clientCpuPercent: m((r) => r.clientCpuPercent),
    clientBound: bound > 0,
    clientBoundRounds: bound,
  };
}

/** Collects runs by (scenario, contender, client) and turns them into measurements. */
export class Collector {
  private readonly entries = new Map<string, Omit<Measurement, 'summary'>>();

  private key(scenario: string, contender: string, client: ClientName): string {
    return `${scenario}\u0000${contender}\u0000${client}`;
  }

  /** Records one round. */
  add(scenario: string, contender: string, connections: number, result: LoadResult): void {
    const key = this.key(scenario, contender, result.client);
    const entry = this.entries.get(key) ?? { scenario, contender, client: result.client, connections, rounds: [] };
    entry.rounds.push(result);
    this.entries.set(key, entry);
  }

  /** Sets what is known about a contender beside its numbers (body size, memory, notes). */
  annotate(scenario: string, contender: string, client: ClientName, extra: Pick<Measurement, 'bodyBytes' | 'peakRssBytes' | 'notes'>): void {
    const entry = this.entries.get(this.key(scenario, contender, client));
    if (!entry) return;
    if (extra.bodyBytes !== undefined) entry.bodyBytes = extra.bodyBytes;
    if (extra.peakRssBytes !== undefined) entry.peakRssBytes = Math.max(entry.peakRssBytes ?? 0, extra.peakRssBytes);
    if (extra.notes) entry.notes = [...(entry.notes ?? []), ...extra.notes];
  }

  measurements(): Measurement[] {
    return [...this.entries.values()].map((entry) => ({ ...entry, summary: summarize(entry.rounds) }));
  }
}
