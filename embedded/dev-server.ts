import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import type { Logger } from '../common/logger.ts';
import { searchAttributeFlags } from '../common/search-attributes.ts';

export interface DevServerOptions {
  cliPath: string;
  port: number;
  /** Web UI port; omit with `headless` for tests. */
  uiPort?: number;
  headless?: boolean;
  ip?: string;
  /** SQLite file for persistence across restarts; in memory when omitted. */
  dbFile?: string;
  namespace?: string;
  logger: Logger;
  /** How long to wait for the frontend to answer. */
  readyTimeoutMs?: number;
  /**
   * Extra `--dynamic-config-value` settings; FAST_DEV_SERVER_CONFIG when omitted. `{}` is the stock
   * dev server (only the task-queue priority settings below, which are always set).
   */
  dynamicConfig?: Readonly<Record<string, string | number | boolean>>;
  /** The codec server Temporal Web calls to show payloads in the clear (`--ui-codec-endpoint`; docs/sensitive-data.md). */
  codecEndpoint?: string;
}

/**
 * The dev server's queue processors are rate-limited for a shared production cluster: each shard
 * reads its transfer queue (workflow and activity tasks on their way to matching) at most 20 times
 * a second, and likewise its timer queue. On one machine with one shard per queue this throttle is
 * most of a step's latency (bench/RESULTS-devserver.md: `npm run bench:devserver`). Lifting the poll rates
 * lets a task reach matching as soon as it is written; when nothing is written the processors wait
 * for a notification, so an idle server does not poll more (idle CPU is measured there too).
 */
export const FAST_DEV_SERVER_CONFIG: Readonly<Record<string, number | boolean>> = {
  'history.transferProcessorMaxPollRPS': 1000,
  'history.timerProcessorMaxPollRPS': 1000,
  'history.visibilityProcessorMaxPollRPS': 1000,
  'history.outboundProcessorMaxPollRPS': 1000,
  // The per-shard events cache is small; the host-level one is there and off by default.
  'history.enableHostLevelEventsCache': true,
  // Concurrent persistence calls per shard (default 1): a step's writes no longer queue behind another run's.
  'history.shardIOConcurrency': 4,
};

/**
 * The codec endpoint Temporal Web is started with (`--ui-codec-endpoint`): the API's codec server
 * at the path whose token is Temporal Web's credential (api/routes/codec.ts, docs/sensitive-data.md).
 */
export function uiCodecEndpoint(api: { API_HOST: string; API_PORT: number }, uiToken: string): string {
  return `http://${api.API_HOST === '0.0.0.0' ? '127.0.0.1' : api.API_HOST}:${api.API_PORT}/codec/ui/${uiToken}`;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  /** Resolves once the server has exited (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `temporal server start-dev` with the platform's search attributes registered, and waits
 * until its namespace answers. The CLI's own JSON log lines are forwarded at warn/error only.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(options.port), '--namespace', namespace, '--log-format', 'json', '--log-level', 'warn'];
  if (options.headless) args.push('--headless');
  else if (options.uiPort) args.push('--ui-port', String(options.uiPort), '--ui-disable-news-fetch');
  if (options.codecEndpoint && !options.headless) args.push('--ui-codec-endpoint', options.codecEndpoint);
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  for (const flag of searchAttributeFlags()) args.push('--search-attribute', flag);
  // Task queue priority (the definitions' `priority`) needs the priority-aware matcher. It is the
  // default in recent servers (1.31 on); set here so older dev servers order by priority too.
  args.push('--dynamic-config-value', 'matching.useNewMatcher=true');
  // Priority orders tasks within a partition: new tasks go to one partition so that a backlog is
  // dispatched in priority order (a single-node server gains nothing from more). Read partitions
  // stay at the default so tasks an older start wrote to other partitions still drain.
  args.push('--dynamic-config-value', 'matching.numTaskqueueWritePartitions=1');
  for (const [key, value] of Object.entries(options.dynamicConfig ?? FAST_DEV_SERVER_CONFIG)) {
    args.push('--dynamic-config-value', `${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }

  const log = options.logger;
  // Detached: a terminal's Ctrl-C reaches the supervisor only, which stops Temporal after the workers drained.
  const child = spawn(options.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  const tail: string[] = [];
  const forward = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string };
        if (entry.level === 'error' || entry.level === 'fatal') log.error({ temporal: entry }, entry.msg ?? 'temporal server error');
        else if (entry.level === 'warn') log.debug({ temporal: entry }, entry.msg ?? 'temporal server warning');
      } catch {
        log.debug({ line }, 'temporal server output');
      }
    }
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);

  const address = `${ip}:${options.port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      throw new Error(`temporal server exited during start (code ${exited.code}, signal ${exited.signal}):\n${tail.join('\n')}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        break;
      } finally {
        await connection.close();
      }
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`temporal server at ${address} not ready after ${options.readyTimeoutMs ?? 60_000} ms: ${(error as Error).message}`);
      }
      await sleep(200);
    }
  }

  const server: DevServer = {
    address,
    process: child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
  if (!options.headless && options.uiPort) server.uiUrl = `http://${ip}:${options.uiPort}`;
  return server;
}
