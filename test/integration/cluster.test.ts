/**
 * The cluster as users start it (`node dist/src/main.js`): two workers share
 * the port, a killed worker is replaced, SIGTERM drains and exits 0.
 */
import t from 'tap';
import { type Cluster, startCluster } from '../helpers/processes.js';
import { childPids } from '../helpers/procfs.js';
import { sleep } from '../helpers/timing.js';
import { rawRequest } from '../helpers/wire.js';

let cluster!: Cluster;

t.before(async () => {
  cluster = await startCluster({ WORKERS: '2', POOL_SIZE: '1' });
});
t.teardown(() => cluster?.stop());

/** GET /_health on a connection of its own, so the kernel may hand it to either worker. */
async function health(): Promise<number> {
  const answer = await rawRequest(cluster.url, { method: 'GET', path: '/_health', headers: { Connection: 'close' } });
  return answer.status;
}

/** Sends batches of `Connection: close` health checks until `done()` or the deadline; returns every status. */
async function healthUntil(done: () => boolean, deadline: number, batch = 10, pauseMs = 20): Promise<number[]> {
  const statuses: number[] = [];
  while (!done() && Date.now() < deadline) {
    statuses.push(...(await Promise.all(Array.from({ length: batch }, () => health()))));
    // Request log lines reach the pipe a moment after the answers.
    await sleep(pauseMs);
  }
  return statuses;
}

t.test('serves from both worker processes on one port', async (t) => {
  const statuses = await healthUntil(() => cluster.servingPids().length >= 2, Date.now() + 10_000);
  t.ok(statuses.length >= 10, `${statuses.length} requests sent`);
  t.ok(statuses.every((status) => status === 200), 'every request answered 200');
  const pids = cluster.servingPids();
  t.equal(pids.length, 2, `two worker pids answered (${pids.join(', ')})`);
  t.notOk(pids.includes(cluster.child.pid ?? -1), 'the primary serves nothing itself');
  const lines = cluster.logs().filter((line) => line.message === 'request');
  t.ok(lines.every((line) => line.role === 'worker' && line.path === '/_health' && line.status === 200), 'request lines come from workers');
});

t.test('replaces a worker killed with SIGKILL within 2 s', async (t) => {
  const before = cluster.servingPids();
  const victim = before[0];
  if (victim === undefined) return t.fail('no worker pid is known');
  const killedAt = Date.now();
  process.kill(victim, 'SIGKILL');
  const exited = await cluster.waitForLog((line) => line.message === 'worker exited; respawning' && line.worker === victim, 2_000);
  t.equal(exited.signal, 'SIGKILL', 'the primary saw the worker die');
  const fresh = () => cluster.servingPids().some((pid) => !before.includes(pid));
  // Gentle probing (the new worker needs the CPU to boot), wide enough to reach both listeners each round.
  const statuses = await healthUntil(fresh, killedAt + 2_000, 6, 60);
  t.ok(statuses.every((status) => status === 200), `the service kept answering 200 (${statuses.length} requests)`);
  t.ok(fresh(), `a new worker pid served within 2 s (${cluster.servingPids().join(', ')})`);
  t.comment(`replaced in ${Date.now() - killedAt} ms`);
  let alive = true;
  try {
    process.kill(victim, 0);
  } catch {
    alive = false;
  }
  t.notOk(alive, 'the killed worker is gone');
});

t.test('drains on SIGTERM and the primary exits 0', async (t) => {
  // Both workers up (the replacement too): a worker still starting is the next test's case.
  await healthUntil(() => cluster.servingPids().length >= 3, Date.now() + 10_000, 6, 60);
  t.equal(await health(), 200, 'serving before the signal');
  const code = await cluster.stop();
  t.equal(code, 0, 'exit code 0');
  t.ok(cluster.logs().some((line) => line.message === 'all workers stopped'), 'the primary logged that all workers stopped');
  await t.rejects(health(), 'nothing listens afterwards');
});

t.test('exits 0 promptly on SIGTERM while a replacement worker is still starting', async (t) => {
  const graceMs = 3_000;
  const single = await startCluster({ WORKERS: '1', POOL_SIZE: '1', SHUTDOWN_GRACE_MS: String(graceMs) });
  t.teardown(() => single.stop());
  const primary = single.child.pid ?? -1;
  const [worker] = childPids(primary);
  if (worker === undefined) return t.fail('the primary has no worker');
  process.kill(worker, 'SIGKILL');
  await single.waitForLog((line) => line.message === 'worker exited; respawning' && line.worker === worker, 2_000);
  // The replacement is forked after a short backoff; signal the moment it exists, long before it is ready.
  let replacement: number | undefined;
  const deadline = Date.now() + 2_000;
  while ((replacement = childPids(primary).find((pid) => pid !== worker)) === undefined && Date.now() < deadline) await sleep(5);
  if (replacement === undefined) return t.fail('no replacement worker was forked');
  const signalled = Date.now();
  const code = await single.stop();
  const took = Date.now() - signalled;
  t.equal(code, 0, 'exit code 0');
  t.ok(took < graceMs, `nothing was in flight, so the exit does not wait out the ${graceMs} ms grace (took ${took} ms)`);
});

