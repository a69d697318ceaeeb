import { type RunResult } from '../workflows/types.ts';
import { pureLoop } from './definitions.ts';
import { type Ctx, interleaved, nextId, runInterpreter, timedRun } from './harness.ts';
import { stats } from './helpers.ts';

/** Measurement: a loop of pure steps (no activities), interpreter against the baseline. */

export async function measurePureLoop(ctx: Ctx, iterations: number, reps: number) {
  const raw = pureLoop(iterations);
  const { a: interp, b: base } = await interleaved(
    reps,
    () => runInterpreter(ctx, 'pure', raw, null, { timeoutMs: 600_000 }),
    () => timedRun(ctx, 'baselinePureLoop', nextId(ctx, 'pure', 'b'), [iterations]),
  );
  const out = (interp[0]?.result as RunResult | undefined)?.output as { counter?: number } | undefined;
  if (out?.counter !== iterations) throw new Error(`pure loop: expected counter ${iterations}, got ${JSON.stringify(out)}`);
  const continued = (interp[0]?.result as RunResult).state.continuedAsNew;
  return {
    iterations,
    reps,
    interpreter: {
      ms: stats(interp.map((s) => s.ms)),
      events: stats(interp.map((s) => s.events)),
      continuedAsNew: continued,
      /** Each workflow task runs up to PURE_STEPS_PER_TASK pure steps: how long the worker held them (deadlock detector: 2 s). */
      workflowTaskProcessingMs: stats(interp.flatMap((s) => s.timings.workflowTaskProcessing)),
      /** The engine's yields are 1 ms timers: how long each took to fire. */
      yieldTimerMs: interp.some((s) => s.timings.timerFired.length > 0) ? stats(interp.flatMap((s) => s.timings.timerFired)) : undefined,
    },
    handWritten: { ms: stats(base.map((s) => s.ms)), events: stats(base.map((s) => s.events)) },
  };
}
