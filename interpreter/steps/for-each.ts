import { z } from 'zod';
import { ContinueAsNewRequest, StepCallError, type CancellableHandle, type StepState } from '../port.ts';
import type { CompiledStep, StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import type { Frame, StepRun } from '../runtime.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, LIMITS, stepArray, type Compensable } from './parts.ts';
import type { Step } from '../schema.ts';

export interface CompiledForEachStep extends StepBase {
  kind: 'for_each';
  items: CompiledValue;
  steps: CompiledStep[];
  maxConcurrency: number;
}

const forEachOwn = z.strictObject({
  ...common,
  type: z.literal('for_each'),
  /** The list to map over: a template such as `${input.orders}` or a literal array. */
  items: z.union([z.string().min(1).max(LIMITS.maxExpressionLength), z.array(z.unknown())]),
  /** Iterations in flight at once (default 1: one after another). */
  max_concurrency: z.number().int().min(1).max(100).optional(),
});
export type ForEachStep = z.infer<typeof forEachOwn> & Compensable & { steps: Step[] };
export const forEachStepSchema = forEachOwn.extend({
  ...compensable,
  /** Steps run once per item, with `item` and `index` bound. */
  steps: stepArray(1, 'a for_each step needs at least one step'),
});

/** The list, fixed when the step starts (and carried across continue-as-new). */
function itemsOf(step: CompiledForEachStep, { frame, st, resuming, runner }: StepRun): unknown[] {
  // Variables the iterations change cannot reshape the list halfway.
  if (!resuming || !Array.isArray(st.items)) {
    const items = resolveValue(step.items, runner.data(frame));
    if (!Array.isArray(items)) throw new StepCallError(`"items" is ${items === null ? 'null' : typeof items}, not a list`, 'InvalidItems');
    if (items.length > LIMITS.maxForEachItems) {
      throw new StepCallError(`"items" has ${items.length} entries; the limit is ${LIMITS.maxForEachItems}`, 'TooManyItems');
    }
    st.items = items;
    st.results = [];
    st.done = 0;
  }
  return st.items ?? [];
}

/** Iterations finished in order so far: `done` moves past every finished index. */
function markDone(st: StepState, finished: Set<number>): void {
  let done = st.done ?? 0;
  while (finished.delete(done)) done += 1;
  st.done = done;
}

async function runForEach(step: CompiledForEachStep, run: StepRun): Promise<unknown> {
  const { frame, st, runner } = run;
  const items = itemsOf(step, run);
  st.total = items.length;
  const results = st.results ?? [];
  st.results = results;
  let next = st.done ?? 0;
  const concurrency = step.maxConcurrency;
  const inFlight = new Map<number, CancellableHandle<unknown>>();
  const finished = new Set<number>();
  let failure: unknown;
  let launchedHere = 0;
  let draining = false;
  await new Promise<void>((resolveAll) => {
    const launch = () => {
      // Continue-as-new only where this step's progress is the run's own state: stop launching,
      // let the iterations in flight finish, then carry `done` and `results`.
      if (!draining && launchedHere > 0 && frame.persistable && !frame.concurrent && runner.port.shouldContinueAsNew()) draining = true;
      while (failure === undefined && !draining && inFlight.size < concurrency && next < items.length) {
        const index = next;
        next += 1;
        launchedHere += 1;
        const iterationFrame: Frame = {
          ...(frame.race ? { race: frame.race } : {}),
          states: frame.states.child(),
          bindings: { ...frame.bindings, item: items[index], index },
          path: `${frame.path}${step.id}[${index}]/`,
          concurrent: frame.concurrent || concurrency > 1,
          persistable: false,
        };
        const handle = runner.port.cancellable(async () => runner.runList(step.steps, iterationFrame));
        inFlight.set(index, handle);
        handle.promise.then(
          (output) => {
            inFlight.delete(index);
            results[index] = output ?? null;
            finished.add(index);
            markDone(st, finished);
            launch();
          },
          (error: unknown) => {
            inFlight.delete(index);
            if (failure === undefined) {
              failure = error;
              for (const other of inFlight.values()) other.cancel();
            }
            launch();
          },
        );
      }
      if (inFlight.size === 0) resolveAll();
    };
    launch();
  });
  if (failure !== undefined) throw failure;
  if (next < items.length) throw new ContinueAsNewRequest(runner.state);
  delete st.items;
  return results.slice(0, items.length);
}

export const forEachKind: StepKind<ForEachStep, CompiledForEachStep> = {
  type: 'for_each',
  kind: 'for_each',
  schema: forEachStepSchema,
  doc: 'Runs `steps` once per entry of `items` (a template or a literal list) with `item` and `index` bound, up to `max_concurrency` at once; the output is the list of iteration outputs.',
  children: (step) => [['steps', step.steps]],
  compile(step, base, cx) {
    const items =
      typeof step.items === 'string'
        ? compileValue(step.items.includes('${') ? step.items : `\${${step.items}}`, cx.scope, `${cx.pointer}/items`, cx.problems)
        : compileValue(step.items, cx.scope, `${cx.pointer}/items`, cx.problems);
    const inner = cx.nested(step.steps, `${cx.pointer}/steps`, { ...cx.where, bindings: new Set([...cx.where.bindings, 'item', 'index']) }, false);
    return { ...base, kind: 'for_each', items, steps: inner, maxConcurrency: step.max_concurrency ?? 1 };
  },
  executor: { reportsSettle: true, execute: runForEach },
};
