import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';

/** A TCP server that writes back whatever it receives. */
async function startEcho(t: Test): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return address.port;
}

async function proxyToEcho(t: Test): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: await startEcho(t) });
  t.teardown(() => proxy.stop());
  return proxy;
}

/** A client connection that collects what it receives and how it ended. */
interface Client {
  socket: Socket;
  received(): Buffer;
  /** Resolves once `bytes` have arrived. */
  waitFor(bytes: number): Promise<Buffer>;
  /** Resolves with the error code the connection failed with, or 'closed'. */
  ended: Promise<string>;
}

async function open(t: Test, port: number): Promise<Client> {
  const socket = connect({ host: '127.0.0.1', port });
  t.teardown(() => void socket.destroy());
  const chunks: Buffer[] = [];
  let waiter: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    waiter?.();
  });
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    socket.on('close', () => resolve('closed'));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const received = () => Buffer.concat(chunks);
  const waitFor = (bytes: number) =>
    new Promise<Buffer>((resolve) => {
      waiter = () => {
        if (received().length >= bytes) resolve(received());
      };
      waiter();
    });
  return { socket, received, waitFor, ended };
}

t.test('forwards bytes both ways unchanged in pass mode, including a large payload', async (t) => {
  const proxy = await proxyToEcho(t);
  const client = await open(t, proxy.port);
  client.socket.write('hello');
  t.equal((await client.waitFor(5)).toString(), 'hello');
  const payload = randomBytes(4 * 1024 * 1024);
  client.socket.write(payload);
  const back = await client.waitFor(5 + payload.length);
  t.ok(back.subarray(5).equals(payload), '4 MB echoed byte for byte');
  t.equal(proxy.connections, 1);
});

t.test('adds the configured latency to each direction in delay mode', async (t) => {
  const proxy = await proxyToEcho(t);
  proxy.set('delay', { delayMs: 150 });
  t.equal(proxy.mode, 'delay');
  const client = await open(t, proxy.port);
  const started = Date.now();
  client.socket.write('one');
  client.socket.write('two');
  const back = await client.waitFor(6);
  const elapsed = Date.now() - started;
  t.equal(back.toString(), 'onetwo', 'order is kept');
  t.ok(elapsed >= 280, `a round trip takes two delays (${elapsed} ms)`);
  t.ok(elapsed < 1500, 'chunks are delayed, not serialised one delay after another');
});

t.test('resets a new connection in reset mode', async (t) => {
  const proxy = await proxyToEcho(t);
  proxy.set('reset');
  const client = await open(t, proxy.port).catch((error: NodeJS.ErrnoException) => error.code ?? 'error');
  const code = typeof client === 'string' ? client : await client.ended;
  t.equal(code, 'ECONNRESET');
});

t.test('resets an open connection when it sends in reset mode, and on resetAll', async (t) => {
  const proxy = await proxyToEcho(t);
  const first = await open(t, proxy.port);
  const second = await open(t, proxy.port);
  first.socket.write('ping');
  await first.waitFor(4);
  proxy.set('reset');
  first.socket.write('ping again');
  t.equal(await first.ended, 'ECONNRESET', 'activity in reset mode resets');
  proxy.set('pass');
  proxy.resetAll();
  t.equal(await second.ended, 'ECONNRESET', 'resetAll resets idle connections');
});

t.test('accepts and never answers in blackhole mode', async (t) => {
  const proxy = await proxyToEcho(t);
  proxy.set('blackhole');
  const client = await open(t, proxy.port);
  client.socket.write('anyone there?');
  await sleep(300);
  t.equal(client.received().length, 0, 'no answer');
  t.equal(client.socket.destroyed, false, 'the connection stays open');
  proxy.set('pass');
  client.socket.write('still there?');
  await sleep(200);
  t.equal(client.received().length, 0, 'a connection accepted into the blackhole never reaches the target');
});

t.test('silences an open connection in blackhole mode and lets it talk again in pass mode', async (t) => {
  const proxy = await proxyToEcho(t);
  const client = await open(t, proxy.port);
  proxy.set('blackhole');
  client.socket.write('dropped');
  await sleep(200);
  t.equal(client.received().length, 0, 'dropped while blackholed');
  proxy.set('pass');
  client.socket.write('heard');
  t.equal((await client.waitFor(5)).toString(), 'heard');
});

t.test('refuses connections once stopped', async (t) => {
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: await startEcho(t) });
  const client = await open(t, proxy.port);
  await proxy.stop();
  t.equal(await client.ended, 'ECONNRESET', 'open connections are reset');
  const code = await open(t, proxy.port).then(
    () => 'connected',
    (error: NodeJS.ErrnoException) => error.code,
  );
  t.equal(code, 'ECONNREFUSED');
});
