/**
 * The Node peer's entry: node:cluster with WORKERS processes sharing one port
 * (what pm2's cluster mode does), each a node:http server with the handler of
 * node-sharp.ts. The primary prints one JSON line once every worker listens.
 *
 *   WORKERS=2 PORT=0 PEER_DATA_DIR=/tmp/x node dist/bench/peers/node-sharp-cluster.js
 *
 * sharp runs with one libvips thread per image and no operation cache, the
 * settings the iaas addon runs with, so the comparison is of everything else.
 */
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { createPeerHandler } from './node-sharp.js';

function runPrimary(): void {
  const workers = Math.max(1, Number(process.env.WORKERS ?? 2));
  const ports = new Set<number>();
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    ports.add(address.port);
    if (++listening === workers) {
      // listen(0) in cluster workers yields one shared port; say so if that ever changes.
      if (ports.size !== 1) console.error(JSON.stringify({ message: 'peer workers listen on different ports', ports: [...ports] }));
      console.log(JSON.stringify({ message: 'peer listening', port: address.port, workers }));
    }
  });
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (!stopping) console.error(JSON.stringify({ message: 'peer worker exited', pid: worker.process.pid, code }));
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    stopping = true;
    const all = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    let left = all.length;
    if (left === 0) process.exit(0);
    cluster.on('exit', () => --left <= 0 && process.exit(0));
    for (const worker of all) worker.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function runWorker(): void {
  sharp.concurrency(1);
  sharp.cache(false);
  const dataDir = process.env.PEER_DATA_DIR ?? path.resolve('peer-data');
  const handler = createPeerHandler({ originals: path.join(dataDir, 'originals'), cache: path.join(dataDir, 'cache') });
  const server = http.createServer(handler);
  server.listen(Number(process.env.PORT ?? 0), process.env.LISTEN_ADDRESS ?? '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
  // Keep-alive connections of a load generator would hold close() open forever.
  process.on('SIGTERM', () => setTimeout(() => process.exit(0), 2_000).unref());
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (cluster.isPrimary) runPrimary();
  else runWorker();
}
