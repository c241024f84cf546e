#!/usr/bin/env node
/**
 * The `iaas` command: start the cluster, migrate the schema, purge renders,
 * issue a token. Each subcommand has --help; a bad flag is a clear error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { purgeBefore, purgeVariantsOf } from '../images/purge.js';
import { issueToken } from '../images/tokens.js';
import { migrate } from '../cluster/supervisor.js';
import { main } from '../main.js';
import { backfillWorkingCopies } from './working-copies.js';
import { cacheStorageFor, storeFor } from '../server.js';

interface Command {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals?: number;
  run(values: Record<string, string | boolean | undefined>, positionals: string[]): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  start: {
    usage: 'iaas start\n  Runs the service (the same as npm start): WORKERS processes on PORT, configured by config/*.json and env.',
    options: {},
    run: async () => main(),
  },
  migrate: {
    usage: 'iaas migrate\n  Creates or migrates the schema of the configured database (SQLite or PostgreSQL), then exits.',
    options: {},
    run: async () => {
      const config = readConfig();
      await migrate(config);
      console.log(`schema is up to date (${config.database ? 'PostgreSQL' : config.sqlitePath})`);
    },
  },
  purge: {
    usage: [
      'iaas purge --before <ISO date> [--batch 100] [--pause-ms 1000]',
      '  Deletes rendered variants rendered before the date, in batches, pausing between batches',
      '  so the instances are not flooded with re-renders. Cached objects are deleted too.',
      'iaas purge --id <id>',
      '  Deletes every rendered variant of one original; the original stays.',
    ].join('\n'),
    options: {
      before: { type: 'string' },
      batch: { type: 'string', default: '100' },
      'pause-ms': { type: 'string', default: '1000' },
      id: { type: 'string' },
    },
    run: async (values) => {
      const hasBefore = typeof values.before === 'string';
      const hasId = typeof values.id === 'string';
      if (hasBefore === hasId) throw new UsageError('give exactly one of --before <ISO date> or --id <id>');
      // Every flag is checked before the database is touched.
      const before = hasBefore ? parseIsoDate(values.before as string) : undefined;
      const batch = positiveInteger(values.batch, '--batch');
      const pauseMs = positiveInteger(values['pause-ms'], '--pause-ms', 0);
      const config = readConfig();
      const store = storeFor(config);
      const cache = cacheStorageFor(config);
      try {
        if (!before) {
          const count = await purgeVariantsOf({ store, cache }, values.id as string);
          console.log(`purged ${count} rendered variants of ${values.id as string}`);
          return;
        }
        const total = await purgeBefore({ store, cache }, { before, batch, pauseMs, onBatch: (n) => console.log(`purged a batch of ${n}`) });
        console.log(`purged ${total} rendered variants rendered before ${before.toISOString()}`);
      } finally {
        await store.close();
      }
    },
  },
  'working-copies': {
    usage: [
      'iaas working-copies [--batch 20] [--pause-ms 0]',
      '  Makes the working copies of every original that has none decided yet (uploaded before',
      '  working copies existed), a batch at a time; the service also makes them on a first miss.',
    ].join('\n'),
    options: {
      batch: { type: 'string', default: '20' },
      'pause-ms': { type: 'string', default: '0' },
    },
    run: async (values) => {
      const batch = positiveInteger(values.batch, '--batch');
      const pauseMs = positiveInteger(values['pause-ms'], '--pause-ms', 0);
      const counts = await backfillWorkingCopies(readConfig(), { batch, pauseMs, onBatch: (line) => console.log(line) });
      console.log(`working copies: ${Object.entries(counts).map(([outcome, n]) => `${n} ${outcome}`).join(', ') || 'nothing to do'}`);
    },
  },
  token: {
    usage: 'iaas token <id>\n  Issues a one-time upload token for <id> directly in the database (no secret needed) and prints it.',
    options: {},
    positionals: 1,
    run: async (_values, positionals) => {
      const config = readConfig();
      const store = storeFor(config);
      try {
        const token = await issueToken({ store, secret: undefined, ttlSeconds: config.tokenTtlSeconds }, { id: positionals[0] });
        console.log(token);
      } finally {
        await store.close();
      }
    },
  },
};

class UsageError extends Error {}

function positiveInteger(value: unknown, flag: string, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} expects an integer of at least ${min}, not ${JSON.stringify(value)}`);
  return n;
}

function parseIsoDate(value: string): Date {
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime())) {
    throw new UsageError(`--before expects an ISO date such as 2026-01-31, not ${JSON.stringify(value)}`);
  }
  return date;
}

function readConfig(): Config {
  return loadConfig();
}

const HELP = `iaas — Imaging-as-a-Service

Usage: iaas <command> [options]

Commands:
${Object.values(COMMANDS)
  .map((command) => `  ${command.usage.split('\n')[0]}`)
  .join('\n')}

Run iaas <command> --help for details.`;

export async function cli(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`iaas: unknown command ${JSON.stringify(name)}\n\n${HELP}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: (command.positionals ?? 0) > 0,
      strict: true,
    });
    if (values.help) {
      console.log(command.usage);
      return 0;
    }
    if (positionals.length !== (command.positionals ?? 0)) throw new UsageError(`expected ${command.positionals ?? 0} argument(s)`);
    await command.run(values as Record<string, string | boolean | undefined>, positionals);
    return 0;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`iaas ${name}: ${(error as Error).message}\n\n${command.usage}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      console.error(`iaas: ${error.message}`);
      return 2;
    }
    console.error(`iaas ${name}: ${(error as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  cli(args).then((code) => {
    // `start` keeps running; every other command exits with its status.
    if (args[0] !== 'start' || code !== 0) process.exitCode = code;
  });
}
