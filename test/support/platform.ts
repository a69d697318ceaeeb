import { randomBytes } from 'node:crypto';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { createActivityCatalog, type ActivityCatalog } from '../../activities/catalog.ts';
import { startApi, type RunningApi } from '../../api/server.ts';
import { loadConfig, type Config } from '../../common/config.ts';
import { createLogger } from '../../common/logger.ts';
import { startEmbeddedPostgres } from '../../embedded/pglite.ts';
import { freePort } from '../../embedded/ports.ts';
import { createLaneWorkers, type LaneWorkers } from '../../workers/lane-worker.ts';
import { installRuntime } from '../../workers/runtime.ts';

/**
 * A whole platform for one test file: the API over HTTP on a free port, with workers for unique
 * lanes (so files running in parallel on the shared dev server never take each other's tasks),
 * against a fresh real PostgreSQL database or an in-memory PGlite.
 */

export const KEYS = {
  admin: 'test-admin-key-0000000000',
  submitter: 'test-submit-key-000000000',
  approver: 'test-approve-key-00000000',
  otherTenant: 'test-other-tenant-key-000',
  /** Approvers in the `finance` group. */
  bob: 'test-bob-finance-key-00000',
  carol: 'test-carol-finance-key-000',
  /** Submits runs and approves in `finance`: the self-approval case. */
  lena: 'test-lena-lead-key-0000000',
  /** An approver in no group and named by no test definition. */
  dave: 'test-dave-approve-key-0000',
  /** An SRE: lanes, retries and reports (the `operator` role), nothing else. */
  operator: 'test-operator-key-00000000',
} as const;

/** Keys per test platform; tenants are unique so parallel test files never share run ids. */
const apiKeys = (tenant: string) =>
  JSON.stringify([
  { key: KEYS.admin, principal: 'admin', roles: ['admin'], tenant },
  { key: KEYS.submitter, principal: 'sam', roles: ['submit'], tenant },
  { key: KEYS.approver, principal: 'abby', roles: ['approve'], tenant },
  { key: KEYS.otherTenant, principal: 'olga', roles: ['submit'], tenant: `globex-${tenant}` },
  { key: KEYS.bob, principal: 'bob', roles: ['approve'], tenant, groups: ['finance'] },
  { key: KEYS.carol, principal: 'carol', roles: ['approve'], tenant, groups: ['finance'] },
  { key: KEYS.lena, principal: 'lena', roles: ['submit', 'approve'], tenant, groups: ['finance'] },
  { key: KEYS.dave, principal: 'dave', roles: ['approve'], tenant },
  { key: KEYS.operator, principal: 'otto', roles: ['operator'], tenant },
]);

export interface TestPlatform {
  url: string;
  config: Config;
  lanes: string[];
  /** fetch against the API with a key (the submitter's by default). */
  api(path: string, init?: RequestInit & { key?: string; json?: unknown }): Promise<{ status: number; body: any; headers: Headers }>;
  /** Polls GET /v1/runs/{id} until the run leaves `running`. */
  waitForRun(runId: string, timeoutMs?: number): Promise<any>;
  /** Stops every lane's workers (waiting runs stay in Temporal), then starts fresh ones. */
  restartWorkers(): Promise<void>;
  stop(): Promise<void>;
}

export interface TestPlatformOptions {
  database: 'postgres' | 'pglite';
  /** Extra environment; a function gets the platform's (randomly suffixed) lanes. */
  env?: Record<string, string> | ((lanes: string[]) => Record<string, string>);
  /** Extra skills, integrations and agents the workers run (and the validator knows). */
  catalog?: Partial<ActivityCatalog>;
  /** Extra specs only the API knows (workers deployed without them): the catalog-agreement case. */
  apiOnlyCatalog?: Partial<ActivityCatalog>;
  /** Collects every log line of the API and the workers, at debug level, for tests of what is logged. */
  logs?: string[];
}

/** The Temporal dev server the test runner started. */
export function temporalAddress(): string {
  const address = process.env.TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('TEST_TEMPORAL_ADDRESS is not set: run tests with `npm test`, which starts the dev server');
  return address;
}

/** Admin URL of the machine's PostgreSQL (trust auth here); TEST_PG_ADMIN_URL overrides. */
export function postgresAdminUrl(): string {
  return process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `platform_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(`PostgreSQL is not reachable at ${postgresAdminUrl()} (set TEST_PG_ADMIN_URL): ${(error as Error).message}`);
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(postgresAdminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: postgresAdminUrl() });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function startTestPlatform(options: TestPlatformOptions): Promise<TestPlatform> {
  const suffix = randomBytes(3).toString('hex');
  const lanes = [`prod-critical-${suffix}`, `experimental-${suffix}`];
  // With no LOG_LEVEL beyond 'silent' (npm test's), the platform's error lines are kept, not
  // printed (all lines at debug when a test asks for `logs`): an unexpected 500 names the lines of
  // its correlation id, so a CI-only failure says why.
  const level = process.env.LOG_LEVEL ?? 'silent';
  const kept: string[] = options.logs ?? [];
  const keep = {
    write(line: string) {
      kept.push(line);
      if (!options.logs && kept.length > 200) kept.shift();
    },
  };
  const logger = options.logs ? createLogger('test', 'debug', keep) : level === 'silent' ? createLogger('test', 'error', keep) : createLogger('test', level);
  const logged = (correlationId: unknown): string => (typeof correlationId === 'string' ? kept.filter((l) => l.includes(correlationId)).join('\n') : '');
  installRuntime(logger);
  const cleanups: Array<() => Promise<void>> = [];

  let databaseUrl: string;
  if (options.database === 'postgres') {
    const db = await createDatabase();
    databaseUrl = db.url;
    cleanups.push(() => db.drop());
  } else {
    const embedded = await startEmbeddedPostgres({ port: await freePort(), logger });
    databaseUrl = embedded.url;
    cleanups.push(() => embedded.stop());
  }

  const config = loadConfig({
    TEMPORAL_ADDRESS: temporalAddress(),
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: options.database === 'pglite' ? '2' : '5',
    API_PORT: '0',
    API_KEYS: apiKeys(`acme-${suffix}`),
    LANES: lanes.join(','),
    DEFAULT_LANE: lanes[0],
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // Tests poll runs in tight loops; the limiter stays in the path, far above what they send.
    API_RATE_LIMIT: '1000000',
    ...(typeof options.env === 'function' ? options.env(lanes) : options.env),
  });
  const bundlePath = process.env.WORKFLOW_BUNDLE_PATH;
  if (!bundlePath) throw new Error('WORKFLOW_BUNDLE_PATH is not set: run tests with `npm test`');

  const catalog = createActivityCatalog(config, options.catalog);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const workers: LaneWorkers[] = [];
  for (const lane of lanes) {
    workers.push(await createLaneWorkers({ config, lane, logger, workflowBundle: { codePath: bundlePath }, connection, catalog }));
  }
  let running = workers.map((w) => w.run());
  let api: RunningApi;
  try {
    const apiCatalog = options.apiOnlyCatalog
      ? createActivityCatalog(config, {
          ...options.catalog,
          ...Object.fromEntries(
            Object.entries(options.apiOnlyCatalog).map(([family, specs]) => [family, [...(options.catalog?.[family as keyof ActivityCatalog] ?? []), ...(specs ?? [])]]),
          ),
        })
      : catalog;
    api = await startApi(config, logger, { catalog: apiCatalog });
  } catch (error) {
    for (const w of workers) w.shutdown();
    await Promise.allSettled(running);
    throw error;
  }

  const platform: TestPlatform = {
    url: api.url,
    config,
    lanes,
    async api(path, init = {}) {
      const { key = KEYS.submitter, json, headers, ...rest } = init;
      const response = await fetch(`${api.url}${path}`, {
        ...rest,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
          ...(headers as Record<string, string> | undefined),
        },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
      const text = await response.text();
      let body: unknown = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // keep text
      }
      return { status: response.status, body, headers: response.headers };
    },
    async waitForRun(runId, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { status, body } = await platform.api(`/v1/runs/${encodeURIComponent(runId)}`);
        if (status !== 200) throw new Error(`GET run ${runId}: ${status} ${JSON.stringify(body)} ${logged(body?.correlationId)}`);
        if (body.status !== 'running') return body;
        if (Date.now() > deadline) throw new Error(`run ${runId} still running after ${timeoutMs} ms: ${JSON.stringify(body)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async restartWorkers() {
      for (const w of workers) w.shutdown();
      await Promise.allSettled(running);
      workers.splice(0);
      for (const lane of lanes) {
        workers.push(await createLaneWorkers({ config, lane, logger, workflowBundle: { codePath: bundlePath }, connection, catalog }));
      }
      running = workers.map((w) => w.run());
    },
    async stop() {
      await api.close();
      for (const w of workers) w.shutdown();
      await Promise.allSettled(running);
      await connection.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };
  return platform;
}
