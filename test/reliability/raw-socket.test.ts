/**
 * What only a raw socket can send: bodies over the limit (declared, chunked,
 * or behind a Content-Length that understates them), oversized headers,
 * request smuggling, and slowloris clients.
 */
import { connect, type Socket } from 'node:net';
import t, { type Test } from 'tap';
import { originalObjects } from '../helpers/stored.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { assertAlive, crashesSince, crashMark } from '../helpers/crashes.js';
import { getBytes, issueToken, requestToken, uploadImage } from '../helpers/http.js';
import { memoryFlat, percentile } from '../helpers/measure.js';
import { serve, settled, type TestServer } from '../helpers/processes.js';
import { filesIn } from '../helpers/stores.js';
import { eventually, sleep } from '../helpers/timing.js';
import { chunked, head, multipart, rawStatus, wire, writeAll } from '../helpers/wire.js';

const LIMIT = 100_000;
const good = photoJpeg(64, 48, 85, 3);
/** A real image part well over the limit (its bytes are a JPEG followed by padding). */
const oversized = Buffer.concat([Buffer.from(photoJpeg(400, 300, 95, 4)), Buffer.alloc(3 * LIMIT, 0x5a)]);

let rel!: TestServer;

t.before(async () => {
  rel = await serve(t, { max_upload_bytes: LIMIT });
});

async function nothingLeft(t: Test, id: string): Promise<void> {
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), `DATA_DIR/tmp is empty (${filesIn(rel.config.tempDir).join(', ')})`);
  t.equal(await rel.server.store.getOriginal(id), null, 'no originals row');
  t.same(await originalObjects(rel.server, id), [], 'no original object');
}

/** The `code` of a JSON error body read off the wire; undefined when it is not JSON. */
function bodyCode(body: Buffer | undefined): unknown {
  try {
    return (JSON.parse(body?.toString() ?? '') as { code?: unknown }).code;
  } catch {
    return undefined;
  }
}

t.test('a body declared larger than max_upload_bytes is refused with 413 before it is read; a client that stops sending is cut off after the linger bound', async (t) => {
  const mark = crashMark();
  const id = unique('declared');
  const tokenValue = await issueToken(rel.url, id);
  const { body, contentType } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: oversized }]);
  const answer = await wire(rel.port, [head('POST', `/${id}.jpg`, { 'X-Token': tokenValue, 'Content-Type': contentType, 'Content-Length': body.byteLength }), body.subarray(0, 1000)], {
    timeoutMs: 8_000,
  });
  t.equal(answer.responses[0]?.status, 413, '413');
  t.equal(bodyCode(answer.responses[0]?.body), 'PAYLOAD_TOO_LARGE');
  t.equal(answer.responses[0]?.headers.connection, 'close', 'answered with Connection: close');
  t.not(answer.ended, 'open', `the server closed the connection once the body stopped coming for 5 s (${answer.ended}, after ${answer.ms.toFixed(0)} ms)`);
  await nothingLeft(t, id);
  await assertAlive(t, rel.url, mark);
  t.equal((await uploadImage(rel.url, id, good, { token: tokenValue })).status, 200, 'the token then uploads a good image');
});

t.test('a chunked body over max_upload_bytes is refused with 413, the connection closed past the bound and the temp file deleted, with flat memory', async (t) => {
  const mark = crashMark();
  const id = unique('chunked');
  const tokenValue = await issueToken(rel.url, id);
  const { body, contentType } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: oversized }]);
  const send = (socket: Socket) =>
    (async () => {
      await writeAll(socket, head('POST', `/${id}.jpg`, { 'X-Token': tokenValue, 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' }));
      const encoded = chunked(body, 8 * 1024);
      // Streamed in pieces, so the server has started its temp file when the limit is crossed.
      for (let at = 0; at < encoded.byteLength && !socket.destroyed; at += 16 * 1024) {
        await writeAll(socket, encoded.subarray(at, at + 16 * 1024));
        await sleep(2);
      }
    })();
  let sawTempFile = false;
  const watcher = setInterval(() => {
    if (filesIn(rel.config.tempDir).length > 0) sawTempFile = true;
  }, 1);
  const answer = await wire(rel.port, send, { timeoutMs: 10_000 });
  clearInterval(watcher);
  t.equal(answer.responses[0]?.status, 413, '413');
  t.equal(bodyCode(answer.responses[0]?.body), 'PAYLOAD_TOO_LARGE');
  t.not(answer.ended, 'open', `the server closed the connection (${answer.ended})`);
  t.comment(sawTempFile ? 'a temp file existed while the body streamed' : 'the temp file was never seen (too quick to observe)');
  await nothingLeft(t, id);
  t.same(crashesSince(mark), [], 'no uncaught error (the worker process would have survived)');
  await memoryFlat(
    t,
    'chunked bodies over the limit',
    200,
    413,
    async () => {
      // The whole body (twice the limit, within the bound) is read behind the 413, which then ends: a client honouring Connection: close stops there.
      const repeat = await wire(rel.port, [head('POST', `/${id}.jpg`, { 'X-Token': tokenValue, 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' }), chunked(body.subarray(0, 2 * LIMIT), 32 * 1024)], {
        timeoutMs: 10_000,
        until: (responses) => responses[0]?.complete === true,
      });
      return repeat.responses[0]?.status ?? `no answer (${repeat.ended})`;
    },
    4,
  );
  await nothingLeft(t, id);
  await assertAlive(t, rel.url, mark);
  t.equal((await uploadImage(rel.url, id, good, { token: tokenValue })).status, 200, 'the token then uploads a good image');
});

t.test('a Content-Length that understates a body over the limit never lets more than the declared bytes in: refused, connection closed, nothing stored', async (t) => {
  const mark = crashMark();
  const id = unique('understated');
  const tokenValue = await issueToken(rel.url, id);
  const { body, contentType } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: oversized }]);
  // Declares 90 000 bytes (under the limit, so the early check passes) and sends 3.5 times the limit.
  const answer = await wire(rel.port, [head('POST', `/${id}.jpg`, { 'X-Token': tokenValue, 'Content-Type': contentType, 'Content-Length': 90_000 }), body], {
    timeoutMs: 10_000,
  });
  const status = answer.responses[0]?.status;
  t.comment(`answered ${status ?? 'nothing'}, connection ${answer.ended}: HTTP framing ends the body at the declared length, the rest is not a request`);
  t.ok(status === undefined || status === 400 || status === 413, `the upload is refused (400/413) or the connection dropped, never accepted (got ${status ?? 'no answer'})`);
  t.ok(answer.responses.length <= 1, 'the bytes past the declared length are never answered as a request');
  t.not(answer.ended, 'open', `the server closed the connection (${answer.ended})`);
  await nothingLeft(t, id);
  await assertAlive(t, rel.url, mark);
  t.equal((await uploadImage(rel.url, id, good, { token: tokenValue })).status, 200, 'the token then uploads a good image');
});

t.test('request headers over 16 KiB get 400 and a closed connection; 15 KiB are served', async (t) => {
  const mark = crashMark();
  const cases: [string, Record<string, string>, number][] = [
    ['one 17 KiB header', { 'X-Big': 'a'.repeat(17 * 1024) }, 400],
    ['40 headers of 450 bytes', Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`X-H${i}`, 'b'.repeat(450)])), 400],
    ['one 100 KiB header', { 'X-Big': 'c'.repeat(100 * 1024) }, 400],
    ['a 17 KiB cookie', { Cookie: `c=${'d'.repeat(17 * 1024)}` }, 400],
    ['one 15 KiB header', { 'X-Big': 'e'.repeat(15 * 1024) }, 200],
  ];
  for (const [label, headers, expected] of cases) {
    for (const [method, target] of [
      ['GET', '/_health'],
      ['POST', '/token'],
    ] as const) {
      const json = JSON.stringify({ id: unique('headers') });
      const extra: Record<string, string | number> = method === 'POST' ? { 'Content-Type': 'application/json', 'Content-Length': json.length } : {};
      const answer = await wire(rel.port, [head(method, target, { ...headers, ...extra }), method === 'POST' ? json : ''], {
        timeoutMs: 5_000,
        // A served request leaves the connection open: stop at its answer.
        ...(expected === 200 ? { until: (responses) => responses.length > 0 } : {}),
      });
      const first = answer.responses[0];
      if (expected === 400) {
        t.equal(first?.status, 400, `${label}, ${method} ${target}: 400`);
        t.equal(bodyCode(first?.body), 'BAD_REQUEST', `${label}: BAD_REQUEST`);
        t.not(answer.ended, 'open', `${label}: the connection is closed (${answer.ended})`);
      } else {
        t.equal(first?.status, 200, `${label}, ${method} ${target}: served with 200`);
      }
    }
  }
  await memoryFlat(
    t,
    'oversized headers',
    200,
    400,
    async (i) => {
      const [, headers] = cases[Math.abs(i) % 4] ?? ['', {}];
      return (await rawStatus(rel.port, 'GET', '/_health', headers)).status;
    },
    8,
  );
  await assertAlive(t, rel.url, mark);
});

/** POST /token for `id`, as raw bytes. */
function tokenRequest(id: string): string {
  const json = JSON.stringify({ id });
  return `POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`;
}

t.test('a request with both Transfer-Encoding and Content-Length is dropped unanswered, and the request smuggled behind it is never processed', async (t) => {
  const mark = crashMark();
  const variants: [string, (smuggled: string) => string][] = [
    ['Content-Length then Transfer-Encoding', (s) => `POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${s}`],
    ['Transfer-Encoding then Content-Length', (s) => `POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${s}`],
    ['CL.TE with the smuggled request inside the declared length', (s) => `POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: ${5 + s.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${s}`],
    ['an obfuscated Transfer-Encoding: xchunked', (s) => `POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${s}`],
    ['Transfer-Encoding: chunked, identity', (s) => `POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${s}`],
    ['two Transfer-Encoding headers', (s) => `POST /token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${s}`],
    ['an upload with both', (s) => `POST /smuggle.jpg HTTP/1.1\r\nHost: x\r\nX-Token: ${'a'.repeat(64)}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${s}`],
  ];
  for (const [label, build] of variants) {
    const smuggledId = unique('smuggled');
    const answer = await wire(rel.port, [build(tokenRequest(smuggledId))], { timeoutMs: 3_000 });
    t.same(
      answer.responses.map((response) => response.status),
      [],
      `${label}: no response at all (uWS drops the connection)`,
    );
    t.not(answer.ended, 'open', `${label}: the connection is closed (${answer.ended})`);
    const after = await requestToken(rel.url, smuggledId);
    t.equal(after.status, 200, `${label}: the smuggled POST /token was never processed (a token for its id is still issuable)`);
  }
  const smuggledIds: string[] = [];
  await memoryFlat(
    t,
    'smuggling attempts',
    200,
    'dropped unanswered',
    async (i) => {
      const [, build] = variants[Math.abs(i) % variants.length] ?? variants[0] ?? ['', (s: string) => s];
      const smuggledId = unique('smuggled-batch');
      smuggledIds.push(smuggledId);
      const answer = await wire(rel.port, [build(tokenRequest(smuggledId))], { timeoutMs: 3_000 });
      return answer.responses.length === 0 && answer.ended !== 'open' ? 'dropped unanswered' : `${answer.responses.map((r) => r.status).join('+')} ${answer.ended}`;
    },
    8,
  );
  const issued = await Promise.all(smuggledIds.slice(0, 20).map((smuggledId) => requestToken(rel.url, smuggledId)));
  t.ok(issued.every((answer) => answer.status === 200), 'none of the batch\'s smuggled requests was processed (sampled 20)');
  await assertAlive(t, rel.url, mark);
});

t.test('duplicate Content-Length headers that disagree are refused, and the request hidden behind the first one is never processed', async (t) => {
  const mark = crashMark();
  const smuggledId = unique('duplicate-cl');
  const smuggled = tokenRequest(smuggledId);
  // A front that honours the last Content-Length forwards this as one request; one that honours the first sees two.
  const raw = `POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`;
  const answer = await wire(rel.port, [raw], { timeoutMs: 3_000 });
  const statuses = answer.responses.map((response) => response.status);
  t.ok(statuses.length === 0 || (statuses.length === 1 && statuses[0] === 400), `refused with 400 or dropped, and only one answer (got ${JSON.stringify(statuses)})`);
  const after = await requestToken(rel.url, smuggledId);
  t.equal(after.status, 200, 'the hidden POST /token was never processed (a token for its id is still issuable)');
  await assertAlive(t, rel.url, mark);
});

/** A client sending `bytes` one byte per `everyMs`; `closed` resolves with the ms until the server dropped it. */
function dribble(port: number, lead: Buffer, bytes: Buffer, everyMs = 1_000): { socket: Socket; closed: Promise<number>; answered: () => boolean; sent: () => number } {
  const socket = connect(port, '127.0.0.1');
  const started = performance.now();
  let sent = 0;
  let answered = false;
  socket.on('data', () => {
    answered = true;
  });
  socket.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(lead);
    timer = setInterval(() => {
      if (sent < bytes.byteLength && !socket.destroyed) socket.write(bytes.subarray(sent, ++sent));
    }, everyMs);
  });
  const closed = new Promise<number>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      resolve(performance.now() - started);
    });
  });
  return { socket, closed, answered: () => answered, sent: () => sent };
}

t.test('slowloris clients, headers or body at 1 byte/s, are dropped and do not slow other clients', async (t) => {
  const mark = crashMark();
  const hitId = unique('hit');
  t.equal((await uploadImage(rel.url, hitId, photoJpeg(320, 240, 85, 6))).status, 200);
  const hit = `${rel.url}/${hitId}_64_64.jpg`;
  await getBytes(hit);
  await settled(rel.server); // the miss is stored after its response
  t.equal((await getBytes(hit)).headers.get('x-cache'), 'HIT', 'the measured request is a cache hit');

  const sample = async (count: number) => {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const health = await getBytes(`${rel.url}/_health`);
      const cached = await getBytes(hit);
      if (health.status !== 200 || cached.status !== 200) throw new Error(`answered ${health.status}/${cached.status}`);
      times.push(health.ms, cached.ms);
    }
    return times;
  };
  await sample(20);
  const unloaded = percentile(await sample(100), 99);

  // 48 dribble their headers, 2 dribble an upload's body inside the image part.
  const slowHeaders = Array.from({ length: 48 }, (_, i) => dribble(rel.port, Buffer.from('GET /_health HTTP/1.1\r\nHost: 127.0.0.1\r\n'), Buffer.from(`X-Slow-${i}: ${'z'.repeat(40)}\r\n\r\n`)));
  const bodyIds = [unique('slow-body'), unique('slow-body')];
  const bodyTokens = await Promise.all(bodyIds.map((id) => issueToken(rel.url, id)));
  const slowBodies = bodyIds.map((id, i) => {
    const { body, contentType } = multipart([{ name: 'image', filename: 'a.jpg', type: 'image/jpeg', data: good }]);
    const requestHead = head('POST', `/${id}.jpg`, { 'X-Token': bodyTokens[i] ?? '', 'Content-Type': contentType, 'Content-Length': body.byteLength });
    // The part headers and the first image bytes arrive at once, so the temp file is open while the rest dribbles.
    return dribble(rel.port, Buffer.concat([Buffer.from(requestHead), body.subarray(0, 400)]), body.subarray(400));
  });
  const all = [...slowHeaders, ...slowBodies];
  await sleep(1_500);
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length > 0, 2_000), 'the slow uploads have temp files open');
  const loaded = percentile(await sample(100), 99);
  t.comment(`p99 of /_health and a cache hit: ${unloaded.toFixed(1)} ms alone, ${loaded.toFixed(1)} ms beside 50 slowloris connections`);
  t.ok(loaded < 3 * unloaded + 20, `loaded p99 ${loaded.toFixed(1)} ms < 3 x ${unloaded.toFixed(1)} + 20 ms`);

  const drops = await Promise.race([Promise.all(all.map((client) => client.closed)), sleep(25_000).then(() => undefined)]);
  t.ok(drops !== undefined, 'every slowloris connection was dropped by the server within 25 s');
  if (drops) {
    t.comment(`dropped after ${(Math.min(...drops) / 1000).toFixed(1)}..${(Math.max(...drops) / 1000).toFixed(1)} s`);
    t.ok(Math.max(...drops) < 20_000, 'all within 20 s (uWS drops a connection idle of complete requests after ~10 s)');
  }
  t.notOk(slowHeaders.some((client) => client.answered()), 'no slow header request was ever answered');
  t.ok(slowHeaders.every((client) => client.sent() < 60), 'none of them got to finish its headers');
  for (const client of all) client.socket.destroy();
  t.ok(await eventually(() => filesIn(rel.config.tempDir).length === 0, 2_000), 'the slow uploads\' temp files are removed');
  for (const [i, id] of bodyIds.entries()) {
    t.equal(await rel.server.store.getOriginal(id), null, `nothing stored for slow upload ${i + 1}`);
    t.equal((await uploadImage(rel.url, id, good, { token: bodyTokens[i] ?? '' })).status, 200, `slow upload ${i + 1}: its token then uploads`);
  }
  await assertAlive(t, rel.url, mark);
});
