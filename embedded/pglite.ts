import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from '../common/logger.ts';
import { SessionQueue } from './pglite-session-queue.ts';

export interface EmbeddedPostgres {
  /** A `postgres://` URL the `pg` driver connects to, exactly as it would to a real server. */
  url: string;
  /** How many connections the socket server multiplexes onto PGlite's single session. */
  maxConnections: number;
  stop(): Promise<void>;
}

/**
 * PGlite (PostgreSQL compiled to WASM) served over the PostgreSQL wire protocol, so the platform's
 * one `pg` code path works unchanged. For development only: PGlite is a single session, so
 * connections are multiplexed and pools must stay small.
 */
export async function startEmbeddedPostgres(options: {
  dataDir?: string;
  port: number;
  host?: string;
  maxConnections?: number;
  logger: Logger;
}): Promise<EmbeddedPostgres> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create(options.dataDir ? { dataDir: options.dataDir } : {});
  const host = options.host ?? '127.0.0.1';
  const maxConnections = options.maxConnections ?? 8;
  const server = new PGLiteSocketServer({ db, port: options.port, host, maxConnections });
  // Its connection handlers take the server's queue when they attach: ours keeps each connection's
  // extended-protocol batch together (embedded/pglite-session-queue.ts).
  (server as unknown as { queryQueue: SessionQueue }).queryQueue = new SessionQueue(db);
  await server.start();
  options.logger.info({ host, port: options.port, dataDir: options.dataDir ?? '(memory)' }, 'embedded PostgreSQL (PGlite) listening');
  return {
    url: `postgres://postgres@${host}:${options.port}/postgres`,
    maxConnections,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
