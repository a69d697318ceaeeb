import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import type { Config } from '../common/config.ts';
import { activityTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import { migrate } from '../common/db.ts';
import type { Logger } from '../common/logger.ts';
import { startDevServer, uiCodecEndpoint, type DevServer } from '../embedded/dev-server.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../embedded/pglite.ts';
import { freePort, isListening } from '../embedded/ports.ts';
import { writeSupervisorState, type ComponentState } from '../embedded/supervisor-state.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { temporalConnectionSettings } from '../common/temporal.ts';
import { ensureKeyFile, loadCodecKeys } from '../common/codec.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { CHECKOUT_ROOT, COMPILED, modulePath } from '../common/paths.ts';

const PROJECT_ROOT = CHECKOUT_ROOT;
const CLI_ENTRY = modulePath('cli/platform.ts');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface ChildSpec {
  name: string;
  args: string[];
  /** Variables of this child only (a worker's METRICS_PORT). */
  env?: Record<string, string>;
}

/** A started part: its pid and a promise that resolves when it exits. */
interface Started {
  pid?: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Asks it to stop (SIGTERM); `kill` forces it. */
  terminate(): void;
  kill(): void;
}

/** One supervised part of the platform: the Temporal dev server, a lane worker or the API. */
interface Supervised {
  name: string;
  current?: Started;
  /** Exit times inside the restart window (the budget counts these). */
  recentExits: number[];
  state: ComponentState;
}

/** Creates the development API key once and keeps it in the data folder. */
function ensureDevKey(dataDir: string): { file: string; key: string; created: boolean } {
  const file = join(dataDir, 'api-keys.json');
  const keyFile = join(dataDir, 'dev-api-key');
  if (existsSync(file) && existsSync(keyFile)) return { file, key: readFileSync(keyFile, 'utf8').trim(), created: false };
  const key = `dev_${randomBytes(24).toString('base64url')}`;
  const entries = [{ key, principal: 'dev', roles: ['submit', 'approve', 'admin', 'sensitive-reader'], tenant: 'default', groups: ['developers'] }];
  writeFileSync(file, `${JSON.stringify(entries, null, 2)}\n`, { mode: 0o600 });
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  return { file, key, created: true };
}

/** A random secret kept in a data-folder file (mode 0600), made on first start. */
function ensureSecretFile(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(24).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
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
 * DATABASE_URL is unset, one worker process per lane and the API. A part that dies (the dev
 * server, a lane worker, the API) is started again with backoff (1 s, doubling to 30 s) within a
 * restart budget (SUPERVISOR_MAX_RESTARTS per SUPERVISOR_RESTART_WINDOW_SECONDS; past it the
 * platform stops with code 1); each exit and restart is logged and written to the state file the
 * API's /readyz reads. The dev server comes back on the same port and SQLite file, so open runs
 * resume. SIGINT/SIGTERM stops everything in order (API, workers, Temporal, PostgreSQL). Starting
 * again reuses the data folder, so definitions and runs are kept.
 */
export async function up(config: Config, logger: Logger): Promise<void> {
  const startedAt = Date.now();
  const dataDir = resolve(config.DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  const stateFile = join(dataDir, 'supervisor-state.json');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PLATFORM_SUPERVISOR_PID: String(process.pid),
    PLATFORM_SUPERVISOR_STATE: stateFile,
    // On one's own machine a webhook receiver on localhost is the usual first try; elsewhere
    // outbound webhooks stay closed unless WEBHOOK_ALLOWED_HOSTS lists the host.
    WEBHOOK_ALLOW_LOOPBACK: process.env.WEBHOOK_ALLOW_LOOPBACK ?? 'true',
  };
  /** Services to stop after the children, lowest order first (Temporal before PostgreSQL). */
  const cleanups: Array<{ order: number; run: () => Promise<void> }> = [];
  let stopping = false;
  const parts: Supervised[] = [];
  const publish = () => {
    try {
      writeSupervisorState(stateFile, {
        supervisorPid: process.pid,
        updatedAt: new Date().toISOString(),
        components: Object.fromEntries(parts.map((p) => [p.name, p.state])),
      });
    } catch (error) {
      logger.warn({ err: (error as Error).message, stateFile }, 'could not write the supervisor state');
    }
  };
  const windowMs = config.SUPERVISOR_RESTART_WINDOW_SECONDS * 1000;
  /** True unless the embedded dev server is down or coming back (an external Temporal counts as up). */
  const temporalRunning = () => {
    const temporal = parts.find((p) => p.name === 'temporal');
    return !temporal || temporal.state.state === 'running';
  };

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping platform');
    // API first (no new work), then workers (drain), then the services they use.
    const children = parts.filter((p) => p.name !== 'temporal');
    const api = children.filter((c) => c.name === 'api');
    const workers = children.filter((c) => c.name !== 'api');
    for (const group of [api, workers]) {
      for (const c of group) c.current?.terminate();
      await Promise.race([Promise.all(group.map((c) => c.current?.exited)), sleep(15_000)]);
      for (const c of group) c.current?.kill();
    }
    for (const cleanup of cleanups.sort((a, b) => a.order - b.order)) {
      await cleanup.run().catch((error: unknown) => logger.warn({ err: (error as Error).message }, 'cleanup failed'));
    }
    logger.info({ code }, 'platform stopped');
    process.exit(code);
  };

  /**
   * Keeps one part running: whenever it exits (or a start fails) outside a stop, it is started
   * again after a backoff, unless it used up its restart budget, which stops the platform.
   */
  const supervise = (part: Supervised, start: () => Promise<Started>, first: Started) => {
    const loop = async () => {
      let current: Started | undefined = first;
      for (;;) {
        let exit: { code: number | null; signal: string | null; error?: string };
        if (current) {
          part.current = current;
          part.state = { ...part.state, state: 'running', ...(current.pid !== undefined ? { pid: current.pid } : {}) };
          delete part.state.restartAt;
          publish();
          exit = await current.exited;
        } else {
          exit = { code: null, signal: null, error: 'did not start' };
        }
        if (stopping) return;
        const now = Date.now();
        part.recentExits = [...part.recentExits.filter((t) => now - t < windowMs), now];
        part.state.lastExit = { ...exit, at: new Date(now).toISOString() };
        if (part.recentExits.length > config.SUPERVISOR_MAX_RESTARTS) {
          part.state.state = 'failed';
          publish();
          logger.error(
            { child: part.name, ...exit, exits: part.recentExits.length, windowSeconds: config.SUPERVISOR_RESTART_WINDOW_SECONDS },
            'restart budget used up; stopping the platform',
          );
          void stopAll(1);
          return;
        }
        const delay = Math.min(30_000, 1000 * 2 ** (part.recentExits.length - 1));
        part.state = { ...part.state, state: 'restarting', restartAt: new Date(now + delay).toISOString() };
        publish();
        logger.warn({ child: part.name, ...exit, restartInMs: delay, restart: part.state.restarts + 1 }, `${part.name} exited; restarting`);
        await sleep(delay);
        // Workers and the API connect to Temporal as they start: wait while it is coming back.
        while (part.name !== 'temporal' && !temporalRunning() && !stopping) await sleep(200);
        if (stopping) return;
        part.state.restarts += 1;
        part.state.state = 'starting';
        publish();
        current = await start().catch((error: unknown) => {
          logger.warn({ child: part.name, err: (error as Error).message }, `${part.name} failed to start`);
          return undefined;
        });
        if (current && stopping) {
          current.terminate();
          return;
        }
        if (current) logger.info({ child: part.name, pid: current.pid, restart: part.state.restarts }, `${part.name} restarted`);
      }
    };
    void loop();
  };

  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stopAll(0));
  try {
    await startEverything();
  } catch (error) {
    logger.error({ err: (error as Error).message }, 'platform failed to start');
    await stopAll(1);
  }

  async function startEverything(): Promise<void> {
    let devKey: ReturnType<typeof ensureDevKey> | undefined;
    if (!config.API_KEYS && !config.API_KEYS_FILE) {
      devKey = ensureDevKey(dataDir);
      env.API_KEYS_FILE = devKey.file;
    }

    // Payloads are encrypted by default: without configured keys, a key made on first start in the data folder.
    if (!loadCodecKeys(config)) {
      const keyFile = join(dataDir, 'codec-keys.json');
      if (ensureKeyFile(keyFile).created) logger.info({ keyFile }, 'payload encryption key created (docs/sensitive-data.md: back it up; rotation)');
      env.PAYLOAD_CODEC_KEYS_FILE = keyFile;
    }
    // Temporal Web decodes through the API's codec server, at a path only the dev server's UI knows.
    const uiToken = config.CODEC_UI_TOKEN ?? ensureSecretFile(join(dataDir, 'codec-ui-token'));
    env.CODEC_UI_TOKEN = uiToken;
    const codecEndpoint = uiCodecEndpoint(config, uiToken);

    // Temporal, PostgreSQL and the workflow bundle do not depend on each other: start them together.
    let devServer: DevServer | undefined;
    const startTemporal = async (): Promise<DevServer | undefined> => {
      // An explicit TEMPORAL_ADDRESS means a running server: start none.
      if (process.env.TEMPORAL_ADDRESS) return undefined;
      const cliPath = resolveTemporalCli();
      if (await isListening('127.0.0.1', config.TEMPORAL_DEV_PORT)) {
        throw new Error(
          `port ${config.TEMPORAL_DEV_PORT} is taken: stop what runs there, set TEMPORAL_DEV_PORT, or set TEMPORAL_ADDRESS to use a running Temporal server`,
        );
      }
      // Same port, UI port and SQLite file on every start: a restarted server carries on with the runs.
      const options = {
        cliPath,
        port: config.TEMPORAL_DEV_PORT,
        uiPort: config.TEMPORAL_UI_PORT,
        dbFile: join(dataDir, 'temporal.db'),
        namespace: config.TEMPORAL_NAMESPACE,
        logger: logger.child({ component: 'temporal' }),
        codecEndpoint,
      };
      devServer = await startDevServer(options);
      cleanups.push({ order: 1, run: async () => devServer?.stop() });
      logger.info({ address: devServer.address, ui: devServer.uiUrl, pid: devServer.process.pid }, 'Temporal dev server ready');
      const asStarted = (server: DevServer): Started => ({
        pid: server.process.pid,
        exited: new Promise((resolveExit) => {
          if (server.process.exitCode !== null || server.process.signalCode !== null) resolveExit({ code: server.process.exitCode, signal: server.process.signalCode });
          else server.process.once('exit', (code, signal) => resolveExit({ code, signal }));
        }),
        terminate: () => void server.stop(),
        kill: () => server.process.kill('SIGKILL'),
      });
      const part: Supervised = { name: 'temporal', recentExits: [], state: { state: 'running', restarts: 0 } };
      parts.push(part);
      supervise(
        part,
        async () => {
          devServer = await startDevServer(options);
          return asStarted(devServer);
        },
        asStarted(devServer),
      );
      return devServer;
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
    const [, postgres, bundle] = settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
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

    // Each worker serves its Prometheus metrics on a port of its own (kept across its restarts); the API on its own port.
    const metricsHost = config.API_HOST === '0.0.0.0' ? '127.0.0.1' : config.API_HOST;
    const specs: ChildSpec[] = [
      ...(await Promise.all(
        config.LANES.map(async (lane) => ({
          name: `worker:${lane}`,
          args: ['worker', '--lane', lane],
          ...(config.METRICS_ENABLED ? { env: { METRICS_PORT: String(await freePort()) } } : {}),
        })),
      )),
      { name: 'api', args: ['api'] },
    ];
    const metricsUrls = config.METRICS_ENABLED
      ? Object.fromEntries([
          ...specs.filter((s) => s.env?.METRICS_PORT).map((s) => [s.name, `http://${metricsHost}:${s.env!.METRICS_PORT}/metrics`]),
          ['api', `http://${metricsHost}:${config.API_PORT}/metrics`],
        ])
      : undefined;
    const launch = (spec: ChildSpec): Started => {
      const proc = spawn(process.execPath, [...(COMPILED ? [] : ['--import', 'tsx']), CLI_ENTRY, ...spec.args], {
        cwd: PROJECT_ROOT,
        env: { ...env, ...spec.env },
        stdio: ['ignore', 'inherit', 'inherit'],
        detached: true,
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
        proc.once('exit', (code, signal) => resolveExit({ code, signal }));
      });
      return {
        ...(proc.pid !== undefined ? { pid: proc.pid } : {}),
        exited,
        terminate: () => void proc.kill('SIGTERM'),
        kill: () => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        },
      };
    };
    for (const spec of specs) {
      const part: Supervised = { name: spec.name, recentExits: [], state: { state: 'running', restarts: 0 } };
      parts.push(part);
      supervise(part, async () => launch(spec), launch(spec));
    }
    publish();

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
        ...(metricsUrls ? { metrics: metricsUrls } : {}),
        apiKeyFile: devKey ? join(config.DATA_DIR, 'dev-api-key') : undefined,
      },
      'platform ready',
    );
  }
}
