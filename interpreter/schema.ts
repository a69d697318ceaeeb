import { z } from 'zod';

/**
 * The definition language, v1: the one source for TypeScript types, registration-time validation,
 * the published JSON Schema and the OpenAPI spec. The shape follows the user's own format (seed
 * 002): `name`, `version`, `description`, `triggers`, `context`, `steps`, `error_handling`,
 * `resource_limits`, plus `lane`, `priority`, `output` and the operator-doc index fields. Seed
 * 004's `trigger: {signal}`, `directive` steps with a `payload`, and `agent_ref` are accepted as
 * written.
 *
 * Objects are strict: an unknown key (a typo such as `skil`) is an error with its JSON path,
 * never silently ignored.
 */

import { BUILT_IN_STEP_KINDS, type BuiltInStepKind } from './steps/registry.ts';
import type { AgentStep, DirectiveStep, IntegrationStep, SkillStep } from './steps/activity.ts';
import type { ApprovalStep } from './steps/approval.ts';
import type { BlockStep } from './steps/block.ts';
import type { ConditionalStep } from './steps/conditional.ts';
import type { FailStep } from './steps/fail.ts';
import type { ForEachStep } from './steps/for-each.ts';
import type { LoopStep } from './steps/loop.ts';
import type { ModelStep } from './steps/model.ts';
import type { ParallelStep } from './steps/parallel.ts';
import type { SetStep } from './steps/set.ts';
import type { SubWorkflowStep } from './steps/sub-workflow.ts';
import type { SucceedStep } from './steps/succeed.ts';
import type { SwitchStep } from './steps/switch.ts';
import type { WaitForEventStep } from './steps/wait-for-event.ts';
import type { WaitStep } from './steps/wait.ts';
import { BACKOFFS, bindStepSchema, expression, LIMITS, MAX_ATTEMPTS_CAP, seconds, STEP_ID_PATTERN, stepArray, VARIABLE_PATTERN } from './steps/parts.ts';

export {
  BACKOFFS,
  durationSchema,
  LIMITS,
  MAX_ATTEMPTS_CAP,
  MAX_STEP_TIMEOUT_SECONDS,
  MAX_WAIT_SECONDS,
  retrySchema,
  STEP_ID_PATTERN,
  VARIABLE_PATTERN,
  type RetrySpec,
} from './steps/parts.ts';
export { guardrailsSchema, type AgentStep, type DirectiveStep, type IntegrationStep, type SkillStep } from './steps/activity.ts';
export { approverSetSchema, type ApprovalStep, type ApproverSet } from './steps/approval.ts';
export type { BlockStep } from './steps/block.ts';
export type { ConditionalStep } from './steps/conditional.ts';
export type { FailStep } from './steps/fail.ts';
export type { ForEachStep } from './steps/for-each.ts';
export type { LoopStep } from './steps/loop.ts';
export type { ModelStep } from './steps/model.ts';
export type { ParallelStep } from './steps/parallel.ts';
export type { SetStep } from './steps/set.ts';
export type { SubWorkflowStep } from './steps/sub-workflow.ts';
export type { SucceedStep } from './steps/succeed.ts';
export type { SwitchCase, SwitchStep } from './steps/switch.ts';
export type { WaitForEventStep } from './steps/wait-for-event.ts';
export type { WaitStep } from './steps/wait.ts';

/**
 * Any step of the language: the written steps of the kinds in interpreter/steps/registry.ts.
 * (Spelled out: TypeScript cannot derive a recursive union from the registry's value.)
 */
export type Step =
  | SkillStep
  | IntegrationStep
  | DirectiveStep
  | AgentStep
  | ModelStep
  | ParallelStep
  | ForEachStep
  | LoopStep
  | ConditionalStep
  | BlockStep
  | SwitchStep
  | WaitStep
  | WaitForEventStep
  | SetStep
  | SubWorkflowStep
  | FailStep
  | SucceedStep
  | ApprovalStep;

/** Step kinds the schema names but that arrive with their own features. */
export const RESERVED_STEP_TYPES: Readonly<Record<string, string>> = {};

export type StepType = BuiltInStepKind['type'];

export const STEP_TYPES: readonly StepType[] = BUILT_IN_STEP_KINDS.map((kind) => kind.type);

type StepUnionOptions = Parameters<typeof z.discriminatedUnion>[1];

/** The union of these kinds' schemas, discriminated by `type`, with the language's error message. */
export function stepUnionOf(kinds: ReadonlyArray<{ type: string; schema: z.ZodType }>): z.ZodType {
  const types = kinds.map((kind) => kind.type);
  return z.discriminatedUnion('type', kinds.map((kind) => kind.schema) as unknown as StepUnionOptions, {
    error: (issue) => {
      if (issue.code !== 'invalid_union') return undefined;
      const type: unknown = (issue.input as { type?: unknown } | undefined)?.type;
      if (typeof type === 'string' && type in RESERVED_STEP_TYPES) {
        return `"${type}" is reserved: ${RESERVED_STEP_TYPES[type]}`;
      }
      return `unknown step type${typeof type === 'string' ? ` "${type}"` : ''}; step types: ${types.join(', ')}`;
    },
  });
}

export const stepSchema = stepUnionOf(BUILT_IN_STEP_KINDS) as z.ZodType<Step>;
bindStepSchema(stepSchema);

// Named, so generated JSON Schemas refer to it as `#/$defs/Step` (it is recursive).
z.globalRegistry.add(stepSchema, { id: 'Step', title: 'Step', description: 'One step of a workflow definition; "type" selects the kind.' });

export const triggerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('manual'), description: z.string().optional() }),
  z
    .strictObject({
      type: z.literal('schedule'),
      /** Standard 5-field cron (`0 9 * * *`), evaluated in `timezone`. */
      cron: z
        .string()
        .regex(/^\s*\S+(\s+\S+){4}\s*$/, 'cron expressions have 5 fields: minute hour day-of-month month day-of-week')
        .optional(),
      /** Seconds between runs, instead of a cron expression. */
      interval: z.number().int().positive().optional(),
      timezone: z.string().optional(),
      description: z.string().optional(),
      /** What happens when a run is due while the previous one still runs (default `skip`). */
      overlap: z.enum(['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all']).optional(),
      /** How late (seconds) a missed run may still start, e.g. after an outage (default 60). */
      catchup_window: z.number().int().positive().max(366 * 24 * 3600).optional(),
      /** Random delay (seconds) added to each run, to spread load. */
      jitter: z.number().int().min(0).max(24 * 3600).optional(),
      /** Pause the schedule when a run fails. */
      pause_on_failure: z.boolean().optional(),
      /** The input each scheduled run receives. */
      input: z.unknown().optional(),
    })
    .refine((t) => (t.cron === undefined) !== (t.interval === undefined), {
      message: 'a schedule trigger has exactly one of "cron" or "interval"',
    }),
  z.strictObject({
    type: z.literal('event'),
    /** The event type that starts a run, e.g. `forum.thread.created`. */
    event: z.string().min(1).max(200),
    filter: expression.optional(),
    description: z.string().optional(),
  }),
]);

export const ERROR_STRATEGIES = ['halt', 'skip', 'retry', 'rollback', 'custom'] as const;
export const errorStrategySchema = z.enum(ERROR_STRATEGIES);
export type ErrorStrategy = z.infer<typeof errorStrategySchema>;

export const stepErrorPolicySchema = z.strictObject({
  strategy: errorStrategySchema,
  max_attempts: z.number().int().min(1).max(MAX_ATTEMPTS_CAP).optional(),
  backoff: z.enum(BACKOFFS).optional(),
  initial_interval: seconds(3600).optional(),
  max_interval: seconds(24 * 3600).optional(),
  non_retryable_errors: z.array(z.string().min(1)).optional(),
  continue_on_error: z.boolean().optional(),
  /** For `custom`: steps that run with `error` bound; their last output stands in for the step's. */
  handler: stepArray(1, 'a custom handler needs at least one step').optional(),
});
export type StepErrorPolicy = z.infer<typeof stepErrorPolicySchema>;

export const errorHandlingSchema = z.strictObject({
  default: errorStrategySchema.optional(),
  per_step: z.record(z.string(), stepErrorPolicySchema).optional(),
  /** Saga rollback: compensations of completed steps run newest first, then these steps. */
  rollback: z
    .strictObject({
      enabled: z.boolean().optional(),
      /** Steps, or skill names (`"cleanup"` calls the `cleanup` skill), run after the compensations. */
      steps: z
        .array(z.union([z.string().min(1).max(100), z.lazy((): z.ZodType<Step> => stepSchema)]))
        .max(LIMITS.maxSteps)
        .optional(),
    })
    .optional(),
  /** The handler for `default: "custom"`. */
  handler: stepArray(1, 'a custom handler needs at least one step').optional(),
});
export type ErrorHandling = z.infer<typeof errorHandlingSchema>;

export const resourceLimitsSchema = z.strictObject({
  /** The heap of each code skill's sandbox (code_inline, code_session); advisory for other steps. */
  max_memory_mb: z.number().int().positive().optional(),
  /** A code skill's CPU budget is its step timeout × this / 100; advisory for other steps. */
  max_cpu_percent: z.number().positive().max(100).optional(),
  /** Becomes the run's Temporal execution timeout, in seconds. */
  max_execution_time: z.number().int().positive().max(365 * 24 * 3600).optional(),
  /** Caps how many activity steps (skills, integrations, agents, sub-workflows) run at once. */
  max_concurrent_steps: z.number().int().positive().max(500).optional(),
});

/** A JSON Pointer (RFC 6901) into a run's input or a step's output; `""` is the whole value. */
const jsonPointer = z
  .string()
  .max(500)
  .regex(/^(?:\/(?:[^~/]|~[01])*)*$/, 'a JSON Pointer such as "/customer/ssn" ("" for the whole value; "~" is written "~0", "/" inside a key "~1")');

/**
 * What a run carries that only `sensitive-reader` callers may see (docs/sensitive-data.md): JSON
 * Pointers into the run's input, and into the output of the steps named. Masked on every read
 * path; validation refuses a summary or failure message that would copy one in the clear.
 */
export const sensitiveSchema = z.strictObject({
  input: z.array(jsonPointer).max(100).optional(),
  steps: z.record(z.string().regex(STEP_ID_PATTERN, 'a step id'), z.array(jsonPointer).min(1).max(100)).optional(),
});
export type SensitiveSpec = z.infer<typeof sensitiveSchema>;

export const PRIORITIES = ['urgent', 'high', 'normal', 'low'] as const;

export const definitionSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/, 'names are 1-100 letters, digits, spaces, ".", "_" or "-"'),
  version: z
    .string()
    .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/, 'versions are semantic versions such as "1.0.0"'),
  description: z.string().max(5000).optional(),
  lane: z.string().optional(),
  priority: z.enum(PRIORITIES).optional(),
  owner: z.string().optional(),
  risk_level: z.enum(['low', 'medium', 'high']).optional(),
  systems: z.array(z.string()).optional(),
  triggers: z.array(triggerSchema).optional(),
  /** Seed 004: the event that starts this workflow. */
  trigger: z.strictObject({ signal: z.string().min(1).max(200), filter: expression.optional() }).optional(),
  context: z
    .strictObject({
      readonly: z.record(z.string(), z.unknown()).optional(),
      mutable: z.record(z.string().regex(VARIABLE_PATTERN, 'variable names are letters, digits and "_"'), z.unknown()).optional(),
    })
    .optional(),
  steps: z.array(stepSchema).min(1, 'a definition needs at least one step').max(LIMITS.maxSteps),
  output: z.record(z.string(), z.unknown()).optional(),
  error_handling: errorHandlingSchema.optional(),
  resource_limits: resourceLimitsSchema.optional(),
  sensitive: sensitiveSchema.optional(),
});

export type Definition = z.infer<typeof definitionSchema>;

/**
 * Seed 004 wraps a definition in `{"workflow": {...}}`; both spellings are accepted and the
 * unwrapped form is what gets stored and run.
 */
export function unwrapDefinition(raw: unknown): unknown {
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const keys = Object.keys(raw);
    if (keys.length === 1 && keys[0] === 'workflow') return (raw as { workflow: unknown }).workflow;
  }
  return raw;
}
