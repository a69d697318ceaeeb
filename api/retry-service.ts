import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { WorkflowNotFoundError, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { sha256Hex } from '../common/canonical-json.ts';
import { INTERPRETER_WORKFLOW_TYPE } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { decodePayload } from '../common/temporal.ts';
import type { RunInput } from '../workflows/types.ts';
import type { ApiKeyStore, Principal } from './auth.ts';
import type { DefinitionsStore } from './definitions-store.ts';
import { HttpProblem } from './problem.ts';
import { pinRunDependencies } from './run-inputs.ts';
import { runStatusOf, type RunStatus, type RunsService } from './runs-service.ts';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Run statuses a reset may take back to before the failed step. */
const RESETTABLE: readonly RunStatus[] = ['failed', 'timed_out', 'terminated'];
/** Run statuses a rerun may start again from (any closed run). */
const RERUNNABLE: readonly RunStatus[] = ['failed', 'timed_out', 'terminated', 'cancelled', 'completed'];

export type RetryMode = 'reset' | 'rerun';

export interface RetryResult {
  runId: string;
  mode: RetryMode;
  /** reset: the run keeps its id and carries on from just before the failed step. */
  status: RunStatus;
  /** reset: the step taken back, and the history event the run was reset to. */
  step?: string;
  resetToEventId?: number;
  /** reset: Temporal's id of the new execution of the run. */
  executionRunId?: string;
  /** rerun: the new run. */
  newRunId?: string;
  previousStatus: RunStatus;
}

export interface RetryFilter {
  definition?: string | undefined;
  lane?: string | undefined;
  errorType?: string | undefined;
  /** Closed at or after / before (ISO-8601). */
  since?: string | undefined;
  until?: string | undefined;
  limit: number;
}

export interface RetryCandidate {
  runId: string;
  definition: { name: string; version: string };
  lane: string | undefined;
  closedAt: string | undefined;
  error?: { type?: string | undefined; message?: string | undefined; step?: string | undefined };
}

const quote = (value: string) => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const num = (v: unknown): number => Number(v ?? 0);

/**
 * Where to reset a failed run: the WorkflowTaskCompleted event whose commands scheduled the failed
 * step (its activity, or its child workflow). Resetting to it fails that workflow task, so the
 * workflow runs it again and schedules the step anew; everything after is dropped from the new
 * execution (retries, compensations, the failure), and signals after that point are reapplied.
 * The failed step is the run's own `error.step` when its activity can be found by summary
 * (`step <path>`), otherwise the last activity or child that failed or timed out; a run that
 * ended while a step was still open (terminated, timed out) goes back to that step.
 */
export function findResetPoint(
  events: readonly HistoryEvent[],
  summaryOf: (event: HistoryEvent) => string | undefined,
  failedStep?: string,
): { eventId: number; step?: string } | undefined {
  const byId = new Map<number, HistoryEvent>();
  const closedSchedules = new Set<number>();
  const failures: Array<{ scheduled: HistoryEvent }> = [];
  for (const event of events) {
    byId.set(num(event.eventId), event);
    const failedActivity = event.activityTaskFailedEventAttributes ?? event.activityTaskTimedOutEventAttributes;
    const failedChild = event.childWorkflowExecutionFailedEventAttributes ?? event.childWorkflowExecutionTimedOutEventAttributes;
    const schedule = failedActivity ? num(failedActivity.scheduledEventId) : failedChild ? num(failedChild.initiatedEventId) : undefined;
    if (schedule !== undefined) {
      closedSchedules.add(schedule);
      const scheduled = byId.get(schedule);
      if (scheduled) failures.push({ scheduled });
      continue;
    }
    const done =
      event.activityTaskCompletedEventAttributes?.scheduledEventId ??
      event.activityTaskCanceledEventAttributes?.scheduledEventId ??
      event.childWorkflowExecutionCompletedEventAttributes?.initiatedEventId ??
      event.childWorkflowExecutionCanceledEventAttributes?.initiatedEventId ??
      event.childWorkflowExecutionTerminatedEventAttributes?.initiatedEventId;
    if (done !== undefined && done !== null) closedSchedules.add(num(done));
  }
  const completedTaskOf = (scheduled: HistoryEvent) =>
    num(scheduled.activityTaskScheduledEventAttributes?.workflowTaskCompletedEventId ?? scheduled.startChildWorkflowExecutionInitiatedEventAttributes?.workflowTaskCompletedEventId);
  const stepOf = (scheduled: HistoryEvent) => {
    const summary = summaryOf(scheduled);
    return summary?.startsWith('step ') ? summary.slice(5) : undefined;
  };
  const point = (scheduled: HistoryEvent) => {
    const step = stepOf(scheduled);
    return { eventId: completedTaskOf(scheduled), ...(step === undefined ? {} : { step }) };
  };
  const named = failedStep === undefined ? undefined : failures.filter((f) => stepOf(f.scheduled) === failedStep).at(-1);
  if (named) return point(named.scheduled);
  // Only the platform's own activities (lifecycle events, audit) are not steps: they never count.
  const isStep = (scheduled: HistoryEvent) =>
    Boolean(scheduled.startChildWorkflowExecutionInitiatedEventAttributes) || stepOf(scheduled) !== undefined || summaryOf(scheduled) === undefined;
  const stepFailures = failures.filter((f) => isStep(f.scheduled));
  const last = stepFailures.at(-1);
  if (last) return point(last.scheduled);
  // Nothing failed: a run stopped from outside while a step was open (terminated, timed out).
  const open = [...byId.values()].filter(
    (e) => (e.activityTaskScheduledEventAttributes && stepOf(e) !== undefined) || e.startChildWorkflowExecutionInitiatedEventAttributes,
  ).filter((e) => !closedSchedules.has(num(e.eventId)));
  const openStep = open.at(-1);
  return openStep ? point(openStep) : undefined;
}

/**
 * Retrying failed runs (seed 003 §4 "no silent failure", issue 13): a reset of the run to just
 * before its failed step (the same run id, so the same step idempotency keys `<runId>/<stepPath>`
 * reach integrations again), or a rerun as a new run with the same definition version and input.
 */
export class RetryService {
  constructor(
    private readonly client: Client,
    private readonly runs: RunsService,
    private readonly definitions: DefinitionsStore,
    private readonly keys: ApiKeyStore,
    private readonly namespace: string,
  ) {}

  /** A payload of the history as the client's data converter reads it (its codecs first, when configured). */
  private async decode(payload: unknown): Promise<unknown> {
    return decodePayload(this.client.options.loadedDataConverter, payload as Payload);
  }

  private async describe(runId: string, tenant: string): Promise<WorkflowExecutionDescription> {
    try {
      const desc = await this.client.workflow.getHandle(runId).describe();
      if (desc.type !== INTERPRETER_WORKFLOW_TYPE || desc.typedSearchAttributes.get(SA.tenant) !== tenant) throw new HttpProblem(404, 'Not Found', `no run "${runId}"`);
      return desc;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new HttpProblem(404, 'Not Found', `no run "${runId}"`);
      throw error;
    }
  }

  async retry(
    runId: string,
    principal: Principal,
    request: { mode: RetryMode; reason?: string | undefined },
    context: { idempotencyKey?: string | undefined; correlationId: string },
  ): Promise<RetryResult> {
    const desc = await this.describe(runId, principal.tenant);
    const status = runStatusOf(desc.status.name);
    const reason = request.reason ?? `retried by ${principal.principal} via the API`;
    if (request.mode === 'rerun') {
      if (!RERUNNABLE.includes(status)) throw new HttpProblem(409, 'Conflict', `run "${runId}" is ${status}; only a closed run can be re-run`, [{ path: '/mode', message: status }]);
      return this.rerun(runId, desc, status, principal, context);
    }
    if (!RESETTABLE.includes(status)) {
      throw new HttpProblem(409, 'Conflict', `run "${runId}" is ${status}; a reset retries a failed, timed-out or terminated run (use mode "rerun" to start a completed or cancelled one again)`, [
        { path: '/mode', message: status },
      ]);
    }
    const handle = this.client.workflow.getHandle(runId, desc.runId);
    const history = await handle.fetchHistory();
    const summaries = new Map<HistoryEvent, string>();
    for (const event of history.events ?? []) {
      const summary = event.userMetadata?.summary;
      if (!summary || !(event.activityTaskScheduledEventAttributes || event.startChildWorkflowExecutionInitiatedEventAttributes)) continue;
      const text = await this.decode(summary).catch(() => undefined);
      if (typeof text === 'string') summaries.set(event, text);
    }
    const summaryOf = (event: HistoryEvent) => summaries.get(event);
    const view = status === 'failed' ? await this.runs.get(runId, principal.tenant).catch(() => undefined) : undefined;
    const point = findResetPoint(history.events ?? [], summaryOf, view?.error?.step);
    if (!point || point.eventId <= 0) {
      throw new HttpProblem(409, 'Conflict', `run "${runId}" did not fail in a step that runs an activity or a child workflow, so there is no step to go back to; retry it with mode "rerun"`, [
        { path: '/mode', message: 'no failed step to reset to' },
      ]);
    }
    // The same key resets once: Temporal dedupes a reset by its request id.
    const requestId = context.idempotencyKey ? sha256Hex(`${principal.tenant}\u0000retry\u0000${runId}\u0000${context.idempotencyKey}`).slice(0, 32) : undefined;
    const answer: { runId?: string | null } = await this.client.workflowService.resetWorkflowExecution({
      namespace: this.namespace,
      workflowExecution: { workflowId: runId, runId: desc.runId },
      reason: `${reason} (correlation id ${context.correlationId})`,
      // protobufjs takes a number for an int64 field.
      workflowTaskFinishEventId: point.eventId as never,
      ...(requestId ? { requestId } : {}),
    });
    return {
      runId,
      mode: 'reset',
      status: 'running',
      ...(point.step === undefined ? {} : { step: point.step }),
      resetToEventId: point.eventId,
      executionRunId: answer.runId ?? '',
      previousStatus: status,
    };
  }

  private async rerun(
    runId: string,
    desc: WorkflowExecutionDescription,
    status: RunStatus,
    principal: Principal,
    context: { idempotencyKey?: string | undefined; correlationId: string },
  ): Promise<RetryResult> {
    const name = desc.typedSearchAttributes.get(SA.definition) ?? '';
    const version = desc.typedSearchAttributes.get(SA.version) ?? '';
    const definition = await this.definitions.get(principal.tenant, name, version);
    if (!definition) throw new HttpProblem(409, 'Conflict', `the run's definition ${name}@${version} is no longer registered`, [{ path: '/mode', message: 'definition gone' }]);
    if (definition.status !== 'active') {
      throw new HttpProblem(409, 'Conflict', `${name}@${version} is ${definition.status}; no new runs start from it`, [{ path: '/mode', message: definition.status }]);
    }
    // The input as the run was started with (continue-as-new carries it unchanged).
    const history = await this.client.workflow.getHandle(runId, desc.runId).fetchHistory();
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const payload = started?.input?.payloads?.[0];
    const args = payload ? ((await this.decode(payload)) as RunInput) : undefined;
    const begun = await this.runs.start({
      definition,
      pins: await pinRunDependencies(this.definitions, this.keys, principal.tenant, definition),
      input: args?.input ?? null,
      // The same Idempotency-Key re-runs once: the new run's id derives from it and the old run.
      idempotencyKey: context.idempotencyKey === undefined ? undefined : `rerun:${runId}:${context.idempotencyKey}`,
      requestedVersion: version,
      principal,
      correlationId: context.correlationId,
      executionTimeoutSeconds: definition.body.resource_limits?.max_execution_time ?? this.runs.defaultExecutionTimeoutSeconds,
      ...(args?.trigger && typeof args.trigger.event === 'object' && args.trigger.event && 'id' in args.trigger.event
        ? { trigger: args.trigger as { event: { id: string } } }
        : {}),
    });
    return { runId, mode: 'rerun', status: begun.status, newRunId: begun.runId, previousStatus: status };
  }

  /** Failed runs of the tenant that match the filter (the dead-letter list), newest closed first. */
  async candidates(tenant: string, filter: RetryFilter): Promise<RetryCandidate[]> {
    const clauses = [
      `WorkflowType = '${INTERPRETER_WORKFLOW_TYPE}'`,
      `${SA.tenant.name} = ${quote(tenant)}`,
      `ExecutionStatus = 'Failed'`,
    ];
    if (filter.definition) clauses.push(`${SA.definition.name} = ${quote(filter.definition)}`);
    if (filter.lane) clauses.push(`${SA.lane.name} = ${quote(filter.lane)}`);
    if (filter.since) clauses.push(`CloseTime >= ${quote(filter.since)}`);
    if (filter.until) clauses.push(`CloseTime < ${quote(filter.until)}`);
    const found: RetryCandidate[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: Math.min(filter.limit, 1000) })) {
      const candidate: RetryCandidate = {
        runId: info.workflowId,
        definition: { name: info.typedSearchAttributes.get(SA.definition) ?? '', version: info.typedSearchAttributes.get(SA.version) ?? '' },
        lane: info.typedSearchAttributes.get(SA.lane),
        closedAt: info.closeTime?.toISOString(),
      };
      // The error type is in the run's failure, not in visibility: read it when the filter asks.
      if (filter.errorType) {
        const view = await this.runs.get(info.workflowId, tenant).catch(() => undefined);
        if (view?.error?.type !== filter.errorType) continue;
        candidate.error = { type: view.error.type, message: view.error.message, step: view.error.step };
      }
      found.push(candidate);
      if (found.length >= filter.limit) break;
    }
    return found;
  }
}
