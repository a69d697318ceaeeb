import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivityCatalog, type ActivityCatalog } from '../activities/catalog.ts';
import { createSkillActivities } from '../activities/skills/activities.ts';
import type { Config } from '../common/config.ts';
import { AuditStore, createPlatformActivities } from '../activities/platform/audit.ts';
import { createPool, type Pool } from '../common/db.ts';
import { ACTIVITY_KINDS, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import type { Logger } from '../common/logger.ts';
import { temporalConnectionSettings } from '../common/temporal.ts';

export interface LaneWorkersOptions {
  config: Config;
  lane: string;
  logger: Logger;
  /** The prebuilt workflow bundle (code or file path). */
  workflowBundle: WorkflowBundleOption;
  /** Reuse a connection (tests); otherwise one is opened from config and closed on shutdown. */
  connection?: NativeConnection;
  /** What the activity workers run; the installation's built-ins by default. */
  catalog?: ActivityCatalog;
}

/** The workers of one lane: they poll that lane's task queues and no other's. */
export interface LaneWorkers {
  lane: string;
  taskQueues: string[];
  /** Resolves when every worker has shut down. */
  run(): Promise<void>;
  shutdown(): void;
}

/**
 * Creates the lane's workflow worker (the interpreter) and one activity worker per family
 * (skills, integrations, agents). Each family has its own task queue so a slow kind cannot starve
 * another.
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

  const workflowWorker = await Worker.create({
    connection,
    namespace,
    identity,
    taskQueue: workflowTaskQueue(lane),
    workflowBundle: options.workflowBundle,
  });
  const catalog = options.catalog ?? createActivityCatalog(config);
  const workers = [workflowWorker];
  const taskQueues = [workflowTaskQueue(lane)];
  for (const kind of ACTIVITY_KINDS) {
    if (catalog[kind].length === 0) continue;
    workers.push(
      await Worker.create({
        connection,
        namespace,
        identity,
        taskQueue: activityTaskQueue(lane, kind),
        activities: createSkillActivities(catalog[kind], logger.child({ family: kind })),
      }),
    );
    taskQueues.push(activityTaskQueue(lane, kind));
  }
  // The platform's own activities (the approval audit trail) need the database.
  let pool: Pool | undefined;
  if (config.DATABASE_URL) {
    pool = createPool(config.DATABASE_URL, 2);
    workers.push(
      await Worker.create({
        connection,
        namespace,
        identity,
        taskQueue: platformTaskQueue(lane),
        activities: createPlatformActivities(new AuditStore(pool)),
      }),
    );
    taskQueues.push(platformTaskQueue(lane));
  } else {
    logger.warn('DATABASE_URL is not set: no worker for the approval audit trail on this lane');
  }

  return {
    lane,
    taskQueues,
    async run() {
      logger.info({ taskQueues, namespace }, 'lane workers polling');
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
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
