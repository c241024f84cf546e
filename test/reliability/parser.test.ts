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
/** Each malformed request, and the statuses the current build answers it with. */
const MALFORMED: ReadonlyArray<{ name: string; request: string; statuses: readonly number[] }> = [
  { name: 'HTTP/1.0', request: 'GET /_health HTTP/1.0\r\n\r\n', statuses: [505] },
  { name: 'a missing Host on HTTP/1.1', request: 'GET /_health HTTP/1.1\r\n\r\n', statuses: [400] },
  { name: 'Content-Length: +5', request: 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', statuses: [400] },
  { name: 'more than 50 headers', request: `GET /_health HTTP/1.1\r\nHost: x\r\n${headers(60)}\r\n`, statuses: [400, 431] },
  { name: 'a folded header', request: 'GET /_health HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\n\r\n', statuses: [400] },
];

let server!: TestServer;

t.before(async () => {
  server = await serve(t);
});

t.test(
  current
    ? 'the current uWS build answers HTTP/1.0 with 505 and the other malformed requests with a 4xx, and closes them'
    : 'the Node 20 uWS build drops every malformed request unanswered within its idle timeout',
  async (t) => {
    const answers = MALFORMED.map(({ request }) =>
      wire(server.port, [request], { timeoutMs: IDLE_BOUND_MS, until: (responses) => responses.length > 0 }).then((answer) => ({ answer, at: performance.now() })),
    );
    // While they are held (on the Node 20 build), an ordinary client is served at once.
    const ordinary = await getBytes(`${server.url}/_health`, { timeoutMs: 1_000 });
    t.equal(ordinary.status, 200, 'an ordinary request beside them is answered');
    for (const [index, { answer }] of (await Promise.all(answers)).entries()) {
      const { name, statuses } = MALFORMED[index] ?? { name: '?', statuses: [] as readonly number[] };
      if (current) {
        t.ok(statuses.includes(answer.responses[0]?.status ?? 0), `${name}: answered ${describe(answer)}`);
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
