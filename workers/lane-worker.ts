import { OpenTelemetryActivityInboundInterceptor, OpenTelemetryActivityOutboundInterceptor } from '@temporalio/interceptors-opentelemetry';
import { NativeConnection, Worker, type WorkerInterceptors, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivityCatalog, type ActivityCatalog } from '../activities/catalog.ts';
import { RunLogStore, RunLogWriter } from '../activities/platform/run-logs.ts';
import { createSkillActivities } from '../activities/skills/activities.ts';
import { LANE_WORKER_KINDS, laneLimits, type Config, type LaneLimits, type LaneWorkerKind } from '../common/config.ts';
import { AuditStore, createPlatformActivities } from '../activities/platform/audit.ts';
import { DecisionKeys } from '../activities/platform/decision-tokens.ts';
import { RunEventStore } from '../activities/platform/events.ts';
import { createPool, migrate, type Pool } from '../common/db.ts';
import { WorkerCatalogStore, familyEntries } from '../common/worker-catalog.ts';
import { ACTIVITY_KINDS, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import type { Logger } from '../common/logger.ts';
import { metricsInterceptor, type AttemptSample } from '../common/metrics-activity.ts';
import { SloSampleWriter } from '../common/slo-samples.ts';
import { dataConverterFor, temporalConnectionSettings } from '../common/temporal.ts';
import { ProtectedLaneWatch, laneYieldSettings, yieldingTuner, type DescribesTaskQueues } from './lane-yield.ts';
import { workflowSpanSinks } from '../common/tracing.ts';

/**
 * Activity workers open a RunActivity span per attempt, child of the workflow's StartActivity span
 * (the trace header the workflow interceptors put on the command); the activity's logs, outbound
 * HTTP and model calls run inside it.
 */
const activityTracing: NonNullable<WorkerInterceptors['activity']> = [
  (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
];

export interface LaneWorkersOptions {
  config: Config;
  lane: string;
  logger: Logger;
  /** The prebuilt workflow bundle (code or file path); needed when `kinds` includes `workflows`. */
  workflowBundle?: WorkflowBundleOption;
  /** Which of the lane's task queues this process serves (`worker --kinds`); all of them by default. */
  kinds?: readonly LaneWorkerKind[];
  /** Reuse a connection (tests); otherwise one is opened from config and closed on shutdown. */
  connection?: NativeConnection;
  /** What the activity workers run; the installation's built-ins by default. */
  catalog?: ActivityCatalog;
  /** Gets every activity attempt (the SLO report's sample writer). */
  onAttempt?: (sample: AttemptSample) => void;
}

/** The workers of one lane: they poll that lane's task queues and no other's. */
export interface LaneWorkers {
  lane: string;
  taskQueues: string[];
  /** Max concurrent tasks per served kind (LANE_LIMITS over the defaults). */
  limits: Partial<LaneLimits>;
  /** Resolves when every worker has shut down. */
  run(): Promise<void>;
  shutdown(): void;
}

/**
 * Creates the lane's workflow worker (the interpreter) and one activity worker per family
 * (skills, integrations, models, agents, platform), or only those of `kinds`. Each family has its
 * own task queue and its own concurrency limit (laneLimits) so a slow kind cannot starve another.
 */
export async function createLaneWorkers(options: LaneWorkersOptions): Promise<LaneWorkers> {
  const { config, lane } = options;
  const logger = options.logger.child({ lane });
  if (!config.LANES.includes(lane)) {
    throw new Error(`unknown lane "${lane}"; configured lanes: ${config.LANES.join(', ')}`);
  }
  const ownsConnection = !options.connection;
  const connection = options.connection ?? (await NativeConnection.connect(temporalConnectionSettings(config)));
  const namespace = config.TEMPORAL_NAMESPACE;
  const identity = `${lane}@${process.pid}`;
  // Every worker seals what it sends to Temporal and opens what it gets (common/codec.ts).
  const dataConverter = dataConverterFor(config);

  // Each kind's worker takes at most its lane's limit of tasks at once; the rest wait in that
  // lane's own queue, where no other lane's worker polls.
  const kinds = new Set<LaneWorkerKind>(options.kinds ?? LANE_WORKER_KINDS);
  const allLimits = laneLimits(config, lane);
  // A deferrable lane's activity workers begin new tasks at a trickle while a protected lane is busy.
  const yieldSettings = laneYieldSettings(config, lane);
  const watch = yieldSettings && new ProtectedLaneWatch(connection as unknown as DescribesTaskQueues, yieldSettings, logger);
  await watch?.start();
  const activitySlots = (limit: number) =>
    watch && yieldSettings ? { tuner: yieldingTuner(limit, watch, yieldSettings.yieldRate) } : { maxConcurrentActivityTaskExecutions: limit };
  const limits: Partial<LaneLimits> = {};
  const workers: Worker[] = [];
  const taskQueues: string[] = [];
  if (kinds.has('workflows')) {
    if (!options.workflowBundle) throw new Error(`lane ${lane}: serving its workflows needs the workflow bundle`);
    workers.push(
      await Worker.create({
        connection,
        namespace,
        identity,
        dataConverter,
        taskQueue: workflowTaskQueue(lane),
        workflowBundle: options.workflowBundle,
        // Where the bundle's OpenTelemetry interceptors send the spans they make in the sandbox.
        sinks: workflowSpanSinks(),
        maxConcurrentWorkflowTaskExecutions: allLimits.workflows,
      }),
    );
    taskQueues.push(workflowTaskQueue(lane));
    limits.workflows = allLimits.workflows;
  }
  const catalog = options.catalog ?? createActivityCatalog(config);
  // Queue wait and attempt duration per kind (common/metrics-activity.ts), unless METRICS_ENABLED=false;
  // with a database, each attempt (and model request) is also a sample for the SLO report.
  const samples = config.METRICS_ENABLED && config.DATABASE_URL ? new SloSampleWriter(createPool(config.DATABASE_URL, 1), logger).start() : undefined;
  const onAttempt = options.onAttempt ?? samples?.attempt;
  // Each run's log lines (info and above) kept for GET /v1/runs/{id}/logs, unless RUN_LOGS_ENABLED=false.
  const runLogPool = config.RUN_LOGS_ENABLED && config.DATABASE_URL ? createPool(config.DATABASE_URL, 1) : undefined;
  const runLogs = runLogPool && new RunLogWriter(new RunLogStore(runLogPool), { lane, maxPerRun: config.RUN_LOGS_MAX_PER_RUN }, logger);
  // Tracing first (the RunActivity span), then the measurement inside it.
  const activityInterceptors = (kind: string): WorkerInterceptors => ({
    activity: [...activityTracing, ...(config.METRICS_ENABLED ? [metricsInterceptor(lane, kind, onAttempt)] : [])],
  });
  for (const kind of ACTIVITY_KINDS) {
    if (!kinds.has(kind) || catalog[kind].length === 0) continue;
    limits[kind] = allLimits[kind];
    workers.push(
      await Worker.create({
        connection,
        namespace,
        identity,
        dataConverter,
        taskQueue: activityTaskQueue(lane, kind),
        ...activitySlots(allLimits[kind]),
        interceptors: activityInterceptors(kind),
        activities: createSkillActivities(catalog[kind], logger.child({ family: kind }), runLogs ? { runLogs: runLogs.logger } : {}),
      }),
    );
    taskQueues.push(activityTaskQueue(lane, kind));
  }
  // The API checks definitions against what this lane's workers run (common/worker-catalog.ts).
  const served = ACTIVITY_KINDS.filter((kind) => kinds.has(kind) && catalog[kind].length > 0);
  if (served.length > 0 && config.DATABASE_URL) await reportCatalog(config.DATABASE_URL, lane, served, catalog, identity, logger);
  // The platform's own activities (the approval audit trail) need the database.
  let pool: Pool | undefined;
  if (kinds.has('platform') && config.DATABASE_URL) {
    limits.platform = allLimits.platform;
    pool = createPool(config.DATABASE_URL, 2);
    workers.push(
      await Worker.create({
        connection,
        namespace,
        identity,
        dataConverter,
        taskQueue: platformTaskQueue(lane),
        ...activitySlots(allLimits.platform),
        interceptors: activityInterceptors('platform'),
        activities: createPlatformActivities(new AuditStore(pool), new RunEventStore(pool), {
          keys: new DecisionKeys(pool, config.APPROVAL_SIGNING_KEY),
          trustTemporal: config.APPROVAL_TRUST_TEMPORAL,
        }),
      }),
    );
    taskQueues.push(platformTaskQueue(lane));
  } else if (kinds.has('platform')) {
    logger.warn('DATABASE_URL is not set: no worker for the approval audit trail on this lane');
  }

  if (workers.length === 0) {
    watch?.stop();
    await samples?.stop();
    await samples?.pool.end();
    await runLogs?.close();
    await runLogPool?.end();
    if (ownsConnection) await connection.close();
    throw new Error(`lane ${lane}: nothing to serve for kinds ${[...kinds].join(', ')}`);
  }

  return {
    lane,
    taskQueues,
    limits,
    async run() {
      logger.info({ taskQueues, namespace, limits }, 'lane workers polling');
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
        watch?.stop();
        await samples?.stop();
        await samples?.pool.end();
        await runLogs?.close();
        await runLogPool?.end();
        await pool?.end();
        if (ownsConnection) await connection.close();
        logger.info('lane workers stopped');
      }
    },
    shutdown() {
      for (const w of workers) {
        if (w.getState() === 'RUNNING') w.shutdown();
      }
    },
  };
}

/**
 * Records what this process's activity workers run, per family, for the API's registration check.
 * Best effort: a worker that cannot reach the database still serves its queues (the API then has
 * no report for the lane and does not judge it).
 */
async function reportCatalog(
  databaseUrl: string,
  lane: string,
  families: readonly (typeof ACTIVITY_KINDS)[number][],
  catalog: ActivityCatalog,
  identity: string,
  logger: Logger,
): Promise<void> {
  const pool = createPool(databaseUrl, 1);
  try {
    await migrate(databaseUrl, logger);
    const store = new WorkerCatalogStore(pool);
    for (const family of families) await store.report(lane, family, familyEntries(catalog, family), identity);
  } catch (error) {
    logger.warn({ err: error }, 'could not report the worker catalog; the API will not check definitions against this lane');
  } finally {
    await pool.end();
  }
}
