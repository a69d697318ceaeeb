import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { compileExpression, evaluate, ExpressionError, type CompileProblem } from '../../interpreter/expressions.ts';
import { defineSkill } from './skill.ts';

/**
 * Evaluates one expression of the definition language (Jexl, with the same functions as
 * conditions and templates) over the `data` it is given. The names in the expression are `data`'s
 * keys (or `input.<key>`). Pass step outputs in through `data` with templates; write the expression
 * itself without `${...}`, or the interpreter evaluates it before the skill sees it.
 */
export const transformSkill = defineSkill({
  name: 'transform',
  description:
    'Evaluates an expression (the definition language\'s Jexl, e.g. "items|length" or "sum(prices) * (1 + vat)") over `data` and returns {value}. ' +
    'Names in the expression are the keys of `data`. Pure: no side effects; a bad expression fails without retry (InvalidExpression).',
  input: z.strictObject({
    /** The expression, written without `${...}`. */
    expression: z.string().min(1).max(4000),
    /** The values the expression reads, by name. */
    data: z.record(z.string(), z.unknown()).default({}),
  }),
  output: z.object({ value: z.unknown() }),
  sideEffects: false,
  defaults: { timeoutSeconds: 10, retry: { maxAttempts: 1 } },
  async handler(input) {
    const names = new Set(Object.keys(input.data));
    const problems: CompileProblem[] = [];
    const compiled = compileExpression(
      input.expression,
      { steps: new Set(), allSteps: new Set(), variables: names, readonly: new Set(), bindings: new Set() },
      '/expression',
      problems,
    );
    if (!compiled) {
      throw ApplicationFailure.nonRetryable(problems.map((p) => p.message).join('; ') || 'the expression cannot be compiled', 'InvalidExpression');
    }
    try {
      const value = evaluate(compiled, {
        input: input.data,
        context: { readonly: {}, mutable: input.data },
        steps: {},
        run: {},
        signal: null,
        bindings: {},
      });
      return { value: value ?? null };
    } catch (error) {
      if (error instanceof ExpressionError) throw ApplicationFailure.nonRetryable(error.message, 'ExpressionError');
      throw error;
    }
  },
});
