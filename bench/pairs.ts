import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { INTERPRETER_WORKFLOW_TYPE, workflowTaskQueue } from '../common/constants.ts';
import type { Definition } from '../interpreter/schema.ts';
import type { RunInput } from '../workflows/types.ts';

/** Shared by the on/off benchmarks (bench/codec.ts, bench/telemetry.ts): alternating pairs, medians. */

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Runs `warmup` unmeasured rounds of every side, then `reps` measured rounds, alternating which
 * side goes first so drift on a shared machine hits both alike. `run` answers milliseconds.
 */
export async function alternatingPairs<S extends string>(sides: readonly [S, S], run: (side: S) => Promise<number>, reps: number, warmup: number): Promise<Record<S, number[]>> {
  for (let i = 0; i < warmup; i += 1) for (const side of sides) await run(side);
  const ms = { [sides[0]]: [] as number[], [sides[1]]: [] as number[] } as Record<S, number[]>;
  for (let i = 0; i < reps; i += 1) {
    const order = i % 2 === 0 ? sides : ([sides[1], sides[0]] as const);
    for (const side of order) ms[side].push(await run(side));
  }
  return ms;
}

/** The per-pair ratios and the medians of a measured on/off run. */
export function ratios(ms: { on: number[]; off: number[] }) {
  const perRep = ms.on.map((v, i) => v / ms.off[i]!);
  return {
    median: { off: median(ms.off), on: median(ms.on) },
    ratio: median(ms.on) / median(ms.off),
    medianOfPerRepRatios: median(perRep),
    perRepRatios: perRep.map((r) => Math.round(r * 1000) / 1000),
  };
}

/** Starts one interpreter run of `definition` on `lane` and answers how long it took to its result, in ms. */
export async function timedRun(client: Client, definition: Definition, lane: string, workflowId: string): Promise<number> {
  const input: RunInput = { definition, definitionHash: 'bench', input: null, lane, tenant: 'bench', startedBy: 'bench', correlationId: 'bench' };
  const started = performance.now();
  const handle = await client.workflow.start(INTERPRETER_WORKFLOW_TYPE, { workflowId, taskQueue: workflowTaskQueue(lane), args: [input] });
  await handle.result();
  return performance.now() - started;
}
