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
  handler(input: z.infer<I>, ctx: SkillContext): Promise<z.infer<O>>;
}

/** Keeps the input/output types of a skill declaration checked against its handler. */
export function defineSkill<I extends z.ZodType, O extends z.ZodType>(spec: SkillSpec<I, O>): SkillSpec<I, O> {
  return spec;
}
