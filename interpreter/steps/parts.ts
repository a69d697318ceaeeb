import { z } from 'zod';
import type { Step } from '../schema.ts';

/**
 * The pieces of the definition language every step kind's schema is built from: the bounds, the
 * fields every step accepts, and the recursive step lists (`steps`, `then`, `compensate`, ...).
 * interpreter/schema.ts assembles the step union from the registry and re-exports these.
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

export const seconds = (max: number) => z.number().positive().max(max);

/** A condition such as `fetch-data.status == 200` or `counter < 5` (see the expression syntax). */
export const expression = z.string().min(1).max(LIMITS.maxExpressionLength);

export const BACKOFFS = ['exponential', 'linear', 'fixed'] as const;

export const retrySchema = z.strictObject({
  max_attempts: z.number().int().min(1).max(MAX_ATTEMPTS_CAP).optional(),
  backoff: z.enum(BACKOFFS).optional(),
  initial_interval: seconds(3600).optional(),
  max_interval: seconds(24 * 3600).optional(),
  non_retryable_errors: z.array(z.string().min(1)).optional(),
});
export type RetrySpec = z.infer<typeof retrySchema>;

export const inputs = z.record(z.string(), z.unknown());

/** The step union, set once by interpreter/schema.ts; the recursive lists refer to it lazily. */
let stepUnion: z.ZodType<Step> | undefined;
export function bindStepSchema(schema: z.ZodType<Step>): void {
  stepUnion = schema;
}

/**
 * The recursive fields (`steps`, `then`, `compensate`, ...) refer back to the step union, so
 * their TypeScript types are declared by hand and the schemas are annotated with them; everything
 * else is inferred from zod.
 */
export const stepArray = (min: number, message?: string) =>
  z
    .array(z.lazy((): z.ZodType<Step> => stepUnion as z.ZodType<Step>))
    .min(min, message)
    .max(LIMITS.maxSteps);

/** Fields every step kind accepts. */
export const common = {
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

export interface Compensable {
  /** Steps that undo this one; they run, newest first, when the run rolls back. */
  compensate?: Step[] | undefined;
}
export const compensable = { compensate: stepArray(1, '"compensate" needs at least one step').optional() };

/**
 * `async` is accepted for seed-002 compatibility. Every step still runs durably and completes
 * before the next starts; `parallel` and `for_each` overlap work.
 */
export const asyncFlag = z.boolean().optional();

/** A duration: seconds as a number, or text such as `90s`, `5m`, `1h30m`, `2d`. */
export const durationSchema = z.union([
  z.number().positive().max(MAX_WAIT_SECONDS),
  z.string().regex(/^(\d+(\.\d+)?(ms|s|m|h|d)\s*)+$/, 'durations are seconds or text such as "90s", "5m", "1h30m", "2d"'),
]);

/** A whole template, `${...}`: the value is computed when the step runs. */
export const wholeTemplate = z.string().max(LIMITS.maxExpressionLength).regex(/^\$\{[\s\S]+\}$/);
