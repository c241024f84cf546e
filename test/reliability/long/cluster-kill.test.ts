/** kill -9 of a worker every 12 s for a minute of mixed load: the long version of cluster-faults.test.ts. */
import t from 'tap';
import { healthStatus } from '../../helpers/http.js';
import { startCluster } from '../../helpers/processes.js';
import { sleep } from '../../helpers/timing.js';
import { assertNothingLost, killWorker, mixedLoad, prepareSource, type Kill } from '../kill.js';
import { runLong, SKIPPED } from './gate.js';

if (!runLong()) {
  t.comment(SKIPPED);
} else {
  t.test('four kill -9s of the oldest worker under a minute of load: each is respawned within 2 s, only in-flight requests fail, and every acknowledged upload is intact', async (t) => {
    // As in cluster-faults.test.ts; kills 12 s apart, always of the oldest worker, so the primary's
    // respawn backoff (reset by a worker that lived over 10 s) stays at 100 ms.
    const cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1', QUEUE_LIMIT: '8' });
    t.teardown(() => cluster.stop());
    const sourceId = await prepareSource(cluster);
    const lanes = 3;
    let stop = false;
    const load = mixedLoad(cluster, sourceId, lanes, () => stop);
    const born = new Map<number, number>(cluster.workerPids().map((pid) => [pid, performance.now()]));
    const kills: Kill[] = [];
    await sleep(4_000);
    for (let round = 0; round < 4; round++) {
      await sleep(8_000);
      for (const pid of cluster.workerPids()) if (!born.has(pid)) born.set(pid, performance.now());
      const alive = cluster.workerPids();
      const oldest = [...alive].sort((a, b) => (born.get(a) ?? 0) - (born.get(b) ?? 0))[0];
      kills.push(await killWorker(cluster, oldest));
      await sleep(4_000);
    }
    stop = true;
    const attempts = await load;
    t.equal(await healthStatus(cluster.url), 200, 'the cluster answers /_health with 200');
    await assertNothingLost(t, cluster, attempts, kills, lanes);
    t.equal(await cluster.stop(), 0, 'SIGTERM afterwards: exit code 0');
  });
}
