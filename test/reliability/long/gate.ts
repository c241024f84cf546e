/**
 * The long reliability tests run under `npm run test:reliability` only. npm
 * test's tap includes every compiled *.test.js under dist/test, so each long file checks
 * this first and skips itself otherwise (IAAS_RELIABILITY_LONG=1 forces a run).
 */
export function runLong(): boolean {
  return process.env.npm_lifecycle_event === 'test:reliability' || process.env.IAAS_RELIABILITY_LONG === '1';
}

export const SKIPPED = 'long reliability test: runs under `npm run test:reliability` (or with IAAS_RELIABILITY_LONG=1)';
