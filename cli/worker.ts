import type { WorkflowBundleOption } from '@temporalio/worker';
import type { Config, LaneWorkerKind } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { buildWorkflowBundle, prebuiltBundlePath } from '../workers/bundle.ts';
import { startMetrics } from '../common/metrics.ts';
import { createLaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';

/**
 * `worker --lane <lane>[,<lane>] [--kinds <kind>,...]`: runs the workers of the given lanes (all
 * their task queues, or only those of `kinds`) in this process until
 * SIGINT/SIGTERM (the SDK Runtime drains in-flight tasks first).
 */
export async function runWorkerProcess(config: Config, lanes: string[], logger: Logger, kinds?: readonly LaneWorkerKind[]): Promise<void> {
  installRuntime(logger);
  // Model latency, tokens per second and fallbacks (docs/models.md) on METRICS_PORT, when set. One
  // port per process: a second worker process on the same port runs on without the endpoint.
  const metrics = await startMetrics(config, logger).catch((error: unknown) => {
    logger.warn({ err: error instanceof Error ? error.message : String(error), port: config.METRICS_PORT }, 'metrics endpoint not started');
    return undefined;
  });
  // A process that serves activity queues only (`--kinds skills,models`) needs no bundle.
  let workflowBundle: WorkflowBundleOption | undefined;
  if (!kinds || kinds.includes('workflows')) {
    const prebuilt = prebuiltBundlePath(config.WORKFLOW_BUNDLE_PATH);
    workflowBundle = prebuilt ? { codePath: prebuilt } : await buildWorkflowBundle(logger);
  }
  const workers = await Promise.all(
    lanes.map((lane) => createLaneWorkers({ config, lane, logger, ...(workflowBundle ? { workflowBundle } : {}), ...(kinds ? { kinds } : {}) })),
  );
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    await metrics?.stop();
  }
}
