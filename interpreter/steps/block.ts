import { z } from 'zod';
import type { CompiledStep, StepBase } from '../plan.ts';
import type { Step } from '../schema.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, stepArray, type Compensable } from './parts.ts';

/**
 * A plain sequence: `steps` run in order, as if written in place, under the block's own `if`,
 * retry, timeout and error policy. The output is the last output of a step that ran. Nothing of
 * its own reaches Temporal.
 */
export interface CompiledBlockStep extends StepBase {
  kind: 'block';
  steps: CompiledStep[];
}

const blockOwn = z.strictObject({ ...common, type: z.literal('block') });
export type BlockStep = z.infer<typeof blockOwn> & Compensable & { steps: Step[] };
export const blockStepSchema = blockOwn.extend({ ...compensable, steps: stepArray(1, '"steps" needs at least one step') });

export const blockKind: StepKind<BlockStep, CompiledBlockStep> = {
  type: 'block',
  kind: 'block',
  schema: blockStepSchema,
  doc: 'Runs `steps` in order, as one step: its `if`, retry, timeout and error policy cover them all (a try block, a retried group); the output is the last output of a step that ran. Later steps may read the inner steps.',
  children: (step) => [['steps', step.steps]],
  compile(step, base, cx) {
    return { ...base, kind: 'block', steps: cx.nested(step.steps, `${cx.pointer}/steps`, cx.where, true) };
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, runner }) {
      return runner.runList(step.steps, frame);
    },
  },
};
