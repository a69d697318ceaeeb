import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from '../common/logger.ts';
import { FAILURE_CONVERTER_PATH } from '../common/temporal.ts';
import { tracingDisabled } from '../common/trace-context.ts';
import { CODE_ROOT, COMPILED, modulePath } from '../common/paths.ts';

/** The workflow bundle's entry module. */
export const WORKFLOWS_ENTRY = modulePath('workflows/index.ts');

/** Where `npm run build` puts the prebuilt workflow bundle. */
export const BUILT_BUNDLE = join(CODE_ROOT, 'workflow-bundle.js');

/** The bundle's OpenTelemetry interceptors (workflows/tracing-interceptors.ts). */
export const WORKFLOW_TRACING_INTERCEPTORS = modulePath('workflows/tracing-interceptors.ts');

/**
 * The OpenTelemetry workflow interceptors (@temporalio/interceptors-opentelemetry's, through
 * workflows/tracing-interceptors.ts): a RunWorkflow span per run, whose context every activity is
 * scheduled with (no StartActivity span: one RunActivity span per step), StartChildWorkflow /
 * SignalWorkflow spans around those calls, HandleSignal / HandleUpdate / ValidateUpdate /
 * HandleQuery spans for what comes in. They add a trace header to the commands and change no
 * command (the replay fixtures pass unchanged). Left out when OTEL_SDK_DISABLED=true at bundle time.
 */
export function workflowInterceptorModules(): string[] {
  if (tracingDisabled()) return [];
  return [WORKFLOW_TRACING_INTERCEPTORS];
}

/**
 * Bundles the workflow code (seconds of webpack): done once per process, or once ahead of time
 * (`WORKFLOW_BUNDLE_PATH`) and shared by every worker the supervisor starts.
 */
export async function buildWorkflowBundle(logger?: Logger, workflowsPath: string = WORKFLOWS_ENTRY): Promise<WorkflowBundleWithSourceMap> {
  const started = Date.now();
  const bundle = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: workflowInterceptorModules(),
    // Failures the workflow writes carry their message as a payload (common/failure-converter.ts).
    failureConverterPath: FAILURE_CONVERTER_PATH,
    // The bundler prints webpack progress at info level; keep our logs quiet unless debugging.
    ...(logger
      ? {
          logger: {
            log: () => undefined,
            trace: () => undefined,
            debug: (m: string) => logger.debug(m),
            info: (m: string) => logger.debug(m),
            warn: (m: string, meta?: Record<string, unknown>) => logger.warn(meta ?? {}, m),
            error: (m: string, meta?: Record<string, unknown>) => logger.error(meta ?? {}, m),
          },
        }
      : {}),
  });
  logger?.info({ ms: Date.now() - started, bytes: bundle.code.length }, 'workflow bundle built');
  return bundle;
}

/** Resolves the bundle a worker should load: a prebuilt file when one is configured. */
export function prebuiltBundlePath(path: string | undefined): string | undefined {
  // The production build (`npm run build`) writes its bundle beside the compiled code.
  if (!path) return COMPILED && existsSync(BUILT_BUNDLE) ? BUILT_BUNDLE : undefined;
  if (!existsSync(path)) throw new Error(`WORKFLOW_BUNDLE_PATH points at ${path}, which does not exist`);
  return path;
}
