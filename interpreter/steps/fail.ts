import { z } from 'zod';
import { StepCallError } from '../port.ts';
import type { StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, wholeTemplate, type Compensable } from './parts.ts';

export interface CompiledFailStep extends StepBase {
  kind: 'fail';
  error: CompiledValue;
  /** A fixed type, or a template computed when the step fails. */
  errorType: string | CompiledValue;
}

const failOwn = z.strictObject({
  ...common,
  type: z.literal('fail'),
  /** The failure message (templates allowed). */
  error: z.string().min(1).max(2000),
  /** The error's type, or a template that yields one (`${error.type}` re-raises a caught error). */
  error_type: z.union([z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/), wholeTemplate]).optional(),
});
export type FailStep = z.infer<typeof failOwn> & Compensable;
export const failStepSchema = failOwn.extend(compensable);

export const failKind: StepKind<FailStep, CompiledFailStep> = {
  type: 'fail',
  kind: 'fail',
  schema: failStepSchema,
  doc: 'Fails with the message `error` and the type `error_type` (default `WorkflowFailed`); both may be templates, so a handler can re-raise a caught error.',
  // A `fail` whose policy lets the run go on (skip, custom) does not end it.
  endsRun: (step) => step.onError.action === 'halt' || step.onError.action === 'rollback',
  compile(step, base, { scope, pointer, problems }) {
    return {
      ...base,
      kind: 'fail',
      error: compileValue(step.error, scope, `${pointer}/error`, problems),
      errorType:
        step.error_type?.startsWith('${') === true ? compileValue(step.error_type, scope, `${pointer}/error_type`, problems) : (step.error_type ?? 'WorkflowFailed'),
    };
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, runner }) {
      const message = resolveValue(step.error, runner.data(frame));
      const type = typeof step.errorType === 'string' ? step.errorType : resolveValue(step.errorType, runner.data(frame));
      throw new StepCallError(typeof message === 'string' ? message : JSON.stringify(message), typeof type === 'string' && type !== '' ? type : 'WorkflowFailed');
    },
  },
};
