import {
  compileValue,
  pointerSegment,
  type CompileProblem,
  type CompiledValue,
} from './references.ts';
import { MAX_ATTEMPTS_CAP, type Definition, type SkillStep, type StepErrorPolicy } from './schema.ts';

/** Defaults for every activity step that does not say otherwise (invariant 3: all bounded). */
export const STEP_DEFAULTS = {
  timeoutSeconds: 30,
  maxAttempts: 3,
  initialIntervalSeconds: 1,
  maxIntervalSeconds: 30,
  backoffCoefficient: 2,
} as const;

/** The retry policy an activity step runs with, after defaults and the hard cap. */
export interface EffectiveRetry {
  maxAttempts: number;
  initialIntervalSeconds: number;
  maxIntervalSeconds: number;
  backoffCoefficient: number;
  nonRetryableErrorTypes: string[];
}

/** What happens after a step's last attempt fails. */
export type OnError = 'halt' | 'skip';

export interface CompiledSkillStep {
  kind: 'skill';
  id: string;
  /** JSON Pointer of the step in the definition, e.g. `/steps/2`. */
  pointer: string;
  skill: string;
  inputs: CompiledValue;
  outputs: string[];
  timeoutSeconds: number;
  retry: EffectiveRetry;
  onError: OnError;
}

export type CompiledStep = CompiledSkillStep;

export interface Plan {
  steps: CompiledStep[];
  output?: CompiledValue;
}

function effectiveRetry(step: SkillStep, policy: StepErrorPolicy | undefined): EffectiveRetry {
  // A per-step policy's attempts and backoff describe the retries before its final action, whatever
  // that action is; the step's own `retry` block wins over both.
  const maxAttempts = step.retry?.max_attempts ?? policy?.max_attempts ?? STEP_DEFAULTS.maxAttempts;
  const backoff = step.retry?.backoff ?? policy?.backoff ?? 'exponential';
  return {
    maxAttempts: Math.min(maxAttempts, MAX_ATTEMPTS_CAP),
    initialIntervalSeconds: step.retry?.initial_interval ?? STEP_DEFAULTS.initialIntervalSeconds,
    maxIntervalSeconds: step.retry?.max_interval ?? STEP_DEFAULTS.maxIntervalSeconds,
    backoffCoefficient: backoff === 'fixed' ? 1 : STEP_DEFAULTS.backoffCoefficient,
    nonRetryableErrorTypes: step.retry?.non_retryable_errors ?? [],
  };
}

/**
 * The action after the last attempt: `skip` (or `continue_on_error`) continues, `halt` stops the
 * run, and `retry` — which only says how to retry — falls back to the definition's default.
 */
function onError(policy: StepErrorPolicy | undefined, defaultStrategy: string): OnError {
  if (policy?.continue_on_error || policy?.strategy === 'skip') return 'skip';
  if (policy?.strategy === 'halt') return 'halt';
  return defaultStrategy === 'skip' ? 'skip' : 'halt';
}

/**
 * Turns a schema-valid definition into the plan the engine executes: references parsed and
 * checked against the steps that run earlier, retry and error policies resolved. Pure and
 * deterministic: the API runs it to validate, the workflow runs it again on the pinned copy.
 */
export function compileDefinition(definition: Definition): { plan: Plan; problems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const allSteps = new Set(definition.steps.map((s) => s.id));
  const earlier = new Set<string>();
  const defaultStrategy = definition.error_handling?.default ?? 'halt';
  const perStep = definition.error_handling?.per_step ?? {};

  const steps: CompiledStep[] = definition.steps.map((step, index) => {
    const pointer = `/steps/${index}`;
    const scope = { earlierSteps: new Set(earlier), allSteps };
    const inputs = compileValue(step.inputs ?? {}, scope, `${pointer}/inputs`, problems);
    earlier.add(step.id);
    const policy = perStep[step.id];
    return {
      kind: 'skill',
      id: step.id,
      pointer,
      skill: step.skill,
      inputs,
      outputs: step.outputs ?? [],
      timeoutSeconds: step.timeout ?? STEP_DEFAULTS.timeoutSeconds,
      retry: effectiveRetry(step, policy),
      onError: onError(policy, defaultStrategy),
    };
  });

  for (const id of Object.keys(perStep)) {
    if (!allSteps.has(id)) {
      problems.push({
        pointer: `/error_handling/per_step/${pointerSegment(id)}`,
        message: `no step has the id "${id}"`,
      });
    }
  }

  const output =
    definition.output === undefined
      ? undefined
      : compileValue(definition.output, { earlierSteps: earlier, allSteps }, '/output', problems);
  return { plan: output === undefined ? { steps } : { steps, output }, problems };
}
