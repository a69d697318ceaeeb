import { z } from 'zod';
import type { CompiledExpression } from '../expressions.ts';
import { StepCallError } from '../port.ts';
import type { StepBase } from '../plan.ts';
import { compileCondition, testCondition } from '../references.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, expression, type Compensable } from './parts.ts';

export interface CompiledWaitForEventStep extends StepBase {
  kind: 'wait_for_event';
  event: string;
  filter?: CompiledExpression;
  onTimeout: 'fail' | 'continue';
}

const waitForEventOwn = z.strictObject({
  ...common,
  type: z.literal('wait_for_event'),
  /** The signal name the run waits for (from the API, the Temporal UI or the CLI). */
  event: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/, 'event names are letters, digits and . _ : / -'),
  /** Only events for which this condition holds (with `event` bound) end the wait. */
  filter: expression.optional(),
  /** What a `timeout` leads to: `fail` (default) or `continue` with a null output. */
  on_timeout: z.enum(['fail', 'continue']).optional(),
});
export type WaitForEventStep = z.infer<typeof waitForEventOwn> & Compensable;
export const waitForEventStepSchema = waitForEventOwn.extend(compensable);

export const waitForEventKind: StepKind<WaitForEventStep, CompiledWaitForEventStep> = {
  type: 'wait_for_event',
  kind: 'wait_for_event',
  schema: waitForEventStepSchema,
  doc: 'Waits for an event (a signal) named `event` whose payload passes `filter` (`event` bound); the payload is the output. `timeout` bounds the wait, `on_timeout` says what follows.',
  compile(step, base, cx) {
    const filter =
      step.filter === undefined
        ? undefined
        : compileCondition(step.filter, cx.scopeFor({ ...cx.where, bindings: new Set([...cx.where.bindings, 'event']) }), `${cx.pointer}/filter`, cx.problems);
    return { ...base, kind: 'wait_for_event', event: step.event, ...(filter ? { filter } : {}), onTimeout: step.on_timeout ?? 'fail' };
  },
  executor: {
    reportsSettle: true,
    ownsTimeout: true,
    execute(step, { frame, runner }) {
      const arrived = runner.waited(
        runner.port.waitForEvent(
          (candidate) => {
            if (candidate.name !== step.event) return false;
            if (!step.filter) return true;
            try {
              return testCondition(step.filter, runner.data(frame, { event: candidate.payload }));
            } catch {
              return false;
            }
          },
          step.timeoutSeconds === undefined ? undefined : step.timeoutSeconds * 1000,
          `event "${step.event}" for step ${frame.path}${step.id}`,
        ),
      );
      return arrived.then((event) => {
        if (event === undefined) {
          if (step.onTimeout === 'continue') return null;
          throw new StepCallError(`no "${step.event}" event arrived within ${step.timeoutSeconds}s`, 'Timeout');
        }
        return event.payload ?? null;
      });
    },
  },
};
