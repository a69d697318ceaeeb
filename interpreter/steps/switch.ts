import { z } from 'zod';
import { evaluate, type CompiledExpression } from '../expressions.ts';
import type { CompiledStep, StepBase } from '../plan.ts';
import { compileCondition, testCondition } from '../references.ts';
import { deepEqual } from '../runtime.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, expression, stepArray, type Compensable } from './parts.ts';
import type { Step } from '../schema.ts';

export interface CompiledSwitchStep extends StepBase {
  kind: 'switch';
  value?: CompiledExpression;
  cases: Array<{ when?: CompiledExpression; equals?: unknown; steps: CompiledStep[] }>;
  default: CompiledStep[];
}

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

export const switchKind: StepKind<SwitchStep, CompiledSwitchStep> = {
  type: 'switch',
  kind: 'switch',
  schema: switchStepSchema,
  doc: 'Runs the steps of the first case whose `when` holds or whose `equals` matches `value`, else `default`; the output is the last output of the branch taken.',
  children(step) {
    const lists: Array<[string, Step[]]> = step.cases.map((c, i) => [`cases/${i}/steps`, c.steps]);
    if (step.default) lists.push(['default', step.default]);
    return lists;
  },
  compile(step, base, cx) {
    const { pointer, scope, problems } = cx;
    const value = step.value === undefined ? undefined : compileCondition(step.value, scope, `${pointer}/value`, problems);
    const cases = step.cases.map((c, i) => {
      const when = c.when === undefined ? undefined : compileCondition(c.when, scope, `${pointer}/cases/${i}/when`, problems);
      return {
        ...(when ? { when } : {}),
        ...(c.equals !== undefined ? { equals: c.equals } : {}),
        steps: cx.nested(c.steps, `${pointer}/cases/${i}/steps`, cx.where, true),
      };
    });
    return {
      ...base,
      kind: 'switch',
      ...(value ? { value } : {}),
      cases,
      default: step.default ? cx.nested(step.default, `${pointer}/default`, cx.where, true) : [],
    };
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, st, resuming, runner }) {
      if (!resuming || st.branch === undefined) {
        const data = runner.data(frame);
        const value = step.value ? evaluate(step.value, data) : undefined;
        const index = step.cases.findIndex((c) => (c.when ? testCondition(c.when, data) : deepEqual(c.equals, value)));
        st.branch = index >= 0 ? `case:${index}` : step.default.length > 0 ? 'default' : 'none';
      }
      const branch = st.branch;
      const steps = branch === 'default' ? step.default : branch.startsWith('case:') ? (step.cases[Number(branch.slice(5))]?.steps ?? []) : [];
      return steps.length === 0 ? null : runner.runList(steps, frame);
    },
  },
};
