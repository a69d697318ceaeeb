import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import type { Config } from '../common/config.ts';
import { activityTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import { migrate } from '../common/db.ts';
import type { Logger } from '../common/logger.ts';
import { startDevServer, type DevServer } from '../embedded/dev-server.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../embedded/pglite.ts';
import { isListening } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { temporalConnectionSettings } from '../common/temporal.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL('./platform.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ChildSpec {
  name: string;
  args: string[];
}

interface Supervised {
  spec: ChildSpec;
  process?: ChildProcess;
  restarts: number[];
  exited: Promise<void>;
}

/** Creates the development API key once and keeps it in the data folder. */
function ensureDevKey(dataDir: string): { file: string; key: string; created: boolean } {
  const file = join(dataDir, 'api-keys.json');
  const keyFile = join(dataDir, 'dev-api-key');
  if (existsSync(file) && existsSync(keyFile)) return { file, key: readFileSync(keyFile, 'utf8').trim(), created: false };
  const key = `dev_${randomBytes(24).toString('base64url')}`;
  const entries = [{ key, principal: 'dev', roles: ['submit', 'approve', 'admin'], tenant: 'default', groups: ['developers'] }];
  writeFileSync(file, `${JSON.stringify(entries, null, 2)}\n`, { mode: 0o600 });
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  return { file, key, created: true };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

/**
 * `up`: the whole platform on embedded defaults in one supervised process tree: a Temporal dev
 * server (SQLite in the data folder, Web UI), PGlite over the PostgreSQL protocol when
 * DATABASE_URL is unset, one worker process per lane and the API. Children that crash are
 * restarted with backoff; SIGINT/SIGTERM stops everything in order (API, workers, Temporal,
 * PostgreSQL). Starting again reuses the data folder, so definitions and runs are kept.
 */
export async function up(config: Config, logger: Logger): Promise<void> {
  const startedAt = Date.now();
  const dataDir = resolve(config.DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PLATFORM_SUPERVISOR_PID: String(process.pid),
    // On one's own machine a webhook receiver on localhost is the usual first try; elsewhere
    // outbound webhooks stay closed unless WEBHOOK_ALLOWED_HOSTS lists the host.
    WEBHOOK_ALLOW_LOOPBACK: process.env.WEBHOOK_ALLOW_LOOPBACK ?? 'true',
  };
  /** Services to stop after the children, lowest order first (Temporal before PostgreSQL). */
  const cleanups: Array<{ order: number; run: () => Promise<void> }> = [];
  let stopping = false;

  const stopAll = async (code: number, children: Supervised[]) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping platform');
    // API first (no new work), then workers (drain), then the services they use.
    const api = children.filter((c) => c.spec.name === 'api');
    const workers = children.filter((c) => c.spec.name !== 'api');
    for (const group of [api, workers]) {
      for (const c of group) c.process?.kill('SIGTERM');
      await Promise.race([Promise.all(group.map((c) => c.exited)), sleep(15_000)]);
      for (const c of group) if (c.process && c.process.exitCode === null) c.process.kill('SIGKILL');
    }
    for (const cleanup of cleanups.sort((a, b) => a.order - b.order)) {
      await cleanup.run().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'cleanup failed'));
    }
    logger.info({ code }, 'platform stopped');
    process.exit(code);
  };

  const children: Supervised[] = [];
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stopAll(0, children));
  try {
    await startEverything();
  } catch (error) {
    logger.error({ err: (error as Error).message }, 'platform failed to start');
    await stopAll(1, children);
  }

  async function startEverything(): Promise<void> {
    let devKey: ReturnType<typeof ensureDevKey> | undefined;
    if (!config.API_KEYS && !config.API_KEYS_FILE) {
      devKey = ensureDevKey(dataDir);
      env.API_KEYS_FILE = devKey.file;
    }

    // Temporal, PostgreSQL and the workflow bundle do not depend on each other: start them together.
    const startTemporal = async (): Promise<DevServer | undefined> => {
      // An explicit TEMPORAL_ADDRESS means a running server: start none.
      if (process.env.TEMPORAL_ADDRESS) return undefined;
      const cliPath = resolveTemporalCli();
      if (await isListening('127.0.0.1', config.TEMPORAL_DEV_PORT)) {
        throw new Error(
          `port ${config.TEMPORAL_DEV_PORT} is taken: stop what runs there, set TEMPORAL_DEV_PORT, or set TEMPORAL_ADDRESS to use a running Temporal server`,
        );
      }
      const server = await startDevServer({
        cliPath,
        port: config.TEMPORAL_DEV_PORT,
        uiPort: config.TEMPORAL_UI_PORT,
        dbFile: join(dataDir, 'temporal.db'),
        namespace: config.TEMPORAL_NAMESPACE,
        logger: logger.child({ component: 'temporal' }),
      });
      cleanups.push({ order: 1, run: () => server.stop() });
      logger.info({ address: server.address, ui: server.uiUrl }, 'Temporal dev server ready');
      return server;
    };
    const startPostgres = async (): Promise<EmbeddedPostgres | undefined> => {
      if (config.DATABASE_URL) return undefined;
      const embedded = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pglite'), port: config.EMBEDDED_PG_PORT, logger });
      cleanups.push({ order: 2, run: () => embedded.stop() });
      return embedded;
    };
    // allSettled, not all: whatever did start has registered its cleanup before a failure is raised.
    const settled = await Promise.allSettled([startTemporal(), startPostgres(), buildWorkflowBundle(logger)] as const);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [devServer, postgres, bundle] = settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
      DevServer | undefined,
      EmbeddedPostgres | undefined,
      Awaited<ReturnType<typeof buildWorkflowBundle>>,
    ];
    if (devServer) env.TEMPORAL_ADDRESS = devServer.address;
    if (postgres) {
      env.DATABASE_URL = postgres.url;
      env.DATABASE_POOL_SIZE = '2';
    }
    await migrate(env.DATABASE_URL!, logger);
    const bundlePath = join(dataDir, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    env.WORKFLOW_BUNDLE_PATH = bundlePath;

    const specs: ChildSpec[] = [
      ...config.LANES.map((lane) => ({ name: `worker:${lane}`, args: ['worker', '--lane', lane] })),
      { name: 'api', args: ['api'] },
    ];
    const launch = (child: Supervised) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...child.spec.args], {
        cwd: PROJECT_ROOT,
        env,
        stdio: ['ignore', 'inherit', 'inherit'],
        detached: true,
      });
      child.process = proc;
      child.exited = new Promise((resolveExit) => {
        proc.once('exit', (code, signal) => {
          resolveExit();
          if (stopping) return;
          const now = Date.now();
          child.restarts = child.restarts.filter((t) => now - t < 60_000);
          child.restarts.push(now);
          if (child.restarts.length > 5) {
            logger.error({ child: child.spec.name, code, signal }, 'child keeps crashing; stopping the platform');
            void stopAll(1, children);
            return;
          }
          const delay = Math.min(30_000, 1000 * 2 ** (child.restarts.length - 1));
          logger.warn({ child: child.spec.name, code, signal, restartInMs: delay }, 'child exited; restarting');
          setTimeout(() => {
            if (!stopping) launch(child);
          }, delay);
        });
      });
    };
    for (const spec of specs) {
      const child: Supervised = { spec, restarts: [], exited: Promise.resolve() };
      children.push(child);
      launch(child);
    }

    devServer?.process.once('exit', (code) => {
      if (!stopping) {
        logger.error({ code }, 'Temporal dev server exited; stopping the platform');
        void stopAll(1, children);
      }
    });

    const apiHost = config.API_HOST === '0.0.0.0' ? '127.0.0.1' : config.API_HOST;
    const apiUrl = `http://${apiHost}:${config.API_PORT}`;
    await waitFor('API', async () => (await fetch(`${apiUrl}/readyz`)).ok, 120_000);
    const connection = await Connection.connect(temporalConnectionSettings({ ...config, TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS ?? config.TEMPORAL_ADDRESS }));
    try {
      const queues = config.LANES.flatMap((lane) => [
        { name: workflowTaskQueue(lane), type: 1 },
        { name: activityTaskQueue(lane, 'skills'), type: 2 },
        { name: activityTaskQueue(lane, 'integrations'), type: 2 },
      ]);
      await waitFor(
        'lane workers',
        async () => {
          for (const q of queues) {
            const answer = await connection.workflowService.describeTaskQueue({
              namespace: config.TEMPORAL_NAMESPACE,
              taskQueue: { name: q.name },
              taskQueueType: q.type,
            });
            if ((answer.pollers ?? []).length === 0) return false;
          }
          return true;
        },
        120_000,
      );
    } finally {
      await connection.close();
    }

    if (devKey) {
      process.stderr.write(
        `\nDevelopment API key (${devKey.created ? 'created' : 'kept'} in ${join(config.DATA_DIR, 'dev-api-key')}): ${devKey.key}\n` +
          `  curl -H "Authorization: Bearer $(cat ${join(config.DATA_DIR, 'dev-api-key')})" ${apiUrl}/v1/definitions\n\n`,
      );
    }
    const readyInMs = Date.now() - startedAt;
    logger.info(
      {
        readyInMs,
        api: apiUrl,
        docs: `${apiUrl}/docs`,
        temporalUi: devServer?.uiUrl ?? config.TEMPORAL_UI_URL,
        lanes: config.LANES,
        apiKeyFile: devKey ? join(config.DATA_DIR, 'dev-api-key') : undefined,
      },
      'platform ready',
    );
  }
}
