import type { WorkflowBundleOption } from '@temporalio/worker';
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { buildWorkflowBundle, prebuiltBundlePath } from '../workers/bundle.ts';
import { createLaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';

/**
 * `worker --lane <lane>[,<lane>]`: runs the workers of the given lanes in this process until
 * SIGINT/SIGTERM (the SDK Runtime drains in-flight tasks first).
 */
export async function runWorkerProcess(config: Config, lanes: string[], logger: Logger): Promise<void> {
  installRuntime(logger);
  const prebuilt = prebuiltBundlePath(config.WORKFLOW_BUNDLE_PATH);
  const workflowBundle: WorkflowBundleOption = prebuilt ? { codePath: prebuilt } : await buildWorkflowBundle(logger);
  const workers = await Promise.all(lanes.map((lane) => createLaneWorkers({ config, lane, logger, workflowBundle })));
  await Promise.all(workers.map((w) => w.run()));
}
