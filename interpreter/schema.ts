import { z } from 'zod';

/**
 * The definition language, v1: the one source for TypeScript types, registration-time validation,
 * the published JSON Schema and the OpenAPI spec. The shape follows the user's own format (seed
 * 002): `name`, `version`, `description`, `triggers`, `context`, `steps`, `error_handling`,
 * `resource_limits`, plus `lane`, `priority`, `output` and the operator-doc index fields.
 *
 * Objects are strict: an unknown key (a typo such as `skil`) is an error with its JSON path,
 * never silently ignored.
 */

/** Hard cap on attempts for any activity, whatever a definition asks for (invariant 3). */
export const MAX_ATTEMPTS_CAP = 10;
/** Longest start-to-close timeout a step may ask for, in seconds. */
export const MAX_STEP_TIMEOUT_SECONDS = 24 * 3600;
/** Structural limits checked at registration. */
export const LIMITS = {
  maxSteps: 500,
  maxDefinitionBytes: 256 * 1024,
  maxInputBytes: 256 * 1024,
} as const;

export const STEP_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

const stepId = z
  .string()
  .regex(STEP_ID_PATTERN, 'step ids start with a letter and hold only letters, digits, "-" and "_" (64 at most)');

const seconds = (max: number) => z.number().positive().max(max);

export const retrySchema = z.strictObject({
  max_attempts: z.number().int().min(1).max(MAX_ATTEMPTS_CAP).optional(),
  backoff: z.enum(['exponential', 'fixed']).optional(),
  initial_interval: seconds(3600).optional(),
  max_interval: seconds(24 * 3600).optional(),
  non_retryable_errors: z.array(z.string().min(1)).optional(),
});
export type RetrySpec = z.infer<typeof retrySchema>;

export const skillStepSchema = z.strictObject({
  id: stepId,
  type: z.literal('skill'),
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  skill: z.string().min(1).max(100),
  inputs: z.record(z.string(), z.unknown()).optional(),
  outputs: z.array(z.string().min(1)).optional(),
  async: z.literal(false, { error: '"async": true is not supported; every step runs durably in order' }).optional(),
  timeout: seconds(MAX_STEP_TIMEOUT_SECONDS).optional(),
  retry: retrySchema.optional(),
});
export type SkillStep = z.infer<typeof skillStepSchema>;

/** Step kinds the language names; the ones without a schema yet are refused with a clear message. */
export const SUPPORTED_STEP_TYPES = ['skill'] as const;

export const stepSchema = z.discriminatedUnion('type', [skillStepSchema], {
  error: (issue) =>
    issue.code === 'invalid_union'
      ? `unsupported step type; supported types: ${SUPPORTED_STEP_TYPES.join(', ')}`
      : undefined,
});
export type Step = z.infer<typeof stepSchema>;

export const triggerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('manual'), description: z.string().optional() }),
  z.strictObject({
    type: z.literal('schedule'),
    cron: z.string().min(1),
    timezone: z.string().optional(),
    description: z.string().optional(),
  }),
]);

export const errorStrategySchema = z.enum(['halt', 'skip', 'retry']);

export const stepErrorPolicySchema = z.strictObject({
  strategy: errorStrategySchema,
  max_attempts: z.number().int().min(1).max(MAX_ATTEMPTS_CAP).optional(),
  backoff: z.enum(['exponential', 'fixed']).optional(),
  continue_on_error: z.boolean().optional(),
});
export type StepErrorPolicy = z.infer<typeof stepErrorPolicySchema>;

export const errorHandlingSchema = z.strictObject({
  default: errorStrategySchema.optional(),
  per_step: z.record(z.string(), stepErrorPolicySchema).optional(),
});

export const resourceLimitsSchema = z.strictObject({
  /** Advisory: accepted for seed-002 compatibility, not enforced (activities share worker processes). */
  max_memory_mb: z.number().int().positive().optional(),
  /** Advisory: accepted for seed-002 compatibility, not enforced. */
  max_cpu_percent: z.number().positive().max(100).optional(),
  /** Becomes the run's Temporal execution timeout, in seconds. */
  max_execution_time: z.number().int().positive().max(365 * 24 * 3600).optional(),
  /** Caps parallel branches once parallel steps exist; sequential runs execute one step at a time. */
  max_concurrent_steps: z.number().int().positive().max(500).optional(),
});

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
  context: z
    .strictObject({
      readonly: z.record(z.string(), z.unknown()).optional(),
      mutable: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  steps: z.array(stepSchema).min(1, 'a definition needs at least one step').max(LIMITS.maxSteps),
  output: z.record(z.string(), z.unknown()).optional(),
  error_handling: errorHandlingSchema.optional(),
  resource_limits: resourceLimitsSchema.optional(),
});

export type Definition = z.infer<typeof definitionSchema>;
