import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowFailure,
  TimeoutFailure,
  condition,
  continueAsNew,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setDefaultSignalHandler,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { AGENT_WORKFLOW_TYPE, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import { approvalDecidedEvent, approvalRequestedEvent, describeApprovals, pendingApproverKeys } from '../interpreter/approvals.ts';
import { compileDefinition } from '../interpreter/compile.ts';
import {
  ContinueAsNewRequest,
  RunFailedError,
  StepCallError,
  executePlan,
  initialRunState,
  type ActivityCall,
  type InterpreterPort,
  type RunEvent,
  type RunState,
} from '../interpreter/engine.ts';
import type { SkillRequest } from '../activities/skills/types.ts';
import { SA } from '../common/search-attributes.ts';
import { MAX_ATTEMPTS_CAP } from '../interpreter/schema.ts';
import { PATCHES } from '../interpreter/port.ts';
import { installApprovalHandlers } from './approval-handlers.ts';
import { runStateQuery } from './definitions.ts';
import type { AgentResult, AgentRunInput } from '../activities/agents/types.ts';
import type { AuditEntry } from '../interpreter/approvals.ts';
import type { LifecycleEvent, LifecycleEventType, RunEventsBatch } from '../common/contracts/run-events.ts';
import type { RunInput, RunResult } from './types.ts';

/** Runs started since fail with the failing step's own error type instead of `RunFailed`. */
const STEP_FAILURE_TYPE_PATCH = PATCHES.stepFailureType;

interface PlatformActivities {
  recordAudit(entries: AuditEntry[]): Promise<void>;
  recordRunEvents(batch: RunEventsBatch): Promise<void>;
}

/** Lifecycle events are written in batches of at most this many. */
const LIFECYCLE_BATCH = 50;
/** An unwritten lifecycle event older than this (workflow time) is written at the next step boundary. */
const LIFECYCLE_MAX_DELAY_MS = 2000;

type FamilyActivities = Record<string, (request: SkillRequest) => Promise<unknown>>;

/** Temporal suggests continue-as-new well before its hard limits; this is our own ceiling too. */
const DEFAULT_CONTINUE_AS_NEW_EVENTS = 10_000;
/** Undelivered events kept for later wait_for_event steps; the oldest are dropped beyond this. */
const MAX_BUFFERED_EVENTS = 1000;


/** Reads the attempt count our activity wrapper attaches to every failure it raises. */
function attemptsOf(failure: ActivityFailure, call: ActivityCall): number | undefined {
  const cause = failure.cause;
  if (cause instanceof ApplicationFailure) {
    const detail: unknown = cause.details?.[0];
    if (detail && typeof detail === 'object' && typeof (detail as { attempt?: unknown }).attempt === 'number') {
      return (detail as { attempt: number }).attempt;
    }
  }
  return failure.retryState === 'MAXIMUM_ATTEMPTS_REACHED' ? call.retry.maxAttempts : undefined;
}

function toStepCallError(failure: ActivityFailure, call: ActivityCall): StepCallError {
  const cause = failure.cause;
  let type = 'ActivityFailure';
  let message = failure.message;
  if (cause instanceof ApplicationFailure) {
    type = cause.type ?? 'Error';
    message = cause.message;
  } else if (cause instanceof TimeoutFailure) {
    type = 'Timeout';
    message = `${call.type} "${call.name}" timed out (${cause.timeoutType === undefined ? 'timeout' : String(cause.timeoutType)}; limit ${call.timeoutSeconds}s)`;
  } else if (cause) {
    message = cause.message;
  }
  return new StepCallError(message, type, attemptsOf(failure, call));
}

/** A step's effective retry as a Temporal retry policy. */
function retryPolicyOf(retry: ActivityCall['retry']) {
  return {
    maximumAttempts: retry.maxAttempts,
    initialInterval: retry.initialIntervalSeconds * 1000,
    maximumInterval: retry.maxIntervalSeconds * 1000,
    backoffCoefficient: retry.backoffCoefficient,
    nonRetryableErrorTypes: retry.nonRetryableErrorTypes,
  };
}

/**
 * The definition's memory and CPU limits, for the skills that run code in a sandbox (code_inline,
 * code_session): part of a skill activity's input when set. Replay does not compare inputs.
 */
function sandboxLimitsOf(definition: RunInput['definition']): Pick<SkillRequest['meta'], 'resourceLimits'> {
  const limits = definition.resource_limits;
  if (limits?.max_memory_mb === undefined && limits?.max_cpu_percent === undefined) return {};
  return {
    resourceLimits: {
      ...(limits.max_memory_mb !== undefined ? { max_memory_mb: limits.max_memory_mb } : {}),
      ...(limits.max_cpu_percent !== undefined ? { max_cpu_percent: limits.max_cpu_percent } : {}),
    },
  };
}

/** Applies a skill's registered timeout and retry where its step set none. */
function withRegisteredDefaults(call: ActivityCall, registry: RunInput['activityDefaults']): ActivityCall {
  const registered = call.defaulted ? registry?.[`${call.family}:${call.name}`] : undefined;
  if (!registered || !call.defaulted) return call;
  const retry = registered.retry;
  return {
    ...call,
    ...(call.defaulted.timeout && registered.timeoutSeconds !== undefined ? { timeoutSeconds: registered.timeoutSeconds } : {}),
    ...(call.defaulted.retry && retry
      ? {
          retry: {
            ...call.retry,
            ...(retry.maxAttempts !== undefined ? { maxAttempts: Math.min(retry.maxAttempts, MAX_ATTEMPTS_CAP) } : {}),
            ...(retry.initialIntervalSeconds !== undefined ? { initialIntervalSeconds: retry.initialIntervalSeconds } : {}),
            ...(retry.backoffCoefficient !== undefined ? { backoffCoefficient: retry.backoffCoefficient } : {}),
            ...(retry.maxIntervalSeconds !== undefined ? { maxIntervalSeconds: retry.maxIntervalSeconds } : {}),
          },
        }
      : {}),
  };
}

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

/**
 * The interpreter: one generic workflow that executes any registered definition. Activity steps
 * are activities on the lane's queue for their family (skills, integrations, agents), named after
 * the skill and summarised with the step id in Temporal Web; sub_workflow steps are child runs;
 * wait steps are timers; wait_for_event steps wait for a signal of that name. Everything else
 * (conditions, templating, `set`, loop bookkeeping) runs here and adds no history events. Long runs
 * continue as new at safe points, carrying their state and undelivered events.
 */
export async function interpreter(args: RunInput): Promise<RunResult> {
  const { plan, problems } = compileDefinition(args.definition);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `the pinned definition does not compile: ${problems.map((p) => `${p.pointer}: ${p.message}`).join('; ')}`,
      'InvalidDefinition',
    );
  }
  const state = args.resume?.state ?? initialRunState(plan, args.definition.context?.mutable ?? {});
  state.approvals ??= {};
  setHandler(runStateQuery, () => state, { description: 'The live state of the run: every step\'s status, output and error, the approvals, the loop counters.' });

  // Approvals: the update (API) answers at once through its validator, so a refused attempt adds
  // nothing to history; the signal (Temporal UI) is in history either way, and a refused one is
  // recorded. Every decision and every refused signal goes to the audit trail in PostgreSQL.
  const directory = args.directory ?? {};
  const audit: AuditEntry[] = [...(args.resume?.audit ?? [])];
  // eslint-disable-next-line no-restricted-properties -- workflow time: deterministic inside workflows
  const nowIso = () => new Date(Date.now()).toISOString();
  const handlers = installApprovalHandlers({
    workflowId: workflowInfo().workflowId,
    identity: { tenant: args.tenant, definition: args.definition.name, version: args.definition.version },
    approvals: () => state.approvals,
    directory,
    audit,
    auditSeq: args.resume?.auditSeq ?? 0,
    nowIso,
    platformQueue: platformTaskQueue(args.lane),
    onChange: () => showDetails(),
  });
  // Temporal Web's User Metadata tab: the step checklist, what the pending approvals wait for
  // (approvers, count, deadline) and the last refused attempt with its reason.
  let progress: RunState | undefined;
  const showDetails = () =>
    setCurrentDetails([describeProgress(progress ?? state), ...describeApprovals(state.approvals, handlers.lastRefusal())].join('\n'));
  let lastApproverKeys = '';
  const syncApprovers = () => {
    const keys = pendingApproverKeys(state.approvals);
    if (keys.join('\n') === lastApproverKeys) return;
    lastApproverKeys = keys.join('\n');
    upsertSearchAttributes([{ key: SA.pendingApprovers, value: keys }]);
  };
  const syncApproversAndDetails = () => {
    syncApprovers();
    showDetails();
  };
  lastApproverKeys = pendingApproverKeys(state.approvals).join('\n');

  // The audit trail is written by an activity, outside cancellation, in the order it happened.
  const platform = proxyActivities<PlatformActivities>({
    taskQueue: platformTaskQueue(args.lane),
    // One small transaction: a write lost with a stopped worker is retried after 10 s, not 30.
    startToCloseTimeout: args.recordEvents ? 10_000 : 30_000,
    // Bounded however it fails (no platform worker, database down): a run never hangs on its records.
    ...(args.recordEvents ? { scheduleToCloseTimeout: 300_000 } : {}),
    retry: { maximumAttempts: 10, initialInterval: 1000, maximumInterval: 60_000, backoffCoefficient: 2 },
    summary: args.recordEvents ? 'lifecycle events and audit trail' : 'approval audit trail',
  });
  let finishing = false;
  // Runs that record lifecycle events write audit entries with them (eventsWriter below).
  const auditWriter = args.recordEvents ? Promise.resolve() : CancellationScope.nonCancellable(async () => {
    for (;;) {
      await condition(() => audit.length > 0 || finishing);
      if (audit.length === 0) return;
      const batch = audit.slice(0, 50);
      try {
        await platform.recordAudit(batch);
      } catch {
        // Retries are bounded; the decisions stay in this history and in the run's state.
      }
      audit.splice(0, batch.length);
    }
  });
  const drainAudit = async () => {
    finishing = true;
    await auditWriter;
    await eventsWriter;
  };

  // Lifecycle events (seed 004 §6): numbered per run, written by the same platform activity in
  // batches. A batch goes out when someone may be waiting on it (an approval, the run's end, a long
  // wait), when it is full, or when its oldest event is a couple of seconds old; a run of fast steps
  // thus adds one write, not one per step. Runs started before this existed (no `recordEvents`)
  // keep their old behaviour, so their histories replay unchanged.
  const lifecycle: LifecycleEvent[] = [...(args.resume?.lifecycle ?? [])];
  let lifecycleSeq = args.resume?.lifecycleSeq ?? 0;
  let flushRequested = false;
  const emit = (type: LifecycleEventType, data: Record<string, unknown>, urgent = false) => {
    if (!args.recordEvents) return;
    lifecycleSeq += 1;
    lifecycle.push({
      id: `${workflowInfo().workflowId}/event/${lifecycleSeq}`,
      type,
      runId: workflowInfo().workflowId,
      seq: lifecycleSeq,
      tenant: args.tenant,
      definition: args.definition.name,
      version: args.definition.version,
      correlationId: args.correlationId,
      ...(args.causationId ? { causationId: args.causationId } : {}),
      time: nowIso(),
      data,
    });
    // eslint-disable-next-line no-restricted-properties -- workflow time: deterministic inside workflows
    if (urgent || lifecycle.length >= LIFECYCLE_BATCH || Date.now() - Date.parse((lifecycle[0] as LifecycleEvent).time) >= LIFECYCLE_MAX_DELAY_MS) {
      flushRequested = true;
    }
  };
  /** The run is about to wait on something slow: write what is queued meanwhile. */
  const flushSoon = () => {
    if (lifecycle.length > 0 || (args.recordEvents && audit.length > 0)) flushRequested = true;
  };
  const eventsWriter = args.recordEvents
    ? CancellationScope.nonCancellable(async () => {
        for (;;) {
          await condition(() => ((flushRequested || audit.length > 0) && (lifecycle.length > 0 || audit.length > 0)) || finishing);
          if (lifecycle.length === 0 && audit.length === 0) return;
          flushRequested = false;
          const batch: RunEventsBatch = { events: lifecycle.slice(0, LIFECYCLE_BATCH), audit: audit.slice(0, LIFECYCLE_BATCH) };
          try {
            await platform.recordRunEvents(batch);
          } catch {
            // Retries are bounded; the events stay in this history and in the run's state.
          }
          lifecycle.splice(0, batch.events.length);
          audit.splice(0, batch.audit.length);
          if (lifecycle.length > 0 || audit.length > 0) flushRequested = true;
        }
      })
    : Promise.resolve();
  if (!args.resume) {
    emit('workflow.run.started', {
      status: 'running',
      lane: args.lane,
      startedBy: args.startedBy,
      ...(args.trigger ? { trigger: 'event' } : {}),
    });
  }

  // Every signal without its own handler is an event: its name, and its first argument as payload.
  const events: RunEvent[] = [...(args.resume?.events ?? [])];
  // An event delivered twice (same CloudEvents `id` and `source`, e.g. a redelivery) is kept once.
  const seenEvents: string[] = [...(args.resume?.seenEvents ?? [])];
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

  const info = workflowInfo();
  const { workflowId } = info;
  // Bounded both ways: too low and a run would continue as new without progressing.
  const threshold = Math.max(100, Math.min(args.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AS_NEW_EVENTS, DEFAULT_CONTINUE_AS_NEW_EVENTS * 5));

  /** A child run's search attributes: its definition, this run's identity, and this run as its cause. */
  const childSearchAttributes = (definition: string, version: string) => [
    { key: SA.definition, value: definition },
    { key: SA.version, value: version },
    { key: SA.lane, value: args.lane },
    { key: SA.tenant, value: args.tenant },
    { key: SA.startedBy, value: args.startedBy },
    { key: SA.correlationId, value: args.correlationId },
    { key: SA.causationId, value: workflowId },
  ];

  const sandboxLimits = sandboxLimitsOf(args.definition);

  const port: InterpreterPort = {
    async runActivity(requested) {
      const call = withRegisteredDefaults(requested, args.activityDefaults);
      if (call.family === 'models' || call.family === 'agents') flushSoon();
      const agent = call.family === 'agents' ? args.agents?.[call.name] : undefined;
      if (agent) return runAgent(call, agent);
      const activities = proxyActivities<FamilyActivities>({
        taskQueue: activityTaskQueue(args.lane, call.family),
        startToCloseTimeout: call.timeoutSeconds * 1000,
        // Heartbeats carry cancellation to running activities; a stuck worker is noticed well
        // before the start-to-close timeout.
        heartbeatTimeout: Math.min(call.timeoutSeconds, 30) * 1000,
        retry: retryPolicyOf(call.retry),
        summary: `step ${call.stepPath}`,
      });
      // The proxy yields a function for any name; a name no worker registered fails the activity.
      const activity = activities[call.name] as (request: SkillRequest) => Promise<unknown>;
      try {
        return await activity({
          input: call.input,
          meta: {
            stepId: call.stepId,
            definition: args.definition.name,
            version: args.definition.version,
            lane: args.lane,
            tenant: args.tenant,
            correlationId: args.correlationId,
            ...(args.causationId ? { causationId: args.causationId } : {}),
            idempotencyKey: `${workflowId}/${call.stepPath}`,
            ...(call.guardrails ? { guardrails: call.guardrails } : {}),
            ...(call.family === 'skills' ? sandboxLimits : {}),
            ...(args.definition.sensitive ? { declaresSensitive: true } : {}),
          },
        });
      } catch (error) {
        // A cancelled run surfaces as an ActivityFailure caused by CancelledFailure: keep it a cancellation.
        if (error instanceof ActivityFailure && !isCancellation(error)) throw toStepCallError(error, call);
        throw error;
      }
    },

    async runChild(call) {
      flushSoon();
      const key = `${call.definition}@${call.version}`;
      const pinned = args.subDefinitions?.[key];
      if (!pinned) throw new StepCallError(`definition ${key} was not resolved when the run started`, 'UnknownDefinition');
      const childInput: RunInput = {
        definition: pinned.definition,
        definitionHash: pinned.hash,
        input: call.input,
        lane: args.lane,
        tenant: args.tenant,
        startedBy: args.startedBy,
        correlationId: args.correlationId,
        ...(args.subDefinitions ? { subDefinitions: args.subDefinitions } : {}),
        ...(args.directory ? { directory: args.directory } : {}),
        ...(args.continueAsNewAfterEvents ? { continueAsNewAfterEvents: args.continueAsNewAfterEvents } : {}),
        ...(args.agents ? { agents: args.agents } : {}),
        ...(args.activityDefaults ? { activityDefaults: args.activityDefaults } : {}),
        // The child's lifecycle events name the step's run as their cause.
        ...(args.recordEvents ? { recordEvents: true, causationId: workflowId } : {}),
      };
      try {
        const result = await executeChild(interpreter, {
          workflowId: `${workflowId}/${call.stepPath}`,
          taskQueue: workflowTaskQueue(args.lane),
          args: [childInput],
          staticSummary: `${key} (step ${call.stepId} of ${workflowId})`,
          typedSearchAttributes: childSearchAttributes(pinned.definition.name, pinned.definition.version),
        });
        return result.output;
      } catch (error) {
        if (error instanceof ChildWorkflowFailure && !isCancellation(error)) {
          const cause = error.cause;
          const message = cause instanceof ApplicationFailure || cause ? cause.message : error.message;
          throw new StepCallError(`sub-workflow ${key} failed: ${message}`, 'ChildRunFailed');
        }
        throw error;
      }
    },

    async waitUntil(predicate, timeoutMs, purpose) {
      flushSoon();
      if (timeoutMs === undefined) {
        await condition(predicate);
        return true;
      }
      return purpose ? condition(predicate, timeoutMs, { summary: purpose }) : condition(predicate, timeoutMs);
    },
    onApprovalsChanged: () => syncApproversAndDetails(),
    sleep: (ms, purpose) => {
      if (ms >= LIFECYCLE_MAX_DELAY_MS) flushSoon();
      return purpose ? sleep(ms, { summary: purpose }) : sleep(ms);
    },
    yield: () => sleep(1),
    // Workflow time: Temporal makes Date deterministic inside workflows (the time of the current task).
    // eslint-disable-next-line no-restricted-properties
    now: () => Date.now(),

    async waitForEvent(predicate, timeoutMs, purpose) {
      flushSoon();
      let index = -1;
      const found = () => {
        index = events.findIndex(predicate);
        return index >= 0;
      };
      if (timeoutMs === undefined) await condition(found);
      else if (!(await (purpose ? condition(found, timeoutMs, { summary: purpose }) : condition(found, timeoutMs)))) return undefined;
      const [event] = events.splice(index, 1);
      return event;
    },

    cancellable(fn) {
      const scope = new CancellationScope({ cancellable: true });
      return { promise: scope.run(fn), cancel: () => scope.cancel() };
    },
    nonCancellable: (fn) => CancellationScope.nonCancellable(fn),
    shouldContinueAsNew() {
      const now = workflowInfo();
      return now.continueAsNewSuggested || now.historyLength >= threshold;
    },
    isCancellation,
    cancellation: (message) => new CancelledFailure(message),
    patched: (patchId) => patched(patchId),
    onProgress: (s) => {
      progress = s;
      showDetails();
    },
    onStepSettled: args.recordEvents
      ? (settled) => {
          const { status, error, continued, ...where } = settled;
          emit(status === 'completed' ? 'workflow.step.completed' : 'workflow.step.failed', {
            ...where,
            status,
            ...(error ? { error } : {}),
            ...(continued ? { continued } : {}),
          });
        }
      : undefined,
    onApproval: args.recordEvents
      ? (phase, record) => {
          if (phase === 'requested') emit('workflow.approval.requested', approvalRequestedEvent(record), true);
          else emit('workflow.approval.decided', approvalDecidedEvent(record), true);
        }
      : undefined,
  };

  /** An agent step whose agent is in the registry: a child workflow running the agent loop. */
  async function runAgent(call: ActivityCall, agent: NonNullable<RunInput['agents']>[string]): Promise<unknown> {
    const g = (call.guardrails ?? {}) as { max_iterations?: number; allowed_tools?: string[]; max_tokens?: number; timeout?: number };
    const guardrails: AgentRunInput['guardrails'] = {
      ...(g.max_iterations !== undefined ? { max_iterations: g.max_iterations } : {}),
      ...(g.allowed_tools !== undefined ? { allowed_tools: g.allowed_tools } : {}),
      ...(g.max_tokens !== undefined ? { token_budget: g.max_tokens } : {}),
      ...(g.timeout !== undefined ? { timeout_seconds: g.timeout } : {}),
    };
    const input: AgentRunInput = {
      agent,
      input: call.input,
      guardrails,
      lane: args.lane,
      tenant: args.tenant,
      definition: args.definition.name,
      version: args.definition.version,
      startedBy: args.startedBy,
      correlationId: args.correlationId,
      ...(args.causationId ? { causationId: args.causationId } : {}),
      parentRunId: workflowId,
      stepId: call.stepId,
      stepPath: call.stepPath,
      ...(args.directory ? { directory: args.directory } : {}),
    };
    try {
      return await executeChild<(input: AgentRunInput) => Promise<AgentResult>>(AGENT_WORKFLOW_TYPE, {
        workflowId: `${workflowId}/${call.stepPath}`,
        taskQueue: workflowTaskQueue(args.lane),
        args: [input],
        staticSummary: `agent ${agent.name} (step ${call.stepId} of ${workflowId})`,
        retry: retryPolicyOf(call.retry),
        typedSearchAttributes: childSearchAttributes(args.definition.name, args.definition.version),
      });
    } catch (error) {
      if (error instanceof ChildWorkflowFailure && !isCancellation(error)) {
        const cause = error.cause;
        const type = cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : 'AgentFailed';
        throw new StepCallError(`agent "${agent.name}" failed: ${cause ? cause.message : error.message}`, type);
      }
      throw error;
    }
  }

  try {
    const output = await executePlan(
      plan,
      {
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
      },
      port,
      state,
    );
    emit('workflow.run.completed', { status: 'completed' });
    await drainAudit();
    return { output, state };
  } catch (error) {
    if (error instanceof ContinueAsNewRequest) {
      // Write what is queued, then hand anything that arrived meanwhile to the next run.
      finishing = true;
      await auditWriter;
      await eventsWriter;
      const carried = audit.splice(0);
      const resume: NonNullable<RunInput['resume']> = { state: error.state, events, audit: carried, auditSeq: handlers.auditSeq(), seenEvents };
      if (args.recordEvents) Object.assign(resume, { lifecycle: lifecycle.splice(0), lifecycleSeq });
      return continueAsNew<typeof interpreter>({ ...args, resume });
    }
    if (isCancellation(error)) emit('workflow.run.cancelled', { status: 'cancelled' });
    else {
      const failed = error instanceof RunFailedError ? error.state.error : undefined;
      emit('workflow.run.failed', {
        status: 'failed',
        error: failed ?? { message: error instanceof Error ? error.message : String(error), type: error instanceof Error ? error.name : 'Error' },
      });
    }
    await drainAudit();
    if (error instanceof RunFailedError) {
      throw ApplicationFailure.create({
        nonRetryable: true,
        message: error.message,
        // Temporal Web shows the failing step's own error type (NetworkError, ApprovalRejected, …).
        type: (patched(STEP_FAILURE_TYPE_PATCH) && error.state.error?.type) || 'RunFailed',
        details: [error.state],
      });
    }
    throw error;
  }
}
