import { INTERPRETER_WORKFLOW_TYPE } from '../common/constants.ts';
import { type RunResult } from '../workflows/types.ts';
import { sequence } from './definitions.ts';
import { type Ctx, identity, interleaved, nextId, runInput, timedRun } from './harness.ts';
import { median, mergeTimings, round, stats, summarizeTimings } from './helpers.ts';

/** Measurement: a sequence of N echo steps, interpreter against the baseline. */

export async function measureSequence(ctx: Ctx, steps: number, reps: number) {
  const raw = sequence(steps);
  const input = runInput(ctx, raw, null);
  const who = identity(ctx, raw);
  const label = `seq${steps}`;
  const { a: interp, b: base } = await interleaved(
    reps,
    () => timedRun(ctx, INTERPRETER_WORKFLOW_TYPE, nextId(ctx, label, 'i'), [input]),
    () => timedRun(ctx, 'baselineSequence', nextId(ctx, label, 'b'), [who, steps]),
  );
  // Same activity outputs on both sides (the interpreter returns {output, state}).
  const lastI = (interp[0]?.result as RunResult | undefined)?.output;
  const lastB = (base[0]?.result as { output: unknown } | undefined)?.output;
  if (JSON.stringify(lastI) !== JSON.stringify(lastB)) throw new Error(`${label}: outputs differ: ${JSON.stringify(lastI)} vs ${JSON.stringify(lastB)}`);
  const ms = { interpreter: stats(interp.map((s) => s.ms)), baseline: stats(base.map((s) => s.ms)) };
  const perRepRatios = interp.map((s, i) => s.ms / base[i]!.ms);
  return {
    steps,
    reps,
    events: { interpreter: stats(interp.map((s) => s.events)), baseline: stats(base.map((s) => s.events)) },
    eventsEqual: interp.every((s, i) => s.events === base[i]!.events),
    payloadBytes: { interpreter: interp[0]!.payloadBytes, baseline: base[0]!.payloadBytes },
    ms,
    ratio: ms.interpreter.median / ms.baseline.median,
    medianOfPerRepRatios: median(perRepRatios),
    perRepRatios: perRepRatios.map((r) => round(r, 3)),
    msPerStep: { interpreter: ms.interpreter.median / steps, baseline: ms.baseline.median / steps },
    timings: {
      interpreter: summarizeTimings(mergeTimings(interp.map((s) => s.timings))),
      baseline: summarizeTimings(mergeTimings(base.map((s) => s.timings))),
    },
  };
}
