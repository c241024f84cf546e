/**
 * Client Hints over HTTP (embedded defaults: SQLite, local folders): with
 * client_hints on, Sec-CH-DPR (or DPR) chooses the density of a sized URL
 * without `_Nx`, rounded up to the density ladder; Sec-CH-Width (or Width)
 * caps the width at the width ladder; an explicit `_Nx` wins; responses carry
 * Accept-CH and Vary. Sizes are read from the decoded answers.
 */
import t from 'tap';
import { ACCEPT_CH } from '../../src/images/client-hints.js';
import { photoJpeg, unique } from '../helpers/fixtures.js';
import { decode } from '../helpers/pixels.js';
import { get, uploadImage } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/processes.js';

let ts!: TestServer;
let id!: string;
t.before(async () => {
  ts = await startTestServer({ client_hints: true });
  id = unique('photo');
  const answer = await uploadImage(ts.url, id, photoJpeg(1200, 800));
  if (answer.status !== 200) throw new Error(`upload answered ${answer.status}`);
});
t.teardown(() => ts?.stop());

/** The decoded size of an answer, and its headers. */
async function sizeOf(path: string, headers: Record<string, string> = {}): Promise<{ width: number; height: number; headers: Headers }> {
  const response = await get(`${ts.url}${path}`, headers);
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}`);
  const image = decode(await response.arrayBuffer());
  return { width: image.width, height: image.height, headers: response.headers };
}

t.test('Sec-CH-DPR: 2 on a 300x200 URL renders 600 px wide', async (t) => {
  const answer = await sizeOf(`/${id}_300_200.jpg`, { 'Sec-CH-DPR': '2' });
  t.equal(answer.width, 600);
  t.equal(answer.height, 400);
  t.equal(answer.headers.get('accept-ch'), ACCEPT_CH);
  t.match(answer.headers.get('vary') ?? '', /Sec-CH-DPR/);
});

t.test('an explicit _3x in the URL wins over the header', async (t) => {
  const answer = await sizeOf(`/${id}_300_200_3x.jpg`, { 'Sec-CH-DPR': '2' });
  t.equal(answer.width, 900);
  t.equal(answer.headers.get('vary'), null, 'nothing varies: the URL decided');
  t.equal(answer.headers.get('accept-ch'), ACCEPT_CH);
});

t.test('a fractional density rounds up to the ladder, and the legacy DPR header counts', async (t) => {
  t.equal((await sizeOf(`/${id}_300_200.jpg`, { DPR: '1.3' })).width, 450, '1.3 renders at 1.5');
  t.equal((await sizeOf(`/${id}_300_200.jpg`, { 'Sec-CH-DPR': '2.2' })).width, 900, '2.2 renders at 3');
  t.equal((await sizeOf(`/${id}_101_101.jpg`, { 'Sec-CH-DPR': '1.5' })).width, 152, '151.5 px rounds to 152');
  t.equal((await sizeOf(`/${id}_300_200.jpg`, { 'Sec-CH-DPR': 'lots' })).width, 300, 'a malformed hint is ignored');
});

t.test('Sec-CH-Width caps the width at the next width of the ladder', async (t) => {
  const capped = await sizeOf(`/${id}_300_200.jpg`, { 'Sec-CH-DPR': '2', 'Sec-CH-Width': '250' });
  t.equal(capped.width, 320, '600 px capped at 320, the ladder step above 250');
  t.equal(capped.height, 213);
  t.equal((await sizeOf(`/${id}_300_200.jpg`, { Width: '700' })).width, 300, 'a cap wider than the box changes nothing');
});

t.test('without client_hints, hints are ignored and no Accept-CH is sent', async (t) => {
  const plain = await startTestServer();
  t.teardown(() => plain.stop());
  const answer = await uploadImage(plain.url, id, photoJpeg(1200, 800));
  t.equal(answer.status, 200);
  const response = await get(`${plain.url}/${id}_300_200.jpg`, { 'Sec-CH-DPR': '2' });
  t.equal(decode(await response.arrayBuffer()).width, 300);
  t.equal(response.headers.get('accept-ch'), null);
  t.equal(response.headers.get('vary'), null);
});
