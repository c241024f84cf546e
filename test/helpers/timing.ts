/**
 * Waiting in tests: a plain pause, and polls that resolve as soon as a
 * condition holds (or show that it keeps holding). The bench uses `sleep`
 * from here too, so there is one.
 */

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `everyMs` until it returns true, for up to `timeoutMs`: true as soon as it holds, false when time ran out. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2_000, everyMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

/** True when `check` holds every time it is polled for `forMs` (nothing appears later). */
export async function stays(check: () => boolean | Promise<boolean>, forMs = 2_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + forMs;
  for (;;) {
    if (!(await check())) return false;
    if (Date.now() >= deadline) return true;
    await sleep(everyMs);
  }
}
