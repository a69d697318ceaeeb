/**
 * `npm run bench`: measures the interpreter against hand-written Temporal workflows doing the same
 * activities, in one process against one local Temporal dev server, and writes bench/RESULTS.md
 * (tables) and bench/results.json (every sample).
 *
 * Both sides run on the same workers (one bundle holding the interpreter and the baselines, the
 * lane workers of workers/lane-worker.ts) with the same activity implementations, one run at a
 * time, interpreter and baseline interleaved (alternating which goes first) after a warm-up.
 *
 * Knobs (environment): BENCH_WARMUP (3), BENCH_KIND_REPS (3), BENCH_REPS_100 (7), BENCH_REPS_10 (21),
 * BENCH_PURE_REPS (3), BENCH_LOOP_ITERATIONS (10000), BENCH_LOOP_REPS (1), BENCH_LOOP_BUDGET_SECONDS (360:
 * when the interpreter's full-size echo loop takes longer, it is terminated and both sides run
 * BENCH_LOOP_FALLBACK_ITERATIONS (2000) instead; 0 disables the budget), BENCH_SKIP_LOOP (unset),
 * BENCH_TEMPORAL_DYNAMIC_CONFIG (unset: the dev server as the platform starts it; `k=v,k2=v2` adds
 * `--dynamic-config-value` flags and writes RESULTS-dynconfig.md instead), LOG_LEVEL (warn).
 *
 * `npm run bench -- --report` rewrites RESULTS.md from results.json without running anything.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { catalogNames, createActivityCatalog } from '../activities/catalog.ts';
import { loadConfig } from '../common/config.ts';
import { INTERPRETER_WORKFLOW_TYPE, RUN_STATE_QUERY, workflowTaskQueue } from '../common/constants.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import { startDevServer, type DevServer } from '../embedded/dev-server.ts';
import { freePort } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { PURE_STEPS_PER_TASK, type RunState } from '../interpreter/engine.ts';
import { validateDefinition, type ValidationContext } from '../interpreter/validate.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { createLaneWorkers, type LaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';
import type { PinnedDefinition, RunInput, RunResult } from '../workflows/types.ts';
import type { BaselineIdentity, BaselineLoopArgs } from './baseline-workflows.ts';
import { CHILD_DEFINITION, echoLoop, kindCases, pureLoop, sequence, type RawDefinition } from './definitions.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const ENTRY = fileURLToPath(new URL('./workflows-entry.ts', import.meta.url));

const intEnv = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return n;
};

const SETTINGS = {
  warmup: intEnv('BENCH_WARMUP', 3),
  kindReps: Math.max(1, intEnv('BENCH_KIND_REPS', 3)),
  reps100: Math.max(1, intEnv('BENCH_REPS_100', 7)),
  reps10: Math.max(1, intEnv('BENCH_REPS_10', 21)),
  pureReps: Math.max(1, intEnv('BENCH_PURE_REPS', 3)),
  loopIterations: Math.max(1, intEnv('BENCH_LOOP_ITERATIONS', 10_000)),
  loopReps: intEnv('BENCH_LOOP_REPS', 1),
  /** If the interpreter's full-size echo loop takes longer than this, both sides run the fallback size. */
  loopBudgetSeconds: intEnv('BENCH_LOOP_BUDGET_SECONDS', 360),
  loopFallbackIterations: Math.max(1, intEnv('BENCH_LOOP_FALLBACK_ITERATIONS', 2000)),
  /**
   * Extra dynamic config for the dev server, `key=value` comma-separated (e.g.
   * `history.transferProcessorMaxPollRPS=1000`). Empty: the dev server exactly as the platform starts
   * it. When set, results go to RESULTS-dynconfig.md / results-dynconfig.json.
   */
  dynamicConfig: (process.env.BENCH_TEMPORAL_DYNAMIC_CONFIG ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
  /** The interpreter's default (workflows/interpreter.ts DEFAULT_CONTINUE_AS_NEW_EVENTS). */
  continueAsNewAfterEvents: 10_000,
};

// ---------------------------------------------------------------------------------------------
// small helpers

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
/** A ratio with three decimals, always (1.000, not 1). */
const ratio = (x: number): string => x.toFixed(3);
const mb = (bytes: number): number => round(bytes / (1024 * 1024), 1);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}
const stats = (samples: number[]): Stats => ({ median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples });

/** Sum of every payload byte in a history (Uint8Array fields: inputs, results, headers, memos). */
function payloadBytes(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (value === null || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  let total = 0;
  for (const v of Array.isArray(value) ? value : Object.values(value)) total += payloadBytes(v, seen);
  return total;
}

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

const num = (x: unknown): number => (typeof x === 'number' ? x : Number(String(x)));

/**
 * Where a history's time went, from the server's event timestamps (ms): how long tasks waited to
 * be picked up (dispatch) and how long the worker held them (for workflow tasks, that is where the
 * interpreter's own CPU time is).
 */
interface Timings {
  workflowTaskDispatch: number[];
  workflowTaskProcessing: number[];
  activityDispatch: number[];
  activityExecution: number[];
  /** TimerStarted → TimerFired, whatever the timer's duration. */
  timerFired: number[];
}
const emptyTimings = (): Timings => ({ workflowTaskDispatch: [], workflowTaskProcessing: [], activityDispatch: [], activityExecution: [], timerFired: [] });

function collectTimings(h: History, into: Timings = emptyTimings()): Timings {
  const at = new Map<number, number>();
  for (const e of h.events ?? []) {
    const t = e.eventTime ? num(e.eventTime.seconds) * 1000 + (e.eventTime.nanos ?? 0) / 1e6 : Number.NaN;
    at.set(num(e.eventId), t);
    const t0 = (id: unknown) => at.get(num(id)) ?? Number.NaN;
    if (e.workflowTaskStartedEventAttributes) into.workflowTaskDispatch.push(t - t0(e.workflowTaskStartedEventAttributes.scheduledEventId));
    if (e.workflowTaskCompletedEventAttributes) into.workflowTaskProcessing.push(t - t0(e.workflowTaskCompletedEventAttributes.startedEventId));
    if (e.activityTaskStartedEventAttributes) into.activityDispatch.push(t - t0(e.activityTaskStartedEventAttributes.scheduledEventId));
    if (e.activityTaskCompletedEventAttributes) into.activityExecution.push(t - t0(e.activityTaskCompletedEventAttributes.startedEventId));
    if (e.timerFiredEventAttributes) into.timerFired.push(t - t0(e.timerFiredEventAttributes.startedEventId));
  }
  return into;
}

function mergeTimings(list: Timings[]): Timings {
  const out = emptyTimings();
  for (const t of list) for (const k of Object.keys(out) as Array<keyof Timings>) out[k].push(...t[k]);
  return out;
}

/** Medians (and 90th percentiles) of each timing, in ms. */
function summarizeTimings(t: Timings) {
  const p90 = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * 0.9))]! : Number.NaN;
  };
  const one = (xs: number[]) => ({ n: xs.length, median: round(median(xs), 2), p90: round(p90(xs), 2), total: round(xs.reduce((a, b) => a + b, 0), 0) });
  return {
    workflowTaskDispatch: one(t.workflowTaskDispatch),
    workflowTaskProcessing: one(t.workflowTaskProcessing),
    activityDispatch: one(t.activityDispatch),
    activityExecution: one(t.activityExecution),
    timerFired: one(t.timerFired),
  };
}

/** Peak RSS of a process and its descendants (Linux /proc; undefined elsewhere). */
function processTreePeakRss(rootPid: number | undefined): { pids: number[]; vmHwmMb: number; vmRssMb: number } | undefined {
  if (rootPid === undefined) return undefined;
  try {
    const parents = new Map<number, number>();
    for (const entry of execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).trim().split('\n')) {
      const [pid, ppid] = entry.trim().split(/\s+/).map(Number);
      if (pid !== undefined && ppid !== undefined) parents.set(pid, ppid);
    }
    const tree = [rootPid];
    for (let added = true; added; ) {
      added = false;
      for (const [pid, ppid] of parents) {
        if (tree.includes(ppid) && !tree.includes(pid)) {
          tree.push(pid);
          added = true;
        }
      }
    }
    let hwm = 0;
    let rss = 0;
    for (const pid of tree) {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    }
    return { pids: tree, vmHwmMb: mb(hwm), vmRssMb: mb(rss) };
  } catch {
    return undefined;
  }
}

function memorySnapshot(label: string) {
  const m = process.memoryUsage();
  return {
    label,
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    externalMb: mb(m.external),
    /** Peak RSS of this process so far (getrusage ru_maxrss). */
    maxRssMb: mb(process.resourceUsage().maxRSS * 1024),
  };
}

// ---------------------------------------------------------------------------------------------
// the bench

interface Ctx {
  client: Client;
  lane: string;
  logger: Logger;
  validation: ValidationContext;
  subDefinitions: Record<string, PinnedDefinition>;
  seq: number;
}

interface RunOutcome {
  workflowId: string;
  ms: number;
  /** Events of the first run (the whole history when the run did not continue as new). */
  events: number;
  payloadBytes: number;
  timings: Timings;
  result?: unknown;
  failed?: string;
}

function validated(ctx: Ctx, raw: RawDefinition) {
  const result = validateDefinition(raw, ctx.validation);
  if (!result.ok) throw new Error(`bench definition ${raw.name} is invalid: ${JSON.stringify(result.problems)}`);
  return result.definition;
}

function nextId(ctx: Ctx, label: string, side: 'i' | 'b'): string {
  ctx.seq += 1;
  // Same length for both sides: the id is part of every idempotency key the activities receive.
  return `bench-${label}-${side}-${String(ctx.seq).padStart(5, '0')}`;
}

function runInput(ctx: Ctx, raw: RawDefinition, input: unknown, extra: Partial<RunInput> = {}): RunInput {
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

function identity(ctx: Ctx, raw: RawDefinition): BaselineIdentity {
  return { lane: ctx.lane, tenant: 'bench', correlationId: 'bench', definition: raw.name, version: raw.version };
}

async function history(ctx: Ctx, workflowId: string, runId?: string) {
  return ctx.client.workflow.getHandle(workflowId, runId).fetchHistory();
}

interface Watch {
  everyMs: number;
  /** Called every `everyMs` while the run is open: abort it (terminate) or let it go on. */
  check(elapsedMs: number): Promise<{ abort: boolean; detail?: unknown }>;
}

/**
 * Waits for the result (following continue-as-new). Past `timeoutMs`, or when `watch` says so, the
 * run is terminated and the promise rejects with OutOfTime, carrying what `watch` reported.
 */
async function resultWithin<T>(handle: WorkflowHandle, timeoutMs: number, watch?: Watch): Promise<T> {
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
async function timedRun(
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

function runInterpreter(ctx: Ctx, label: string, raw: RawDefinition, input?: unknown, options: Parameters<typeof timedRun>[4] = {}) {
  return timedRun(ctx, INTERPRETER_WORKFLOW_TYPE, nextId(ctx, label, 'i'), [runInput(ctx, raw, input)], options);
}

/** Polls the run-state query until `stepId` is running, then sends the signal. */
async function signalWhenWaiting(handle: WorkflowHandle, stepId: string, name: string, payload: unknown): Promise<void> {
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
async function followChain(ctx: Ctx, workflowId: string, firstRunId: string): Promise<{ runs: number; events: number[]; payloadBytes: number; timings: Timings }> {
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
async function interleaved<T>(reps: number, a: () => Promise<T>, b: () => Promise<T>): Promise<{ a: T[]; b: T[] }> {
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

// ---------------------------------------------------------------------------------------------
// the measurements

async function measureKinds(ctx: Ctx, integrationUrl: string) {
  const cases = kindCases(integrationUrl);
  const definitionOf = (kind: string): RawDefinition => {
    const found = cases.find((c) => c.kind === kind);
    if (!found) throw new Error(`no kind case "${kind}"`);
    return found.definition;
  };
  const baselines: Record<string, () => Promise<RunOutcome>> = {
    skill: () => timedRun(ctx, 'baselineSequence', nextId(ctx, 'kind', 'b'), [identity(ctx, definitionOf('skill')), 1]),
    parallel: () => timedRun(ctx, 'baselineParallel', nextId(ctx, 'kind', 'b'), [identity(ctx, definitionOf('parallel'))]),
    for_each: () => timedRun(ctx, 'baselineForEach', nextId(ctx, 'kind', 'b'), [identity(ctx, definitionOf('for_each')), [1, 2, 3]]),
    wait: () => timedRun(ctx, 'baselineWait', nextId(ctx, 'kind', 'b'), [1000]),
    'set-only (empty baseline)': () => timedRun(ctx, 'baselinePureLoop', nextId(ctx, 'kind', 'b'), [0]),
  };
  const rows = [];
  for (const c of cases) {
    const samples: RunOutcome[] = [];
    const childEvents: number[] = [];
    for (let r = 0; r < SETTINGS.kindReps; r += 1) {
      const outcome = await runInterpreter(ctx, 'kind', c.definition, c.input, {
        ...(c.expectFailure ? { expectFailure: true } : {}),
        ...(c.signalWhenWaiting
          ? { whileRunning: (h: WorkflowHandle) => signalWhenWaiting(h, c.signalWhenWaiting!.stepId, c.signalWhenWaiting!.name, c.signalWhenWaiting!.payload) }
          : {}),
      });
      if (c.expectFailure && outcome.failed === undefined) throw new Error(`${c.kind}: the run was expected to fail`);
      samples.push(outcome);
      if (c.childStepId) childEvents.push((await history(ctx, `${outcome.workflowId}/${c.childStepId}`)).events?.length ?? 0);
    }
    const baseline = baselines[c.kind];
    const handWritten: RunOutcome[] = [];
    if (baseline) for (let r = 0; r < SETTINGS.kindReps; r += 1) handWritten.push(await baseline());
    rows.push({
      kind: c.kind,
      note: c.note ?? '',
      events: stats(samples.map((s) => s.events)),
      ms: stats(samples.map((s) => s.ms)),
      ...(childEvents.length ? { childEvents: stats(childEvents) } : {}),
      ...(handWritten.length ? { handWrittenEvents: stats(handWritten.map((s) => s.events)) } : {}),
      ...(samples[0]?.failed ? { failure: samples[0].failed } : {}),
    });
    ctx.logger.warn({ kind: c.kind, events: samples.map((s) => s.events) }, 'kind measured');
  }
  const empty = rows[0]!.events.median;
  return rows.map((r) => ({ ...r, attributable: r.events.median - empty }));
}

async function measureSequence(ctx: Ctx, steps: number, reps: number) {
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

async function measurePureLoop(ctx: Ctx, iterations: number, reps: number) {
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

/** A run that did not finish within its time budget, with what it had done by then. */
class OutOfTime extends Error {
  override name = 'OutOfTime';
  constructor(
    message: string,
    readonly detail: unknown,
  ) {
    super(message);
  }
}

interface EchoLoopSample {
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
async function measureEchoLoop(ctx: Ctx, full: number, reps: number, fallback: number, budgetMs: number) {
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

// ---------------------------------------------------------------------------------------------
// the report

type Results = Awaited<ReturnType<typeof runBench>>;

function fmtMs(s: Stats): string {
  return `${round(s.median, 1)} (${round(s.min, 1)}–${round(s.max, 1)})`;
}
function fmtCount(s: Stats): string {
  return s.min === s.max ? String(s.median) : `${s.median} (${s.min}–${s.max})`;
}

type TimingSummary = ReturnType<typeof summarizeTimings>;
const TIMING_ROWS: Array<[string, keyof TimingSummary]> = [
  ['workflow task: scheduled → started (server dispatch), ms median / p90', 'workflowTaskDispatch'],
  ['workflow task: started → completed (worker: the workflow code runs here), ms median / p90', 'workflowTaskProcessing'],
  ['activity: scheduled → started (server dispatch), ms median / p90', 'activityDispatch'],
  ['activity: started → completed (echo), ms median / p90', 'activityExecution'],
];
function fmtTiming(t: TimingSummary[keyof TimingSummary]): string {
  return `${t.median} / ${t.p90}`;
}

function markdown(r: Results): string {
  const lines: string[] = [];
  const p = (s = '') => lines.push(s);
  p('# Interpreter vs hand-written Temporal workflows');
  p();
  const git = r.environment.git;
  p(
    `Generated by \`npm run bench\` (bench/run.ts) on ${r.environment.date}` +
      (git ? ` at commit ${git.head}${git.dirty.length ? ` with uncommitted changes in ${git.dirty.join('; ')}` : ''}` : '') +
      `. Raw numbers: [${r.environment.devServerDynamicConfig.length ? 'results-dynconfig.json' : 'results.json'}](${r.environment.devServerDynamicConfig.length ? 'results-dynconfig.json' : 'results.json'}).`,
  );
  p();
  p(
    `One process, one local Temporal dev server (\`${r.environment.temporalCli}\`), Temporal TS SDK ${r.environment.sdk}, Node ${r.environment.node}, ` +
      `${r.environment.cpus} CPU(s) (${r.environment.cpuModel}), ${r.environment.memGb} GB RAM. The interpreter and the baselines run on the same ` +
      'workers (one workflow bundle holding both, the lane workers of workers/lane-worker.ts) with the same `echo` activity on the same `<lane>.skills` ' +
      'queue, the same SkillRequest envelope, summary, timeouts and retry policy. One run at a time; interpreter and baseline runs are interleaved ' +
      `(alternating which goes first) after ${r.settings.warmup} warm-up pair(s). Times are wall clock from the client's start call to the result; ` +
      'medians, with min–max in parentheses.',
  );
  p();

  p('## Headline ratios');
  p();
  p('| measurement | interpreter | hand-written | ratio (interpreter / hand-written) | history events (interpreter / hand-written) |');
  p('| --- | ---: | ---: | ---: | --- |');
  for (const s of [r.sequence100, r.sequence10]) {
    p(
      `| ${s.steps} sequential echo steps, median of ${s.reps} (ms) | ${fmtMs(s.ms.interpreter)} | ${fmtMs(s.ms.baseline)} | **${ratio(s.ratio)}**` +
        ` (median of per-pair ratios ${ratio(s.medianOfPerRepRatios)}) | ${fmtCount(s.events.interpreter)} / ${fmtCount(s.events.baseline)}${s.eventsEqual ? ' (equal)' : ' (**differ**)'} |`,
    );
  }
  if (r.echoLoop) {
    const l = r.echoLoop;
    const ev = (xs: typeof l.interpreter) => median(xs.map((x) => x.totalEvents));
    p(
      `| loop of ${l.iterations} echo calls, continue-as-new, ${l.reps} run(s) each (ms) | ${fmtMs(l.ms.interpreter)} | ${fmtMs(l.ms.baseline)} | **${ratio(l.ratio)}** | ${ev(l.interpreter)} / ${ev(l.baseline)} across ${median(l.interpreter.map((x) => x.runs))} / ${median(l.baseline.map((x) => x.runs))} runs |`,
    );
  }
  p();
  p('Target: ratio ≤ 1.05 for the 100-step sequence.');
  p();
  {
    const ti = r.sequence100.timings.interpreter;
    const tb = r.sequence100.timings.baseline;
    const dispatch = round(ti.workflowTaskDispatch.median + ti.activityDispatch.median, 1);
    p(
      `**Where a step's time goes** (100-step runs, medians): the server's dispatch of the workflow task and of the activity, ${dispatch} ms; ` +
        `the workflow code in the worker, ${ti.workflowTaskProcessing.median} ms per workflow task for the interpreter vs ${tb.workflowTaskProcessing.median} ms hand-written ` +
        `(the interpreter's own cost: about ${round(ti.workflowTaskProcessing.median - tb.workflowTaskProcessing.median, 2)} ms per step); the echo activity, ` +
        `${ti.activityExecution.median} ms.`,
    );
    p();
    if (r.environment.devServerDynamicConfig.length > 0) {
      p(`This run's dev server had extra dynamic config: \`${r.environment.devServerDynamicConfig.join(' ')}\`.`);
      p();
    } else if (dispatch > 20) {
      p(
        'The dispatch time is the dev server throttling itself: its history service polls its transfer queue at most 20 times a second by default ' +
          '(`history.transferProcessorMaxPollRPS`), so after a short burst every task waits ~45 ms before a worker can pick it up. That is the same ' +
          'for both sides, but it dominates a step and hides most of the interpreter\'s own cost in the wall-time ratios; the workflow-task times ' +
          'above compare the workflow code directly. `BENCH_TEMPORAL_DYNAMIC_CONFIG=history.transferProcessorMaxPollRPS=1000 npm run bench` runs ' +
          'the same bench with the throttle lifted (written to RESULTS-dynconfig.md).',
      );
      p();
    }
  }

  p('## 1. History events per step kind (interpreter)');
  p();
  p(
    `Each row runs a tiny definition ${r.settings.kindReps} time(s). "Attributable" subtracts the ${r.kinds[0]?.events.median}-event history of a run whose only step is a \`set\` ` +
      '(WorkflowExecutionStarted, one workflow task of 3 events, WorkflowExecutionCompleted/Failed). "Hand-written" is the history of the equivalent baseline workflow where one exists.',
  );
  p();
  p('| step kind | what runs | total events | attributable to the step | hand-written equivalent (total) | wall ms |');
  p('| --- | --- | ---: | ---: | ---: | ---: |');
  for (const k of r.kinds) {
    const extra = 'childEvents' in k && k.childEvents ? `; child run: ${fmtCount(k.childEvents)} events` : '';
    p(
      `| ${k.kind} | ${k.note}${extra} | ${fmtCount(k.events)} | ${k.attributable} | ${'handWrittenEvents' in k && k.handWrittenEvents ? fmtCount(k.handWrittenEvents) : '—'} | ${round(k.ms.median, 0)} |`,
    );
  }
  p();
  p(
    '`integration` uses the same activity path as `skill` (the interpreter proxies the activity on `<lane>.integrations` instead of `<lane>.skills`); ' +
      'it is measured here against a loopback HTTP server on 127.0.0.1, so it needs no network.',
  );
  p();

  for (const [title, s] of [
    ['2. 100 sequential echo steps', r.sequence100],
    ['3. 10 sequential echo steps', r.sequence10],
  ] as const) {
    p(`## ${title}`);
    p();
    p('| | interpreter | hand-written |');
    p('| --- | ---: | ---: |');
    p(`| wall ms, median (min–max) | ${fmtMs(s.ms.interpreter)} | ${fmtMs(s.ms.baseline)} |`);
    p(`| ms per step (median) | ${round(s.msPerStep.interpreter, 2)} | ${round(s.msPerStep.baseline, 2)} |`);
    p(`| history events | ${fmtCount(s.events.interpreter)} | ${fmtCount(s.events.baseline)} |`);
    p(`| payload bytes in history | ${s.payloadBytes.interpreter} | ${s.payloadBytes.baseline} |`);
    for (const [label, key] of TIMING_ROWS) {
      p(`| ${label} | ${fmtTiming(s.timings.interpreter[key])} | ${fmtTiming(s.timings.baseline[key])} |`);
    }
    p();
    const ti = s.timings.interpreter;
    const tb = s.timings.baseline;
    p(
      `Per step, the server's dispatch of the workflow task and of the activity takes ${ti.workflowTaskDispatch.median} + ${ti.activityDispatch.median} ms (interpreter runs) ` +
        `and ${tb.workflowTaskDispatch.median} + ${tb.activityDispatch.median} ms (hand-written runs); the workflow code itself holds each workflow task for ` +
        `${ti.workflowTaskProcessing.median} ms (interpreter) vs ${tb.workflowTaskProcessing.median} ms (hand-written), medians.`,
    );
    p();
    p(`Ratio of medians: **${ratio(s.ratio)}**; per-pair ratios: ${s.perRepRatios.map(ratio).join(', ')}. History events ${s.eventsEqual ? 'are equal in every pair' : '**differ**'}.`);
    p();
  }
  p(
    'Payload bytes are larger for the interpreter because its start event carries the whole definition and its result is `{output, state}` with every step\'s ' +
      'state; the hand-written workflow returns only the last output.',
  );
  p();

  p(`## 4. Loops of ${r.pureLoop.iterations} iterations`);
  p();
  const pl = r.pureLoop;
  p(`### (a) a loop of \`set\` steps only (${pl.reps} run(s))`);
  p();
  p('| | wall ms, median (min–max) | history events | continued as new |');
  p('| --- | ---: | ---: | ---: |');
  p(`| interpreter (\`loop\` + \`set\`) | ${fmtMs(pl.interpreter.ms)} | ${fmtCount(pl.interpreter.events)} | ${pl.interpreter.continuedAsNew} |`);
  p(`| hand-written \`for\` loop (reference) | ${fmtMs(pl.handWritten.ms)} | ${fmtCount(pl.handWritten.events)} | 0 |`);
  p();
  const yt = pl.interpreter.yieldTimerMs;
  p(
    `The engine runs up to ${r.environment.pureStepsPerTask.toLocaleString('en-US')} pure steps per workflow task (PURE_STEPS_PER_TASK), then yields it with a 1 ms timer ` +
      `(TimerStarted, TimerFired and a new workflow task: 5 events); the loop is ${pl.iterations + 1} steps (the loop step and ${pl.iterations} \`set\` steps). ` +
      `The workflow tasks held the worker for ${fmtMs(pl.interpreter.workflowTaskProcessingMs)} ms (median, min–max; Temporal's deadlock detector fails a task after 2 s)` +
      (yt ? `, and each 1 ms yield timer took ${fmtMs(yt)} ms to fire on the dev server, which is most of the run's wall time.` : '.'),
  );
  p();
  if (r.echoLoop) {
    const l = r.echoLoop;
    p(`### (b) a loop whose body calls echo: ${l.iterations} activities, ${l.reps} run(s) each`);
    p();
    if (l.attempt) {
      const a = l.attempt;
      if (a.completed) p(`The ${a.iterations}-iteration interpreter run finished within the ${a.budgetSeconds} s budget.`);
      else {
        const prog = a.progress as { iterationsDone?: number; continuedAsNew?: number; elapsedSeconds?: number; projectedSeconds?: number } | undefined;
        const projected = prog?.projectedSeconds !== undefined ? `, on course for about ${round(prog.projectedSeconds / 60, 1)} min for all ${a.iterations}` : '';
        p(
          `**Reduced to ${l.iterations} iterations.** The interpreter's ${a.iterations}-iteration run was tried first: after ${prog?.elapsedSeconds ?? '?'} s it had done ` +
            `${prog?.iterationsDone ?? '?'} iterations (${prog?.continuedAsNew ?? '?'} continue-as-new)${projected}, over the ${a.budgetSeconds} s budget, so it was terminated ` +
            'and both sides ran the smaller loop.',
        );
      }
      p();
    } else if (l.iterations !== 10_000) {
      p(`**Reduced to ${l.iterations} iterations** (BENCH_LOOP_ITERATIONS).`);
      p();
    }
    p('| | wall ms | ms per iteration | runs (continue-as-new chain) | events per run | total events | payload bytes |');
    p('| --- | ---: | ---: | ---: | --- | ---: | ---: |');
    for (const [name, xs] of [
      ['interpreter', l.interpreter],
      ['hand-written', l.baseline],
    ] as const) {
      for (const x of xs) {
        p(`| ${name} (${x.workflowId}) | ${round(x.ms, 0)} | ${round(x.ms / l.iterations, 2)} | ${x.runs} (reported continuedAsNew: ${x.continuedAsNewReported}) | ${x.eventsPerRun.join(', ')} | ${x.totalEvents} | ${x.payloadBytes} |`);
      }
    }
    p();
    p('| timings across every run of the chain | interpreter | hand-written |');
    p('| --- | ---: | ---: |');
    for (const [label, key] of TIMING_ROWS) {
      p(`| ${label} | ${fmtTiming(l.interpreter[0]!.timings[key])} | ${fmtTiming(l.baseline[0]!.timings[key])} |`);
    }
    p();
    p(
      `Both continue as new before a call when Temporal suggests it (\`continueAsNewSuggested\`) or the history holds ${l.continueAsNewAfterEvents} events ` +
        `(the interpreter's default policy). Ratio of medians: **${ratio(l.ratio)}**.` +
        (Math.max(...l.interpreter.flatMap((x) => x.eventsPerRun)) < l.continueAsNewAfterEvents
          ? ` Every run continued as new at Temporal's suggestion (the dev server suggests it after 4,096 events), well before the ${l.continueAsNewAfterEvents}-event threshold.`
          : ''),
    );
    p();
  } else {
    p('### (b) the echo loop was skipped (BENCH_SKIP_LOOP).');
    p();
  }

  p('## Memory');
  p();
  p('| when | RSS MB | heap used MB | peak RSS so far MB |');
  p('| --- | ---: | ---: | ---: |');
  for (const m of r.memory.snapshots) p(`| ${m.label} | ${m.rssMb} | ${m.heapUsedMb} | ${m.maxRssMb} |`);
  p();
  p(
    `The bench process holds the client, the workers (workflow sandbox and activities) and the Rust core. Peak RSS sampled every 250 ms: ${r.memory.sampledPeakRssMb} MB.` +
      (r.memory.devServer ? ` Temporal dev server (pids ${r.memory.devServer.pids.join(', ')}): peak ${r.memory.devServer.vmHwmMb} MB, ${r.memory.devServer.vmRssMb} MB at the end.` : ''),
  );
  p();
  if (r.notes.length) {
    p('## Notes');
    p();
    for (const n of r.notes) p(`- ${n}`);
    p();
  }
  p(`Total bench time: ${round(r.totalSeconds, 0)} s.`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------

async function startLoopback(): Promise<{ server: Server; url: string; host: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}/ok`, host: `127.0.0.1:${port}` };
}

/** The commit the bench ran against, and whether the engine's sources differ from it. */
function gitState(): { head: string; dirty: string[] } | undefined {
  try {
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'interpreter', 'workflows', 'activities', 'workers', 'common'], { cwd, encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((l) => l.trim());
    return { head, dirty };
  } catch {
    return undefined;
  }
}

async function runBench(logger: Logger) {
  const t0 = performance.now();
  const snapshots = [memorySnapshot('start')];
  let sampledPeak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss);
  }, 250);
  sampler.unref();
  const notes: string[] = [];
  // Before the bundle is built: the commit whose interpreter the workers run.
  const git = gitState();

  const loopback = await startLoopback();
  const realCli = resolveTemporalCli();
  let cliPath = realCli;
  let wrapperDir: string | undefined;
  if (SETTINGS.dynamicConfig.length > 0) {
    // startDevServer takes no extra flags: a one-line wrapper adds them.
    for (const kv of SETTINGS.dynamicConfig) {
      if (!/^[A-Za-z0-9_.]+=[A-Za-z0-9_.:-]+$/.test(kv)) throw new Error(`BENCH_TEMPORAL_DYNAMIC_CONFIG: "${kv}" is not key=value`);
    }
    wrapperDir = mkdtempSync(join(os.tmpdir(), 'bench-temporal-'));
    cliPath = join(wrapperDir, 'temporal');
    const flags = SETTINGS.dynamicConfig.map((kv) => `--dynamic-config-value ${kv}`).join(' ');
    writeFileSync(cliPath, `#!/bin/sh\nexec '${realCli.replace(/'/g, `'\\''`)}' "$@" ${flags}\n`);
    chmodSync(cliPath, 0o755);
  }
  let temporalCli = cliPath;
  try {
    temporalCli = execFileSync(realCli, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // keep the path
  }
  let server: DevServer | undefined;
  let workers: LaneWorkers | undefined;
  let running: Promise<void> | undefined;
  let native: NativeConnection | undefined;
  let connection: Connection | undefined;
  try {
    server = await startDevServer({ cliPath, port: await freePort(), headless: true, logger });
    const lane = `bench-${randomBytes(3).toString('hex')}`;
    const config = loadConfig({
      TEMPORAL_ADDRESS: server.address,
      LANES: lane,
      DEFAULT_LANE: lane,
      HTTP_FETCH_ALLOWED_HOSTS: loopback.host,
      LOG_LEVEL: logger.level,
    });
    const catalog = createActivityCatalog(config);

    const bundleStarted = performance.now();
    const bundle = await buildWorkflowBundle(logger, ENTRY);
    const bundleMs = performance.now() - bundleStarted;

    native = await NativeConnection.connect({ address: server.address });
    workers = await createLaneWorkers({ config, lane, logger, workflowBundle: { code: bundle.code }, connection: native, catalog });
    running = workers.run();
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });

    const names = catalogNames(catalog);
    const validation: ValidationContext = { ...names, lanes: [lane], definitions: new Set([`${CHILD_DEFINITION.name}@${CHILD_DEFINITION.version}`]) };
    const child = validateDefinition(CHILD_DEFINITION, validation);
    if (!child.ok) throw new Error(`child definition invalid: ${JSON.stringify(child.problems)}`);
    const ctx: Ctx = {
      client,
      lane,
      logger,
      validation,
      subDefinitions: {},
      seq: 0,
    };
    const kindsCtx: Ctx = { ...ctx, subDefinitions: { [`${CHILD_DEFINITION.name}@${CHILD_DEFINITION.version}`]: { definition: child.definition, hash: 'bench-child' } } };
    snapshots.push(memorySnapshot('workers up'));

    // Warm-up: JIT, the workflow sandbox, sticky queues, the dev server's caches.
    logger.warn({ pairs: SETTINGS.warmup }, 'warming up');
    for (let i = 0; i < SETTINGS.warmup; i += 1) {
      await measureSequence(ctx, 10, 2);
    }
    if (SETTINGS.warmup > 0) {
      await measureSequence(ctx, 100, 1);
      await measurePureLoop(ctx, 1000, 1);
    }

    logger.warn('1/4 step kinds');
    const kinds = await measureKinds(kindsCtx, loopback.url);
    // ids keep counting in kindsCtx; carry on from there so every workflow id stays unique
    ctx.seq = kindsCtx.seq;

    logger.warn({ reps: SETTINGS.reps100 }, '2/4 100-step sequence');
    const sequence100 = await measureSequence(ctx, 100, SETTINGS.reps100);
    logger.warn({ ratio: round(sequence100.ratio, 3) }, '100-step sequence measured');
    logger.warn({ reps: SETTINGS.reps10 }, '3/4 10-step sequence');
    const sequence10 = await measureSequence(ctx, 10, SETTINGS.reps10);
    logger.warn({ ratio: round(sequence10.ratio, 3) }, '10-step sequence measured');
    snapshots.push(memorySnapshot('after sequences'));

    logger.warn({ iterations: SETTINGS.loopIterations }, '4/4 loops');
    const pureLoopResult = await measurePureLoop(ctx, SETTINGS.loopIterations, SETTINGS.pureReps);
    let echoLoopResult: Awaited<ReturnType<typeof measureEchoLoop>> | undefined;
    if (process.env.BENCH_SKIP_LOOP || SETTINGS.loopReps === 0) {
      notes.push('The echo loop (4b) was skipped (BENCH_SKIP_LOOP or BENCH_LOOP_REPS=0).');
    } else {
      echoLoopResult = await measureEchoLoop(ctx, SETTINGS.loopIterations, SETTINGS.loopReps, SETTINGS.loopFallbackIterations, SETTINGS.loopBudgetSeconds * 1000);
      if (echoLoopResult.iterations !== 10_000) {
        const a = echoLoopResult.attempt;
        notes.push(
          a && !a.completed
            ? `The echo loop (4b) ran ${echoLoopResult.iterations} iterations, not ${a.iterations}: the interpreter's ${a.iterations}-iteration run did not finish within the ${a.budgetSeconds} s budget (progress when terminated: ${JSON.stringify(a.progress)}).`
            : `The echo loop (4b) ran ${echoLoopResult.iterations} iterations instead of 10,000 (BENCH_LOOP_ITERATIONS).`,
        );
      }
    }
    snapshots.push(memorySnapshot('after loops'));

    const devServer = processTreePeakRss(server.process.pid);
    clearInterval(sampler);
    sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss);
    const sdk = (JSON.parse(readFileSync(fileURLToPath(new URL('../node_modules/@temporalio/worker/package.json', import.meta.url)), 'utf8')) as { version: string }).version;
    return {
      environment: {
        date: new Date().toISOString(),
        node: process.version,
        sdk,
        temporalCli: temporalCli.replace(/\s+/g, ' '),
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memGb: round(os.totalmem() / 1024 ** 3, 1),
        bundleMs: round(bundleMs, 0),
        pureStepsPerTask: PURE_STEPS_PER_TASK,
        git,
        devServerDynamicConfig: SETTINGS.dynamicConfig,
      },
      settings: SETTINGS,
      kinds,
      sequence100,
      sequence10,
      pureLoop: pureLoopResult,
      echoLoop: echoLoopResult,
      memory: { snapshots, sampledPeakRssMb: mb(sampledPeak), devServer },
      notes,
      totalSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    clearInterval(sampler);
    workers?.shutdown();
    await running?.catch((error: unknown) => logger.error({ err: error }, 'workers failed'));
    await connection?.close();
    await native?.close();
    await server?.stop();
    await new Promise<void>((resolve) => loopback.server.close(() => resolve()));
    if (wrapperDir) rmSync(wrapperDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const suffix = SETTINGS.dynamicConfig.length > 0 ? '-dynconfig' : '';
  if (process.argv.includes('--report')) {
    // Rewrites the markdown from the last results file, without running anything.
    const saved = JSON.parse(readFileSync(`${BENCH_DIR}results${suffix}.json`, 'utf8')) as Results;
    writeFileSync(`${BENCH_DIR}RESULTS${suffix}.md`, markdown(saved));
    process.stdout.write(markdown(saved));
    return;
  }
  const logger = createLogger('bench', process.env.LOG_LEVEL ?? 'warn');
  installRuntime(logger);
  const results = await runBench(logger);
  writeFileSync(`${BENCH_DIR}results${suffix}.json`, `${JSON.stringify(results, null, 2)}\n`);
  const md = markdown(results);
  writeFileSync(`${BENCH_DIR}RESULTS${suffix}.md`, md);
  process.stdout.write(md);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
