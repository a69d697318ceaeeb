import { z } from 'zod';
import { StepCallError, type Problem } from '../port.ts';
import type { StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, wholeTemplate, type Compensable } from './parts.ts';

export interface CompiledFailStep extends StepBase {
  kind: 'fail';
  /** The message; absent when the raised error's, the title or the type stands in. */
  error?: CompiledValue;
  /** A fixed type, a template computed when the step fails, or absent (the raised error's, else `WorkflowFailed`). */
  errorType?: string | CompiledValue;
  /** The problem fields (RFC 9457): status, title, detail, instance. */
  problem: Partial<Record<keyof Problem, CompiledValue>>;
  /** A caught error raised again (`"${error}"`): its fields are the defaults of the step's own. */
  raise?: CompiledValue;
}

const failOwn = z.strictObject({
  ...common,
  type: z.literal('fail'),
  /** The failure message (templates allowed). */
  error: z.string().min(1).max(2000).optional(),
  /** The error's type, or a template that yields one (`${error.type}` re-raises a caught error). */
  error_type: z.union([z.string().regex(/^[A-Za-z][A-Za-z0-9_.:/#-]{0,199}$/), wholeTemplate]).optional(),
  /** The problem's HTTP-style status code, or a template that yields one. */
  status: z.union([z.number().int().min(100).max(999), wholeTemplate]).optional(),
  /** A short summary of the problem (templates allowed). */
  title: z.string().min(1).max(2000).optional(),
  /** What happened this time (templates allowed). */
  detail: z.string().min(1).max(2000).optional(),
  /** Where it happened, a URI or JSON Pointer (templates allowed); default the step's JSON Pointer. */
  instance: z.string().min(1).max(2000).optional(),
  /** A caught error to raise again as it was (`"${error}"` in a handler); the fields above override its own. */
  raise: wholeTemplate.optional(),
});
export type FailStep = z.infer<typeof failOwn> & Compensable;
export const failStepSchema = failOwn.extend(compensable);

const PROBLEM_FIELDS = ['status', 'title', 'detail', 'instance'] as const;

function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export const failKind: StepKind<FailStep, CompiledFailStep> = {
  type: 'fail',
  kind: 'fail',
  schema: failStepSchema,
  doc:
    'Fails with the message `error` and the type `error_type` (default `WorkflowFailed`), and optionally a structured problem: `status`, `title`, `detail`, `instance` (default the step\'s JSON Pointer when any of them is given). All may be templates. `raise: "${error}"` in a handler raises the caught error again with every field it has; the step\'s own fields override them.',
  // A `fail` whose policy lets the run go on (skip, custom) does not end it.
  endsRun: (step) => step.onError.action === 'halt' || step.onError.action === 'rollback',
  compile(step, base, { scope, pointer, problems }) {
    if (step.error === undefined && step.title === undefined && step.raise === undefined) {
      problems.push({ pointer, message: 'a fail step needs a message: error, title, or raise (a caught error raised again)' });
    }
    const problem: CompiledFailStep['problem'] = {};
    for (const field of PROBLEM_FIELDS) {
      const value = step[field];
      if (value !== undefined) problem[field] = compileValue(value, scope, `${pointer}/${field}`, problems);
    }
    const compiled: CompiledFailStep = { ...base, kind: 'fail', problem };
    if (step.error !== undefined) compiled.error = compileValue(step.error, scope, `${pointer}/error`, problems);
    if (step.raise !== undefined) compiled.raise = compileValue(step.raise, scope, `${pointer}/raise`, problems);
    if (step.error_type !== undefined) {
      compiled.errorType = step.error_type.startsWith('${') ? compileValue(step.error_type, scope, `${pointer}/error_type`, problems) : step.error_type;
    } else if (step.raise === undefined) {
      compiled.errorType = 'WorkflowFailed';
    }
    return compiled;
  },
  executor: {
    reportsSettle: false,
    execute(step, { frame, runner }) {
      const data = runner.data(frame);
      const raised = step.raise === undefined ? undefined : resolveValue(step.raise, data);
      if (raised !== undefined && (raised === null || typeof raised !== 'object' || Array.isArray(raised))) {
        throw new StepCallError(`"raise" needs an error object such as "\${error}", not ${JSON.stringify(raised)}`, 'InvalidRaise');
      }
      const from = (raised ?? {}) as Record<string, unknown>;
      const found: Problem = {};
      for (const field of PROBLEM_FIELDS) {
        const compiled = step.problem[field];
        const value = compiled === undefined ? from[field] : resolveValue(compiled, data);
        if (value === undefined || value === null) continue;
        if (field === 'status') {
          const status = typeof value === 'number' ? value : Number(value);
          if (!Number.isInteger(status) || status < 100 || status > 999) throw new StepCallError(`"status" must be a whole number from 100 to 999, not ${JSON.stringify(value)}`, 'InvalidStatus');
          found.status = status;
        } else {
          const t = text(value);
          if (t !== undefined) found[field] = t;
        }
      }
      // A new problem happened here; a raised one keeps the place it came from.
      if (found.instance === undefined && (found.status !== undefined || found.title !== undefined || found.detail !== undefined)) found.instance = step.pointer;
      const typeValue = step.errorType === undefined ? from.type : typeof step.errorType === 'string' ? step.errorType : resolveValue(step.errorType, data);
      const type = typeof typeValue === 'string' && typeValue !== '' ? typeValue : 'WorkflowFailed';
      const message = text(step.error === undefined ? from.message : resolveValue(step.error, data)) ?? found.title ?? type;
      throw new StepCallError(message, type, undefined, Object.keys(found).length > 0 ? found : undefined);
    },
  },
};
