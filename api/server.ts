import { DecisionKeys } from '../activities/platform/decision-tokens.ts';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { loadAgentRegistry } from '../activities/agents/registry.ts';
import { MCP_ACTIVITY_NAMES } from '../activities/agents/mcp.ts';
import { catalogDefaults, catalogNames, createActivityCatalog, outputContracts, type ActivityCatalog } from '../activities/catalog.ts';
import { inputChecker } from '../activities/input-check.ts';
import { temporalUiUrl, type Config } from '../common/config.ts';
import { createPool, migrate } from '../common/db.ts';
import type { Logger } from '../common/logger.ts';
import { dataConverterFor, temporalConnectionSettings } from '../common/temporal.ts';
import { ensureSearchAttributes } from '../common/temporal-setup.ts';
import { ACTIVITY_KINDS } from '../common/constants.ts';
import { WorkerCatalogStore, familyEntries } from '../common/worker-catalog.ts';
import { checkSupervisorState } from '../embedded/supervisor-state.ts';
import { AuditStore } from '../activities/platform/audit.ts';
import { RunLogStore } from '../activities/platform/run-logs.ts';
import { RunEventStore } from '../activities/platform/events.ts';
import { WebhookDispatcher } from './webhooks/dispatcher.ts';
import { WebhookStore } from './webhooks/store.ts';
import { webhookAllowList } from './webhooks/allow-list.ts';
import { SecretBox } from './webhooks/secret-box.ts';
import { Retention } from './retention.ts';
import { Admission, admissionSettings } from './admission.ts';
import { AdmissionStore } from './admission-store.ts';
import { createApp } from './app.ts';
import { installPrometheus } from '../common/metrics.ts';
import { observeTemporal } from './metrics-observers.ts';
import { SloReports } from './reports.ts';
import { catalogView } from './routes/catalog.ts';
import { loadApiKeys } from './auth.ts';
import { tracingDisabled } from '../common/trace-context.ts';
import { DefinitionsStore } from './definitions-store.ts';
import { RunsService } from './runs-service.ts';
import { RunMasking } from './run-masking.ts';
import { SchedulesService } from './schedules-service.ts';
import { LanesService } from './lanes-service.ts';
import { OperationsStore } from './operations-store.ts';
import { RetryService } from './retry-service.ts';

export interface RunningApi {
  url: string;
  port: number;
  close(): Promise<void>;
}

type Pool = ReturnType<typeof createPool>;
type AppDeps = Parameters<typeof createApp>[0];

/** The activity catalog, the agent registry and the names definitions may call. */
function loadCatalogs(config: Config, options: { catalog?: ActivityCatalog }) {
  const catalog = options.catalog ?? createActivityCatalog(config);
  // Registry agents run as child workflows; other agent names call the agents activity of that name.
  const agentRegistry = loadAgentRegistry(config, catalog);
  const names = catalogNames(catalog);
  const agentNames = new Set([...[...names.agents].filter((n) => !MCP_ACTIVITY_NAMES.includes(n)), ...agentRegistry.names()]);
  return { catalog, agentRegistry, names, agentNames };
}

/** The Temporal connection (search attributes ensured) and a traced client with the configured data converter. */
async function connectTemporal(config: Config, logger: Logger) {
  const connection = await Connection.connect({ ...temporalConnectionSettings(config), connectTimeout: 10_000 });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE, logger);
  const dataConverter = dataConverterFor(config);
  // StartWorkflow, SignalWorkflow, StartWorkflowUpdate, QueryWorkflow… spans, and the trace header the worker continues.
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter, interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } });
  return { connection, dataConverter, client };
}

function runsService(config: Config, client: Client, pool: Pool, runEvents: RunEventStore, admission: Admission): RunsService {
  return new RunsService(
    client,
    {
      continueAsNewAfterEvents: config.RUN_CONTINUE_AS_NEW_EVENTS,
      executionTimeoutSeconds: config.RUN_EXECUTION_TIMEOUT_SECONDS,
      decisionKeys: new DecisionKeys(pool, config.APPROVAL_SIGNING_KEY),
      tokenTtlSeconds: config.APPROVAL_TOKEN_TTL,
      namespace: config.TEMPORAL_NAMESPACE,
      // With tracing off no event carries a traceparent: GET /v1/runs/{id} skips the lookup.
      ...(tracingDisabled() ? {} : { traceparentOf: (tenant: string, runId: string) => runEvents.traceparentOf(tenant, runId) }),
    },
    admission,
  );
}

/** The webhook store (plaintext secrets sealed now) and the dispatcher that sends lifecycle events. */
async function webhookDelivery(config: Config, pool: Pool, logger: Logger, masking: RunMasking) {
  // Lifecycle events go out to webhooks from every API replica; SKIP LOCKED keeps them from sending one twice.
  // Signing secrets are sealed at rest (AES-256-GCM, WEBHOOK_SECRET_KEY or the data folder's key); rows from before are sealed now.
  const webhooks = new WebhookStore(pool, SecretBox.fromConfig(config));
  const sealed = await webhooks.sealPlaintextSecrets();
  if (sealed > 0) logger.info({ sealed }, 'webhook secrets stored in plaintext were encrypted');
  const dispatcher = new WebhookDispatcher({
    store: webhooks,
    databaseUrl: config.DATABASE_URL as string,
    logger,
    maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    retryBaseMs: config.WEBHOOK_RETRY_BASE_MS,
    retryMaxMs: config.WEBHOOK_RETRY_MAX_MS,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    pollMs: config.WEBHOOK_POLL_MS,
    allowedHosts: webhookAllowList(config),
    maskEvent: (event) => masking.event(event),
  });
  return { webhooks, dispatcher };
}

/** The checks a definition passes at registration. */
function validationOf(config: Config, catalogs: ReturnType<typeof loadCatalogs>): AppDeps['validation'] {
  const { catalog, agentRegistry, names, agentNames } = catalogs;
  // Inputs of skill and integration steps are checked against the registry's zod schemas at registration.
  // Declared outputs and `${step.field}` reads are checked against the registered output schemas.
  return {
    ...names,
    agents: agentNames,
    lanes: config.LANES,
    extraChecks: inputChecker(catalog),
    outputs: outputContracts(catalog, agentRegistry.agents.values()),
    continueAsNewAfterEvents: config.RUN_CONTINUE_AS_NEW_EVENTS,
  };
}

/** What GET /ready checks. */
function readinessOf(config: Config, definitions: DefinitionsStore, connection: Connection): AppDeps['readiness'] {
  return {
    database: () => definitions.ping(),
    temporal: () => connection.healthService.check({}),
    // Under `up`: every supervised part (Temporal, each lane worker) runs; not while one restarts.
    ...(config.PLATFORM_SUPERVISOR_STATE ? { supervisor: () => checkSupervisorState(config.PLATFORM_SUPERVISOR_STATE!) } : {}),
  };
}

/** The codec endpoint for Temporal Web, when payloads are encoded. */
function codecOf(config: Config, dataConverter: ReturnType<typeof dataConverterFor>): Pick<AppDeps, 'codec'> {
  return dataConverter.payloadCodecs?.length
    ? {
        codec: {
          codecs: dataConverter.payloadCodecs,
          uiToken: config.CODEC_UI_TOKEN,
          corsOrigins: config.CODEC_CORS_ORIGINS ?? [new URL(temporalUiUrl(config)).origin],
        },
      }
    : {};
}

/** What the lane's workers reported they run, beside what this API's catalog has. */
function workerAgreementOf(config: Config, pool: Pool, catalog: ActivityCatalog): AppDeps['workerAgreement'] {
  const workerCatalog = new WorkerCatalogStore(pool);
  const ownEntries = Object.fromEntries(ACTIVITY_KINDS.map((family) => [family, familyEntries(catalog, family)]));
  return async (lane) => {
    if (!config.LANES.includes(lane)) return undefined;
    const reported = await workerCatalog.forLane(lane);
    return { lane, reported, own: ownEntries };
  };
}

/** The operator routes' services: lanes, SLO reports, retries and the operations log. */
function operateOf(
  config: Config,
  s: { pool: Pool; client: Client; lanes: LanesService; schedules: SchedulesService; runs: RunsService; definitions: DefinitionsStore; keys: ReturnType<typeof loadApiKeys> },
): AppDeps['operate'] {
  return {
    lanes: s.lanes,
    // Seed 003's daily report: the prod SLOs judge the protected lanes (not ADMISSION_DEFERRABLE_LANES).
    reports: new SloReports(s.pool, s.client, s.lanes, s.schedules, { prodLanes: admissionSettings(config).protectedLanes }),
    retries: new RetryService(s.client, s.runs, s.definitions, s.keys, config.TEMPORAL_NAMESPACE),
    operations: new OperationsStore(s.pool),
  };
}

async function listen(app: ReturnType<typeof createApp>, config: Config): Promise<{ server: Server; port: number; url: string }> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.API_PORT, config.API_HOST, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.API_PORT;
  const url = `http://${config.API_HOST === '0.0.0.0' ? '127.0.0.1' : config.API_HOST}:${port}`;
  return { server, port, url };
}

function startRetention(config: Config, pool: Pool, logger: Logger): Retention {
  const retention = new Retention(
    pool,
    {
      eventsDays: config.RETENTION_EVENTS_DAYS,
      deliveriesDays: config.RETENTION_DELIVERIES_DAYS,
      deferredDays: config.RETENTION_DEFERRED_DAYS,
      intervalSeconds: config.RETENTION_INTERVAL_SECONDS,
    },
    logger,
  );
  retention.start();
  return retention;
}

/**
 * Wires the API from config: keys, database (migrated), Temporal client; then listens. The
 * returned `close` drains HTTP connections before closing the pool and the Temporal connection.
 */
export async function startApi(config: Config, logger: Logger, options: { catalog?: ActivityCatalog } = {}): Promise<RunningApi> {
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is not set (the embedded `up` command provides one)');
  const keys = loadApiKeys(config);
  const catalogs = loadCatalogs(config, options);
  const { catalog, agentRegistry, agentNames } = catalogs;
  await migrate(config.DATABASE_URL, logger);
  const pool = createPool(config.DATABASE_URL, config.DATABASE_POOL_SIZE);
  const { connection, dataConverter, client } = await connectTemporal(config, logger);
  // Runs started through this store pin the registry agents and registered activity defaults their steps name.
  const definitions = new DefinitionsStore(pool, { agents: agentRegistry, activityDefaults: catalogDefaults(catalog) });
  // Starts of deferrable lanes pass the admission stage; its dispatcher runs in every API process.
  const admission = new Admission(client, new AdmissionStore(pool), admissionSettings(config), logger);
  const runEvents = new RunEventStore(pool);
  const runs = runsService(config, client, pool, runEvents, admission);

  // Declared sensitive values are masked on every read path for callers without `sensitive-reader`, and in every webhook.
  const masking = new RunMasking(definitions, runs);
  const { webhooks, dispatcher } = await webhookDelivery(config, pool, logger, masking);

  const schedules = new SchedulesService(client, definitions, keys, {
    continueAsNewAfterEvents: config.RUN_CONTINUE_AS_NEW_EVENTS,
    executionTimeoutSeconds: config.RUN_EXECUTION_TIMEOUT_SECONDS,
    logger,
  });
  const lanes = new LanesService(client, { namespace: config.TEMPORAL_NAMESPACE, lanes: config.LANES });
  // Prometheus metrics on the API's own port (`GET /metrics`), unless METRICS_ENABLED=false.
  const metrics = await installPrometheus(config);
  if (metrics) observeTemporal(client, { namespace: config.TEMPORAL_NAMESPACE, lanes: config.LANES, logger });
  const app = createApp({
    logger,
    ...(metrics ? { metrics: metrics.handler(config) } : {}),
    keys,
    definitions,
    runs,
    masking,
    schedules,
    audit: new AuditStore(pool),
    events: runEvents,
    logs: new RunLogStore(pool),
    webhooks,
    webhookAllowedHosts: webhookAllowList(config),
    validation: validationOf(config, catalogs),
    workerAgreement: workerAgreementOf(config, pool, catalog),
    defaultLane: config.DEFAULT_LANE,
    defaultExecutionTimeoutSeconds: config.RUN_EXECUTION_TIMEOUT_SECONDS,
    namespace: config.TEMPORAL_NAMESPACE,
    temporalUiUrl: temporalUiUrl(config),
    readiness: readinessOf(config, definitions, connection),
    limits: { maxBodyBytes: config.API_MAX_BODY_BYTES, maxJsonDepth: config.API_MAX_JSON_DEPTH },
    rateLimit: { limit: config.API_RATE_LIMIT, windowSeconds: config.API_RATE_LIMIT_WINDOW_SECONDS },
    catalogView: catalogView(catalog, agentRegistry, agentNames, config.LANES, config.DEFAULT_LANE),
    operate: operateOf(config, { pool, client, lanes, schedules, runs, definitions, keys }),
    ...codecOf(config, dataConverter),
  });

  const { server, port, url } = await listen(app, config);
  logger.info({ url, docs: `${url}/docs`, graphs: `${url}/graph/`, keys: keys.size, ...(metrics ? { metrics: `${url}/metrics` } : {}) }, 'API listening');
  dispatcher.start();
  admission.start();
  const retention = startRetention(config, pool, logger);

  return {
    url,
    port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 5000).unref();
      });
      await dispatcher.stop();
      await admission.stop();
      await retention.stop();
      await pool.end();
      await connection.close();
      logger.info('API stopped');
    },
  };
}
