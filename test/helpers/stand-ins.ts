/**
 * Small HTTP servers standing in for others in tests: a front for s3rver
 * that can fail every request, and a spy counting requests to an address an
 * image might reference. Both stop at the test's teardown.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { Test } from 'tap';

/** An HTTP front for s3rver that can answer every request with a 5xx instead of forwarding it. */
export interface S3Front {
  port: number;
  endpoint: string;
  mode: 'pass' | 'fail';
  /** Requests answered with a 5xx so far. */
  failed: number;
  stop(): Promise<void>;
}

/** Starts an S3Front before `target` that fails with `status` (503 SlowDown or 500 InternalError) in 'fail' mode. */
export async function startS3Front(t: Test, target: { port: number }, status = 503): Promise<S3Front> {
  const front: S3Front = {
    port: 0,
    endpoint: '',
    mode: 'pass',
    failed: 0,
    stop: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    if (front.mode === 'fail') {
      front.failed++;
      req.resume();
      res.writeHead(status, { 'Content-Type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InternalError'}</Code><Message>injected</Message></Error>`);
      return;
    }
    const upstream = httpRequest(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  front.port = address.port;
  front.endpoint = `http://127.0.0.1:${address.port}`;
  front.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.teardown(() => front.stop());
  return front;
}

/** A tiny HTTP server counting requests (an external reference an SVG might try to fetch). */
export async function startSpy(t: Test): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.end('x');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${address.port}`, hits };
}
