import {
  ApplicationFailure,
  continueAsNew,
  isCancellation,
  patched,
  setCurrentDetails,
  setDefaultSignalHandler,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { approvalDecidedEvent, approvalRequestedEvent, describeApprovals, pendingApproverKeys, type ApprovalRecord, type AuditEntry } from '../interpreter/approvals.ts';
import { compileDefinition } from '../interpreter/compile.ts';
import { ContinueAsNewRequest, RunFailedError, executePlan, initialRunState, type InterpreterPort, type RunEvent, type RunState } from '../interpreter/engine.ts';
import type { Plan } from '../interpreter/plan.ts';
import { platformTaskQueue } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { PATCHES } from '../interpreter/port.ts';
import { installApprovalHandlers, type LastRefusal } from './approval-handlers.ts';
import { runStateQuery } from './definitions.ts';
import { runRecorder, type RunRecorder } from './recorder.ts';
import { temporalPort } from './temporal-port.ts';
import type { RunInput, RunResult } from './types.ts';

/** Runs started since fail with the failing step's own error type instead of `RunFailed`. */
const STEP_FAILURE_TYPE_PATCH = PATCHES.stepFailureType;

/** Undelivered events kept for later wait_for_event steps; the oldest are dropped beyond this. */
const MAX_BUFFERED_EVENTS = 1000;

function describeProgress(state: RunState): string {
  const icon: Record<string, string> = { pending: '·', running: '▶', completed: '✓', failed: '✗', skipped: '↷', cancelled: '⊘' };
  const lines = state.order.map((id) => {
    const s = state.steps[id];
    const extra = s?.iteration !== undefined ? ` (iteration ${s.iteration})` : s?.total !== undefined ? ` (${s.done ?? 0}/${s.total})` : '';
    return `${icon[s?.status ?? 'pending'] ?? '·'} ${id}${extra}`;
  });
  if (state.currentStep && !state.order.includes(state.currentStep)) lines.push(`▶ ${state.currentStep}`);
  return lines.join('\n');
}

/** The pinned definition's plan; a definition that does not compile fails the run at once. */
function planOf(definition: RunInput['definition']): Plan {
  const { plan, problems } = compileDefinition(definition);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `the pinned definition does not compile: ${problems.map((p) => `${p.pointer}: ${p.message}`).join('; ')}`,
      'InvalidDefinition',
    );
  }
  return plan;
}

/**
 * Temporal Web's User Metadata tab (the step checklist, what the pending approvals wait for:
 * approvers, count, deadline, and the last refused attempt with its reason) and the
 * PendingApprovers search attribute, upserted only when it changes.
 */
function runDetails(state: RunState, lastRefusal: () => LastRefusal | undefined) {
  let progress: RunState | undefined;
  const show = () => setCurrentDetails([describeProgress(progress ?? state), ...describeApprovals(state.approvals, lastRefusal())].join('\n'));
  let lastApproverKeys = pendingApproverKeys(state.approvals).join('\n');
  const syncApprovers = () => {
    const keys = pendingApproverKeys(state.approvals);
    if (keys.join('\n') === lastApproverKeys) return;
    lastApproverKeys = keys.join('\n');
    upsertSearchAttributes([{ key: SA.pendingApprovers, value: keys }]);
  };
  return {
    show,
    syncApproversAndShow: () => {
      syncApprovers();
      show();
    },
    progressed: (s: RunState) => {
      progress = s;
      show();
    },
  };
}

/**
 * Every signal without its own handler is an event: its name, and its first argument as payload.
 * An event delivered twice (same CloudEvents `id` and `source`, e.g. a redelivery) is kept once.
 */
function bufferEvents(resume: RunInput['resume']): { events: RunEvent[]; seenEvents: string[] } {
  const events: RunEvent[] = [...(resume?.events ?? [])];
  const seenEvents: string[] = [...(resume?.seenEvents ?? [])];
  setDefaultSignalHandler((name: string, ...signalArgs: unknown[]) => {
    const payload = signalArgs[0] ?? null;
    const id = payload && typeof payload === 'object' ? (payload as { id?: unknown; source?: unknown }) : undefined;
    if (id && typeof id.id === 'string' && typeof id.source === 'string') {
      const key = `${id.source}\u0000${id.id}`;
      if (seenEvents.includes(key)) return;
      seenEvents.push(key);
      if (seenEvents.length > MAX_BUFFERED_EVENTS) seenEvents.shift();
    }
    events.push({ name, payload });
    if (events.length > MAX_BUFFERED_EVENTS) events.shift();
  });
  return { events, seenEvents };
}

/** The engine's settle and approval hooks as lifecycle events (runs that record them). */
function lifecycleHooks(args: RunInput, recorder: RunRecorder): Pick<InterpreterPort, 'onStepSettled' | 'onApproval'> {
  if (!args.recordEvents) return { onStepSettled: undefined, onApproval: undefined };
  return {
    onStepSettled: (settled) => {
      const { status, error, continued, ...where } = settled;
      recorder.emit(status === 'completed' ? 'workflow.step.completed' : 'workflow.step.failed', {
        ...where,
        status,
        ...(error ? { error } : {}),
        ...(continued ? { continued } : {}),
      });
    },
    onApproval: (phase: 'requested' | 'decided', record: ApprovalRecord) => {
      if (phase === 'requested') recorder.emit('workflow.approval.requested', approvalRequestedEvent(record), true);
      else recorder.emit('workflow.approval.decided', approvalDecidedEvent(record), true);
    },
  };
}

/** What the engine reads as `input`, `signal`, `context` and `run`. */
function runContext(args: RunInput, workflowId: string) {
  return {
    input: args.input,
    signal: args.trigger ? args.trigger.event : args.input,
    context: { readonly: args.definition.context?.readonly ?? {} },
    run: {
      id: workflowId,
      definition: args.definition.name,
      version: args.definition.version,
      startedBy: args.startedBy,
      correlationId: args.correlationId,
      lane: args.lane,
      tenant: args.tenant,
    },
  };
}

/** The lifecycle event of a run that ended without completing. */
function endedEvent(recorder: RunRecorder, error: unknown): void {
  if (isCancellation(error)) {
    recorder.emit('workflow.run.cancelled', { status: 'cancelled' });
    return;
  }
  const failed = error instanceof RunFailedError ? error.state.error : undefined;
  recorder.emit('workflow.run.failed', {
    status: 'failed',
    error: failed ?? { message: error instanceof Error ? error.message : String(error), type: error instanceof Error ? error.name : 'Error' },
  });
}

/** What a failed run throws: the failing step's own error type (Temporal Web shows it), with the state. */
function runFailure(error: unknown): unknown {
  if (!(error instanceof RunFailedError)) return error;
  return ApplicationFailure.create({
    nonRetryable: true,
    message: error.message,
    // Temporal Web shows the failing step's own error type (NetworkError, ApprovalRejected, …).
    type: (patched(STEP_FAILURE_TYPE_PATCH) && error.state.error?.type) || 'RunFailed',
    details: [error.state],
  });
}

/**
 * The interpreter: one generic workflow that executes any registered definition. Activity steps
 * are activities on the lane's queue for their family (skills, integrations, agents), named after
 * the skill and summarised with the step id in Temporal Web; sub_workflow steps are child runs;
 * wait steps are timers; wait_for_event steps wait for a signal of that name (temporal-port.ts).
 * Everything else (conditions, templating, `set`, loop bookkeeping) runs here and adds no history
 * events. Long runs continue as new at safe points, carrying their state and undelivered events.
 */
export async function interpreter(args: RunInput): Promise<RunResult> {
  const plan = planOf(args.definition);
  const state = args.resume?.state ?? initialRunState(plan, args.definition.context?.mutable ?? {});
  state.approvals ??= {};
  setHandler(runStateQuery, () => state, { description: 'The live state of the run: every step\'s status, output and error, the approvals, the loop counters.' });

  // Approvals: the update (API) answers at once through its validator, so a refused attempt adds
  // nothing to history; the signal (Temporal UI) is in history either way, and a refused one is
  // recorded. Every decision and every refused signal goes to the audit trail in PostgreSQL.
  const audit: AuditEntry[] = [...(args.resume?.audit ?? [])];
  // eslint-disable-next-line no-restricted-properties -- workflow time: deterministic inside workflows
  const nowIso = () => new Date(Date.now()).toISOString();
  const handlers = installApprovalHandlers({
    workflowId: workflowInfo().workflowId,
    identity: { tenant: args.tenant, definition: args.definition.name, version: args.definition.version },
    approvals: () => state.approvals,
    directory: args.directory ?? {},
    audit,
    auditSeq: args.resume?.auditSeq ?? 0,
    nowIso,
    platformQueue: platformTaskQueue(args.lane),
    onChange: () => details.show(),
  });
  const details = runDetails(state, () => handlers.lastRefusal());

  // The audit trail and the lifecycle events, written by platform activities outside cancellation.
  const recorder = runRecorder(args, audit, nowIso);
  if (!args.resume) {
    recorder.emit('workflow.run.started', { status: 'running', lane: args.lane, startedBy: args.startedBy, ...(args.trigger ? { trigger: 'event' } : {}) });
  }
  const { events, seenEvents } = bufferEvents(args.resume);
  const { workflowId } = workflowInfo();
  const port = temporalPort(args, {
    recorder,
    events,
    onApprovalsChanged: () => details.syncApproversAndShow(),
    onProgress: (s) => details.progressed(s),
    ...lifecycleHooks(args, recorder),
  });

  try {
    const output = await executePlan(plan, runContext(args, workflowId), port, state);
    recorder.emit('workflow.run.completed', { status: 'completed' });
    await recorder.drain();
    return { output, state };
  } catch (error) {
    if (error instanceof ContinueAsNewRequest) {
      // Write what is queued, then hand anything that arrived meanwhile to the next run.
      recorder.finish();
      await recorder.writers[0];
      await recorder.writers[1];
      const { audit: carried, ...lifecycle } = recorder.carried();
      const resume: NonNullable<RunInput['resume']> = { state: error.state, events, audit: carried, auditSeq: handlers.auditSeq(), seenEvents, ...lifecycle };
      return continueAsNew<typeof interpreter>({ ...args, resume });
    }
    endedEvent(recorder, error);
    await recorder.drain();
    throw runFailure(error);
  }
}
