import { z } from 'zod';
import type { StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import { SucceedSignal } from '../runtime.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, type Compensable } from './parts.ts';

export interface CompiledSucceedStep extends StepBase {
  kind: 'succeed';
  output?: CompiledValue;
}

const succeedOwn = z.strictObject({
  ...common,
  type: z.literal('succeed'),
  /** The run's output (templates allowed); defaults to the definition's `output`, else null. */
  output: z.unknown().optional(),
});
export type SucceedStep = z.infer<typeof succeedOwn> & Compensable;
export const succeedStepSchema = succeedOwn.extend(compensable);

export const succeedKind: StepKind<SucceedStep, CompiledSucceedStep> = {
  type: 'succeed',
  kind: 'succeed',
  schema: succeedStepSchema,
  doc: 'Ends the run successfully at once with `output` (templates allowed), else the definition\'s `output`, else null.',
  endsRun: () => true,
  compile(step, base, { scope, pointer, problems }) {
    return { ...base, kind: 'succeed', ...(step.output !== undefined ? { output: compileValue(step.output, scope, `${pointer}/output`, problems) } : {}) };
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, runner }) {
      const output = step.output === undefined ? undefined : resolveValue(step.output, runner.data(frame));
      throw new SucceedSignal(step.id, output, step.output !== undefined);
    },
  },
};
