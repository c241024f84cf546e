import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { SETTINGS } from '../../src/config/settings.js';
import { ERROR_STATUS } from '../../src/errors.js';
import { configTable } from '../../scripts/config-table.js';
import { packageRoot } from '../../src/util/package-root.js';
import { startCluster } from '../helpers/processes.js';
import { photoJpeg } from '../helpers/fixtures.js';

const readme = readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');

t.test('the README states the install and test commands first', async (t) => {
  const firstBlock = /```bash\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  t.match(firstBlock, /^npm ci\b/m);
  t.match(firstBlock, /^npm start\b/m);
  t.match(readme, /```bash\nnpm test\n```/);
  const ci = readFileSync(path.join(packageRoot(), '.ci', 'run'), 'utf8');
  t.match(ci, /^npm ci$/m, '.ci/run runs the README install command');
  t.match(ci, /^(run_tests )?npm test$/m, '.ci/run runs the README test command');
});

t.test('the README documents every config key and its environment variable', async (t) => {
  for (const setting of SETTINGS) {
    t.ok(readme.includes(`\`${setting.key}\``), `key ${setting.key}`);
    t.ok(readme.includes(`\`${setting.env}\``), `env ${setting.env}`);
  }
  t.ok(readme.includes(configTable()), 'the configuration table is the one scripts/config-table.ts generates from the settings');
});

t.test('the README lists every error code with its status, and no other', async (t) => {
  const block = /<!-- error codes[^>]*-->\n([\s\S]*?)\n\n/.exec(readme)?.[1] ?? '';
  const listed = new Map([...block.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]));
  t.same(Object.fromEntries(listed), ERROR_STATUS, 'the table is src/errors.ts: every code, each with its one status');
});

t.test('the README walkthrough uploads and fetches against npm start', async (t) => {
  const block = /<!-- walkthrough[^>]*-->\n```bash\n([\s\S]*?)```/.exec(readme)?.[1];
  t.ok(block, 'the walkthrough block exists');
  const work = mkdtempSync(path.join(tmpdir(), 'iaas-readme-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  writeFileSync(path.join(work, 'photo.jpg'), photoJpeg(2725, 2225, 90));
  const cluster = await startCluster({ DATA_DIR: path.join(work, 'data'), WORKERS: '1' }, { cwd: work });
  t.teardown(() => cluster.stop());
  const script = (block ?? '').replaceAll('localhost:1337', `127.0.0.1:${cluster.port}`);
  const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], { cwd: work });
  t.match(stdout, /"status":"OK","id":"photo","original_width":2725,"original_height":2225/, 'the upload answer');
  t.match(stdout, /X-Cache: MISS/i, 'the first fetch renders');
  t.match(stdout, /x-cache: HIT/i, 'the second is a cache hit');
  t.ok(readFileSync(path.join(work, 'square.webp')).subarray(8, 12).toString() === 'WEBP', 'the retina crop is a WebP');
});
