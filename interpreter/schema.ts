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

/** Hard cap on attempts for any step, whatever a definition asks for (invariant 3). */
export const MAX_ATTEMPTS_CAP = 10;
/** Longest timeout a step may ask for, in seconds. */
export const MAX_STEP_TIMEOUT_SECONDS = 24 * 3600;
/** Longest `wait` a step may ask for, in seconds. */
export const MAX_WAIT_SECONDS = 366 * 24 * 3600;
/** Structural limits checked at registration. */
export const LIMITS = {
  /** Steps in the whole definition, nested ones included. */
  maxSteps: 500,
  maxDefinitionBytes: 256 * 1024,
  maxInputBytes: 256 * 1024,
  /** How deeply composite steps may nest. */
  maxNestingDepth: 8,
  /** Bound for `loop.max_iterations`. */
  maxLoopIterations: 100_000,
  /** Most items a `for_each` accepts at run time. */
  maxForEachItems: 100_000,
  /** Branches of one `parallel` step. */
  maxParallelBranches: 50,
  /** Longest expression or template, in characters. */
  maxExpressionLength: 2000,
  /** Largest value a step may produce or a `set` may store, in bytes of JSON, checked at run time. */
  maxStepOutputBytes: 256 * 1024,
} as const;

export const STEP_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
export const VARIABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const stepId = z
  .string()
  .regex(STEP_ID_PATTERN, 'step ids start with a letter and hold only letters, digits, "-" and "_" (64 at most)');

const seconds = (max: number) => z.number().positive().max(max);

/** A condition such as `fetch-data.status == 200` or `counter < 5` (see the expression syntax). */
const expression = z.string().min(1).max(LIMITS.maxExpressionLength);

export const BACKOFFS = ['exponential', 'linear', 'fixed'] as const;

export const retrySchema = z.strictObject({
  max_attempts: z.number().int().min(1).max(MAX_ATTEMPTS_CAP).optional(),
  backoff: z.enum(BACKOFFS).optional(),
  initial_interval: seconds(3600).optional(),
  max_interval: seconds(24 * 3600).optional(),
  non_retryable_errors: z.array(z.string().min(1)).optional(),
});
export type RetrySpec = z.infer<typeof retrySchema>;

const inputs = z.record(z.string(), z.unknown());

/**
 * The recursive fields (`steps`, `then`, `compensate`, ...) refer back to the step union, so
 * their TypeScript types are declared here and the schemas are annotated with them; everything
 * else is inferred from zod.
 */
const stepArray = (min: number, message?: string) =>
  z
    .array(z.lazy((): z.ZodType<Step> => stepSchema))
    .min(min, message)
    .max(LIMITS.maxSteps);

/** Fields every step kind accepts. */
const common = {
  id: stepId,
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  /** Run the step only when this condition holds; otherwise it is `skipped`. */
  if: expression.optional(),
  /** Seconds: an activity's start-to-close timeout, or the deadline of any other step. */
  timeout: seconds(MAX_STEP_TIMEOUT_SECONDS).optional(),
  retry: retrySchema.optional(),
  /** Shorthand for a `skip` error policy: a failure is recorded and the run goes on. */
  continue_on_error: z.boolean().optional(),
};

interface Compensable {
  /** Steps that undo this one; they run, newest first, when the run rolls back. */
  compensate?: Step[] | undefined;
}
const compensable = { compensate: stepArray(1, '"compensate" needs at least one step').optional() };

/**
 * `async` is accepted for seed-002 compatibility. Every step still runs durably and completes
 * before the next starts; `parallel` and `for_each` overlap work.
 */
const asyncFlag = z.boolean().optional();

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

/**
 * A model call (seed 003's queue payload): `model` names a route or alias of the routing table;
 * the call runs on the lane's models queue and falls back along the route's chain.
 */
const modelOwn = z.strictObject({
  ...common,
  type: z.literal('model'),
  /** A route or alias, e.g. `local/qwen-14b`. */
  model: z.string().min(1).max(200),
  system_prompt: z.string().max(200_000).optional(),
  /** The prompt; templates such as `${steps.fetch.output.body}` are resolved at run time. */
  user_prompt: z.string().min(1).max(200_000),
  max_tokens: z.number().int().min(1).max(200_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** A JSON Schema the reply must satisfy; the output's `json` holds the parsed reply. */
  response_schema: z.record(z.string(), z.unknown()).optional(),
  /** Who asks (seed 003): logged with the call. */
  agent_id: z.string().min(1).max(200).optional(),
  calling_skill: z.string().min(1).max(200).optional(),
  /** The call's priority; the definition's `priority` by default. */
  priority: z.enum(['urgent', 'high', 'normal', 'low']).optional(),
  /** An opaque label echoed in the output and logs (seed 003 `callback`). */
  callback: z.string().max(2000).optional(),
  outputs: z.array(z.string().min(1)).optional(),
});
export type ModelStep = z.infer<typeof modelOwn> & Compensable;
export const modelStepSchema = modelOwn.extend(compensable);

const parallelOwn = z.strictObject({
  ...common,
  type: z.literal('parallel'),
  /** `all` (default), `any` (the first branch to complete), or how many branches must complete. */
  wait_for: z.union([z.enum(['all', 'any']), z.number().int().min(1)]).optional(),
  max_concurrency: z.number().int().min(1).max(LIMITS.maxParallelBranches).optional(),
});
export type ParallelStep = z.infer<typeof parallelOwn> & Compensable & { steps: Step[] };
export const parallelStepSchema = parallelOwn.extend({
  ...compensable,
  /** Each entry is one branch; a branch may itself be a composite step. */
  steps: stepArray(1, 'a parallel step needs at least one branch').max(LIMITS.maxParallelBranches),
});

const forEachOwn = z.strictObject({
  ...common,
  type: z.literal('for_each'),
  /** The list to map over: a template such as `${input.orders}` or a literal array. */
  items: z.union([z.string().min(1).max(LIMITS.maxExpressionLength), z.array(z.unknown())]),
  /** Iterations in flight at once (default 1: one after another). */
  max_concurrency: z.number().int().min(1).max(100).optional(),
});
export type ForEachStep = z.infer<typeof forEachOwn> & Compensable & { steps: Step[] };
export const forEachStepSchema = forEachOwn.extend({
  ...compensable,
  /** Steps run once per item, with `item` and `index` bound. */
  steps: stepArray(1, 'a for_each step needs at least one step'),
});

const loopOwn = z.strictObject({
  ...common,
  type: z.literal('loop'),
  /** Checked before every iteration; the loop ends when it is false. */
  condition: expression,
  /** Mandatory bound: reaching it while the condition still holds fails the step. */
  max_iterations: z
    .number({ error: (issue) => (issue.input === undefined ? 'a loop needs "max_iterations" (every loop is bounded)' : undefined) })
    .int()
    .min(1)
    .max(LIMITS.maxLoopIterations),
});
export type LoopStep = z.infer<typeof loopOwn> & Compensable & { steps: Step[] };
export const loopStepSchema = loopOwn.extend({ ...compensable, steps: stepArray(1, 'a loop step needs at least one step') });

const conditionalOwn = z.strictObject({ ...common, type: z.literal('conditional'), condition: expression });
export type ConditionalStep = z.infer<typeof conditionalOwn> & Compensable & { then: Step[]; else?: Step[] | undefined };
export const conditionalStepSchema = conditionalOwn.extend({
  ...compensable,
  then: stepArray(1, '"then" needs at least one step'),
  else: stepArray(1, '"else" needs at least one step').optional(),
});

export interface SwitchCase {
  /** A condition; the first case whose condition holds runs. */
  when?: string | undefined;
  /** Or: a value compared with the switch's `value`. */
  equals?: unknown;
  steps: Step[];
}
export const switchCaseSchema = z
  .strictObject({
    when: expression.optional(),
    equals: z.unknown().optional(),
    steps: stepArray(1, 'a case needs at least one step'),
  })
  .refine((c) => (c.when === undefined) !== (c.equals === undefined), {
    message: 'a case has exactly one of "when" or "equals"',
  });

const switchOwn = z.strictObject({
  ...common,
  type: z.literal('switch'),
  /** The value `equals` cases compare against (an expression). */
  value: expression.optional(),
});
export type SwitchStep = z.infer<typeof switchOwn> & Compensable & { cases: SwitchCase[]; default?: Step[] | undefined };
export const switchStepSchema = switchOwn
  .extend({
    ...compensable,
    cases: z.array(switchCaseSchema).min(1, 'a switch needs at least one case').max(100),
    default: stepArray(1, '"default" needs at least one step').optional(),
  })
  .refine((s) => s.value !== undefined || s.cases.every((c) => c.equals === undefined), {
    message: '"equals" cases need the switch\'s "value"',
    path: ['value'],
  });

/** A duration: seconds as a number, or text such as `90s`, `5m`, `1h30m`, `2d`. */
export const durationSchema = z.union([
  z.number().positive().max(MAX_WAIT_SECONDS),
  z.string().regex(/^(\d+(\.\d+)?(ms|s|m|h|d)\s*)+$/, 'durations are seconds or text such as "90s", "5m", "1h30m", "2d"'),
]);

/** A whole template, `${...}`: the value is computed when the step runs. */
const wholeTemplate = z.string().max(LIMITS.maxExpressionLength).regex(/^\$\{[\s\S]+\}$/);

const waitOwn = z.strictObject({
  ...common,
  type: z.literal('wait'),
  /**
   * Seconds, duration text, or a template (`${input.delay}`) that yields seconds, duration text or
   * an ISO-8601 duration (`PT1M30S`), computed when the step starts.
   */
  duration: z.union([durationSchema, wholeTemplate]).optional(),
  /** An ISO-8601 timestamp, or a template that yields one. */
  until: z.string().min(1).max(LIMITS.maxExpressionLength).optional(),
});
export type WaitStep = z.infer<typeof waitOwn> & Compensable;
export const waitStepSchema = waitOwn.extend(compensable).refine((s) => (s.duration === undefined) !== (s.until === undefined), {
  message: 'a wait step has exactly one of "duration" or "until"',
});

const waitForEventOwn = z.strictObject({
  ...common,
  type: z.literal('wait_for_event'),
  /** The signal name the run waits for (from the API, the Temporal UI or the CLI). */
  event: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/, 'event names are letters, digits and . _ : / -'),
  /** Only events for which this condition holds (with `event` bound) end the wait. */
  filter: expression.optional(),
  /** What a `timeout` leads to: `fail` (default) or `continue` with a null output. */
  on_timeout: z.enum(['fail', 'continue']).optional(),
});
export type WaitForEventStep = z.infer<typeof waitForEventOwn> & Compensable;
export const waitForEventStepSchema = waitForEventOwn.extend(compensable);

const setOwn = z.strictObject({
  ...common,
  type: z.literal('set'),
  /** Variable (context.mutable) names to values, literals or templates. */
  values: z.record(z.string().regex(VARIABLE_PATTERN, 'variable names are letters, digits and "_"'), z.unknown()),
});
export type SetStep = z.infer<typeof setOwn> & Compensable;
export const setStepSchema = setOwn.extend(compensable);

const subWorkflowOwn = z.strictObject({
  ...common,
  type: z.literal('sub_workflow'),
  /** Name of another registered definition of the same tenant. */
  definition: z.string().min(1).max(100),
  /** The exact version the child runs: pinned, never "latest". */
  version: z
    .string()
    .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/, 'pin a semantic version such as "1.0.0"'),
  /** The child run's input (templates allowed). */
  inputs: z.unknown().optional(),
});
export type SubWorkflowStep = z.infer<typeof subWorkflowOwn> & Compensable;
export const subWorkflowStepSchema = subWorkflowOwn.extend(compensable);

const failOwn = z.strictObject({
  ...common,
  type: z.literal('fail'),
  /** The failure message (templates allowed). */
  error: z.string().min(1).max(2000),
  /** The error's type, or a template that yields one (`${error.type}` re-raises a caught error). */
  error_type: z.union([z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/), wholeTemplate]).optional(),
});
export type FailStep = z.infer<typeof failOwn> & Compensable;
export const failStepSchema = failOwn.extend(compensable);

const succeedOwn = z.strictObject({
  ...common,
  type: z.literal('succeed'),
  /** The run's output (templates allowed); defaults to the definition's `output`, else null. */
  output: z.unknown().optional(),
});
export type SucceedStep = z.infer<typeof succeedOwn> & Compensable;

/** Who may decide: principals and/or groups from the API's key configuration. */
export const approverSetSchema = z
  .strictObject({
    principals: z.array(z.string().min(1).max(200)).max(100).optional(),
    groups: z.array(z.string().min(1).max(200)).max(50).optional(),
  })
  .refine((a) => (a.principals?.length ?? 0) + (a.groups?.length ?? 0) > 0, { message: 'name at least one principal or group' });
export type ApproverSet = z.infer<typeof approverSetSchema>;

const approvalOwn = z.strictObject({
  ...common,
  type: z.literal('approval'),
  approvers: approverSetSchema,
  /** How many distinct approvers must approve (default 1). */
  quorum: z.number().int().min(1).max(100).optional(),
  /** Whether the principal who started the run may approve it (default false). */
  allow_self_approval: z.boolean().optional(),
  /** Shown to approvers; templates allowed. */
  summary: z.string().min(1).max(2000).optional(),
  /** What the step's `timeout` leads to (default `fail`). */
  on_timeout: z.enum(['reject', 'approve', 'fail', 'escalate']).optional(),
  /** With `on_timeout: "escalate"`: the next approver set and its own timeout. */
  escalation: z
    .strictObject({
      approvers: approverSetSchema,
      quorum: z.number().int().min(1).max(100).optional(),
      timeout: seconds(MAX_WAIT_SECONDS),
      on_timeout: z.enum(['reject', 'approve', 'fail']).optional(),
    })
    .optional(),
  /** `fail` (default) fails the run on a rejection; `continue` lets a later step branch on the decision. */
  on_reject: z.enum(['fail', 'continue']).optional(),
});
export type ApprovalStep = z.infer<typeof approvalOwn> & Compensable;
export const approvalStepSchema = approvalOwn
  .extend(compensable)
  .refine((s) => (s.on_timeout === 'escalate') === (s.escalation !== undefined), {
    message: '"escalation" goes with "on_timeout": "escalate", and needs it',
    path: ['escalation'],
  })
  .refine((s) => s.on_timeout === undefined || s.timeout !== undefined, { message: '"on_timeout" needs a "timeout"', path: ['on_timeout'] });
export const succeedStepSchema = succeedOwn.extend(compensable);

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

export const STEP_TYPES = [
  'skill',
  'integration',
  'directive',
  'agent',
  'model',
  'parallel',
  'for_each',
  'loop',
  'conditional',
  'switch',
  'wait',
  'wait_for_event',
  'set',
  'sub_workflow',
  'fail',
  'succeed',
  'approval',
] as const;

export type StepType = (typeof STEP_TYPES)[number];

export const stepSchema: z.ZodType<Step> = z.discriminatedUnion(
  'type',
  [
    skillStepSchema,
    integrationStepSchema,
    directiveStepSchema,
    agentStepSchema,
    modelStepSchema,
    parallelStepSchema,
    forEachStepSchema,
    loopStepSchema,
    conditionalStepSchema,
    switchStepSchema,
    waitStepSchema,
    waitForEventStepSchema,
    setStepSchema,
    subWorkflowStepSchema,
    failStepSchema,
    succeedStepSchema,
    approvalStepSchema,
  ],
  {
    error: (issue) => {
      if (issue.code !== 'invalid_union') return undefined;
      const type: unknown = (issue.input as { type?: unknown } | undefined)?.type;
      if (typeof type === 'string' && type in RESERVED_STEP_TYPES) {
        return `"${type}" is reserved: ${RESERVED_STEP_TYPES[type]}`;
      }
      return `unknown step type${typeof type === 'string' ? ` "${type}"` : ''}; step types: ${STEP_TYPES.join(', ')}`;
    },
  },
);

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
  /** Advisory: accepted for seed-002 compatibility, not enforced (activities share worker processes). */
  max_memory_mb: z.number().int().positive().optional(),
  /** Advisory: accepted for seed-002 compatibility, not enforced. */
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
