/**
 * Crash watch: an uncaught exception or unhandled rejection would have killed
 * a worker process. tap keeps the test process alive, so each test asserts
 * that none happened since it started, and names the error if one did.
 */
import type { Test } from 'tap';
import { healthStatus } from './http.js';

const crashes: string[] = [];
let watching = false;

function watchCrashes(): void {
  if (watching) return;
  watching = true;
  process.on('uncaughtException', (error) => crashes.push(`uncaughtException: ${describeError(error)}`));
  process.on('unhandledRejection', (error) => crashes.push(`unhandledRejection: ${describeError(error)}`));
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message} @ ${(error.stack ?? '').split('\n').slice(1, 4).join(' | ')}`;
  return String(error);
}

/** The position in the crash log (starting the watch); pass it to `crashesSince`. */
export function crashMark(): number {
  watchCrashes();
  return crashes.length;
}

/** The crashes recorded since `mark`, described. */
export function crashesSince(mark: number): string[] {
  return crashes.slice(mark);
}

/** The process survived (no uncaught error since `mark`) and still answers /_health with 200. */
export async function assertAlive(t: Test, url: string, mark: number): Promise<void> {
  t.same(crashesSince(mark), [], 'no uncaught exception or unhandled rejection: the server process would have survived');
  t.equal(await healthStatus(url), 200, 'a follow-up GET /_health answers 200');
}
