import { z } from 'zod';
import type { CompiledExpression } from '../expressions.ts';
import { StepCallError } from '../port.ts';
import type { CompiledStep, StepBase } from '../plan.ts';
import { compileCondition, testCondition } from '../references.ts';
import { isPromise, type Frame, type StepRun } from '../runtime.ts';
import type { StepKind, Where } from './kind.ts';
import { common, compensable, expression, LIMITS, stepArray, type Compensable } from './parts.ts';
import type { Step } from '../schema.ts';

export interface CompiledLoopStep extends StepBase {
  kind: 'loop';
  condition: CompiledExpression;
  steps: CompiledStep[];
  maxIterations: number;
}

const loopOwn = z.strictObject({
  ...common,
  type: z.literal('loop'),
  /** Checked before every iteration; the loop ends when it is false. */
  condition: expression,
  /** Mandatory bound: reaching it while the condition still holds fails the step. */
  max_iterations: z
    .number({ error: (issue) => (issue.input === undefined ? 'a loop needs "max_iterations" (every loop is bounded)' : undefined) })
    .int()
    .min(1)
    .max(LIMITS.maxLoopIterations),
});
export type LoopStep = z.infer<typeof loopOwn> & Compensable & { steps: Step[] };
export const loopStepSchema = loopOwn.extend({ ...compensable, steps: stepArray(1, 'a loop step needs at least one step') });

/** Placeholder for a condition that failed to compile (only reachable in a plan with problems). */
export const FALSE_CONDITION = undefined as unknown as CompiledExpression;

async function runLoop(step: CompiledLoopStep, { frame, st, resuming, runner }: StepRun): Promise<unknown> {
  let last: unknown = resuming ? (st.output ?? null) : null;
  let resumeInside = resuming && st.inIteration === true;
  if (!resuming) st.iteration = 0;
  for (;;) {
    const started = st.iteration ?? 0;
    if (!resumeInside) {
      if (!testCondition(step.condition, runner.data(frame, { iteration: started }))) break;
      if (started >= step.maxIterations) {
        throw new StepCallError(
          `loop "${step.id}" reached max_iterations (${step.maxIterations}) while its condition "${step.condition.source}" still holds`,
          'LoopLimitExceeded',
        );
      }
      runner.resetDescendants(step.id, frame);
      st.iteration = started + 1;
      st.inIteration = true;
    }
    resumeInside = false;
    const index = (st.iteration ?? 1) - 1;
    const iterationFrame: Frame = { ...frame, bindings: { ...frame.bindings, iteration: index }, path: `${frame.path}${step.id}[${index}]/` };
    const body = runner.runList(step.steps, iterationFrame);
    last = isPromise(body) ? await body : body;
    st.inIteration = false;
    st.output = last;
  }
  return last;
}

export const loopKind: StepKind<LoopStep, CompiledLoopStep> = {
  type: 'loop',
  kind: 'loop',
  schema: loopStepSchema,
  doc: 'Runs `steps` while `condition` holds (checked before every iteration, `iteration` bound), at most `max_iterations` times; the output is the last iteration\'s.',
  children: (step) => [['steps', step.steps]],
  compile(step, base, cx) {
    const innerWhere: Where = { ...cx.where, bindings: new Set([...cx.where.bindings, 'iteration']) };
    const inner = cx.nested(step.steps, `${cx.pointer}/steps`, innerWhere, true);
    // The condition may read the body's steps: before the first iteration they are pending.
    const conditionScope = cx.scopeFor({ ...innerWhere, visible: new Set([...cx.where.visible, ...cx.exported]) });
    const condition = compileCondition(step.condition, conditionScope, `${cx.pointer}/condition`, cx.problems);
    return { ...base, kind: 'loop', condition: condition ?? FALSE_CONDITION, steps: inner, maxIterations: step.max_iterations };
  },
  executor: { reportsSettle: true, execute: runLoop },
};
