/**
 * Object storage in a local folder: one file per key, written durably
 * (temp file, fsync, rename, fsync of the folder) so a crash never leaves a
 * torn object behind a key.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { ImageError } from '../errors.js';
import { assertValidKey } from './keys.js';
import type { ObjectStorage } from './types.js';

/** Errors that mean "no such object" rather than "the disk failed". */
const MISSING = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

/**
 * Storage in `rootDir` (created on first write). Keys map to files below it;
 * `localPath` exposes the file for streaming and `publicUrl` is null.
 */
export function createLocalStorage(rootDir: string): ObjectStorage {
  const root = resolve(rootDir);

  function pathOf(key: string): string {
    assertValidKey(key);
    const path = resolve(root, ...key.split('/'));
    // The segment rules already forbid climbing; this catches any rule we got wrong.
    if (!path.startsWith(root + sep) || isAbsolute(key)) {
      throw new ImageError('BAD_REQUEST', 'Invalid storage key', { detail: `key escapes the root: ${key}` });
    }
    return path;
  }

  return {
    kind: 'local',

    async put(key, data) {
      const target = pathOf(key);
      await writeDurably(target, key, 'put', async (temp) => {
        const handle = await open(temp, 'wx', 0o644);
        await withHandle(handle, async () => {
          await handle.writeFile(data);
          await handle.sync();
        });
      });
    },

    async putFile(key, file) {
      const target = pathOf(key);
      // A copy leaves the caller's file alone, exactly as the S3 backend does;
      // FICLONE makes it a cheap reflink where the filesystem supports one.
      await writeDurably(target, key, 'putFile', async (temp) => {
        await copyFile(file, temp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
        const handle = await open(temp, 'r+');
        await withHandle(handle, () => handle.sync());
      });
    },

    async get(key) {
      const path = pathOf(key);
      try {
        const bytes = await readFile(path);
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (error) {
        if (MISSING.has(errnoOf(error))) return null;
        throw unavailable('get', key, error);
      }
    },

    async exists(key) {
      const path = pathOf(key);
      try {
        return (await stat(path)).isFile();
      } catch (error) {
        if (MISSING.has(errnoOf(error))) return false;
        throw unavailable('exists', key, error);
      }
    },

    async delete(keys) {
      // Validate all first: a bad key must not leave the batch half done.
      const paths = keys.map((key) => pathOf(key));
      const folders = new Set<string>();
      for (const [index, path] of paths.entries()) {
        try {
          await unlink(path);
          folders.add(dirname(path));
        } catch (error) {
          if (MISSING.has(errnoOf(error))) continue;
          throw unavailable('delete', keys[index] ?? '', error);
        }
      }
      for (const folder of folders) {
        try {
          await syncFolder(folder);
        } catch (error) {
          if (!MISSING.has(errnoOf(error))) throw unavailable('delete', folder, error);
        }
      }
    },

    async list(prefix, limit = 1000) {
      // The folder the prefix lies in, then every file below it whose key starts with the prefix.
      const slash = prefix.lastIndexOf('/');
      const folderKey = slash === -1 ? '' : prefix.slice(0, slash);
      if (folderKey) assertValidKey(folderKey);
      const keys: string[] = [];
      const walk = async (dir: string, keyPrefix: string): Promise<void> => {
        let entries;
        try {
          entries = await readdir(dir, { withFileTypes: true });
        } catch (error) {
          if (MISSING.has(errnoOf(error))) return;
          throw unavailable('list', prefix, error);
        }
        for (const entry of entries) {
          const key = keyPrefix + entry.name;
          if (entry.name.startsWith('.tmp-')) continue;
          if (entry.isDirectory()) {
            if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(join(dir, entry.name), `${key}/`);
          } else if (key.startsWith(prefix)) keys.push(key);
        }
      };
      await walk(folderKey ? join(root, ...folderKey.split('/')) : root, folderKey ? `${folderKey}/` : '');
      return keys.sort().slice(0, limit);
    },

    localPath(key) {
      return pathOf(key);
    },

    publicUrl() {
      return null;
    },
  };
}

/**
 * Creates the target's folder, lets `fill` write and fsync a temp file next
 * to the target, renames it over the target and fsyncs the folder. The temp
 * file is removed on any failure.
 */
async function writeDurably(target: string, key: string, op: string, fill: (temp: string) => Promise<void>): Promise<void> {
  const folder = dirname(target);
  // The writer's pid in the name lets the cluster sweep what a killed worker left half-written.
  const temp = join(folder, `.tmp-${process.pid}-${randomBytes(12).toString('hex')}`);
  let renamed = false;
  try {
    await makeFolder(folder);
    await fill(temp);
    await rename(temp, target);
    renamed = true;
    await syncFolder(folder);
  } catch (error) {
    if (!renamed) await rm(temp, { force: true }).catch(() => undefined);
    throw unavailable(op, key, error);
  }
}

/** mkdir -p, then fsync the parent of every folder it created so the new entries survive a crash. */
async function makeFolder(folder: string): Promise<void> {
  const first = await mkdir(folder, { recursive: true });
  if (first === undefined) return;
  const created: string[] = [];
  for (let dir = folder; dir.length >= first.length; dir = dirname(dir)) {
    created.push(dirname(dir));
    if (dir === first) break;
  }
  for (const dir of created) await syncFolder(dir);
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  await withHandle(handle, () => handle.sync());
}

async function withHandle(handle: FileHandle, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } finally {
    await handle.close();
  }
}

/** The errno code (ENOENT, ENOSPC, ...) of a file-system error, or empty. */
function errnoOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

function unavailable(op: string, key: string, error: unknown): ImageError {
  if (error instanceof ImageError) return error;
  const reason = errnoOf(error) || (error instanceof Error ? error.message : String(error));
  return new ImageError('UNAVAILABLE', 'Storage is unavailable', { detail: `local ${op} ${key}: ${reason}`, cause: error });
}
