import { z } from 'zod';
import { defineSkill } from './skill.ts';

/** Returns its inputs unchanged: the smallest real skill, handy for wiring and tests. */
export const echoSkill = defineSkill({
  name: 'echo',
  description: 'Returns its inputs as its output.',
  input: z.record(z.string(), z.unknown()),
  output: z.record(z.string(), z.unknown()),
  sideEffects: false,
  defaults: { timeoutSeconds: 10, retry: { maxAttempts: 3 } },
  async handler(input) {
    return input;
  },
});
