/**
 * The workflow bundle's OpenTelemetry interceptors (workers/bundle.ts; docs/OPERATIONS.md, Traces):
 * @temporalio/interceptors-opentelemetry's, except that scheduling an activity opens no span of its
 * own. The activity is handed the trace context it is scheduled in (the run's RunWorkflow span) in
 * the same `_tracer-data` header, so its RunActivity span (activity worker) is the run span's child:
 * one span per step instead of StartActivity + RunActivity.
 *
 * Why: the SDK's StartActivity wrapper is four nested async functions, and the workflow sandbox
 * keeps a promise hook that captures and source-maps a stack trace for every promise made in a
 * workflow (the stack-trace query). Those promises, not the spans, were most of tracing's cost in a
 * 100-step run (bench/RESULTS-telemetry*.md). Here the call is synchronous and makes no promise;
 * the command it schedules is the same (the header is not part of the command's identity, and
 * `next` is called in the same tick as the SDK's interceptor calls it), so histories replay
 * unchanged either way. Child workflows, signals, continue-as-new, the run itself and incoming
 * signals, updates and queries keep the SDK's spans; workflow log lines keep their trace ids.
 */
import { headersWithContext } from '@temporalio/interceptors-opentelemetry/lib/instrumentation.js';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow/index.js';
import type { ActivityInput, LocalActivityInput, Next, WorkflowInterceptors, WorkflowOutboundCallsInterceptor } from '@temporalio/workflow';

class StepTracingOutboundInterceptor extends OpenTelemetryOutboundInterceptor {
  override scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    return next({ ...input, headers: headersWithContext(input.headers) });
  }

  override scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>): Promise<unknown> {
    return next({ ...input, headers: headersWithContext(input.headers) });
  }
}

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [new OpenTelemetryInboundInterceptor()],
  outbound: [new StepTracingOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
