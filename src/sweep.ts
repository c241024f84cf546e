/**
 * Temp files a killed process leaves behind: half-written objects in the
 * originals and cache folders (`.tmp-<pid>-*`) and upload bodies in the temp
 * folder (`upload-<pid>-*`). The primary sweeps them at start (all of them: no
 * worker runs yet) and after a worker dies (only that worker's).
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

async function walk(dir: string, visit: (file: string, name: string) => Promise<void>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, visit);
    else await visit(full, entry.name);
  }
}

/** Removes leftovers of `pid`, or of every process when `pid` is undefined. Returns how many. */
export async function sweepTempFiles(folders: { objects: string[]; uploads: string }, pid?: number): Promise<number> {
  const object = pid === undefined ? '.tmp-' : `.tmp-${pid}-`;
  const upload = pid === undefined ? 'upload-' : `upload-${pid}-`;
  let removed = 0;
  const remove = async (file: string) => {
    await rm(file, { force: true });
    removed++;
  };
  for (const folder of folders.objects) {
    await walk(folder, async (file, name) => {
      if (name.startsWith(object)) await remove(file);
    });
  }
  await walk(folders.uploads, async (file, name) => {
    if (name.startsWith(upload)) await remove(file);
  });
  return removed;
}
