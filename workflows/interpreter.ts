import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { activityTaskQueue } from '../common/constants.ts';
import { compileDefinition } from '../interpreter/compile.ts';
import {
  RunFailedError,
  StepCallError,
  executePlan,
  initialRunState,
  type InterpreterPort,
  type RunState,
  type SkillCall,
} from '../interpreter/engine.ts';
import type { SkillRequest } from '../activities/skills/types.ts';
import { runStateQuery } from './definitions.ts';
import type { RunInput, RunResult } from './types.ts';

type SkillActivities = Record<string, (request: SkillRequest) => Promise<unknown>>;

/** Reads the attempt count our activity wrapper attaches to every failure it raises. */
function attemptsOf(failure: ActivityFailure, call: SkillCall): number | undefined {
  const cause = failure.cause;
  if (cause instanceof ApplicationFailure) {
    const detail: unknown = cause.details?.[0];
    if (detail && typeof detail === 'object' && typeof (detail as { attempt?: unknown }).attempt === 'number') {
      return (detail as { attempt: number }).attempt;
    }
  }
  return failure.retryState === 'MAXIMUM_ATTEMPTS_REACHED' ? call.retry.maxAttempts : undefined;
}

function toStepCallError(failure: ActivityFailure, call: SkillCall): StepCallError {
  const cause = failure.cause;
  let type = 'ActivityFailure';
  let message = failure.message;
  if (cause instanceof ApplicationFailure) {
    type = cause.type ?? 'Error';
    message = cause.message;
  } else if (cause instanceof TimeoutFailure) {
    type = 'Timeout';
    message = `skill "${call.skill}" timed out (${cause.timeoutType === undefined ? 'timeout' : String(cause.timeoutType)}; limit ${call.timeoutSeconds}s)`;
  } else if (cause) {
    message = cause.message;
  }
  return new StepCallError(message, type, attemptsOf(failure, call));
}

function describeProgress(state: RunState): string {
  const icon: Record<string, string> = { pending: '·', running: '▶', completed: '✓', failed: '✗', skipped: '↷' };
  return state.order.map((id) => `${icon[state.steps[id]?.status ?? 'pending'] ?? '·'} ${id}`).join('\n');
}

/**
 * The interpreter: one generic workflow that executes any registered definition. Each skill step is
 * one activity on the lane's skills task queue, named after the skill, with the step id as its
 * summary in Temporal Web; everything else (templating, bookkeeping) runs here and adds no events.
 */
export async function interpreter(args: RunInput): Promise<RunResult> {
  const { plan, problems } = compileDefinition(args.definition);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `the pinned definition does not compile: ${problems.map((p) => `${p.pointer}: ${p.message}`).join('; ')}`,
      'InvalidDefinition',
    );
  }
  const state = initialRunState(plan);
  setHandler(runStateQuery, () => state);
  const { workflowId } = workflowInfo();

  const port: InterpreterPort = {
    async runSkill(call) {
      const activities = proxyActivities<SkillActivities>({
        taskQueue: activityTaskQueue(args.lane, 'skills'),
        startToCloseTimeout: call.timeoutSeconds * 1000,
        retry: {
          maximumAttempts: call.retry.maxAttempts,
          initialInterval: call.retry.initialIntervalSeconds * 1000,
          maximumInterval: call.retry.maxIntervalSeconds * 1000,
          backoffCoefficient: call.retry.backoffCoefficient,
          nonRetryableErrorTypes: call.retry.nonRetryableErrorTypes,
        },
        summary: `step ${call.stepId}`,
      });
      const activity = activities[call.skill];
      if (!activity) throw new StepCallError(`unknown skill "${call.skill}"`, 'UnknownSkill');
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
            idempotencyKey: `${workflowId}/${call.stepPath}`,
          },
        });
      } catch (error) {
        // A cancelled run surfaces as an ActivityFailure caused by CancelledFailure: keep it a cancellation.
        if (error instanceof ActivityFailure && !isCancellation(error)) throw toStepCallError(error, call);
        throw error;
      }
    },
    isCancellation,
    onProgress: (s) => setCurrentDetails(describeProgress(s)),
  };

  try {
    const output = await executePlan(
      plan,
      {
        input: args.input,
        context: {
          readonly: args.definition.context?.readonly ?? {},
          mutable: { ...(args.definition.context?.mutable ?? {}) },
        },
        run: {
          id: workflowId,
          definition: args.definition.name,
          version: args.definition.version,
          startedBy: args.startedBy,
          correlationId: args.correlationId,
        },
      },
      port,
      state,
    );
    return { output, state };
  } catch (error) {
    if (error instanceof RunFailedError) {
      throw ApplicationFailure.create({
        nonRetryable: true,
        message: error.message,
        type: 'RunFailed',
        details: [error.state],
      });
    }
    throw error;
  }
}
