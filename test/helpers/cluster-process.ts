/**
 * Starts `node dist/src/main.js` (the real cluster) as a child process and
 * waits for its "iaas listening" log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ClusterProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Every JSON log line seen so far. */
  lines: Record<string, unknown>[];
  /** SIGTERM, then resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** dist/src/main.js next to this compiled helper (dist/test/helpers/). */
export const MAIN_JS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'main.js');

export function startClusterProcess(env: Record<string, string>, cwd?: string): Promise<ClusterProcess> {
  const child = spawn(process.execPath, [MAIN_JS], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LISTEN_ADDRESS: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the cluster did not start within 30 s: ${stderr.slice(-500)}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the cluster exited with ${code}: ${stderr.slice(-500)}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      lines.push(parsed);
      if (parsed.message === 'iaas listening') {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        const port = Number(parsed.port);
        resolve({
          url: `http://127.0.0.1:${port}`,
          port,
          child,
          lines,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done(child.exitCode);
              child.once('exit', (code) => done(code));
              child.kill('SIGTERM');
            }),
        });
      }
    });
  });
}
