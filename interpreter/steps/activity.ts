import { z } from 'zod';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import { StepCallError, type ActivityCall } from '../port.ts';
import type { ActivityFamily, StepBase } from '../plan.ts';
import type { CompileContext, StepExecutor, StepKind } from './kind.ts';
import { asyncFlag, common, compensable, inputs, MAX_STEP_TIMEOUT_SECONDS, seconds, type Compensable } from './parts.ts';

/** The activity calls: `skill`, `integration`, `directive` (seed 004) and `agent`; `model` is in model.ts. */

export interface CompiledActivityStep extends StepBase {
  kind: 'activity';
  family: ActivityFamily;
  /** The activity's name: the skill, integration or agent. */
  name: string;
  /** The step type as written (`skill`, `integration`, `directive`, `agent`). */
  type: string;
  inputs: CompiledValue;
  /** Seed 004 `input: {"from_signal": true}`: the step's input is the triggering event. */
  fromSignal: boolean;
  outputs: string[];
  guardrails?: Record<string, unknown>;
  /** What the step (and its per-step policy) left unset: the skill's registered defaults apply there. */
  defaulted: { timeout: boolean; retry: boolean };
}

const skillOwn = z.strictObject({
  ...common,
  type: z.literal('skill'),
  skill: z.string().min(1).max(100),
  inputs: inputs.optional(),
  outputs: z.array(z.string().min(1)).optional(),
  async: asyncFlag,
});
export type SkillStep = z.infer<typeof skillOwn> & Compensable;
export const skillStepSchema = skillOwn.extend(compensable);

/** An external integration, called through its dedicated module on the lane's integrations queue. */
const integrationOwn = z.strictObject({
  ...common,
  type: z.literal('integration'),
  integration: z.string().min(1).max(100),
  inputs: inputs.optional(),
  outputs: z.array(z.string().min(1)).optional(),
});
export type IntegrationStep = z.infer<typeof integrationOwn> & Compensable;
export const integrationStepSchema = integrationOwn.extend(compensable);

/** Seed 004's name for an integration call: `directive` plus a `payload`. */
const directiveOwn = z.strictObject({
  ...common,
  type: z.literal('directive'),
  directive: z.string().min(1).max(100),
  payload: inputs.optional(),
  outputs: z.array(z.string().min(1)).optional(),
});
export type DirectiveStep = z.infer<typeof directiveOwn> & Compensable;
export const directiveStepSchema = directiveOwn.extend(compensable);

export const guardrailsSchema = z.strictObject({
  max_iterations: z.number().int().min(1).max(1000).optional(),
  allowed_tools: z.array(z.string().min(1)).optional(),
  max_tokens: z.number().int().positive().optional(),
  timeout: seconds(MAX_STEP_TIMEOUT_SECONDS).optional(),
});

/** An agent invocation (seed 002 `agent`, seed 004 `agent_ref.slug`). */
const agentOwn = z.strictObject({
  ...common,
  type: z.literal('agent'),
  agent: z.string().min(1).max(100).optional(),
  agent_ref: z.strictObject({ slug: z.string().min(1).max(100) }).optional(),
  inputs: inputs.optional(),
  /** Seed 004 spelling of `inputs`; `{"from_signal": true}` passes the triggering event. */
  input: inputs.optional(),
  outputs: z.array(z.string().min(1)).optional(),
  async: asyncFlag,
  guardrails: guardrailsSchema.optional(),
});
export type AgentStep = z.infer<typeof agentOwn> & Compensable;
export const agentStepSchema = agentOwn
  .extend(compensable)
  .refine((s) => (s.agent === undefined) !== (s.agent_ref === undefined), {
    message: 'name the agent with exactly one of "agent" or "agent_ref"',
    path: ['agent'],
  })
  .refine((s) => s.inputs === undefined || s.input === undefined, {
    message: 'use "inputs" or "input", not both',
    path: ['input'],
  });

/** Calls the activity on the lane's queue of its family, under `max_concurrent_steps`. */
export const activityExecutor: StepExecutor<CompiledActivityStep> = {
  reportsSettle: true,
  ownsTimeout: true,
  // Activities retry inside Temporal's retry policy (no extra history), except `linear` backoff.
  retriesItself: (step) => !step.retry.linear,
  typeOf: (step) => step.type,
  async execute(step, { frame, runner }) {
    const input = step.fromSignal ? runner.ctx.signal : resolveValue(step.inputs, runner.data(frame));
    const call: ActivityCall = {
      family: step.family,
      name: step.name,
      type: step.type,
      stepId: step.id,
      stepPath: frame.path + step.id,
      input,
      timeoutSeconds: step.timeoutSeconds ?? 30,
      retry: step.retry.linear ? { ...step.retry, maxAttempts: 1 } : step.retry,
    };
    if (step.guardrails) call.guardrails = step.guardrails;
    if (step.defaulted.timeout || step.defaulted.retry) call.defaulted = step.defaulted;
    const output = await runner.waited(runner.limited(() => runner.port.runActivity(call)));
    const missing = step.outputs.filter(
      (name) => output === null || typeof output !== 'object' || !Object.prototype.hasOwnProperty.call(output, name),
    );
    if (missing.length > 0) {
      throw new StepCallError(
        `${step.type} "${step.name}" returned no ${missing.map((m) => `"${m}"`).join(', ')}, which the step declares in "outputs"`,
        'MissingOutput',
      );
    }
    return output;
  },
};

type CallStep = SkillStep | IntegrationStep | DirectiveStep | AgentStep;

const FAMILY: Record<CallStep['type'], Exclude<ActivityFamily, 'models'>> = { skill: 'skills', integration: 'integrations', directive: 'integrations', agent: 'agents' };

function calleeOf(step: CallStep): string {
  if (step.type === 'skill') return step.skill;
  if (step.type === 'integration') return step.integration;
  if (step.type === 'directive') return step.directive;
  return step.agent ?? step.agent_ref?.slug ?? '';
}

function compileCall(step: CallStep, base: StepBase, cx: CompileContext): CompiledActivityStep {
  const family = FAMILY[step.type];
  const name = calleeOf(step);
  const rawInputs = step.type === 'directive' ? step.payload : step.type === 'agent' ? (step.inputs ?? step.input) : step.inputs;
  const inputField = step.type === 'directive' ? 'payload' : step.type === 'agent' && step.input ? 'input' : 'inputs';
  const fromSignal = rawInputs !== undefined && Object.keys(rawInputs).length === 1 && (rawInputs as { from_signal?: unknown }).from_signal === true;
  const compiled: CompiledActivityStep = {
    ...base,
    kind: 'activity',
    family,
    name,
    type: step.type,
    inputs: fromSignal ? { kind: 'literal', value: null } : compileValue(rawInputs ?? {}, cx.scope, `${cx.pointer}/${inputField}`, cx.problems),
    fromSignal,
    outputs: step.outputs ?? [],
    ...(step.type === 'agent' && step.guardrails ? { guardrails: step.guardrails as Record<string, unknown> } : {}),
    defaulted: cx.defaulted,
  };
  if (cx.catalog) {
    const known = cx.catalog[family];
    const field = step.type === 'agent' ? (step.agent_ref ? 'agent_ref/slug' : 'agent') : step.type;
    if (!known.has(name)) {
      const kind = family === 'skills' ? 'skill' : family === 'agents' ? 'agent' : 'integration';
      cx.problems.push({
        pointer: `${cx.pointer}/${field}`,
        message: `unknown ${kind} "${name}"; available: ${[...known].sort().join(', ') || '(none)'}`,
      });
    }
  }
  return compiled;
}

const callKind = <S extends CallStep>(type: S['type'], schema: z.ZodType, doc: string): StepKind<S, CompiledActivityStep> => ({
  type,
  kind: 'activity',
  schema,
  doc,
  activity: true,
  outputContract: (step, outputs) => outputs.get(`${FAMILY[step.type]}:${calleeOf(step)}`),
  compile: compileCall,
  executor: activityExecutor,
});

export const skillKind = callKind<SkillStep>(
  'skill',
  skillStepSchema,
  'Calls a registered skill on the lane\'s skills queue with `inputs` (templates allowed); its result is the step\'s output.',
);
export const integrationKind = callKind<IntegrationStep>(
  'integration',
  integrationStepSchema,
  'Calls an external integration through its module on the lane\'s integrations queue with `inputs`.',
);
export const directiveKind = callKind<DirectiveStep>(
  'directive',
  directiveStepSchema,
  'Seed 004\'s spelling of an integration call: `directive` names the integration, `payload` is its input.',
);
export const agentKind = callKind<AgentStep>(
  'agent',
  agentStepSchema,
  'Runs a registered agent (`agent`, or seed 004 `agent_ref.slug`) on the lane\'s agents queue, bounded by `guardrails`.',
);
