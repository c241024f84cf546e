/**
 * The real cluster under faults: kill -9 of a worker under load (short; the
 * long version is in long/), and SIGTERM under load.
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import t from 'tap';
import { photoJpeg } from '../helpers/fixtures.js';
import { getBytes, healthStatus, issueToken, uploadImage } from '../helpers/http.js';
import { tally } from '../helpers/measure.js';
import { startCluster } from '../helpers/processes.js';
import { halfWritten, sqliteRows } from '../helpers/stores.js';
import { sleep } from '../helpers/timing.js';
import { assertNothingLost, killWorker, mixedLoad, prepareSource, type Kill } from './kill.js';

/**
 * WORKERS=2 so one survives; POOL_SIZE=1 matches the two cores; QUEUE_LIMIT=8
 * so that when the survivor takes all the load it queues rather than sheds:
 * a 503 would blur "only the killed worker's requests fail".
 */
const CLUSTER = { WORKERS: '2', POOL_SIZE: '1', QUEUE_LIMIT: '8' };

t.test('kill -9 of a worker under load: it is respawned within 2 s, only its in-flight requests fail, and every acknowledged upload is intact', async (t) => {
  const cluster = await startCluster(CLUSTER);
  t.teardown(() => cluster.stop());
  const sourceId = await prepareSource(cluster);
  const lanes = 3;
  let stop = false;
  const load = mixedLoad(cluster, sourceId, lanes, () => stop);
  await sleep(2_000);
  const kills: Kill[] = [await killWorker(cluster)];
  await sleep(3_000);
  stop = true;
  const attempts = await load;
  t.equal(await healthStatus(cluster.url), 200, 'the cluster answers /_health with 200');
  await assertNothingLost(t, cluster, attempts, kills, lanes);
  t.equal(await cluster.stop(), 0, 'SIGTERM afterwards: exit code 0');
});

/** A health probe on a fresh connection: the status, or 'refused' when the port is closed. */
async function probe(url: string): Promise<number | 'refused' | 'error'> {
  const port = Number(new URL(url).port);
  const refused = await new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  if (refused) return 'refused';
  const status = await healthStatus(url, 3_000);
  return typeof status === 'number' ? status : 'error';
}

t.test('SIGTERM under load: /_health turns 503 or the port closes first, every started request completes with 200, and the exit code is 0', async (t) => {
  const cluster = await startCluster({ ...CLUSTER, MAX_WIDTH: '12000', MAX_HEIGHT: '12000', BLUR_SIGMA: '5', SHUTDOWN_GRACE_MS: '15000' });
  t.teardown(() => cluster.stop());
  const id = 'drain';
  t.equal((await uploadImage(cluster.url, id, photoJpeg(400, 300, 90, 81))).status, 200);
  // Slow renders (about a second each), two per worker, on connections of their own.
  const renders = Array.from({ length: 4 }, (_, i) => getBytes(`${cluster.url}/${id}_${2000 + i}_2000.jpg?blur=true`, { timeoutMs: 30_000 }).catch((error: Error) => ({ status: `error ${error.name}`, ms: 0 })));
  const uploadId = 'drain-upload';
  const uploadToken = await issueToken(cluster.url, uploadId);
  const uploadBytes = photoJpeg(1200, 900, 90, 82);
  await sleep(300);
  const inflightUpload = uploadImage(cluster.url, uploadId, uploadBytes, { token: uploadToken, timeoutMs: 30_000 }).catch((error: Error) => ({ status: `error ${error.name}`, ms: 0 }));
  await sleep(50);
  const signalledAt = performance.now();
  cluster.child.kill('SIGTERM');
  const exited = new Promise<number | null>((resolve) => cluster.child.once('exit', (code) => resolve(code)));
  const probes: { at: number; status: number | 'refused' | 'error' }[] = [];
  let done = false;
  void exited.then(() => {
    done = true;
  });
  while (!done && performance.now() - signalledAt < 20_000) {
    const status = await probe(cluster.url);
    probes.push({ at: performance.now() - signalledAt, status });
    await sleep(20);
  }
  const finished = await Promise.all(renders);
  const uploaded = await inflightUpload;
  const code = await exited;
  t.comment(`probes after SIGTERM: ${JSON.stringify(tally(probes.map((p) => String(p.status))))}; first at ${probes[0]?.at.toFixed(0) ?? '-'} ms`);
  const afterFirstRefusal = probes.findIndex((p) => p.status !== 200);
  t.ok(afterFirstRefusal !== -1, 'health stopped answering 200');
  t.ok(
    probes.slice(Math.max(0, afterFirstRefusal)).every((p) => p.status === 503 || p.status === 'refused' || p.status === 'error'),
    'once it did, it never answered 200 again',
  );
  t.ok(probes.filter((p) => p.at > 500).every((p) => p.status !== 200), 'from 500 ms after SIGTERM on, no 200 for /_health');
  t.same(
    finished.map((answer) => answer.status),
    [200, 200, 200, 200],
    'every render started before SIGTERM completed with 200',
  );
  t.equal(uploaded.status, 200, 'the upload started before SIGTERM completed with 200');
  t.equal(code, 0, 'the primary exits with code 0');
  t.equal(await probe(cluster.url), 'refused', 'the port is closed afterwards');
  const stored = sqliteRows<{ storage_key: string }>(path.join(cluster.dataDir, 'iaas.sqlite'), 'SELECT storage_key FROM originals WHERE id = ?', uploadId)[0];
  const kept = await readFile(path.join(cluster.dataDir, 'originals', stored?.storage_key ?? uploadId)).catch(() => Buffer.alloc(0));
  t.ok(kept.equals(Buffer.from(uploadBytes)), 'the acknowledged upload is on disk byte for byte');
  t.same(halfWritten(path.join(cluster.dataDir, 'originals')), [], 'no half-written original');
});
