/**
 * Logs: pino, as Logstash-compatible JSON lines (`@timestamp`, `message`,
 * `level` as text). The level is the lowest one the original `log.*` keys enable.
 */
import { pino, type Logger } from 'pino';
import type { Config } from './config/types.js';

export type { Logger } from 'pino';

/** The pino level for the original service's `log.{debug,info,warn,error}` switches. */
export function levelOf(log: Config['log']): string {
  if (log.debug) return 'debug';
  if (log.info) return 'info';
  if (log.warn) return 'warn';
  if (log.error) return 'error';
  return 'silent';
}

/** Creates the process logger. `destination` is for tests; stdout by default. */
export function createLogger(log: Config['log'], bindings: Record<string, unknown> = {}, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: levelOf(log),
    messageKey: 'message',
    base: { '@version': '1', pid: process.pid, ...bindings },
    timestamp: () => `,"@timestamp":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
  };
  // Asynchronous writes coalesce the per-request lines written while one write is in flight,
  // instead of one blocking write(2) per request on the hot path.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
