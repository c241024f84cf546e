/**
 * Reading /metrics in tests: a scrape over its own connection, and a parser
 * of the Prometheus text exposition into families of samples.
 */
import { freshRequest } from './http.js';

/** One sample of the exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** One metric family: its HELP and TYPE, and the samples that belong to it. */
export interface Family {
  name: string;
  help?: string;
  type?: string;
  samples: Sample[];
}

/** The suffixes a histogram's or summary's samples add to the family name. */
const SUFFIXES = ['_bucket', '_sum', '_count'];

function unescapeLabel(value: string): string {
  return value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Parses `{a="x",b="y"}` starting at `text[0] === '{'`; returns the labels and the rest after `}`. */
function parseLabels(text: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  for (;;) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) };
    const eq = text.indexOf('=', i);
    if (eq === -1 || text[eq + 1] !== '"') throw new Error(`bad label set in ${JSON.stringify(text)}`);
    const name = text.slice(i, eq).trim();
    let j = eq + 2;
    let raw = '';
    while (j < text.length && text[j] !== '"') {
      if (text[j] === '\\') {
        raw += text.slice(j, j + 2);
        j += 2;
      } else {
        raw += text[j];
        j++;
      }
    }
    if (j >= text.length) throw new Error(`unterminated label value in ${JSON.stringify(text)}`);
    labels[name] = unescapeLabel(raw);
    i = j + 1;
  }
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  if (text === '' || (Number.isNaN(value) && text !== 'NaN')) throw new Error(`bad sample value ${JSON.stringify(text)}`);
  return value;
}

/** Parses Prometheus text exposition (version 0.0.4) into families by name. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (!found) {
      found = { name, samples: [] };
      families.set(name, found);
    }
    return found;
  };
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      const match = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(.*)$/.exec(trimmed);
      if (!match) continue; // a plain comment
      const [, kind, name, rest] = match as unknown as [string, string, string, string];
      if (kind === 'HELP') family(name).help = rest;
      else family(name).type = rest;
      continue;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(trimmed);
    if (!nameMatch) throw new Error(`bad sample line ${JSON.stringify(trimmed)}`);
    const name = nameMatch[0];
    let rest = trimmed.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest));
    const [valueText] = rest.trim().split(/\s+/);
    const value = parseValue(valueText ?? '');
    // A sample belongs to the family whose TYPE was declared: `x_bucket` to histogram `x`.
    const base = SUFFIXES.map((suffix) => (name.endsWith(suffix) ? name.slice(0, -suffix.length) : '')).find(
      (candidate) => candidate && ['histogram', 'summary'].includes(families.get(candidate)?.type ?? ''),
    );
    family(base ?? name).samples.push({ name, labels, value });
  }
  return families;
}

/** Sums the samples named `name` whose labels include `match`. */
export function total(families: Map<string, Family>, family: string, name: string, match: Record<string, string> = {}): number {
  const samples = families.get(family)?.samples ?? [];
  return samples
    .filter((sample) => sample.name === name && Object.entries(match).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** A scrape of `url` (a /metrics address) over its own connection: a killed worker's keep-alive socket cannot fail it. */
export async function scrapeMetrics(url: string): Promise<{ status: number; contentType: string; text: string; families: Map<string, Family> }> {
  const response = await freshRequest(url);
  const text = response.body.toString('utf8');
  return { status: response.status, contentType: String(response.headers['content-type'] ?? ''), text, families: parseExposition(text) };
}
