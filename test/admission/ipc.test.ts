/**
 * The broker across real processes and their IPC channels, as the cluster
 * primary hosts it: one FIFO queue for every process, single flight between
 * processes, and a process killed while it holds slots gives them back.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { BrokerHost } from '../../src/admission/host.js';
import { isAdmissionMessage, type ToBroker } from '../../src/admission/protocol.js';
import type { AdmissionRequest, BrokerSettings } from '../../src/admission/types.js';
import { eventually } from '../helpers/timing.js';

const CHILD = fileURLToPath(new URL('../helpers/admission-child.js', import.meta.url));
const SETTINGS: BrokerSettings = { slots: 1, queueLimit: 100, queueWaitMs: 60_000, backgroundLimit: 10, negativeTtlMs: 0, negativeEntries: 10 };

interface Child {
  name: string;
  process: ChildProcess;
  admit(tag: string, request?: Partial<AdmissionRequest>): void;
  release(tag: string, stored?: boolean): void;
}

/** Forks `names` as owners of one broker; every event they report lands in `events` as `name:ev:tag`. */
async function processes(t: Test, settings: BrokerSettings, names: string[]) {
  const host = new BrokerHost(settings);
  const events: string[] = [];
  const flights: Record<string, unknown> = {};
  const children = await Promise.all(
    names.map(
      (name) =>
        new Promise<Child>((resolve) => {
          const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          t.teardown(() => void child.kill('SIGKILL'));
          host.attach(name, (message) => child.connected && child.send(message));
          child.on('exit', () => host.detach(name));
          child.on('message', (message: { ev?: string; tag?: string; end?: unknown }) => {
            if (isAdmissionMessage(message)) return host.receive(name, message as ToBroker);
            if (message.ev === 'ready') {
              resolve({
                name,
                process: child,
                admit: (tag, request = {}) => child.send({ cmd: 'admit', tag, request: { priority: 'foreground', client: name, cost: 'c', ...request } }),
                release: (tag, stored) => child.send({ cmd: 'release', tag, ...(stored !== undefined ? { stored } : {}) }),
              });
              return;
            }
            events.push(`${name}:${message.ev}:${message.tag}`);
            if (message.ev === 'flight' && message.tag) flights[message.tag] = message.end;
          });
        }),
    ),
  );
  return { host, events, flights, children };
}

t.test('renders asked for by two processes wait in one FIFO queue for the machine\'s slot', async (t) => {
  const { host, events, children } = await processes(t, SETTINGS, ['A', 'B']);
  const [a, b] = children as [Child, Child];
  a.admit('0');
  t.ok(await eventually(() => events.includes('A:granted:0')), 'A gets the one slot');
  let queued = 0;
  for (const [child, tag] of [[b, '1'], [a, '2'], [b, '3']] as const) {
    child.admit(tag);
    queued++;
    t.ok(await eventually(() => host.broker.stats().queuedForeground === queued), `${child.name}'s request ${tag} is waiting`);
  }
  const order: string[] = [];
  let holder: [Child, string] = [a, '0'];
  for (const next of ['B:granted:1', 'A:granted:2', 'B:granted:3']) {
    holder[0].release(holder[1]);
    t.ok(await eventually(() => events.includes(next)), `${next} after the slot was given back`);
    order.push(next);
    const [name, , tag] = next.split(':') as [string, string, string];
    holder = [name === 'A' ? a : b, tag];
  }
  t.same(order, ['B:granted:1', 'A:granted:2', 'B:granted:3'], 'in the order they arrived, whichever process asked');
});

t.test('a key rendered by one process is joined by the other, which learns when the result is stored', async (t) => {
  const { events, flights, children } = await processes(t, { ...SETTINGS, slots: 2 }, ['A', 'B']);
  const [a, b] = children as [Child, Child];
  a.admit('lead', { key: 'photo/g1/300x300' });
  t.ok(await eventually(() => events.includes('A:granted:lead')), 'A renders the key');
  b.admit('follow', { key: 'photo/g1/300x300' });
  t.ok(await eventually(() => events.includes('B:joined:follow')), 'B joins instead of taking the second slot');
  a.release('lead', true);
  t.ok(await eventually(() => events.includes('B:flight:follow')), 'B hears the end of the flight');
  t.same(flights.follow, { kind: 'stored' }, 'the result is stored: B serves it from the cache');
});

t.test('a process killed while it holds slots and waits for more gives everything back at once', async (t) => {
  const { host, events, children } = await processes(t, { ...SETTINGS, slots: 2 }, ['A', 'B']);
  const [a, b] = children as [Child, Child];
  a.admit('1');
  a.admit('2');
  a.admit('3');
  t.ok(await eventually(() => host.broker.stats().inUse === 2 && host.broker.stats().queuedForeground === 1), 'A holds both slots and waits for a third');
  b.admit('x');
  t.ok(await eventually(() => host.broker.stats().queuedForeground === 2), 'B waits behind it');
  a.process.kill('SIGKILL');
  t.ok(await eventually(() => events.includes('B:granted:x'), 2_000), 'B gets a slot within 2 s of the kill');
  t.same(host.broker.stats().inUse, 1, "A's slots and its waiting request are gone: only B's slot is in use");
});
