/**
 * No Docker engine runs on the build machines, so the Dockerfile and the
 * compose deployment are checked by reading them: the image installs, builds
 * and starts with exactly the commands of package.json and the README, so
 * they cannot drift, and the runtime stage is what an operator expects.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { SETTINGS } from '../../src/config/settings.js';
import { packageRoot } from '../../src/util/package-root.js';

const ROOT = packageRoot();
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; engines: { node: string } };

/** One Dockerfile instruction: its keyword (upper case) and its arguments, continuation lines joined. */
interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** One build stage: its base image, its name, and its instructions after FROM. */
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Parses a Dockerfile into instructions: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    // A comment line, even inside a continued instruction, is dropped.
    if (trimmed.startsWith('#')) return;
    if (!pending && trimmed === '') return;
    if (!pending) start = index + 1;
    if (trimmed.endsWith('\\')) {
      pending += `${trimmed.slice(0, -1).trim()} `;
      return;
    }
    const whole = (pending + trimmed).trim();
    pending = '';
    if (whole === '') return;
    const match = /^(\S+)\s*(.*)$/s.exec(whole);
    if (match) instructions.push({ keyword: (match[1] ?? '').toUpperCase(), args: match[2] ?? '', line: start });
  });
  return instructions;
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const asIndex = words.findIndex((word) => word.toUpperCase() === 'AS');
      stages.push({ from: words[0] ?? '', name: asIndex === -1 ? undefined : words[asIndex + 1], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** Drops leading `--flag=value` options (RUN --mount, COPY --from, HEALTHCHECK --interval). */
function withoutFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args.trim();
  for (;;) {
    const match = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest);
    if (!match) return { flags, rest };
    flags[match[1] ?? ''] = match[2] ?? '';
    rest = rest.slice(match[0].length);
  }
}

/** A command in exec form (JSON array) or shell form, as one command line. */
function commandLine(args: string): string {
  const trimmed = args.trim();
  if (trimmed.startsWith('[')) return (JSON.parse(trimmed) as string[]).join(' ');
  return trimmed;
}

/** The shell commands of a RUN: split on `&&` and `;`, whitespace normalised. */
function runCommands(args: string): string[] {
  return commandLine(withoutFlags(args).rest)
    .split(/&&|;/)
    .map((command) => command.trim().replace(/\s+/g, ' '))
    .filter(Boolean);
}

/** `KEY=value` pairs of ENV (both forms: `ENV A=1 B=2` and `ENV A 1`). */
function envOf(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  const trimmed = args.trim();
  if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(trimmed)) {
    const [key, ...value] = trimmed.split(/\s+/);
    if (key) env[key] = value.join(' ');
    return env;
  }
  for (const match of trimmed.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) env[match[1] ?? ''] = match[3] ?? match[2] ?? '';
  return env;
}

/** The shell commands of the README's fenced code blocks, comments removed. */
function readmeCommands(text: string): string[] {
  const commands: string[] = [];
  let inFence = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) {
      inFence = !inFence;
      continue;
    }
    if (!inFence) continue;
    const command = line.replace(/\s#.*$/, '').trim().replace(/\s+/g, ' ');
    if (command && !command.startsWith('#')) commands.push(command);
  }
  return commands;
}

const dockerfile = read('Dockerfile');
const instructions = parseDockerfile(dockerfile);
const stages = stagesOf(instructions);
const buildStage = stages[0];
const runtime = stages.at(-1);
const defaultPort = SETTINGS.find((setting) => setting.key === 'port')?.default;
const readme = existsSync(path.join(ROOT, 'README.md')) ? read('README.md') : undefined;

t.test('the Dockerfile parser joins continuations, drops comments and reads both command forms', async (t) => {
  const parsed = parseDockerfile('# a comment\nFROM node:20 AS build\nRUN a \\\n  # inner comment\n  && b\nCMD ["node", "x.js"]\n');
  t.same(parsed.map((instruction) => instruction.keyword), ['FROM', 'RUN', 'CMD']);
  t.same(runCommands(parsed[1]?.args ?? ''), ['a', 'b']);
  t.equal(commandLine(parsed[2]?.args ?? ''), 'node x.js');
  t.same(envOf('A=1 B="two words"'), { A: '1', B: 'two words' });
  t.same(envOf('A 1'), { A: '1' });
  t.same(withoutFlags('--from=build --chown=node:node a b'), { flags: { from: 'build', chown: 'node:node' }, rest: 'a b' });
});

/** The Node majors package.json's engines admits, from ranges of the form `^24.0.0`. */
function engineMajors(range: string): number[] {
  return range.split('||').flatMap((part) => {
    const match = /^\s*\^(\d+)\./.exec(part);
    return match ? [Number(match[1])] : [];
  });
}

const BASE = 'node:24-trixie-slim';

t.test('the Dockerfile is multi-stage on node:24-trixie-slim', async (t) => {
  t.ok(stages.length >= 2, 'it has a build stage and a runtime stage');
  for (const stage of stages) t.equal(stage.from, BASE, `stage ${stage.name ?? '(unnamed)'} is based on ${BASE}`);
  t.ok(buildStage?.name, 'the build stage is named, for COPY --from');
});

t.test('the base image runs a supported Node on a glibc the current uWebSockets.js build loads on', async (t) => {
  const match = /^node:(\d+)-([a-z]+)-slim$/.exec(runtime?.from ?? '');
  t.ok(match, 'the runtime base is an official node:<major>-<debian>-slim image');
  const major = Number(match?.[1]);
  t.same(engineMajors('^20.17.0 || ^22.9.0 || ^24.0.0'), [20, 22, 24], 'engine ranges are read by their major');
  t.ok(engineMajors(pkg.engines.node).includes(major), `Node ${major} is in package.json's engines (${pkg.engines.node})`);
  t.equal(major, Math.max(...engineMajors(pkg.engines.node)), 'the newest supported major');
  // Debian 13 (trixie) has glibc 2.41; the current uWS build needs 2.38, which Debian 12 (2.36) lacks.
  t.equal(match?.[2], 'trixie', 'Debian 13, whose glibc the current uWS build needs');
  if (readme) t.ok(readme.includes(`multi-stage on \`${BASE}\``), 'the README\'s Docker section names the same base image');
});

t.test('the build stage installs and builds with the README\'s and package.json\'s commands', async (t) => {
  const runs = (buildStage?.instructions ?? []).filter((instruction) => instruction.keyword === 'RUN').flatMap((instruction) => runCommands(instruction.args));
  t.ok(runs.includes('npm ci'), 'it runs `npm ci`');
  t.ok(runs.includes('npm prune --omit=dev'), 'then prunes dev dependencies');
  t.ok(runs.indexOf('npm ci') < runs.indexOf('npm prune --omit=dev'), 'in that order');
  // `npm ci` builds everything through the package's own lifecycle scripts.
  t.ok(pkg.scripts.install, 'package.json has the install script that builds the addon');
  t.ok(pkg.scripts.prepare, 'package.json has the prepare script that compiles the TypeScript');
  t.notOk(runs.some((command) => /^npm run (build|prepare)\b/.test(command) || /^npx tsc\b/.test(command) || /node-gyp/.test(command)), 'no build step of its own that could drift from package.json');

  const apt = runs.find((command) => command.startsWith('apt-get install')) ?? '';
  for (const tool of ['python3', 'make', 'g++']) t.ok(apt.split(' ').includes(tool), `it installs ${tool} for node-gyp`);
  t.notMatch(apt, /vips/, 'no libvips from apt: the addon uses the npm-shipped one');
  const env = Object.assign({}, ...(buildStage?.instructions ?? []).filter((instruction) => instruction.keyword === 'ENV').map((instruction) => envOf(instruction.args))) as Record<string, string>;
  t.equal(env.npm_config_nodedir, '/usr/local', 'node-gyp uses the image\'s own Node headers');

  if (!readme) {
    t.comment('no README.md: the README checks are skipped');
    return;
  }
  const commands = readmeCommands(readme);
  const install = commands.find((command) => /^npm (ci|install)\b/.test(command));
  t.equal(install, 'npm ci', 'the README\'s install command is `npm ci`');
  t.ok(install && runs.includes(install), 'the Dockerfile runs the README\'s install command');
});

t.test('the runtime stage starts the cluster exactly as `npm start` does', async (t) => {
  const cmds = (runtime?.instructions ?? []).filter((instruction) => instruction.keyword === 'CMD');
  t.equal(cmds.length, 1, 'one CMD');
  t.match(cmds[0]?.args ?? '', /^\[/, 'in exec form, so the node process receives SIGTERM itself');
  t.equal(commandLine(cmds[0]?.args ?? '[]'), pkg.scripts.start, 'CMD is package.json\'s start script');
  t.equal(pkg.scripts.start, 'node dist/src/main.js', 'which runs the cluster');
  t.notOk((runtime?.instructions ?? []).some((instruction) => instruction.keyword === 'ENTRYPOINT'), 'no ENTRYPOINT wraps it');
  if (readme) {
    const start = readmeCommands(readme).find((command) => /^npm (start|run start)\b/.test(command));
    t.equal(start, 'npm start', 'the README\'s start command is `npm start`, the same script');
  }

  // What the start script needs is copied from the build stage.
  const copies = (runtime?.instructions ?? [])
    .filter((instruction) => instruction.keyword === 'COPY')
    .map((instruction) => withoutFlags(instruction.args))
    .filter(({ flags }) => flags.from === buildStage?.name)
    .flatMap(({ rest }) => rest.split(/\s+/).slice(0, -1));
  const gyp = read('binding.gyp');
  const target = /'target_name':\s*'([^']+)'/.exec(gyp)?.[1];
  t.ok(target, 'binding.gyp names its target');
  for (const needed of ['/app/package.json', '/app/node_modules', `/app/build/Release/${target}.node`, '/app/dist/src']) {
    t.ok(copies.includes(needed), `the runtime stage copies ${needed}`);
  }
  t.ok(existsSync(path.join(ROOT, 'src', 'main.ts')), 'src/main.ts compiles to dist/src/main.js');
});

t.test('the runtime stage exposes the default port, checks /_health, runs as non-root and keeps DATA_DIR in a volume', async (t) => {
  const of = (keyword: string) => (runtime?.instructions ?? []).filter((instruction) => instruction.keyword === keyword);
  const env = Object.assign({}, ...of('ENV').map((instruction) => envOf(instruction.args))) as Record<string, string>;

  t.equal(defaultPort, 1337, 'the default PORT in src/config/settings.ts is 1337');
  const exposed = of('EXPOSE').flatMap((instruction) => instruction.args.split(/\s+/)).map((port) => Number(port.split('/')[0]));
  t.same(exposed, [defaultPort], 'EXPOSE is the default PORT');
  if (env.PORT !== undefined) t.equal(Number(env.PORT), defaultPort, 'ENV PORT agrees');

  const health = of('HEALTHCHECK');
  t.equal(health.length, 1, 'one HEALTHCHECK');
  const check = withoutFlags(health[0]?.args ?? '').rest;
  t.match(check, /^CMD\s/, 'it runs a command');
  const probe = commandLine(check.replace(/^CMD\s+/, ''));
  t.match(probe, /^node -e /, 'with node (curl is not in the slim image)');
  t.match(probe, /\/_health\b/, 'on /_health');

  const users = of('USER').map((instruction) => instruction.args.trim());
  t.ok(users.length >= 1, 'the runtime stage sets a USER');
  const user = (users.at(-1) ?? 'root').split(':')[0];
  t.notOk(user === 'root' || user === '0', `the service runs as a non-root user (${user})`);
  const userIndex = (runtime?.instructions ?? []).findIndex((instruction) => instruction.keyword === 'USER');
  const cmdIndex = (runtime?.instructions ?? []).findIndex((instruction) => instruction.keyword === 'CMD');
  t.ok(userIndex !== -1 && userIndex < cmdIndex, 'USER comes before CMD');

  t.equal(env.DATA_DIR, '/data', 'DATA_DIR is /data');
  const volumes = of('VOLUME').flatMap((instruction) => (instruction.args.trim().startsWith('[') ? (JSON.parse(instruction.args) as string[]) : instruction.args.split(/\s+/)));
  t.ok(volumes.includes('/data'), '/data is a VOLUME');
  t.ok(SETTINGS.some((setting) => setting.key === 'data_dir' && setting.env === 'DATA_DIR'), 'DATA_DIR is the data_dir setting');

  const jemalloc = /libjemalloc/.test(env.LD_PRELOAD ?? '');
  t.ok(env.MALLOC_ARENA_MAX === '2' || jemalloc, 'the allocator is tamed: MALLOC_ARENA_MAX=2 or jemalloc');
  if (readme && /MALLOC_ARENA_MAX=2/.test(readme)) t.equal(env.MALLOC_ARENA_MAX, '2', 'as the README says');
});

t.test('.dockerignore keeps local builds out of the context and everything npm ci needs in it', async (t) => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.replace(/^\//, '').replace(/\/$/, ''));
  const ignored = (file: string) =>
    patterns.some((pattern) => {
      if (pattern.startsWith('!')) return false;
      const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/|$)`);
      return regex.test(file);
    });
  for (const local of ['node_modules', 'build', 'dist', 'data']) t.ok(ignored(local), `${local}/ stays out: the image builds its own`);
  const needed = ['package.json', 'package-lock.json', '.npmrc', 'binding.gyp', 'tsconfig.json', 'scripts', 'native', 'src'];
  for (const file of needed) t.notOk(ignored(file), `${file} reaches the build`);
  // The scripts npm ci runs may only use files that reach the build.
  for (const script of [pkg.scripts.install ?? '', pkg.scripts.prepare ?? '']) {
    for (const word of script.split(/\s+/).filter((w) => /\.(m?js|cjs|json)$/.test(w))) t.notOk(ignored(word), `${word} (used by npm ci) reaches the build`);
  }
});

t.test('the compose deployment runs two instances behind nginx, sharing PostgreSQL 15 and S3', async (t) => {
  const compose = read('deploy/docker-compose.yml');
  const nginx = read('deploy/nginx.conf');

  /** The lines of a top-level service, by indentation (two spaces under `services:`). */
  const service = (name: string): string => {
    const lines = compose.split('\n');
    const start = lines.findIndex((line) => line === `  ${name}:`);
    if (start === -1) return '';
    const end = lines.findIndex((line, index) => index > start && /^\s{0,2}\S/.test(line));
    return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
  };
  const envValue = (block: string, key: string): string | undefined => {
    const match = new RegExp(`^\\s+${key}:\\s*(.+?)\\s*$`, 'm').exec(block);
    return match?.[1]?.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  };

  const instances = ['iaas-1', 'iaas-2'].map((name) => ({ name, block: service(name) }));
  for (const { name, block } of instances) t.ok(block, `service ${name} exists`);
  const required = ['DATABASE_URL', 'S3_BUCKET', 'S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'S3_STORE_ORIGINALS', 'CACHE_HOST'];
  for (const { name, block } of instances) {
    for (const key of required) t.ok(envValue(block, key), `${name} sets ${key}`);
    t.equal(envValue(block, 'S3_STORE_ORIGINALS'), 'true', `${name} keeps originals in S3`);
  }
  for (const key of ['DATABASE_URL', 'S3_ENDPOINT', 'S3_BUCKET', 'CACHE_HOST']) {
    const values = instances.map(({ block }) => envValue(block, key));
    t.equal(values[0], values[1], `both instances share ${key}`);
  }
  for (const key of required) {
    const setting = SETTINGS.find((candidate) => candidate.env === key);
    t.ok(setting, `${key} is a setting of iaas`);
  }

  const postgres = service('postgres');
  t.match(postgres, /^\s+image:\s*postgres:15\b/m, 'PostgreSQL is version 15');
  const databaseUrl = new URL(envValue(instances[0]?.block ?? '', 'DATABASE_URL') ?? 'x:');
  t.equal(databaseUrl.hostname, 'postgres', 'DATABASE_URL points at the postgres service');
  t.equal(databaseUrl.username, envValue(postgres, 'POSTGRES_USER'), 'as its user');
  t.equal(decodeURIComponent(databaseUrl.password), envValue(postgres, 'POSTGRES_PASSWORD'), 'with its password');
  t.equal(databaseUrl.pathname, `/${envValue(postgres, 'POSTGRES_DB')}`, 'to its database');

  const endpoint = new URL(envValue(instances[0]?.block ?? '', 'S3_ENDPOINT') ?? 'x:');
  const store = service(endpoint.hostname);
  t.ok(store, 'S3_ENDPOINT points at a service of the deployment');
  t.match(store, /^\s+image:\s*\S*minio/m, 'an S3-compatible store (MinIO)');
  t.equal(envValue(instances[0]?.block ?? '', 'AWS_ACCESS_KEY_ID'), envValue(store, 'MINIO_ROOT_USER'), 'the access key is the store\'s');
  t.equal(envValue(instances[0]?.block ?? '', 'AWS_SECRET_ACCESS_KEY'), envValue(store, 'MINIO_ROOT_PASSWORD'), 'the secret key is the store\'s');

  for (const { name, block } of instances) t.match(block, /^\s+dockerfile:\s*Dockerfile\s*$/m, `${name} runs the image of the Dockerfile`);
  t.ok(existsSync(path.join(ROOT, 'deploy', '..', 'Dockerfile')), 'from the repository root (context ..)');

  const proxy = service('nginx');
  t.match(proxy, /\.\/nginx\.conf:\/etc\/nginx\/nginx\.conf/, 'nginx runs deploy/nginx.conf');
  const upstream = /upstream\s+iaas\s*\{([^}]*)\}/.exec(nginx)?.[1] ?? '';
  const servers = [...upstream.matchAll(/^\s*server\s+([^\s;]+)/gm)].map((match) => match[1]);
  t.same(servers, instances.map(({ name }) => `${name}:${defaultPort}`), 'nginx balances both instances on the default port');
  t.match(nginx, /location \/ \{[^}]*proxy_pass http:\/\/iaas;/s, 'and proxies every request to them');
  const cacheHost = new URL(envValue(instances[0]?.block ?? '', 'CACHE_HOST') ?? 'x:');
  const prefix = cacheHost.pathname.replace(/[^/]+\/?$/, '');
  t.match(nginx, new RegExp(`location ${prefix.replace(/[/]/g, '\\/')} \\{[^}]*\\}[^}]*proxy_pass http://bucket/;`, 's'), 'CACHE_HOST is served by nginx from the bucket');
});
