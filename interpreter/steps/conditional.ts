import { z } from 'zod';
import type { CompiledExpression } from '../expressions.ts';
import type { CompiledStep, StepBase } from '../plan.ts';
import { compileCondition, testCondition } from '../references.ts';
import type { StepKind } from './kind.ts';
import { FALSE_CONDITION } from './loop.ts';
import { common, compensable, expression, stepArray, type Compensable } from './parts.ts';
import type { Step } from '../schema.ts';

export interface CompiledConditionalStep extends StepBase {
  kind: 'conditional';
  condition: CompiledExpression;
  then: CompiledStep[];
  else: CompiledStep[];
}

const conditionalOwn = z.strictObject({ ...common, type: z.literal('conditional'), condition: expression });
export type ConditionalStep = z.infer<typeof conditionalOwn> & Compensable & { then: Step[]; else?: Step[] | undefined };
export const conditionalStepSchema = conditionalOwn.extend({
  ...compensable,
  then: stepArray(1, '"then" needs at least one step'),
  else: stepArray(1, '"else" needs at least one step').optional(),
});

export const conditionalKind: StepKind<ConditionalStep, CompiledConditionalStep> = {
  type: 'conditional',
  kind: 'conditional',
  schema: conditionalStepSchema,
  doc: 'Runs `then` when `condition` holds, else `else` (if any); the output is the last output of the branch taken.',
  children: (step) => (step.else ? [['then', step.then], ['else', step.else]] : [['then', step.then]]),
  compile(step, base, cx) {
    const condition = compileCondition(step.condition, cx.scope, `${cx.pointer}/condition`, cx.problems);
    return {
      ...base,
      kind: 'conditional',
      condition: condition ?? FALSE_CONDITION,
      then: cx.nested(step.then, `${cx.pointer}/then`, cx.where, true),
      else: step.else ? cx.nested(step.else, `${cx.pointer}/else`, cx.where, true) : [],
    };
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, st, resuming, runner }) {
      if (!resuming || st.branch === undefined) st.branch = testCondition(step.condition, runner.data(frame)) ? 'then' : 'else';
      const steps = st.branch === 'then' ? step.then : step.else;
      return steps.length === 0 ? null : runner.runList(steps, frame);
    },
  },
};
