/**
 * The proxy of the compose deployment, run for real: nginx with the
 * `location /` block of `deploy/nginx.conf`, word for word, in front of a test
 * server. It is what answers the clients uWS' parser cannot (HTTP/1.0, a
 * missing Host, a signed Content-Length), and what hides uWS' own header.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { findNginx, startNginx, type RunningNginx } from '../../bench/peers/nginx.js';
import { packageRoot } from '../../src/util/package-root.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { getBytes, uploadImage } from '../helpers/http.js';
import { serve } from '../helpers/processes.js';
import { wire } from '../helpers/wire.js';

const nginx = findNginx();
const location = /^ {4}location \/ \{\n[^}]*\n {4}\}$/m.exec(readFileSync(path.join(packageRoot(), 'deploy/nginx.conf'), 'utf8'))?.[0];

t.test('deploy/nginx.conf has the location that proxies everything to iaas', async (t) => {
  t.match(location ?? '', /proxy_pass http:\/\/iaas;/);
});

t.test('behind deploy/nginx.conf', { skip: nginx ? false : 'nginx is not installed (apt-get install nginx)' }, async (t) => {
  const server = await serve(t, { 'log.info': true }, { captureLogs: true });
  const root = mkdtempSync(path.join(tmpdir(), 'iaas-nginx-'));
  const proxy: RunningNginx = await startNginx(nginx ?? '', { root, mode: 'proxy', files: {}, workers: 1, proxy: { upstreamPort: server.port, locations: location ?? '' } });
  t.teardown(async () => {
    await proxy.stop();
    rmSync(root, { recursive: true, force: true });
  });
  const port = Number(new URL(proxy.url).port);

  t.test('an upload and its renders pass through, and no answer names uWS', async (t) => {
    const id = unique('front');
    const upload = await uploadImage(proxy.url, id, photoJpeg(320, 240, 90, 5));
    t.equal(upload.status, 200, 'the upload streams through');
    const render = await getBytes(`${proxy.url}/${id}_100_75.jpg`);
    t.same([render.status, render.headers.get('x-cache')], [200, 'MISS']);
    for (const answer of [upload, render]) t.equal(answer.headers.get('uwebsockets'), null, 'no uWebSockets header');
    t.ok((await getBytes(`${server.url}/_health`)).headers.get('uwebsockets'), 'which uWS itself sends');
  });

  t.test('an HTTP/1.0 client is served', async (t) => {
    const answer = await wire(port, ['GET /_health HTTP/1.0\r\n\r\n'], { timeoutMs: 5_000 });
    t.equal(answer.responses[0]?.status, 200, 'nginx speaks HTTP/1.1 to iaas');
    t.match(answer.raw.toString('latin1'), /\r\n\r\nOK$/, 'with the body');
  });

  t.test('a missing Host and a signed Content-Length are answered 400 by nginx, and never reach iaas', async (t) => {
    const before = server.logs.length;
    for (const request of ['GET /_health HTTP/1.1\r\n\r\n', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello']) {
      const answer = await wire(port, [request], { timeoutMs: 5_000, until: (responses) => responses.length > 0 });
      t.equal(answer.responses[0]?.status, 400, JSON.stringify(request.split('\r\n')[0]));
    }
    t.same(server.logs.slice(before).filter((line) => line.message === 'request'), [], 'iaas saw neither');
  });
});
