import { NativeConnection, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { createSkillActivities } from '../activities/skills/activities.ts';
import { createSkillRegistry } from '../activities/skills/registry.ts';
import type { Config } from '../common/config.ts';
import { activityTaskQueue, workflowTaskQueue } from '../common/constants.ts';
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
 * Creates the lane's workflow worker (the interpreter) and its skills worker. Each kind of
 * activity has its own task queue so a slow kind cannot starve another.
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
  const skillsWorker = await Worker.create({
    connection,
    namespace,
    identity,
    taskQueue: activityTaskQueue(lane, 'skills'),
    activities: createSkillActivities(createSkillRegistry(config), logger),
  });
  const workers = [workflowWorker, skillsWorker];
  const taskQueues = [workflowTaskQueue(lane), activityTaskQueue(lane, 'skills')];

  return {
    lane,
    taskQueues,
    async run() {
      logger.info({ taskQueues, namespace }, 'lane workers polling');
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
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
