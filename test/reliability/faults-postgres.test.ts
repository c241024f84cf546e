/**
 * PostgreSQL faults, through a TCP fault proxy between the server and a fresh
 * database: blackholed, resetting, and sessions killed with
 * pg_terminate_backend. Skipped when IAAS_TEST_DATABASE_URL is unset (CI sets it).
 */
import pg from 'pg';
import t, { type Test } from 'tap';
import { originalKeyOf } from '../helpers/stored.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { assertAlive, crashesSince, crashMark } from '../helpers/crashes.js';
import { getBytes, healthStatus, issueToken, requestToken, uploadImage } from '../helpers/http.js';
import { tally } from '../helpers/measure.js';
import { serve, settled, type TestServer } from '../helpers/processes.js';
import { pgDatabase } from '../helpers/stores.js';
import { eventually } from '../helpers/timing.js';

if (!process.env.IAAS_TEST_DATABASE_URL) {
  t.comment('PostgreSQL fault tests skipped: IAAS_TEST_DATABASE_URL is unset (CI always sets it)');
} else {
  let proxy!: FaultProxy;
  let rel!: TestServer;
  let database!: { url: string; name: string };
  /** Every upload that got a 200, to read back at the end. */
  const stored = new Map<string, Uint8Array>();

  t.before(async () => {
    const fresh = await pgDatabase(t);
    if (!fresh) throw new Error('unreachable');
    database = fresh;
    const target = new URL(database.url);
    proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
    t.teardown(() => proxy.stop());
    const proxied = new URL(database.url);
    proxied.hostname = proxy.host;
    proxied.port = String(proxy.port);
    rel = await serve(t, { database_url: proxied.toString(), 'pool.size': 1, 'pool.queue_limit': 4 });
  });

  /** Uploads a fresh JPEG (no EXIF, small: stored untouched) and remembers it. */
  async function uploadFresh(t: Test, prefix: string, seed: number): Promise<string> {
    const id = unique(prefix);
    const bytes = photoJpeg(96, 64, 85, seed);
    const answer = await uploadImage(rel.url, id, bytes);
    t.equal(answer.status, 200, `upload ${id}: 200`);
    if (answer.status === 200) stored.set(id, bytes);
    return id;
  }

  /** Runs `fn`, timing it; never throws. */
  async function timed<T>(fn: () => Promise<T>): Promise<{ value: T | string; ms: number }> {
    const started = performance.now();
    try {
      return { value: await fn(), ms: performance.now() - started };
    } catch (error) {
      return { value: `threw ${(error as Error).name}`, ms: performance.now() - started };
    }
  }

  async function recovered(t: Test, withinMs: number): Promise<void> {
    const started = performance.now();
    const ok = await eventually(async () => (await healthStatus(rel.url, 8_000)) === 200, withinMs, 100);
    t.ok(ok, `/_health answers 200 again ${(performance.now() - started).toFixed(0)} ms after the proxy passes again (limit ${withinMs} ms)`);
  }

  /** The fault-time answers every request must respect: the expected status within a bound, no hang, no 500. */
  async function duringFault(t: Test, label: string, knownId: string, pendingUpload: { id: string; token: string; bytes: Uint8Array }, boundMs: number): Promise<void> {
    const [health, known, unknown, issued, uploaded, hit] = await Promise.all([
      timed(() => healthStatus(rel.url, 20_000)),
      timed(async () => (await getBytes(`${rel.url}/${knownId}_${120 + Math.floor(Math.random() * 50)}_90.jpg`)).status),
      timed(async () => (await getBytes(`${rel.url}/${unique('unknown')}_100_100.jpg`)).status),
      timed(async () => (await requestToken(rel.url, unique('during'), { timeoutMs: 20_000 })).status),
      timed(async () => (await uploadImage(rel.url, pendingUpload.id, pendingUpload.bytes, { token: pendingUpload.token, timeoutMs: 20_000 })).status),
      timed(async () => (await getBytes(`${rel.url}/${knownId}_100_100.jpg`)).status),
    ]);
    const report = (name: string, answer: { value: unknown; ms: number }) => `${name}: ${String(answer.value)} in ${answer.ms.toFixed(0)} ms`;
    t.comment(`${label}: ${[report('health', health), report('new size of a known original', known), report('unknown id', unknown), report('token', issued), report('upload', uploaded), report('cached hit', hit)].join('; ')}`);
    t.equal(health.value, 503, `${label}: /_health answers 503`);
    t.equal(known.value, 200, `${label}: a new size of an original whose metadata is in the LRU renders with 200`);
    t.equal(hit.value, 200, `${label}: a cached variant is still served`);
    t.equal(unknown.value, 503, `${label}: an unknown id answers 503`);
    t.equal(issued.value, 503, `${label}: POST /token answers 503`);
    t.equal(uploaded.value, 503, `${label}: an upload answers 503`);
    for (const [name, answer] of [['health', health], ['known', known], ['unknown', unknown], ['token', issued], ['upload', uploaded]] as const) {
      t.ok(answer.ms < boundMs, `${label}: ${name} answered in ${answer.ms.toFixed(0)} ms (bound ${boundMs} ms: no hang)`);
    }
  }

  t.test('with PostgreSQL blackholed, /_health answers 503, LRU-known originals keep rendering, the rest is 503 in bounded time, and the pool recovers by itself', async (t) => {
    const mark = crashMark();
    const knownId = await uploadFresh(t, 'known', 1);
    t.equal((await getBytes(`${rel.url}/${knownId}_100_100.jpg`)).status, 200, 'a render before the fault puts its metadata in the LRU');
    await settled(rel.server); // the variant is stored after the response
    const pendingId = unique('pending');
    const pendingBytes = photoJpeg(80, 60, 85, 2);
    const pending = { id: pendingId, token: await issueToken(rel.url, pendingId), bytes: pendingBytes };

    proxy.set('blackhole');
    // pg gives up after its 2 s connect timeout or its 6 s query timeout.
    await duringFault(t, 'blackhole', knownId, pending, 10_000);

    proxy.set('pass');
    await recovered(t, 10_000);
    const retry = await uploadImage(rel.url, pendingId, pendingBytes, { token: pending.token });
    t.equal(retry.status, 200, 'the upload refused during the fault succeeds afterwards with the same token: nothing was consumed');
    if (retry.status === 200) stored.set(pendingId, pendingBytes);
    t.equal((await requestToken(rel.url, unique('after'))).status, 200, 'tokens are issued again');
    t.same(crashesSince(mark), [], 'no uncaught error');
    await assertAlive(t, rel.url, mark);
  });

  t.test('with PostgreSQL resetting every connection (as when it is stopped), requests fail fast with 503 and the pool reconnects by itself', async (t) => {
    const mark = crashMark();
    const knownId = await uploadFresh(t, 'known-reset', 3);
    t.equal((await getBytes(`${rel.url}/${knownId}_100_100.jpg`)).status, 200);
    await settled(rel.server); // the variant is stored after the response
    const pendingId = unique('pending-reset');
    const pendingBytes = photoJpeg(80, 60, 85, 4);
    const pending = { id: pendingId, token: await issueToken(rel.url, pendingId), bytes: pendingBytes };

    proxy.set('reset');
    proxy.resetAll();
    await duringFault(t, 'reset', knownId, pending, 3_000);

    proxy.set('pass');
    await recovered(t, 5_000);
    const retry = await uploadImage(rel.url, pendingId, pendingBytes, { token: pending.token });
    t.equal(retry.status, 200, 'the refused upload succeeds afterwards with the same token');
    if (retry.status === 200) stored.set(pendingId, pendingBytes);
    await assertAlive(t, rel.url, mark);
  });

  t.test('after pg_terminate_backend on the server\'s sessions, requests succeed or answer 503, then succeed', async (t) => {
    const mark = crashMark();
    // Warm the pool: several sessions open.
    await Promise.all(Array.from({ length: 6 }, () => requestToken(rel.url, unique('warm'))));
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    t.teardown(() => admin.end());
    const killed = await admin.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'iaas' AND datname = current_database() AND pid <> pg_backend_pid()",
    );
    t.ok(killed.rows.length > 0, `${killed.rows.length} iaas sessions found by application_name`);
    // Uploads in flight while the sessions die.
    const ids = Array.from({ length: 6 }, () => unique('terminated'));
    const tokens = await Promise.all(ids.map((id) => issueToken(rel.url, id)));
    const bytes = ids.map((_, i) => photoJpeg(72, 48, 85, 50 + i));
    const inFlight = ids.map((id, i) => uploadImage(rel.url, id, bytes[i] ?? new Uint8Array(0), { token: tokens[i] ?? '', timeoutMs: 20_000 }));
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'iaas' AND datname = current_database() AND pid <> pg_backend_pid()");
    const right = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const answer = await timed(async () => (i % 2 === 0 ? await healthStatus(rel.url, 15_000) : (await requestToken(rel.url, unique('right-after'), { timeoutMs: 15_000 })).status));
        return answer;
      }),
    );
    const firstUploads = await Promise.all(inFlight);
    t.comment(`right after: ${JSON.stringify(tally(right.map((answer) => String(answer.value))))}; uploads in flight: ${JSON.stringify(tally(firstUploads.map((answer) => answer.status)))}`);
    t.ok(right.every((answer) => answer.value === 200 || answer.value === 503), 'every request right after the kill answers 200 or 503');
    t.ok(right.every((answer) => answer.ms < 8_000), 'none hangs');
    t.ok(firstUploads.every((answer) => answer.status === 200 || answer.status === 503), 'every upload in flight answers 200 or 503');
    // Retry what failed with the same token: nothing may be lost.
    for (const [i, id] of ids.entries()) {
      let answer = firstUploads[i];
      if (answer?.status === 503) answer = await uploadImage(rel.url, id, bytes[i] ?? new Uint8Array(0), { token: tokens[i] ?? '' });
      t.equal(answer?.status, 200, `upload ${i + 1} is stored (${firstUploads[i]?.status === 503 ? 'after a retry with its token' : 'at once'})`);
      if (answer?.status === 200) stored.set(id, bytes[i] ?? new Uint8Array(0));
    }
    t.ok(await eventually(async () => (await healthStatus(rel.url)) === 200 && (await requestToken(rel.url, unique('then'))).status === 200, 5_000), 'then everything succeeds');
    await assertAlive(t, rel.url, mark);
  });

  t.test('fifty parallel uploads with one token on PostgreSQL: exactly one 200 and one stored original', async (t) => {
    const id = unique('race-pg');
    const tokenValue = await issueToken(rel.url, id);
    const images = Array.from({ length: 50 }, (_, i) => photoJpeg(48, 32, 80, 200 + i));
    const answers = await Promise.all(images.map((bytes) => uploadImage(rel.url, id, bytes, { token: tokenValue })));
    t.same(tally(answers.map((answer) => answer.status)), { 200: 1, 403: 49 }, 'one 200, 49 x 403');
    const winner = answers.findIndex((answer) => answer.status === 200);
    const object = await rel.server.originals.get((await originalKeyOf(rel.server, id)) ?? '');
    t.ok(object !== null && Buffer.from(object).equals(Buffer.from(images[winner] ?? [])), "the stored original is the winner's");
    if (winner >= 0) stored.set(id, images[winner] ?? new Uint8Array(0));
  });

  t.test('after every fault, each upload that got a 200 reads back byte for byte, and no token was used twice', async (t) => {
    t.ok(stored.size > 0, `${stored.size} uploads to check`);
    for (const [id, bytes] of stored) {
      const back = await getBytes(`${rel.url}/${id}.jpg`);
      t.ok(back.status === 200 && back.body.equals(Buffer.from(bytes)), `${id} reads back byte for byte`);
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const rows = await client.query<{ id: string; used: boolean; uploaded_at: Date | null }>('SELECT id, used, uploaded_at FROM tokens');
      const byId = new Map(rows.rows.map((row) => [row.id, row]));
      for (const id of stored.keys()) {
        const row = byId.get(id);
        t.ok(row?.used === true && row.uploaded_at !== null, `${id}: its one token is used and completed`);
      }
      const orphans = await client.query<{ id: string; storage_key: string }>('SELECT id, storage_key FROM originals');
      for (const { id, storage_key: key } of orphans.rows) {
        t.ok(await rel.server.originals.exists(key), `originals row ${id} has its object`);
      }
    } finally {
      await client.end();
    }
  });
}
