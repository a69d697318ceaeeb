import { z } from 'zod';
import { durationMs, runtimeDurationMs } from '../durations.ts';
import { StepCallError } from '../port.ts';
import type { StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, durationSchema, LIMITS, MAX_WAIT_SECONDS, wholeTemplate, type Compensable } from './parts.ts';

export interface CompiledWaitStep extends StepBase {
  kind: 'wait';
  durationMs?: number;
  /** A templated duration, computed when the step starts (seconds, duration text or ISO 8601). */
  duration?: CompiledValue;
  until?: CompiledValue;
}

const waitOwn = z.strictObject({
  ...common,
  type: z.literal('wait'),
  /**
   * Seconds, duration text, or a template (`${input.delay}`) that yields seconds, duration text or
   * an ISO-8601 duration (`PT1M30S`), computed when the step starts.
   */
  duration: z.union([durationSchema, wholeTemplate]).optional(),
  /** An ISO-8601 timestamp, or a template that yields one. */
  until: z.string().min(1).max(LIMITS.maxExpressionLength).optional(),
});
export type WaitStep = z.infer<typeof waitOwn> & Compensable;
export const waitStepSchema = waitOwn.extend(compensable).refine((s) => (s.duration === undefined) !== (s.until === undefined), {
  message: 'a wait step has exactly one of "duration" or "until"',
});

export const waitKind: StepKind<WaitStep, CompiledWaitStep> = {
  type: 'wait',
  kind: 'wait',
  schema: waitStepSchema,
  doc: 'Sleeps on a durable timer for `duration` (seconds, `90s`, `1h30m`, or a template yielding one or ISO 8601) or until the timestamp `until`.',
  compile(step, base, { scope, pointer, problems }) {
    if (typeof step.duration === 'string' && step.duration.startsWith('${')) {
      return { ...base, kind: 'wait', duration: compileValue(step.duration, scope, `${pointer}/duration`, problems) };
    }
    if (step.duration !== undefined && durationMs(step.duration) > MAX_WAIT_SECONDS * 1000) {
      problems.push({ pointer: `${pointer}/duration`, message: `the wait is longer than ${MAX_WAIT_SECONDS / 86_400} days` });
    }
    return step.duration !== undefined
      ? { ...base, kind: 'wait', durationMs: durationMs(step.duration) }
      : { ...base, kind: 'wait', until: compileValue(step.until, scope, `${pointer}/until`, problems) };
  },
  executor: {
    reportsSettle: true,
    execute(step, { frame, runner }) {
      let ms = step.durationMs ?? 0;
      if (step.duration) {
        const value = resolveValue(step.duration, runner.data(frame));
        try {
          ms = runtimeDurationMs(value);
        } catch (error) {
          throw new StepCallError((error as Error).message, 'InvalidDuration');
        }
      }
      if (step.until) {
        const when = resolveValue(step.until, runner.data(frame));
        const at = typeof when === 'number' ? when : Date.parse(String(when));
        if (Number.isNaN(at)) throw new StepCallError(`"until" is not a timestamp: ${JSON.stringify(when)}`, 'InvalidTimestamp');
        ms = at - runner.port.now();
      }
      return ms > 0 ? runner.waited(runner.port.sleep(ms, `wait step ${frame.path}${step.id}`)).then(() => null) : null;
    },
  },
};
