import { performance } from 'node:perf_hooks';
import { INTERPRETER_WORKFLOW_TYPE, RUN_STATE_QUERY, workflowTaskQueue } from '../common/constants.ts';
import { type RunState } from '../interpreter/engine.ts';
import { type RunResult } from '../workflows/types.ts';
import { type BaselineLoopArgs } from './baseline-workflows.ts';
import { echoLoop } from './definitions.ts';
import { type Ctx, type Watch, followChain, identity, nextId, OutOfTime, resultWithin, runInput } from './harness.ts';
import { SETTINGS, round, stats, summarizeTimings } from './helpers.ts';

/** Measurement: a long echo loop through continue-as-new, with a time budget and a fallback size. */

export interface EchoLoopSample {
  workflowId: string;
  ms: number;
  continuedAsNewReported: number;
  runs: number;
  eventsPerRun: number[];
  totalEvents: number;
  payloadBytes: number;
  timings: ReturnType<typeof summarizeTimings>;
}

/**
 * The echo loop: first the interpreter at the full size within the time budget; if it does not
 * finish, it is terminated (its progress recorded) and both sides run the fallback size instead.
 */
export async function measureEchoLoop(ctx: Ctx, full: number, reps: number, fallback: number, budgetMs: number) {
  const one = async (side: 'i' | 'b', iterations: number, timeoutMs: number, budgeted = false): Promise<EchoLoopSample> => {
    const raw = echoLoop(iterations);
    const workflowId = nextId(ctx, 'loop', side);
    const started = performance.now();
    const handle =
      side === 'i'
        ? await ctx.client.workflow.start(INTERPRETER_WORKFLOW_TYPE, { workflowId, taskQueue: workflowTaskQueue(ctx.lane), args: [runInput(ctx, raw, null)] })
        : await ctx.client.workflow.start('baselineEchoLoop', {
            workflowId,
            taskQueue: workflowTaskQueue(ctx.lane),
            args: [{ who: identity(ctx, raw), iterations, continueAsNewAfterEvents: SETTINGS.continueAsNewAfterEvents } satisfies BaselineLoopArgs],
          });
    // The budgeted attempt checks its progress every 15 s and gives up as soon as (after a minute)
    // its rate says it cannot finish within the budget.
    const watch: Watch | undefined = budgeted
      ? {
          everyMs: 15_000,
          async check(elapsedMs) {
            const state = await handle.query<RunState>(RUN_STATE_QUERY);
            const loop = state.steps.loop;
            const done = Math.max(0, (loop?.iteration ?? 1) - (loop?.inIteration ? 1 : 0));
            const projectedSeconds = done > 0 ? round(((elapsedMs / done) * iterations) / 1000, 0) : undefined;
            const detail = { iterationsDone: done, continuedAsNew: state.continuedAsNew, elapsedSeconds: round(elapsedMs / 1000, 0), projectedSeconds };
            ctx.logger.warn(detail, 'echo loop attempt progress');
            const hopeless = elapsedMs >= 60_000 && projectedSeconds !== undefined && projectedSeconds * 1000 > timeoutMs;
            return { abort: hopeless || elapsedMs >= timeoutMs, detail };
          },
        }
      : undefined;
    const result = await resultWithin<RunResult | { output: unknown; continuedAsNew: number }>(handle, timeoutMs, watch);
    const ms = performance.now() - started;
    const chain = await followChain(ctx, workflowId, handle.firstExecutionRunId);
    const reported = 'state' in result ? result.state.continuedAsNew : result.continuedAsNew;
    const output = result.output as { iteration?: number } | null;
    if (output?.iteration !== iterations - 1) throw new Error(`${workflowId}: last output ${JSON.stringify(output)}, expected iteration ${iterations - 1}`);
    ctx.logger.warn({ workflowId, iterations, ms: Math.round(ms), runs: chain.runs, events: chain.events }, 'echo loop measured');
    return {
      workflowId,
      ms,
      continuedAsNewReported: reported,
      runs: chain.runs,
      eventsPerRun: chain.events,
      totalEvents: chain.events.reduce((a, b) => a + b, 0),
      payloadBytes: chain.payloadBytes,
      timings: summarizeTimings(chain.timings),
    };
  };

  const interp: EchoLoopSample[] = [];
  const base: EchoLoopSample[] = [];
  let iterations = full;
  let attempt: { iterations: number; budgetSeconds: number; completed: boolean; progress?: unknown } | undefined;
  if (budgetMs > 0 && full > fallback) {
    ctx.logger.warn({ iterations: full, budgetSeconds: budgetMs / 1000 }, 'echo loop: trying the full size within the budget');
    try {
      interp.push(await one('i', full, budgetMs, true));
      attempt = { iterations: full, budgetSeconds: budgetMs / 1000, completed: true };
    } catch (error) {
      if (!(error instanceof OutOfTime)) throw error;
      attempt = { iterations: full, budgetSeconds: budgetMs / 1000, completed: false, progress: error.detail };
      ctx.logger.warn({ attempt }, `echo loop: over budget, falling back to ${fallback} iterations`);
      iterations = fallback;
    }
  }
  const hardTimeout = 60 * 60_000;
  for (let r = 0; r < reps; r += 1) {
    for (const side of r % 2 === 0 ? (['i', 'b'] as const) : (['b', 'i'] as const)) {
      if (side === 'i' && interp.length > r) continue;
      (side === 'i' ? interp : base).push(await one(side, iterations, hardTimeout));
    }
  }
  const ms = { interpreter: stats(interp.map((s) => s.ms)), baseline: stats(base.map((s) => s.ms)) };
  return {
    iterations,
    requestedIterations: full,
    attempt,
    reps,
    continueAsNewAfterEvents: SETTINGS.continueAsNewAfterEvents,
    interpreter: interp,
    baseline: base,
    ms,
    ratio: ms.interpreter.median / ms.baseline.median,
    msPerIteration: { interpreter: ms.interpreter.median / iterations, baseline: ms.baseline.median / iterations },
  };
}
