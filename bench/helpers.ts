import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type WorkflowHandle } from '@temporalio/client';

/** Shared by the measurements: settings from the environment, statistics, payload bytes, history timings and memory snapshots. */

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const ENTRY = fileURLToPath(new URL('./workflows-entry.ts', import.meta.url));

export const intEnv = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return n;
};

export const SETTINGS = {
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

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
/** A ratio with three decimals, always (1.000, not 1). */
export const ratio = (x: number): string => x.toFixed(3);
export const mb = (bytes: number): number => round(bytes / (1024 * 1024), 1);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}
export const stats = (samples: number[]): Stats => ({ median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples });

/** Sum of every payload byte in a history (Uint8Array fields: inputs, results, headers, memos). */
export function payloadBytes(value: unknown, seen = new Set<unknown>()): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (value === null || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  let total = 0;
  for (const v of Array.isArray(value) ? value : Object.values(value)) total += payloadBytes(v, seen);
  return total;
}

export type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

export const num = (x: unknown): number => (typeof x === 'number' ? x : Number(String(x)));

/**
 * Where a history's time went, from the server's event timestamps (ms): how long tasks waited to
 * be picked up (dispatch) and how long the worker held them (for workflow tasks, that is where the
 * interpreter's own CPU time is).
 */
export interface Timings {
  workflowTaskDispatch: number[];
  workflowTaskProcessing: number[];
  activityDispatch: number[];
  activityExecution: number[];
  /** TimerStarted → TimerFired, whatever the timer's duration. */
  timerFired: number[];
}
export const emptyTimings = (): Timings => ({ workflowTaskDispatch: [], workflowTaskProcessing: [], activityDispatch: [], activityExecution: [], timerFired: [] });

export function collectTimings(h: History, into: Timings = emptyTimings()): Timings {
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

export function mergeTimings(list: Timings[]): Timings {
  const out = emptyTimings();
  for (const t of list) for (const k of Object.keys(out) as Array<keyof Timings>) out[k].push(...t[k]);
  return out;
}

/** Medians (and 90th percentiles) of each timing, in ms. */
export function summarizeTimings(t: Timings) {
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
export function processTreePeakRss(rootPid: number | undefined): { pids: number[]; vmHwmMb: number; vmRssMb: number } | undefined {
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

export function memorySnapshot(label: string) {
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
