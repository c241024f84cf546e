/**
 * Headless Chromium for the browser suites, through playwright-core when it
 * is installed: the flags this machine needs, the parts of Playwright's API
 * the suites use (typed here, so they compile whether or not it is
 * installed), and one loader that says why the suites skip.
 */
import { existsSync } from 'node:fs';

/** Debian's Chromium (apt-get install chromium). */
export const CHROMIUM = '/usr/bin/chromium';
/** Without the background-networking flags Chromium keeps calling hosts this closed network refuses. */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface PwRequest {
  url(): string;
  /** Every header sent, including those the browser adds itself (such as Accept). */
  allHeaders(): Promise<Record<string, string>>;
}
export interface PwResponse {
  url(): string;
  status(): number;
  headers(): Record<string, string>;
  request(): PwRequest;
}
export interface PwPage {
  goto(url: string, options?: { timeout?: number }): Promise<unknown>;
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
  on(event: 'response', handler: (response: PwResponse) => void): void;
  on(event: 'console' | 'pageerror', handler: (message: { toString(): string }) => void): void;
  setDefaultTimeout(ms: number): void;
  close(): Promise<void>;
}
export interface PwContext {
  newPage(): Promise<PwPage>;
  close(): Promise<void>;
}
export interface Playwright {
  chromium: { launchPersistentContext(userDataDir: string, options: Record<string, unknown>): Promise<PwContext> };
}

/** playwright-core with Chromium present, or why not (the suites then skip, saying so). */
export async function loadPlaywright(): Promise<{ playwright: Playwright; missing?: undefined } | { playwright?: undefined; missing: string }> {
  if (!existsSync(CHROMIUM)) return { missing: `no Chromium at ${CHROMIUM} (apt-get install chromium)` };
  try {
    // A variable specifier: this file must compile while playwright-core is not installed.
    const specifier = 'playwright-core';
    return { playwright: (await import(specifier)) as Playwright };
  } catch (error) {
    return { missing: `playwright-core cannot be loaded (it must be a devDependency): ${(error as Error).message.split('\n')[0]}` };
  }
}

/**
 * A fresh page of `origin` in `context`, every response it sees recorded, once
 * the page's script has set `globalThis.ready`; closed when `t` ends.
 */
export async function openPage(
  t: { teardown(fn: () => unknown): void; comment(message: string): void },
  context: PwContext,
  origin: string,
  options: { reportErrors?: boolean } = {},
): Promise<{ page: PwPage; responses: PwResponse[] }> {
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const responses: PwResponse[] = [];
  page.on('response', (response) => responses.push(response));
  if (options.reportErrors) page.on('pageerror', (error) => t.comment(`page error: ${error.toString()}`));
  t.teardown(() => page.close().catch(() => {}));
  await page.goto(`${origin}/`, { timeout: 60_000 });
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const poll = () => ((globalThis as unknown as { ready?: boolean }).ready ? resolve() : setTimeout(poll, 20));
        poll();
      }),
    undefined,
  );
  return { page, responses };
}
