import pg from 'pg';
import { runner } from 'node-pg-migrate';
import type { Logger } from './logger.ts';
import { checkoutPath } from './paths.ts';

export type Pool = pg.Pool;

export const MIGRATIONS_DIR = checkoutPath('db/migrations');

/** Opens a pool; the size must fit the server (PGlite's socket server multiplexes few). */
export function createPool(connectionString: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Applies pending migrations (node-pg-migrate, SQL files in db/migrations) under its advisory
 * lock, so several API processes starting together migrate once.
 */
export async function migrate(connectionString: string, logger: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      count: Infinity,
      log: (msg: string) => logger.debug(msg),
      logger: { debug: () => undefined, info: (m: string) => logger.debug(m), warn: (m: string) => logger.warn(m), error: (m: string) => logger.error(m) },
    });
    const names = applied.map((m) => m.name);
    logger.info({ applied: names }, names.length > 0 ? 'migrations applied' : 'database schema up to date');
    return names;
  } finally {
    await client.end();
  }
}
