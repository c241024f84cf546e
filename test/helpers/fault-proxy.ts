/**
 * A small TCP fault proxy (a stand-in for Toxiproxy) to put in front of
 * PostgreSQL or s3rver in reliability tests. The mode applies to new
 * connections and to every chunk of open ones, so switching to 'blackhole'
 * also silences pooled keep-alive connections, like a real network fault.
 *
 * - pass: bytes flow both ways unchanged.
 * - delay: each chunk is forwarded `delayMs` after it arrived (order kept).
 * - reset: a new connection is accepted then reset (RST); a chunk on an open
 *   connection resets it.
 * - blackhole: connections are accepted and bytes are read and dropped; a
 *   connection accepted in this mode never reaches the target, even later.
 */
import { connect, createServer, type Socket } from 'node:net';

/** What the proxy does to traffic; see the file comment. */
export type FaultMode = 'pass' | 'delay' | 'reset' | 'blackhole';

/** A running proxy on 127.0.0.1. */
export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  readonly mode: FaultMode;
  /** Open client connections. */
  readonly connections: number;
  /** Switches the mode; `delayMs` (default 100) applies to 'delay'. */
  set(mode: FaultMode, options?: { delayMs?: number }): void;
  /** Resets (RST) every open connection, both the client and the target side. */
  resetAll(): void;
  /** Stops listening and resets every open connection. */
  stop(): Promise<void>;
}

/** Pause reading a side when this many bytes wait to be forwarded. */
const HIGH_WATER = 1024 * 1024;

interface State {
  mode: FaultMode;
  delayMs: number;
}

/** Starts a proxy on a random port of 127.0.0.1 in front of `target`. */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const state: State = { mode: 'pass', delayMs: 100 };
  const open = new Set<Connection>();

  const server = createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => undefined);
    if (state.mode === 'reset') {
      reset(client);
      return;
    }
    const connection = new Connection(client, state, state.mode === 'blackhole' ? null : target);
    open.add(connection);
    connection.onClose = () => open.delete(connection);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the fault proxy has no TCP address');

  return {
    host: '127.0.0.1',
    port: address.port,
    get mode() {
      return state.mode;
    },
    get connections() {
      return open.size;
    },
    set(mode, options = {}) {
      state.mode = mode;
      if (options.delayMs !== undefined) state.delayMs = options.delayMs;
    },
    resetAll() {
      for (const connection of open) connection.reset();
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of open) connection.reset();
      await closed;
    },
  };
}

/** One client connection and, unless blackholed from the start, its target connection. */
class Connection {
  onClose: () => void = () => undefined;
  private readonly upstream: Socket | null;
  private readonly pipes: Pipe[] = [];
  private closed = 0;

  constructor(
    private readonly client: Socket,
    state: State,
    target: { host: string; port: number } | null,
  ) {
    if (target === null) {
      // Read and drop, never answer.
      this.upstream = null;
      client.on('data', () => undefined);
      client.on('close', () => this.onClose());
      return;
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.on('error', () => undefined);
    this.pipes.push(new Pipe(client, upstream, state, () => this.reset()));
    this.pipes.push(new Pipe(upstream, client, state, () => this.reset()));
    for (const socket of [client, upstream]) {
      socket.on('close', (hadError) => {
        // An error on one side is passed on as a reset; a clean close already
        // travelled as an end through the pipes.
        if (hadError) this.reset();
        if (++this.closed === 2) this.onClose();
      });
    }
  }

  reset(): void {
    for (const pipe of this.pipes) pipe.stop();
    reset(this.client);
    if (this.upstream) reset(this.upstream);
  }
}

/** One direction of a connection: chunks wait in order until due, with backpressure. */
class Pipe {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private queued = 0;
  private ended = false;
  private draining = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly state: State,
    private readonly onReset: () => void,
  ) {
    from.on('data', (chunk: Buffer) => this.receive(chunk));
    from.on('end', () => {
      if (this.state.mode === 'blackhole') return;
      this.ended = true;
      this.pump();
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private receive(chunk: Buffer): void {
    switch (this.state.mode) {
      case 'reset':
        this.onReset();
        return;
      case 'blackhole':
        return;
      case 'pass':
      case 'delay': {
        const delay = this.state.mode === 'delay' ? this.state.delayMs : 0;
        this.queue.push({ chunk, due: Date.now() + delay });
        this.queued += chunk.length;
        if (this.queued > HIGH_WATER) this.from.pause();
        this.pump();
      }
    }
  }

  private pump(): void {
    if (this.draining || this.timer !== undefined || this.to.destroyed) return;
    for (let head = this.queue[0]; head !== undefined; head = this.queue[0]) {
      const wait = head.due - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      this.queued -= head.chunk.length;
      if (!this.to.write(head.chunk)) {
        this.draining = true;
        this.to.once('drain', () => {
          this.draining = false;
          this.pump();
        });
        return;
      }
    }
    if (this.from.isPaused()) this.from.resume();
    if (this.ended) this.to.end();
  }
}

/** Sends RST (not FIN) so the peer sees ECONNRESET. */
function reset(socket: Socket): void {
  if (!socket.destroyed) socket.resetAndDestroy();
}
