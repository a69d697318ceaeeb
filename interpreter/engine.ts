import type { CompiledSkillStep, EffectiveRetry, Plan } from './compile.ts';
import { ReferenceResolutionError, resolveValue, type EvaluationScope } from './references.ts';

/**
 * The step-execution engine: pure, deterministic code that walks a compiled plan and asks a small
 * port for everything with an effect. The Temporal workflow binds the port to activities; unit
 * tests bind it to plain functions.
 */

export type StepStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped';
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

export interface StepError {
  message: string;
  /** The error's type: an activity's ApplicationFailure type, or one of the interpreter's own. */
  type: string;
  /** How many attempts were made before the step gave up. */
  attempts?: number;
}

export interface StepState {
  status: StepStatus;
  output?: unknown;
  error?: StepError;
  /** True when the step failed and the error policy let the run continue. */
  continued?: boolean;
}

export interface RunState {
  status: RunStatus;
  currentStep?: string;
  /** Step ids in definition order. */
  order: string[];
  steps: Record<string, StepState>;
  output?: unknown;
  error?: StepError & { step?: string };
}

/** One activity call the engine asks the port to make. */
export interface SkillCall {
  stepId: string;
  /** Stable path of the step within the run, the suffix of its idempotency key. */
  stepPath: string;
  skill: string;
  input: unknown;
  timeoutSeconds: number;
  retry: EffectiveRetry;
}

/** Thrown by a port when a call failed for good (retries exhausted or not retryable). */
export class StepCallError extends Error {
  override name = 'StepCallError';
  constructor(
    message: string,
    readonly type: string,
    readonly attempts?: number,
  ) {
    super(message);
  }
}

export interface InterpreterPort {
  runSkill(call: SkillCall): Promise<unknown>;
  /** True for the port's cancellation errors, which the engine must never swallow. */
  isCancellation(error: unknown): boolean;
  /** Called whenever the run state changes (e.g. to update current details). */
  onProgress?(state: RunState): void;
}

/** Thrown when the run fails; carries the state so callers can report every step. */
export class RunFailedError extends Error {
  override name = 'RunFailedError';
  constructor(
    message: string,
    readonly state: RunState,
  ) {
    super(message);
  }
}

export interface RunContext {
  input: unknown;
  context: { readonly: Record<string, unknown>; mutable: Record<string, unknown> };
  run: Record<string, unknown>;
}

export function initialRunState(plan: Plan): RunState {
  return {
    status: 'running',
    order: plan.steps.map((s) => s.id),
    steps: Object.fromEntries(plan.steps.map((s) => [s.id, { status: 'pending' } satisfies StepState])),
  };
}

function scopeOf(state: RunState, ctx: RunContext): EvaluationScope {
  return { input: ctx.input, context: ctx.context, run: ctx.run, steps: state.steps };
}

function toStepError(error: unknown): StepError {
  if (error instanceof StepCallError) {
    return error.attempts === undefined
      ? { message: error.message, type: error.type }
      : { message: error.message, type: error.type, attempts: error.attempts };
  }
  if (error instanceof ReferenceResolutionError) return { message: error.message, type: 'ReferenceError' };
  if (error instanceof Error) return { message: error.message, type: error.name };
  return { message: String(error), type: 'Error' };
}

async function runSkillStep(step: CompiledSkillStep, state: RunState, ctx: RunContext, port: InterpreterPort): Promise<unknown> {
  const input = resolveValue(step.inputs, scopeOf(state, ctx));
  const output = await port.runSkill({
    stepId: step.id,
    stepPath: step.id,
    skill: step.skill,
    input,
    timeoutSeconds: step.timeoutSeconds,
    retry: step.retry,
  });
  const missing = step.outputs.filter(
    (name) => output === null || typeof output !== 'object' || !Object.prototype.hasOwnProperty.call(output, name),
  );
  if (missing.length > 0) {
    throw new StepCallError(
      `skill "${step.skill}" returned no ${missing.map((m) => `"${m}"`).join(', ')}, which the step declares in "outputs"`,
      'MissingOutput',
    );
  }
  return output;
}

/**
 * Executes the plan step by step, updating `state` in place (the workflow exposes it through a
 * query). Resolves with the run's output; rejects with RunFailedError when a step fails under
 * the `halt` policy, or with the port's cancellation error when the run is cancelled.
 */
export async function executePlan(plan: Plan, ctx: RunContext, port: InterpreterPort, state: RunState): Promise<unknown> {
  /** Every way out of the run leaves no current step and reports the final state once. */
  const settle = (status: RunStatus) => {
    state.status = status;
    delete state.currentStep;
    port.onProgress?.(state);
  };
  let lastOutput: unknown = null;
  for (const step of plan.steps) {
    const stepState = state.steps[step.id] ?? { status: 'pending' };
    state.steps[step.id] = stepState;
    if (stepState.status === 'completed') {
      lastOutput = stepState.output;
      continue;
    }
    stepState.status = 'running';
    state.currentStep = step.id;
    port.onProgress?.(state);
    try {
      stepState.output = await runSkillStep(step, state, ctx, port);
      stepState.status = 'completed';
      lastOutput = stepState.output;
    } catch (error) {
      if (port.isCancellation(error)) {
        stepState.status = 'failed';
        stepState.error = { message: 'cancelled', type: 'Cancelled' };
        settle('cancelled');
        throw error;
      }
      stepState.status = 'failed';
      stepState.error = toStepError(error);
      if (step.onError === 'skip') {
        stepState.continued = true;
        continue;
      }
      state.error = { ...stepState.error, step: step.id };
      settle('failed');
      const attempts = stepState.error.attempts === undefined ? '' : ` after ${stepState.error.attempts} attempt(s)`;
      throw new RunFailedError(`step "${step.id}" failed${attempts}: ${stepState.error.message}`, state);
    }
  }
  let output = lastOutput;
  if (plan.output !== undefined) {
    try {
      output = resolveValue(plan.output, scopeOf(state, ctx));
    } catch (error) {
      state.error = toStepError(error);
      settle('failed');
      throw new RunFailedError(`the definition's "output" could not be built: ${state.error.message}`, state);
    }
  }
  state.output = output;
  settle('completed');
  return output;
}
