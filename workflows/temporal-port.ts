import {
  CancellationScope,
  CancelledFailure,
  ApplicationFailure,
  condition,
  executeChild,
  isCancellation,
  patched,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentResult, AgentRunInput } from '../activities/agents/types.ts';
import type { SkillRequest } from '../activities/skills/types.ts';
import { AGENT_WORKFLOW_TYPE, INTERPRETER_WORKFLOW_TYPE, activityTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import { runSearchAttributePairs } from '../common/search-attributes.ts';
import { StepCallError, type ActivityCall, type InterpreterPort, type RunEvent, type RunState } from '../interpreter/engine.ts';
import { withRegisteredDefaults } from '../interpreter/activity-defaults.ts';
import { childFailure, stepCallFailure } from './failures.ts';
import { LIFECYCLE_MAX_DELAY_MS, type RunRecorder } from './recorder.ts';
import type { RunInput, RunResult } from './types.ts';

/**
 * The engine's port bound to Temporal: activity steps are activities on the lane's queue for their
 * family (skills, integrations, agents), named after the skill and summarised with the step path;
 * registry agents and sub_workflow steps are child workflows; waits are timers and conditions;
 * events are the signals the interpreter buffers. Everything the engine asks of the world goes
 * through here.
 */

type FamilyActivities = Record<string, (request: SkillRequest) => Promise<unknown>>;

/** Temporal suggests continue-as-new well before its hard limits; this is our own ceiling too. */
const DEFAULT_CONTINUE_AS_NEW_EVENTS = 10_000;

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

/** A child run's search attributes: its definition, the run's identity, and the run as its cause. */
function childSearchAttributes(args: RunInput, workflowId: string, definition: string, version: string) {
  const { lane, tenant, startedBy, correlationId } = args;
  return runSearchAttributePairs({ definition, version, lane, tenant, startedBy, correlationId, causationId: workflowId });
}

/** What the port reports back to the interpreter workflow and reads of it. */
export interface PortHooks extends Pick<InterpreterPort, 'onStepSettled' | 'onApproval'> {
  recorder: RunRecorder;
  /** Undelivered events (signals without a handler of their own), oldest first. */
  events: RunEvent[];
  onApprovalsChanged(): void;
  onProgress(state: RunState): void;
}

/** An activity step's activity: named after its skill, integration or agent, on the family's queue. */
function activityOf(args: RunInput, call: ActivityCall): (request: SkillRequest) => Promise<unknown> {
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
  return activities[call.name] as (request: SkillRequest) => Promise<unknown>;
}

/** The activity's argument: the step's input and the run's identity. */
function requestOf(args: RunInput, workflowId: string, call: ActivityCall, sandboxLimits: ReturnType<typeof sandboxLimitsOf>): SkillRequest {
  return {
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
  };
}

/** A sub_workflow step's child run: the pinned definition, on the lane's workflow queue, named after the step. */
function childRunOf(args: RunInput, workflowId: string, call: Parameters<InterpreterPort['runChild']>[0]) {
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
  return {
    key,
    options: {
      workflowId: `${workflowId}/${call.stepPath}`,
      taskQueue: workflowTaskQueue(args.lane),
      args: [childInput] as [RunInput],
      staticSummary: `${key} (step ${call.stepId} of ${workflowId})`,
      typedSearchAttributes: childSearchAttributes(args, workflowId, pinned.definition.name, pinned.definition.version),
    },
  };
}

/** An agent step whose agent is in the registry: a child workflow running the agent loop. */
async function runAgent(args: RunInput, workflowId: string, call: ActivityCall, agent: NonNullable<RunInput['agents']>[string]): Promise<unknown> {
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
      typedSearchAttributes: childSearchAttributes(args, workflowId, args.definition.name, args.definition.version),
    });
  } catch (error) {
    throw childFailure(error, (cause, message) => new StepCallError(`agent "${agent.name}" failed: ${message}`, cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : 'AgentFailed'));
  }
}

/** The interpreter workflow's port: the engine's every effect, as Temporal commands. */
export function temporalPort(args: RunInput, hooks: PortHooks): InterpreterPort {
  const { workflowId } = workflowInfo();
  const { recorder, events } = hooks;
  // Bounded both ways: too low and a run would continue as new without progressing.
  const sandboxLimits = sandboxLimitsOf(args.definition);
  const threshold = Math.max(100, Math.min(args.continueAsNewAfterEvents ?? DEFAULT_CONTINUE_AS_NEW_EVENTS, DEFAULT_CONTINUE_AS_NEW_EVENTS * 5));
  return {
    async runActivity(requested) {
      const call = withRegisteredDefaults(requested, args.activityDefaults);
      if (call.family === 'models' || call.family === 'agents') recorder.flushSoon();
      const agent = call.family === 'agents' ? args.agents?.[call.name] : undefined;
      if (agent) return runAgent(args, workflowId, call, agent);
      const activity = activityOf(args, call);
      try {
        return await activity(requestOf(args, workflowId, call, sandboxLimits));
      } catch (error) {
        throw stepCallFailure(error, call);
      }
    },
    async runChild(call) {
      recorder.flushSoon();
      const { key, options } = childRunOf(args, workflowId, call);
      try {
        const result = await executeChild<(input: RunInput) => Promise<RunResult>>(INTERPRETER_WORKFLOW_TYPE, options);
        return result.output;
      } catch (error) {
        throw childFailure(error, (_cause, message) => new StepCallError(`sub-workflow ${key} failed: ${message}`, 'ChildRunFailed'));
      }
    },
    async waitUntil(predicate, timeoutMs, purpose) {
      recorder.flushSoon();
      if (timeoutMs === undefined) {
        await condition(predicate);
        return true;
      }
      return purpose ? condition(predicate, timeoutMs, { summary: purpose }) : condition(predicate, timeoutMs);
    },
    onApprovalsChanged: () => hooks.onApprovalsChanged(),
    sleep: (ms, purpose) => {
      if (ms >= LIFECYCLE_MAX_DELAY_MS) recorder.flushSoon();
      return purpose ? sleep(ms, { summary: purpose }) : sleep(ms);
    },
    yield: () => sleep(1),
    // Workflow time: Temporal makes Date deterministic inside workflows (the time of the current task).
    // eslint-disable-next-line no-restricted-properties
    now: () => Date.now(),
    async waitForEvent(predicate, timeoutMs, purpose) {
      recorder.flushSoon();
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
    onProgress: (s) => hooks.onProgress(s),
    onStepSettled: hooks.onStepSettled,
    onApproval: hooks.onApproval,
  };
}
