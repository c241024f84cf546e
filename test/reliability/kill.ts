/**
 * kill -9 of cluster workers under a mixed load of uploads and renders, and
 * the checks that nothing acknowledged was lost (short in npm test, long
 * under `npm run test:reliability`).
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { getBytes, requestToken, uploadImage } from '../helpers/http.js';
import { tally } from '../helpers/measure.js';
import type { Cluster } from '../helpers/processes.js';
import { childPids } from '../helpers/procfs.js';
import { filesIn, halfWritten, sqliteRows } from '../helpers/stores.js';
import { sleep } from '../helpers/timing.js';

export interface Attempt {
  kind: 'upload' | 'render';
  id: string;
  token?: string;
  bytes?: Uint8Array;
  status: number | 'error';
  /** The client error, for failures. */
  error?: string;
  /** Which step failed (token or upload), for uploads. */
  step?: string;
  startedAt: number;
  endedAt: number;
}

export interface Kill {
  pid: number;
  at: number;
  /** ms until a new worker process existed. */
  respawnMs: number | undefined;
}

/**
 * Uploads (fresh id, token and JPEG each time: no EXIF, under max_on_disk, so
 * stored untouched) and renders in `lanes` loops each, until `until()`.
 */
export async function mixedLoad(cluster: Cluster, sourceId: string, lanes: number, until: () => boolean): Promise<Attempt[]> {
  const attempts: Attempt[] = [];
  let seed = 1000;
  let size = 0;
  // Generated ahead: making a JPEG in JS blocks this event loop, and a client
  // that notices a closed keep-alive connection late reuses it and fails.
  const images = Array.from({ length: 64 }, (_, i) => photoJpeg(240, 180, 88, 1000 + i));
  const uploader = async () => {
    while (!until()) {
      const id = unique('kill');
      const bytes = images[seed++ % images.length] ?? new Uint8Array(0);
      const startedAt = performance.now();
      let tokenValue: string | undefined;
      let step = 'token';
      try {
        const issued = await requestToken(cluster.url, id, { timeoutMs: 10_000 });
        if (issued.status !== 200 || issued.token === undefined) {
          attempts.push({ kind: 'upload', id, status: issued.status, startedAt, endedAt: performance.now() });
          continue;
        }
        tokenValue = issued.token;
        step = 'upload';
        const answer = await uploadImage(cluster.url, id, bytes, { token: tokenValue, timeoutMs: 15_000 });
        attempts.push({ kind: 'upload', id, token: tokenValue, bytes, status: answer.status, startedAt, endedAt: performance.now() });
      } catch (error) {
        attempts.push({ kind: 'upload', id, ...(tokenValue ? { token: tokenValue } : {}), bytes, status: 'error', error: describe(error), step, startedAt, endedAt: performance.now() });
      }
    }
  };
  const renderer = async () => {
    while (!until()) {
      const k = size++;
      const target = `/${sourceId}_${200 + (k % 600)}_${150 + Math.floor(k / 600)}.jpg`;
      const startedAt = performance.now();
      try {
        const answer = await getBytes(`${cluster.url}${target}`, { timeoutMs: 15_000 });
        attempts.push({ kind: 'render', id: target, status: answer.status, startedAt, endedAt: performance.now() });
      } catch (error) {
        attempts.push({ kind: 'render', id: target, status: 'error', error: describe(error), startedAt, endedAt: performance.now() });
      }
    }
  };
  await Promise.all([...Array.from({ length: lanes }, uploader), ...Array.from({ length: lanes }, renderer)]);
  return attempts;
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return `${(error as Error).name}: ${cause?.code ?? cause?.message ?? (error as Error).message}`;
}

/** kill -9 one worker (`target`, or one at random) and time its replacement. */
export async function killWorker(cluster: Cluster, target?: number): Promise<Kill> {
  const before = cluster.workerPids();
  const pid = target ?? before[Math.floor(Math.random() * before.length)];
  if (pid === undefined) throw new Error('no worker to kill');
  const at = performance.now();
  process.kill(pid, 'SIGKILL');
  let respawnMs: number | undefined;
  while (performance.now() - at < 5_000) {
    // From /proc, which spawns nothing: a blocked event loop would notice closed connections late and reuse them.
    if (childPids(cluster.child.pid ?? -1).some((candidate) => !before.includes(candidate))) {
      respawnMs = performance.now() - at;
      break;
    }
    await sleep(10);
  }
  return { pid, at, respawnMs };
}

/** What the client saw and what was kept. */
export async function assertNothingLost(t: Test, cluster: Cluster, attempts: Attempt[], kills: Kill[], lanes: number): Promise<void> {
  t.comment(`${attempts.length} requests: ${JSON.stringify(tally(attempts.map((a) => `${a.kind} ${a.status}`)))}`);
  for (const kill of kills) {
    t.ok(kill.respawnMs !== undefined && kill.respawnMs <= 2_000, `worker ${kill.pid} was replaced ${kill.respawnMs?.toFixed(0) ?? 'never'} ms after kill -9 (limit 2 s)`);
  }
  t.same(
    attempts.filter((a) => typeof a.status === 'number' && a.status >= 500 && a.status !== 503).map((a) => `${a.kind} ${a.id} ${a.status}`),
    [],
    'no 5xx answer (other than 503) at any time',
  );
  const failed = attempts.filter((a) => a.status === 'error' || a.status === 503);
  // A keep-alive connection the killed worker held dies with it, and the client may only notice
  // when it sends the next request on it: a reset socket shortly after a kill is the kill's doing.
  // A new connection always reaches a live worker, so such a reset later would still fail this.
  const staleConnection = (a: Attempt, kill: Kill) => /UND_ERR_SOCKET|ECONNRESET|EPIPE/.test(a.error ?? '') && a.startedAt <= kill.at + 1_000;
  const inFlightAtAKill = (a: Attempt) => kills.some((kill) => a.endedAt >= kill.at && (a.startedAt <= kill.at + 100 || staleConnection(a, kill)));
  t.same(
    failed.filter((a) => !inFlightAtAKill(a)).map((a) => `${a.kind}${a.step ? ` (${a.step})` : ''} ${a.status} ${a.error ?? ''} from ${a.startedAt.toFixed(0)} to ${a.endedAt.toFixed(0)} ms; kills at ${kills.map((k) => k.at.toFixed(0)).join(', ')}`),
    [],
    'only requests in flight at a kill, or sent on a connection the killed worker held, failed',
  );
  // Per kill, two bounds: the requests in flight when it struck (at most one per client, 2 x lanes),
  // and those sent in the moment before the client saw the connection close, which fail on a
  // connection the worker held (the client's pool holds no more connections than clients).
  for (const kill of kills) {
    const near = failed.filter((a) => a.endedAt >= kill.at && a.startedAt <= kill.at + 1_000);
    const inFlight = near.filter((a) => a.startedAt <= kill.at);
    const stale = near.filter((a) => a.startedAt > kill.at);
    t.comment(`kill of ${kill.pid}: ${near.map((a) => `${a.kind}${a.step ? `/${a.step}` : ''} ${a.error ?? a.status} ${(a.startedAt - kill.at).toFixed(0)}..${(a.endedAt - kill.at).toFixed(0)} ms`).join('; ')}`);
    t.ok(inFlight.length <= 2 * lanes, `kill of ${kill.pid}: ${inFlight.length} requests in flight failed, at most one per client (${2 * lanes})`);
    t.ok(stale.length <= 2 * lanes && stale.every((a) => a.status === 'error'), `kill of ${kill.pid}: ${stale.length} sent after it failed, each on a connection it held (at most ${2 * lanes})`);
  }

  const acknowledged = attempts.filter((a) => a.kind === 'upload' && a.status === 200);
  t.ok(acknowledged.length > 0, `${acknowledged.length} uploads were acknowledged`);
  const wrong: string[] = [];
  for (const a of acknowledged) {
    const back = await getBytes(`${cluster.url}/${a.id}.jpg`);
    if (back.status !== 200 || !a.bytes || !back.body.equals(Buffer.from(a.bytes))) wrong.push(`${a.id}: ${back.status}`);
  }
  t.same(wrong, [], 'every upload that got a 200 reads back byte for byte');

  const originalsDir = path.join(cluster.dataDir, 'originals');
  t.same(halfWritten(originalsDir), [], 'no half-written original (.tmp-*) in DATA_DIR/originals');
  const leftovers = filesIn(path.join(cluster.dataDir, 'tmp'));
  if (leftovers.length > 0) t.comment(`upload temp files left in DATA_DIR/tmp by killed workers (removed only at the next start): ${leftovers.join(', ')}`);
  const sqlite = path.join(cluster.dataDir, 'iaas.sqlite');
  const rows = sqliteRows<{ id: string; storage_key: string; bytes: number }>(sqlite, 'SELECT id, storage_key, bytes FROM originals');
  const broken = rows.filter((row) => {
    try {
      return statSync(path.join(originalsDir, ...row.storage_key.split('/'))).size !== Number(row.bytes);
    } catch {
      return true;
    }
  });
  t.same(broken.map((row) => row.id), [], `every one of ${rows.length} originals rows has its object, of the recorded size`);

  // Tokens: each acknowledged upload used its own token once; a second use is refused.
  const tokens = acknowledged.map((a) => a.token);
  t.equal(new Set(tokens).size, tokens.length, 'no token was acknowledged twice');
  for (const a of acknowledged.slice(0, 5)) {
    const again = await uploadImage(cluster.url, a.id, photoJpeg(32, 32, 80, 1), { token: a.token ?? '' });
    t.equal(again.status, 403, `reusing the token of ${a.id} is refused`);
  }
  const used = sqliteRows<{ id: string; used: number; uploaded_at: string | null }>(sqlite, 'SELECT id, used, uploaded_at FROM tokens');
  const completed = new Set(used.filter((row) => row.uploaded_at !== null).map((row) => row.id));
  t.ok(acknowledged.every((a) => completed.has(a.id)), 'every acknowledged upload completed its token');

  // Uploads cut by a kill: the client may retry with its token.
  const cut = attempts.filter((a) => a.kind === 'upload' && a.status === 'error' && a.token !== undefined);
  const retried: string[] = [];
  for (const a of cut) {
    const retry = await uploadImage(cluster.url, a.id, a.bytes ?? new Uint8Array(0), { token: a.token ?? '' });
    const exists = rows.some((row) => row.id === a.id);
    retried.push(`${retry.status}${exists ? ' (already stored before the crash)' : ''}`);
    if (retry.status === 200) {
      const back = await getBytes(`${cluster.url}/${a.id}.jpg`);
      t.ok(a.bytes && back.body.equals(Buffer.from(a.bytes)), `the retried upload ${a.id} reads back byte for byte`);
    }
  }
  if (cut.length > 0) t.comment(`uploads cut by a kill, retried with their token: ${JSON.stringify(tally(retried))}`);
}

export async function prepareSource(cluster: Cluster): Promise<string> {
  const id = unique('source');
  const answer = await uploadImage(cluster.url, id, photoJpeg(800, 600, 85, 99));
  if (answer.status !== 200) throw new Error(`source upload answered ${answer.status}`);
  return id;
}
