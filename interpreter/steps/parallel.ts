import { z } from 'zod';
import { PATCHES, StepCallError, type CancellableHandle } from '../port.ts';
import type { CompiledStep, StepBase } from '../plan.ts';
import { Semaphore, StepFailure, type Frame, type Race, type Runner } from '../runtime.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, LIMITS, stepArray, type Compensable } from './parts.ts';
import type { Step } from '../schema.ts';

export interface CompiledParallelStep extends StepBase {
  kind: 'parallel';
  branches: CompiledStep[];
  waitFor: 'all' | 'any' | number;
  maxConcurrency: number;
}

const parallelOwn = z.strictObject({
  ...common,
  type: z.literal('parallel'),
  /** `all` (default), `any` (the first branch to complete), or how many branches must complete. */
  wait_for: z.union([z.enum(['all', 'any']), z.number().int().min(1)]).optional(),
  max_concurrency: z.number().int().min(1).max(LIMITS.maxParallelBranches).optional(),
});
export type ParallelStep = z.infer<typeof parallelOwn> & Compensable & { steps: Step[] };
export const parallelStepSchema = parallelOwn.extend({
  ...compensable,
  /** Each entry is one branch; a branch may itself be a composite step. */
  steps: stepArray(1, 'a parallel step needs at least one branch').max(LIMITS.maxParallelBranches),
});

/**
 * "any" and N race (see Race). Runs recorded before that counted a branch only once its result
 * reached the step's handlers, after siblings finishing in the same workflow task had run too.
 */
function raceOf(
  step: CompiledParallelStep,
  frame: Frame,
  runner: Runner,
  { needed, winners, stopOthers }: { needed: number; winners: Set<string>; stopOthers: () => void },
): Race | undefined {
  if (step.waitFor === 'all' || !runner.port.patched(PATCHES.parallelFirstWins)) return undefined;
  return {
    branches: new Set(step.branches.map((b) => b.id)),
    winners,
    over: false,
    win: (id) => {
      winners.add(id);
      if (winners.size >= needed) stopOthers();
    },
    ...(frame.race ? { parent: frame.race } : {}),
  };
}

export const parallelKind: StepKind<ParallelStep, CompiledParallelStep> = {
  type: 'parallel',
  kind: 'parallel',
  schema: parallelStepSchema,
  doc: 'Runs each entry of `steps` as a branch, side by side (up to `max_concurrency`); `wait_for` is `all`, `any` or a count. The output maps branch ids to their outputs.',
  children: (step) => [['steps', step.steps]],
  compile(step, base, cx) {
    const hidden = new Map(cx.where.hidden);
    // Branches run side by side: one branch never reads another's steps.
    for (const branch of step.steps) {
      for (const id of cx.idsIn([branch])) if (!hidden.has(id)) hidden.set(id, `runs in a parallel branch of "${step.id}" and is not ordered with this one`);
    }
    const branches = step.steps.map((branch, i) => {
      const own = new Map(hidden);
      for (const id of cx.idsIn([branch])) own.delete(id);
      const result = cx.nestedStep(branch, `${cx.pointer}/steps/${i}`, { ...cx.where, hidden: own });
      for (const id of result.exported) cx.exported.add(id);
      return result.step;
    });
    const waitFor = step.wait_for ?? 'all';
    if (typeof waitFor === 'number' && waitFor > step.steps.length) {
      cx.problems.push({ pointer: `${cx.pointer}/wait_for`, message: `wait_for is ${waitFor} but the step has ${step.steps.length} branch(es)` });
    }
    return { ...base, kind: 'parallel', branches, waitFor, maxConcurrency: step.max_concurrency ?? step.steps.length };
  },
  executor: {
    reportsSettle: true,
    async execute(step, { frame, runner }) {
      const total = step.branches.length;
      const needed = step.waitFor === 'all' ? total : step.waitFor === 'any' ? 1 : step.waitFor;
      const gate = new Semaphore(step.maxConcurrency);
      const branchFrame: Frame = { ...frame, concurrent: true };
      const results: Record<string, unknown> = {};
      let succeeded = 0;
      let failed = 0;
      let stopping = false;
      let failure: unknown;
      let control: unknown;
      const handles: Array<CancellableHandle<unknown>> = [];
      const settled = new Set<number>();
      const winners = new Set<string>();
      const stopOthers = () => {
        stopping = true;
        if (race) race.over = true;
        step.branches.forEach((b, i) => {
          if (!settled.has(i) && !winners.has(b.id)) handles[i]?.cancel();
        });
      };
      const race = raceOf(step, frame, runner, { needed, winners, stopOthers });
      if (race) branchFrame.race = race;
      const runs = step.branches.map((branch, i) => {
        const handle = runner.port.cancellable(async () => {
          await gate.acquire();
          try {
            // In a race, a branch that lost before it started still starts, to be marked cancelled.
            if (stopping && !race) return undefined;
            return await runner.runStep(branch, branchFrame);
          } finally {
            gate.release();
          }
        });
        handles.push(handle);
        return handle.promise.then(
          (result) => {
            settled.add(i);
            const r = result as { output: unknown; ran: boolean } | undefined;
            if (r === undefined) return;
            // A branch skipped by its `if` satisfies `all`, but does not win `any` or count towards N.
            if (!r.ran && step.waitFor !== 'all') return;
            // In a race only the winners count; the race ended itself when the last one won.
            if (race && !race.winners.has(branch.id)) return;
            results[branch.id] = r.output;
            succeeded += 1;
            if (!race && succeeded >= needed && settled.size < total) stopOthers();
          },
          (error: unknown) => {
            settled.add(i);
            if (runner.port.isCancellation(error) && stopping) return;
            // Control flow, and a failure whose policy is rollback, always end the parallel step.
            if (runner.isControl(error) || (error instanceof StepFailure && error.rollback)) {
              control ??= error;
              stopOthers();
              return;
            }
            failed += 1;
            if (step.waitFor === 'all' || total - failed < needed) {
              failure ??= error;
              stopOthers();
            }
          },
        );
      });
      await Promise.all(runs);
      if (control !== undefined) throw control;
      if (failure !== undefined && succeeded < needed) throw failure;
      if (succeeded < needed) {
        throw new StepCallError(`only ${succeeded} of ${total} branches completed; ${needed} needed`, 'ParallelFailed');
      }
      return results;
    },
  },
};
