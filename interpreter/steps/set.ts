import { z } from 'zod';
import { StepCallError } from '../port.ts';
import type { StepBase } from '../plan.ts';
import { compileValue, pointerSegment, resolveValue, type CompiledValue } from '../references.ts';
import { jsonSize } from '../runtime.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, LIMITS, VARIABLE_PATTERN, type Compensable } from './parts.ts';

export interface CompiledSetStep extends StepBase {
  kind: 'set';
  values: Array<[string, CompiledValue]>;
}

const setOwn = z.strictObject({
  ...common,
  type: z.literal('set'),
  /** Variable (context.mutable) names to values, literals or templates. */
  values: z.record(z.string().regex(VARIABLE_PATTERN, 'variable names are letters, digits and "_"'), z.unknown()),
});
export type SetStep = z.infer<typeof setOwn> & Compensable;
export const setStepSchema = setOwn.extend(compensable);

export const setKind: StepKind<SetStep, CompiledSetStep> = {
  type: 'set',
  kind: 'set',
  schema: setStepSchema,
  doc: 'Writes variables (`context.mutable`): each entry of `values` (a literal or a template) is stored under its name; the output maps the names to the values written.',
  variables: (step) => Object.keys(step.values),
  compile(step, base, { scope, pointer, problems }) {
    return {
      ...base,
      kind: 'set',
      values: Object.entries(step.values).map(([k, v]) => [k, compileValue(v, scope, `${pointer}/values/${pointerSegment(k)}`, problems)]),
    };
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, runner }) {
      const written: Record<string, unknown> = {};
      for (const [name, value] of step.values) {
        const resolved = resolveValue(value, runner.data(frame));
        if (jsonSize(resolved) > LIMITS.maxStepOutputBytes) {
          throw new StepCallError(`variable "${name}" would be larger than ${LIMITS.maxStepOutputBytes} characters of JSON`, 'OutputTooLarge');
        }
        runner.state.vars[name] = resolved;
        written[name] = resolved;
      }
      return written;
    },
  },
};
