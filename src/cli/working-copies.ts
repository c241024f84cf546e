/**
 * `iaas working-copies`: back-fills the working copies of originals uploaded
 * before copies existed, in batches, with a render pool of its own (the
 * service makes them too, on an original's first miss).
 */
import { localAdmitter } from '../admission/client.js';
import type { Config } from '../config/types.js';
import { Renders } from '../images/renders.js';
import { createImageService } from '../images/service.js';
import { createLogger } from '../log.js';
import { createRenderPool } from '../render/pool.js';
import { brokerSettings, cacheStorageFor, originalsStorageFor, storeFor } from '../server.js';

export interface BackfillOptions {
  batch: number;
  pauseMs: number;
  onBatch?: (line: string) => void;
}

/** Makes the copies of every original without decided copies; counts the outcomes. */
export async function backfillWorkingCopies(config: Config, options: BackfillOptions): Promise<Record<string, number>> {
  const store = storeFor(config);
  const pool = createRenderPool({ size: config.pool.size, queueLimit: config.pool.size, timeoutMs: config.pool.timeoutMs, vipsConcurrency: config.pool.vipsConcurrency });
  const admitter = localAdmitter(brokerSettings(config));
  const log = createLogger({ ...config.log, info: false });
  const service = createImageService({ config, store, originals: originalsStorageFor(config), cache: cacheStorageFor(config), renders: new Renders(pool, admitter), log });
  const counts: Record<string, number> = {};
  const tried = new Set<string>();
  try {
    await store.migrate();
    for (;;) {
      // Those a pass could not decide (a failure) stay undecided: each is tried once per run.
      const rows = (await store.originalsWithoutCopies(options.batch + tried.size)).filter((row) => !tried.has(`${row.id}/${row.generation}`)).slice(0, options.batch);
      if (rows.length === 0) break;
      // One at a time, on a pool of this process': a running service shares the cores, and --pause-ms leaves it room.
      for (const row of rows) {
        tried.add(`${row.id}/${row.generation}`);
        const outcome = await service.makeWorkingCopies(row.id).catch(() => 'failed' as const);
        counts[outcome] = (counts[outcome] ?? 0) + 1;
      }
      options.onBatch?.(`a batch of ${rows.length}: ${JSON.stringify(counts)}`);
      if (options.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
    return counts;
  } finally {
    await pool.close();
    admitter.close();
    await store.close();
  }
}
