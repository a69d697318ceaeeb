import type { WorkflowBundleOption } from '@temporalio/worker';
import type { Config, LaneWorkerKind } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { buildWorkflowBundle, prebuiltBundlePath } from '../workers/bundle.ts';
import { startMetrics } from '../common/metrics.ts';
import { freePort } from '../embedded/ports.ts';
import { startTracing, stopTracing } from '../common/tracing.ts';
import { createLaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';

/**
 * `worker --lane <lane>[,<lane>] [--kinds <kind>,...]`: runs the workers of the given lanes (all
 * their task queues, or only those of `kinds`) in this process until
 * SIGINT/SIGTERM (the SDK Runtime drains in-flight tasks first).
 */
export async function runWorkerProcess(config: Config, lanes: string[], logger: Logger, kinds?: readonly LaneWorkerKind[]): Promise<void> {
  // Prometheus metrics on METRICS_PORT (default 9464) unless METRICS_ENABLED=false: the platform's
  // series and the Temporal SDK's, which the Runtime serves on a loopback port of its own. A second
  // worker process on the same port runs on without the endpoint (a warning says so).
  const corePort = config.METRICS_ENABLED ? await freePort() : undefined;
  installRuntime(logger, corePort ? { prometheusBindAddress: `127.0.0.1:${corePort}` } : {});
  // RunWorkflow / RunActivity spans and their exports (OTEL_* variables; docs/OPERATIONS.md, Traces).
  startTracing('durable-workflows-worker', logger);
  const metrics = await startMetrics(config, logger, corePort ? { temporalCoreUrl: `http://127.0.0.1:${corePort}/metrics` } : {}).catch((error: unknown) => {
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
    await stopTracing();
  }
}
