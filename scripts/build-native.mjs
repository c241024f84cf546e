// Builds the native addon with node-gyp against the running Node's own headers.
// The headers ship with Node under <prefix>/include/node; pointing --nodedir at
// that prefix means node-gyp never tries to download them (no internet here).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gypRebuild } from './node-gyp-build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
gypRebuild({ cwd: root, what: 'the native addon' });
