import type { z } from 'zod';
import type { Logger } from '../../common/logger.ts';
import type { SkillCallMeta } from './types.ts';

/** What a skill's handler receives besides its input. */
export interface SkillContext {
  meta: SkillCallMeta;
  logger: Logger;
  /** Aborted when Temporal cancels the activity or its start-to-close timeout passes. */
  signal: AbortSignal;
  attempt: number;
  /** Records progress with Temporal (the wrapper also heartbeats every 2 s); details show in the UI. */
  heartbeat(details?: unknown): void;
}

/** Retry defaults, in the units a definition's `retry` block uses. */
export interface SkillRetryDefaults {
  maxAttempts?: number;
  initialIntervalSeconds?: number;
  backoffCoefficient?: number;
  maxIntervalSeconds?: number;
}

/** What a step calling the skill gets when it sets no `timeout` or `retry` of its own. */
export interface SkillDefaults {
  /** Start-to-close timeout of one attempt, in seconds. */
  timeoutSeconds?: number;
  retry?: SkillRetryDefaults;
}

/**
 * A skill: one named unit of work a definition can call. Its name is the Temporal activity type,
 * so it is stored in histories: never rename one.
 */
export interface SkillSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  input: I;
  output: O;
  /** True when the skill changes something outside the platform; such skills get idempotency keys. */
  sideEffects: boolean;
  /**
   * Top-level input fields that must be secret references (`{"secret": "NAME"}`) in a definition,
   * never literal values; checked at registration.
   */
  secretInputs?: readonly string[];
  /** Default timeout and retry; the platform's step defaults apply where these are silent. */
  defaults?: SkillDefaults;
  handler(input: z.infer<I>, ctx: SkillContext): Promise<z.infer<O>>;
}

/** Keeps the input/output types of a skill declaration checked against its handler. */
export function defineSkill<I extends z.ZodType, O extends z.ZodType>(spec: SkillSpec<I, O>): SkillSpec<I, O> {
  return spec;
}
