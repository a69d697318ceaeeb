import { performance } from 'node:perf_hooks';
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { INTERPRETER_WORKFLOW_TYPE, RUN_STATE_QUERY, workflowTaskQueue } from '../common/constants.ts';
import { type Logger } from '../common/logger.ts';
import { type RunState } from '../interpreter/engine.ts';
import { validateDefinition, type ValidationContext } from '../interpreter/validate.ts';
import { type PinnedDefinition, type RunInput } from '../workflows/types.ts';
import { type BaselineIdentity } from './baseline-workflows.ts';
import { type RawDefinition } from './definitions.ts';
import { type Timings, collectTimings, emptyTimings, payloadBytes, sleep } from './helpers.ts';

/** Running one side of a measurement: the bench context, starting interpreter and baseline runs, timing them, following continue-as-new chains, interleaving the sides. */

/** A run that did not finish within its time budget, with what it had done by then. */
export class OutOfTime extends Error {
  override name = 'OutOfTime';
  constructor(
    message: string,
    readonly detail: unknown,
  ) {
    super(message);
  }
}

export interface Ctx {
  client: Client;
  lane: string;
  logger: Logger;
  validation: ValidationContext;
  subDefinitions: Record<string, PinnedDefinition>;
  seq: number;
}

export interface RunOutcome {
  workflowId: string;
  ms: number;
  /** Events of the first run (the whole history when the run did not continue as new). */
  events: number;
  payloadBytes: number;
  timings: Timings;
  result?: unknown;
  failed?: string;
}

export function validated(ctx: Ctx, raw: RawDefinition) {
  const result = validateDefinition(raw, ctx.validation);
  if (!result.ok) throw new Error(`bench definition ${raw.name} is invalid: ${JSON.stringify(result.problems)}`);
  return result.definition;
}

export function nextId(ctx: Ctx, label: string, side: 'i' | 'b'): string {
  ctx.seq += 1;
  // Same length for both sides: the id is part of every idempotency key the activities receive.
  return `bench-${label}-${side}-${String(ctx.seq).padStart(5, '0')}`;
}

export function runInput(ctx: Ctx, raw: RawDefinition, input: unknown, extra: Partial<RunInput> = {}): RunInput {
  return {
    definition: validated(ctx, raw),
    definitionHash: `bench-${raw.name}`,
    input: input ?? null,
    lane: ctx.lane,
    tenant: 'bench',
    startedBy: 'bench',
    correlationId: 'bench',
    ...(Object.keys(ctx.subDefinitions).length > 0 ? { subDefinitions: ctx.subDefinitions } : {}),
    ...extra,
  };
}

export function identity(ctx: Ctx, raw: RawDefinition): BaselineIdentity {
  return { lane: ctx.lane, tenant: 'bench', correlationId: 'bench', definition: raw.name, version: raw.version };
}

export async function history(ctx: Ctx, workflowId: string, runId?: string) {
  return ctx.client.workflow.getHandle(workflowId, runId).fetchHistory();
}

export interface Watch {
  everyMs: number;
  /** Called every `everyMs` while the run is open: abort it (terminate) or let it go on. */
  check(elapsedMs: number): Promise<{ abort: boolean; detail?: unknown }>;
}

/**
 * Waits for the result (following continue-as-new). Past `timeoutMs`, or when `watch` says so, the
 * run is terminated and the promise rejects with OutOfTime, carrying what `watch` reported.
 */
export async function resultWithin<T>(handle: WorkflowHandle, timeoutMs: number, watch?: Watch): Promise<T> {
  const started = performance.now();
  const result = handle.result() as Promise<T>;
  const settled = result.then(
    () => 'done' as const,
    () => 'done' as const,
  );
  for (;;) {
    const remaining = Math.max(0, timeoutMs - (performance.now() - started));
    const wait = watch ? Math.min(watch.everyMs, remaining) : remaining;
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<'tick'>((resolve) => {
      timer = setTimeout(() => resolve('tick'), wait);
    });
    const winner = await Promise.race([settled, tick]);
    clearTimeout(timer);
    if (winner === 'done') return result;
    const elapsed = performance.now() - started;
    let verdict: { abort: boolean; detail?: unknown } = { abort: elapsed >= timeoutMs };
    if (watch) {
      const checked = await watch.check(elapsed).catch((error: unknown) => ({ abort: false, detail: { inspectFailed: String(error) } }));
      verdict = { abort: verdict.abort || checked.abort, detail: checked.detail };
    }
    if (verdict.abort) {
      await handle.terminate('bench: time budget exceeded').catch(() => undefined);
      await settled;
      throw new OutOfTime(`${handle.workflowId} terminated after ${Math.round(elapsed / 1000)} s`, verdict.detail);
    }
  }
}

/**
 * Starts one workflow, waits for its result (following continue-as-new), and measures the wall
 * time from the start call to the result; then reads the first run's history.
 */
export async function timedRun(
  ctx: Ctx,
  workflowType: string,
  workflowId: string,
  args: unknown[],
  options: { expectFailure?: boolean; timeoutMs?: number; whileRunning?: (handle: WorkflowHandle) => Promise<void> } = {},
): Promise<RunOutcome> {
  const started = performance.now();
  const handle = await ctx.client.workflow.start(workflowType, { workflowId, taskQueue: workflowTaskQueue(ctx.lane), args });
  const during = options.whileRunning?.(handle);
  let result: unknown;
  let failed: string | undefined;
  try {
    result = await resultWithin(handle, options.timeoutMs ?? 120_000);
  } catch (error) {
    if (!(options.expectFailure && error instanceof WorkflowFailedError)) throw error;
    failed = error.cause?.message ?? error.message;
  }
  const ms = performance.now() - started;
  await during;
  const h = await history(ctx, workflowId, handle.firstExecutionRunId);
  const events = h.events?.length ?? 0;
  return { workflowId, ms, events, payloadBytes: payloadBytes(h), timings: collectTimings(h), result, ...(failed !== undefined ? { failed } : {}) };
}

export function runInterpreter(ctx: Ctx, label: string, raw: RawDefinition, input?: unknown, options: Parameters<typeof timedRun>[4] = {}) {
  return timedRun(ctx, INTERPRETER_WORKFLOW_TYPE, nextId(ctx, label, 'i'), [runInput(ctx, raw, input)], options);
}

/** Polls the run-state query until `stepId` is running, then sends the signal. */
export async function signalWhenWaiting(handle: WorkflowHandle, stepId: string, name: string, payload: unknown): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const state = await handle.query<RunState>(RUN_STATE_QUERY);
      if (state.steps[stepId]?.status === 'running') break;
    } catch {
      // the first workflow task may not have run yet
    }
    if (Date.now() > deadline) throw new Error(`${handle.workflowId}: step ${stepId} never started waiting`);
    await sleep(20);
  }
  await handle.signal(name, payload);
}

/** Every run of a continue-as-new chain, from its first run, with each run's event count. */
export async function followChain(ctx: Ctx, workflowId: string, firstRunId: string): Promise<{ runs: number; events: number[]; payloadBytes: number; timings: Timings }> {
  const events: number[] = [];
  const timings = emptyTimings();
  let bytes = 0;
  let runId: string | undefined = firstRunId;
  while (runId) {
    const h = await history(ctx, workflowId, runId);
    const list = h.events ?? [];
    events.push(list.length);
    bytes += payloadBytes(h);
    collectTimings(h, timings);
    runId = list[list.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return { runs: events.length, events, payloadBytes: bytes, timings };
}

/** Runs `a` and `b` `reps` times, alternating which goes first each repetition. */
export async function interleaved<T>(reps: number, a: () => Promise<T>, b: () => Promise<T>): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let r = 0; r < reps; r += 1) {
    if (r % 2 === 0) {
      out.a.push(await a());
      out.b.push(await b());
    } else {
      out.b.push(await b());
      out.a.push(await a());
    }
  }
  return out;
}
