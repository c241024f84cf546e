import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The folder holding iaas' package.json. Code runs both from `dist/src/...`
 * and, in tools, from other depths, so walk up instead of counting `..`.
 */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
      if (parsed.name === 'iaas') return (cached = dir);
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('iaas: cannot find the package root (package.json named "iaas")');
    dir = parent;
  }
}
