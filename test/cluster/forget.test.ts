/**
 * The primary's fan-out of a delete: the deleter hears back once every other
 * worker forgot the id, and a worker dying in between never leaves it waiting
 * (or an entry behind in the primary).
 */
import type { Worker } from 'node:cluster';
import t from 'tap';
import { ForgetRelay } from '../../src/cluster/forget.js';

/** A worker as the relay sees it: an id, whether it is connected, and what it was sent. */
function worker(id: number): Worker & { sent: unknown[]; connected: boolean } {
  const fake = {
    id,
    sent: [] as unknown[],
    connected: true,
    isConnected: () => fake.connected,
    send: (message: unknown) => fake.sent.push(message) > 0,
  };
  return fake as unknown as Worker & { sent: unknown[]; connected: boolean };
}

const forget = (key: string) => ({ type: 'iaas:forget' as const, id: 'photo', key });
const answered = (key: string) => ({ type: 'iaas:forgotten', key });

t.test('the deleter hears back once every other worker forgot the id, not before', async (t) => {
  const [a, b, c] = [worker(1), worker(2), worker(3)];
  const relay = new ForgetRelay(() => [a, b, c]);
  relay.forget(a, forget('k1'));
  t.same([b.sent, c.sent], [[forget('k1')], [forget('k1')]], 'both others are asked');
  relay.forgotten(b, 'k1');
  relay.forgotten(b, 'k1');
  t.same(a.sent, [], 'one answer, even repeated, is not all of them');
  relay.forgotten(c, 'k1');
  t.same(a.sent, [answered('k1')]);
  t.equal(relay.pending, 0);
});

t.test('a worker that dies before answering owes nothing: the deleter hears back and no entry is left', async (t) => {
  const [a, b, c] = [worker(1), worker(2), worker(3)];
  const relay = new ForgetRelay(() => [a, b, c]);
  relay.forget(a, forget('k2'));
  relay.forgotten(b, 'k2');
  c.connected = false;
  relay.exited(c);
  t.same(a.sent, [answered('k2')]);
  t.equal(relay.pending, 0);
});

t.test('a deleter that dies while it waits leaves no entry behind', async (t) => {
  const [a, b] = [worker(1), worker(2)];
  const relay = new ForgetRelay(() => [a, b]);
  relay.forget(a, forget('k3'));
  a.connected = false;
  relay.exited(a);
  t.equal(relay.pending, 0);
  relay.forgotten(b, 'k3');
  t.same(a.sent, [], 'nothing is sent to the dead deleter');
});

t.test('a deleter alone in the cluster hears back at once', async (t) => {
  const a = worker(1);
  const relay = new ForgetRelay(() => [a, worker(2)].map((w) => Object.assign(w, { connected: w.id === 1 })));
  relay.forget(a, forget('k4'));
  t.same(a.sent, [answered('k4')]);
  t.equal(relay.pending, 0);
});
