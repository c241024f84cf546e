/**
 * The cluster's entry: the primary reads the config once, migrates the
 * schema once, forks WORKERS processes that all listen on one port, respawns
 * a crashed worker with backoff, and drains everything on SIGTERM. The
 * workers run this module too (cluster/supervisor.ts, cluster/worker.ts).
 *
 *   node dist/src/main.js        (npm start, iaas start)
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { runPrimary } from './cluster/supervisor.js';
import { runWorker } from './cluster/worker.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { createLogger } from './log.js';

/** Entry point of `npm start` and `iaas start`. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ env });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`iaas: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const log = cluster.isPrimary
    ? createLogger(config.log, { bindings: { role: 'primary' } })
    : createLogger(config.log, { bindings: { role: 'worker' }, buffered: true });
  try {
    // Workers run this module whichever entry (npm start, iaas start) launched the primary.
    if (cluster.isPrimary) await runPrimary(config, log, fileURLToPath(import.meta.url));
    else await runWorker(config, log);
  } catch (error) {
    log.fatal({ err: error }, (error as Error).message);
    // Give pino a moment to flush before exiting.
    setTimeout(() => process.exit(1), 50);
  }
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) void main();
