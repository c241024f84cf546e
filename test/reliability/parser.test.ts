/**
 * Requests that uWS' own HTTP parser refuses before any route code runs:
 * HTTP/1.0, a missing Host, a signed Content-Length, too many headers,
 * folded headers. What a client gets depends on the uWS build (the README's
 * limits table says which does what); on either, such a request never holds
 * a connection past uWS' idle timeout and never delays anyone else.
 */
import t from 'tap';
import { uwsBuild } from '../../src/http/uws.js';
import { getBytes } from '../helpers/http.js';
import { serve, type TestServer } from '../helpers/processes.js';
import { wire, type WireResult } from '../helpers/wire.js';

/** uWS closes an idle connection after about 10 s; the bound leaves it room on a busy machine. */
const IDLE_BOUND_MS = 20_000;
const current = uwsBuild().alias === 'uws-current';

const headers = (count: number) => Array.from({ length: count }, (_, i) => `X-Filler-${i}: v\r\n`).join('');
/**
 * Each request the Node 20 build's parser refuses, and the status the current build answers it
 * with: it refuses the same ones, except that it serves up to 98 headers (the older one 49).
 */
const MALFORMED: ReadonlyArray<{ name: string; request: string; status: number }> = [
  { name: 'HTTP/1.0', request: 'GET /_health HTTP/1.0\r\n\r\n', status: 505 },
  { name: 'a missing Host on HTTP/1.1', request: 'GET /_health HTTP/1.1\r\n\r\n', status: 400 },
  { name: 'Content-Length: +5', request: 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', status: 400 },
  { name: '60 headers', request: `GET /_health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers(58)}\r\n`, status: 200 },
  { name: '120 headers', request: `GET /_health HTTP/1.1\r\nHost: x\r\n${headers(119)}\r\n`, status: 431 },
  { name: 'a folded header', request: 'GET /_health HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\n\r\n', status: 400 },
];

let server!: TestServer;

t.before(async () => {
  server = await serve(t);
});

t.test(
  current
    ? 'the current uWS build answers HTTP/1.0 with 505, a missing Host, a signed length, a folded header with 400 and 99 headers or more with 431, and closes them'
    : 'the Node 20 uWS build drops every malformed request unanswered within its idle timeout',
  async (t) => {
    const answers = MALFORMED.map(({ request }) =>
      wire(server.port, [request], { timeoutMs: IDLE_BOUND_MS }).then((answer) => ({ answer })),
    );
    // While they are held (on the Node 20 build), an ordinary client is served at once.
    const ordinary = await getBytes(`${server.url}/_health`, { timeoutMs: 1_000 });
    t.equal(ordinary.status, 200, 'an ordinary request beside them is answered');
    for (const [index, { answer }] of (await Promise.all(answers)).entries()) {
      const { name, status } = MALFORMED[index] ?? { name: '?', status: 0 };
      if (current) {
        t.same([answer.responses[0]?.status, answer.ended === 'open'], [status, false], `${name}: ${describe(answer)}`);
      } else {
        t.same([answer.responses.length, answer.ended === 'open'], [0, false], `${name}: ${describe(answer)}`);
      }
    }
  },
);

function describe(answer: WireResult): string {
  const status = answer.responses[0]?.status;
  return `${status ? `status ${status}` : 'no answer'}, connection ${answer.ended === 'open' ? 'still open' : 'closed'} after ${Math.round(answer.ms)} ms`;
}
