// Over 400 lines: one concept, the history estimate: the cost of each step kind, the run totals with continue-as-new, and the limits checked against them.
import type { CompiledStep, Plan } from './compile.ts';
import { PURE_STEPS_PER_TASK } from './engine.ts';
import {
  ACTIVITY_EVENTS,
  approvalEvents,
  CHILD_EVENTS,
  CURRENT_PATCHES,
  PATCH_EVENTS,
  RUN_FIXED_EVENTS,
  RUN_START_EVENTS,
  startedCost,
  SIGNAL_EVENTS,
  TIMER_CANCELLED_EVENTS,
  TIMER_EVENTS,
  WRITE_EVENTS,
  type ApprovalPath,
} from './history-costs.ts';
import { PATCHES } from './port.ts';
import { LIMITS } from './schema.ts';

export type { ApprovalPath } from './history-costs.ts';

/**
 * Submit-time estimates of a run's Temporal history: events and payload bytes for a typical and a
 * worst case, against Temporal's limits, with continue-as-new taken into account. The cost of
 * each step kind is the table in docs/definition-language.md ("History cost per step kind"),
 * checked against the recorded replay fixtures in test/unit/estimate.test.ts.
 *
 * The path a run takes depends on its data, so the cases assume:
 * - typical: every step runs once, `if` true, the costlier branch of each conditional/switch,
 *   loops at min(3, max_iterations) iterations, for_each over its literal items (else 10),
 *   one event per wait_for_event, each approval decided by its quorum, no failures.
 * - worst: loops at max_iterations, for_each at its literal items (else the 100,000-item cap),
 *   every `linear` retry taken, approvals escalated, waits timing out, the rollback path run.
 * A `path` overrides the typical assumptions per step (what a dry run or a recorded run took).
 *
 * Pure: validation runs it in the API, and it may run in the workflow sandbox.
 */

/** Temporal's per-run limits (server defaults) and the platform's warning threshold. */
export const HISTORY_LIMITS = {
  /** Temporal terminates a run whose history reaches this many events. */
  maxEvents: 51_200,
  /** Temporal terminates a run whose history reaches this many bytes. */
  maxHistoryBytes: 50 * 1024 * 1024,
  /** Temporal refuses a single payload over this size. */
  maxPayloadBytes: 2 * 1024 * 1024,
  /** Above this many events in one run, the estimate warns. */
  warnEvents: 10_000,
} as const;

/** Bytes an event costs besides its payloads (ids, timestamps, attributes), measured on the fixtures. */
const EVENT_OVERHEAD_BYTES = 300;
/** What a step output is assumed to weigh when nothing bounds it. */
const TYPICAL_OUTPUT_BYTES = 1024;
const WORST_OUTPUT_BYTES = 64 * 1024;
const TYPICAL_ITEMS = 10;
const TYPICAL_LOOP_ITERATIONS = 3;

/** What a specific run did, per step id: overrides the typical assumptions (dry run, recorded runs). */
export interface RunPath {
  /** Loop iterations by loop step id. */
  iterations?: Record<string, number>;
  /** for_each item count by step id. */
  items?: Record<string, number>;
  /** Steps whose `if` was false (or that never ran). */
  skipped?: readonly string[];
  /** The branch a conditional (`then`/`else`) or switch (case index, or `default`) took. */
  branches?: Record<string, 'then' | 'else' | 'default' | number>;
  /** Signals (events) a wait_for_event received, by step id (default 1). */
  signals?: Record<string, number>;
  /** Decisions an approval received, by step id (default: its quorum). */
  decisions?: Record<string, number>;
  /** Whether lifecycle events are recorded (default true, as the platform does). */
  lifecycleEvents?: boolean;
  /** How each approval went, by step id (signals, escalations, timeouts); overrides `decisions`. */
  approvals?: Record<string, ApprovalPath>;
  /**
   * The patches the run took (interpreter/port.ts PATCHES), each recorded once per run where its
   * path reaches it. Default: every current one, as for a run started today; a history recorded
   * before a patch existed names the ones it has.
   */
  patches?: readonly string[];
  /** Whether the run fails (default: a `fail` step that ends the run lies on the typical path). */
  failed?: boolean;
}

export interface CaseEstimate {
  /** Events of the whole run, all continue-as-new segments together. */
  events: number;
  /** The largest single run (segment) after continue-as-new. */
  eventsPerRun: number;
  /** How many runs continue-as-new splits it into. */
  runs: number;
  /** Payload bytes written to the history (inputs and outputs of activities and children). */
  payloadBytes: number;
  /** History bytes of the largest run: events × overhead + its payloads. */
  historyBytesPerRun: number;
  /** What continue-as-new carries (every step output): it is one payload. */
  carriedStateBytes: number;
}

export interface EstimateNote {
  path: string;
  stepId?: string;
  message: string;
}

export interface HistoryEstimate {
  typical: CaseEstimate;
  worst: CaseEstimate;
  limits: typeof HISTORY_LIMITS & { continueAsNewAfterEvents: number };
  /** Cost per top-level step (typical and worst events), in order. */
  steps: Array<{ stepId: string; path: string; typical: number; worst: number }>;
  warnings: EstimateNote[];
  /** Steps that must exceed a hard limit: the definition is refused. */
  problems: EstimateNote[];
  assumptions: string[];
}

interface Cost {
  events: number;
  /** The fewest events the step can cost (branches, loops and fan-out at their least). */
  minEvents: number;
  payload: number;
  state: number;
  /** Events that cannot be split by continue-as-new (no safe point inside). */
  unsplittable: number;
  /** Lifecycle-event batches the step causes (it makes the run wait on something slow). */
  slowWaits: number;
  /** Pure steps executed (set, conditional, ...): every PURE_STEPS_PER_TASK of them cost a 1 ms timer. */
  pure: number;
  /** A step on this path ends the run with a failure. */
  fails: boolean;
  /** A parallel step with `wait_for` "any" or N is on this path (the parallel-first-wins patch). */
  races: boolean;
}

const ZERO: Cost = { events: 0, minEvents: 0, payload: 0, state: 0, unsplittable: 0, slowWaits: 0, pure: 0, fails: false, races: false };

function add(a: Cost, b: Cost): Cost {
  return {
    events: a.events + b.events,
    minEvents: a.minEvents + b.minEvents,
    payload: a.payload + b.payload,
    state: a.state + b.state,
    unsplittable: Math.max(a.unsplittable, b.unsplittable),
    slowWaits: a.slowWaits + b.slowWaits,
    pure: a.pure + b.pure,
    fails: a.fails || b.fails,
    races: a.races || b.races,
  };
}

function times(c: Cost, n: number, minN: number): Cost {
  return { ...c, events: c.events * n, minEvents: c.minEvents * minN, payload: c.payload * n, slowWaits: c.slowWaits * n, pure: c.pure * n, fails: c.fails && n > 0, races: c.races && n > 0 };
}

/** Bytes of the literal parts of a compiled value; each template counts as a small value. */
function valueBytes(value: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(value, (k, v: unknown) => (k === 'expr' ? '${…}' : v)) ?? '').length;
  } catch {
    return 0;
  }
}

type Mode = 'typical' | 'worst';

/** A step's own deadline in a workflow-code step (a timer, cancelled when it finishes first). */
function withDeadline(s: CompiledStep, c: Cost): Cost {
  const deadline = s.timeoutSeconds !== undefined && s.kind !== 'activity' && s.kind !== 'wait_for_event' && s.kind !== 'approval' ? TIMER_CANCELLED_EVENTS : 0;
  return { ...c, events: c.events + deadline, minEvents: c.minEvents + deadline };
}

type LeafStep = Extract<CompiledStep, { kind: 'activity' | 'set' | 'fail' | 'succeed' | 'wait' | 'wait_for_event' | 'approval' | 'sub_workflow' }>;
type CompositeStep = Exclude<CompiledStep, LeafStep>;

function isLeaf(s: CompiledStep): s is LeafStep {
  return ['activity', 'set', 'fail', 'succeed', 'wait', 'wait_for_event', 'approval', 'sub_workflow'].includes(s.kind);
}

/** The cost walk over one plan, with the run path it assumes and the notes it collects. */
class Estimator {
  readonly threshold: number;
  readonly path: RunPath;
  readonly patches: Set<string>;
  private readonly proofs: boolean;
  readonly warnings: EstimateNote[] = [];
  readonly problems: EstimateNote[] = [];

  constructor(
    private readonly plan: Plan,
    options: { continueAsNewAfterEvents?: number; path?: RunPath },
  ) {
    this.threshold = options.continueAsNewAfterEvents ?? 10_000;
    this.path = options.path ?? {};
    this.patches = new Set(this.path.patches ?? CURRENT_PATCHES);
    this.proofs = this.patches.has(PATCHES.decisionProofs);
  }

  list(steps: readonly CompiledStep[], mode: Mode, safe: boolean): Cost {
    return steps.reduce((acc, s) => add(acc, this.step(s, mode, safe)), ZERO);
  }

  step(s: CompiledStep, mode: Mode, safe: boolean): Cost {
    if (mode === 'typical' && this.path.skipped?.includes(s.id)) return ZERO;
    const own = isLeaf(s) ? this.leaf(s, mode, safe) : this.composite(s, mode, safe);
    // A step with an `if` may not run at all.
    const cost = s.if ? { ...own, minEvents: 0 } : own;
    if (!safe) cost.unsplittable = Math.max(cost.unsplittable, cost.events);
    return cost;
  }

  /** A step with no inner steps: an activity or child call, a wait, an approval, or workflow code. */
  private leaf(s: LeafStep, mode: Mode, safe: boolean): Cost {
    switch (s.kind) {
      case 'activity': {
        const child = s.family === 'agents';
        const each = child ? CHILD_EVENTS : ACTIVITY_EVENTS;
        // Temporal's retry policy adds no events; `linear` attempts are the interpreter's: each recorded, a timer between.
        const attempts = mode === 'worst' && s.retry.linear ? s.retry.maxAttempts : 1;
        const events = each * attempts + (attempts - 1) * TIMER_EVENTS;
        const output = mode === 'worst' ? WORST_OUTPUT_BYTES : TYPICAL_OUTPUT_BYTES;
        const inputBytes = valueBytes(s.inputs);
        let cost: Cost = { ...ZERO, events, minEvents: each, payload: (inputBytes + output) * attempts, state: output, slowWaits: child || s.family === 'models' ? 1 : 0 };
        if (mode === 'worst') cost = add(cost, this.failurePath(s, safe));
        return cost;
      }
      case 'set':
      case 'fail':
      case 'succeed': {
        const own = withDeadline(s, { ...ZERO, pure: 1, state: s.kind === 'set' ? valueBytes(s.values) : 0, fails: s.kind === 'fail' && (s.onError.action === 'halt' || s.onError.action === 'rollback') });
        // A fail step always fails: its custom handler always runs, in the typical case too.
        return s.kind === 'fail' && s.onError.action === 'custom' ? add(own, this.list(s.onError.handler, 'typical', false)) : own;
      }
      case 'wait': {
        const fires = s.durationMs !== undefined ? s.durationMs > 0 : mode === 'worst';
        const events = fires ? TIMER_EVENTS : 0;
        return { ...ZERO, events, minEvents: s.durationMs !== undefined && s.durationMs > 0 ? TIMER_EVENTS : 0, slowWaits: fires && (s.durationMs ?? 2000) >= 2000 ? 1 : 0 };
      }
      case 'wait_for_event': {
        const signals = mode === 'typical' ? (this.path.signals?.[s.id] ?? 1) : 1;
        const timer = s.timeoutSeconds === undefined ? 0 : mode === 'worst' ? TIMER_EVENTS : TIMER_CANCELLED_EVENTS;
        return { ...ZERO, events: signals * SIGNAL_EVENTS + timer, minEvents: s.timeoutSeconds === undefined ? SIGNAL_EVENTS : Math.min(SIGNAL_EVENTS, TIMER_EVENTS), payload: signals * 512, slowWaits: 1 };
      }
      case 'approval': {
        const events = approvalEvents(s, mode, mode === 'typical' ? this.path.approvals?.[s.id] : undefined, { proofs: this.proofs, firstStageDecisions: mode === 'typical' ? this.path.decisions?.[s.id] : undefined });
        const least = approvalEvents(s, 'typical', { updates: s.stages[0]?.quorum ?? 1 }, { proofs: this.proofs });
        return { ...ZERO, events, minEvents: least, payload: events * 64, slowWaits: 1 };
      }
      case 'sub_workflow': {
        let cost: Cost = { ...ZERO, events: CHILD_EVENTS, minEvents: CHILD_EVENTS, payload: valueBytes(s.inputs) + TYPICAL_OUTPUT_BYTES, state: TYPICAL_OUTPUT_BYTES, slowWaits: 1 };
        if (mode === 'worst') cost = add(cost, this.failurePath(s, safe));
        return cost;
      }
    }
  }

  /** A step with inner steps: its branches, iterations or block. */
  private composite(s: CompositeStep, mode: Mode, safe: boolean): Cost {
    switch (s.kind) {
      case 'block': {
        const inner = this.list(s.steps, mode, safe);
        return withDeadline(s, { ...inner, pure: inner.pure + 1 });
      }
      case 'conditional': {
        const taken = mode === 'typical' ? this.path.branches?.[s.id] : undefined;
        const then = this.list(s.then, mode, safe);
        const otherwise = this.list(s.else, mode, safe);
        const chosen = taken === 'then' ? then : taken === 'else' ? otherwise : then.events >= otherwise.events ? then : otherwise;
        return withDeadline(s, { ...chosen, pure: chosen.pure + 1, minEvents: Math.min(then.minEvents, otherwise.minEvents) });
      }
      case 'switch': {
        const branches = [...s.cases.map((c) => this.list(c.steps, mode, safe)), this.list(s.default, mode, safe)];
        const taken = mode === 'typical' ? this.path.branches?.[s.id] : undefined;
        const index = taken === 'default' ? branches.length - 1 : typeof taken === 'number' ? taken : undefined;
        const chosen = (index !== undefined ? branches[index] : undefined) ?? branches.reduce((a, b) => (b.events > a.events ? b : a));
        return withDeadline(s, { ...chosen, pure: chosen.pure + 1, minEvents: Math.min(...branches.map((b) => b.minEvents)) });
      }
      case 'parallel': {
        // No safe point inside a branch: the whole step is one unsplittable piece.
        const branches = s.branches.map((b) => this.step(b, mode, false));
        const needed = s.waitFor === 'all' ? branches.length : s.waitFor === 'any' ? 1 : s.waitFor;
        const order = branches.map((b, i) => i).sort((a, b) => (branches[a]?.events ?? 0) - (branches[b]?.events ?? 0));
        // With any/N the first branches to finish win; the others were started and are cancelled.
        const winners = mode === 'worst' ? order : order.slice(0, needed);
        const losers = mode === 'worst' ? [] : order.slice(needed);
        const cancelled = losers.reduce((n, i) => n + (s.branches[i] ? startedCost(s.branches[i]) : 0), 0);
        const cost = winners.map((i) => branches[i] ?? ZERO).reduce(add, ZERO);
        cost.events += cancelled;
        cost.minEvents = [...branches].sort((a, b) => a.minEvents - b.minEvents).slice(0, needed).reduce((n, b) => n + b.minEvents, 0);
        cost.unsplittable = cost.events;
        cost.races ||= s.waitFor !== 'all';
        return withDeadline(s, cost);
      }
      case 'for_each': {
        const literal = s.items.kind === 'array' ? s.items.items.length : s.items.kind === 'literal' && Array.isArray(s.items.value) ? s.items.value.length : undefined;
        const n = mode === 'typical' ? (this.path.items?.[s.id] ?? literal ?? TYPICAL_ITEMS) : (literal ?? LIMITS.maxForEachItems);
        // Between iterations is a safe point (when the for_each itself is at one); inside one is not.
        const iteration = this.list(s.steps, mode, false);
        const cost = times(iteration, n, literal ?? 0);
        cost.state = iteration.state * n;
        return withDeadline(s, cost);
      }
      case 'loop': {
        const n = mode === 'typical' ? (this.path.iterations?.[s.id] ?? Math.min(TYPICAL_LOOP_ITERATIONS, s.maxIterations)) : s.maxIterations;
        const iteration = this.list(s.steps, mode, safe);
        return withDeadline(s, times(iteration, n, 0));
      }
    }
  }

  /** The worst case after a step's last failed attempt: its handler or the rollback path. */
  private failurePath(s: CompiledStep, safe: boolean): Cost {
    if (s.onError.action === 'custom') return this.list(s.onError.handler, 'typical', false);
    void safe;
    return ZERO;
  }

  run(mode: Mode): { cost: Cost; total: CaseEstimate; perStep: number[] } {
    const perStep: number[] = [];
    let cost = ZERO;
    for (const s of this.plan.steps) {
      const c = this.step(s, mode, true);
      perStep.push(c.events);
      cost = add(cost, c);
    }
    if (mode === 'worst' && this.plan.rollback.enabled) {
      // Every compensation registered, newest first, then the rollback steps: no safe point inside.
      const compensations = [...this.plan.byId.values()].flatMap((s) => s.compensate ?? []);
      const rollback = add(this.list(compensations, 'typical', false), this.list(this.plan.rollback.steps, 'typical', false));
      rollback.unsplittable = rollback.events;
      cost = add(cost, rollback);
    }
    const lifecycle = this.path.lifecycleEvents ?? true;
    const pure = Math.floor(cost.pure / PURE_STEPS_PER_TASK) * TIMER_EVENTS;
    // Every run (each continue-as-new segment too) takes the decision-proofs patch at its start.
    const perRunPatches = this.patches.has(PATCHES.decisionProofs) ? PATCH_EVENTS : 0;
    const failed = mode === 'worst' || (this.path.failed ?? cost.fails);
    const oncePatches =
      (failed && this.patches.has(PATCHES.stepFailureType) ? PATCH_EVENTS : 0) + (cost.races && this.patches.has(PATCHES.parallelFirstWins) ? PATCH_EVENTS : 0);
    const once = RUN_FIXED_EVENTS + cost.events + pure + oncePatches + (lifecycle ? (cost.slowWaits + 1) * WRITE_EVENTS : 0);
    // A run continues as new at the first safe point past the this.threshold (or Temporal's suggestion);
    // each new run starts again (started, a workflow task, its this.patches).
    const runs = once + perRunPatches <= this.threshold ? 1 : Math.ceil(once / this.threshold);
    const events = once + runs * perRunPatches + (runs - 1) * RUN_START_EVENTS;
    const eventsPerRun = runs === 1 ? events : Math.min(events, this.threshold + cost.unsplittable);
    const payloadPerRun = runs === 1 ? cost.payload : Math.ceil(cost.payload / runs) + cost.state;
    return {
      cost,
      perStep,
      total: {
        events,
        eventsPerRun,
        runs,
        payloadBytes: cost.payload,
        historyBytesPerRun: eventsPerRun * EVENT_OVERHEAD_BYTES + payloadPerRun,
        carriedStateBytes: cost.state,
      },
    };
  }

  // Refuse what must exceed a hard limit whatever the data: an unsplittable piece at its least.
  mustExceed(steps: readonly CompiledStep[], safe: boolean): void {
    for (const s of steps) {
      const least = this.step(s, 'typical', safe).minEvents;
      const unsplittable = s.kind === 'parallel' || !safe;
      if (unsplittable && least + RUN_FIXED_EVENTS > HISTORY_LIMITS.maxEvents) {
        this.problems.push({
          path: s.pointer,
          stepId: s.id,
          message: `step "${s.id}" needs at least ${least} history events with no point where the run can continue as new (Temporal ends a run at ${HISTORY_LIMITS.maxEvents}); split it, e.g. move it into a sub_workflow or fan out fewer items per run`,
        });
      } else if (s.kind === 'for_each' || s.kind === 'loop' || s.kind === 'block' || s.kind === 'conditional' || s.kind === 'switch') {
        const inner = s.kind === 'for_each' || s.kind === 'loop' || s.kind === 'block' ? s.steps : s.kind === 'conditional' ? [...s.then, ...s.else] : [...s.cases.flatMap((c) => c.steps), ...s.default];
        this.mustExceed(inner, safe && s.kind !== 'for_each' ? true : false);
      }
    }
  };

  /** Warns when one run of a case reaches Temporal's history or payload limits. */
  limitsWarn(c: CaseEstimate, name: Mode): void {
    if (c.eventsPerRun > HISTORY_LIMITS.maxEvents) {
      this.warnings.push({ path: '/steps', message: `in the ${name} case one run reaches about ${c.eventsPerRun} history events, past Temporal's limit of ${HISTORY_LIMITS.maxEvents}` });
    } else if (c.eventsPerRun > HISTORY_LIMITS.warnEvents) {
      this.warnings.push({ path: '/steps', message: `in the ${name} case one run reaches about ${c.eventsPerRun} history events (warning at ${HISTORY_LIMITS.warnEvents}; continue-as-new at ${this.threshold})` });
    }
    if (c.historyBytesPerRun > HISTORY_LIMITS.maxHistoryBytes) {
      this.warnings.push({ path: '/steps', message: `in the ${name} case one run's history reaches about ${Math.round(c.historyBytesPerRun / 1048576)} MiB, past Temporal's ${HISTORY_LIMITS.maxHistoryBytes / 1048576} MiB` });
    }
    if (c.runs > 1 && c.carriedStateBytes > HISTORY_LIMITS.maxPayloadBytes) {
      this.warnings.push({ path: '/steps', message: `in the ${name} case the state continue-as-new carries (every step output) is about ${Math.round(c.carriedStateBytes / 1024)} KiB, past Temporal's 2 MiB payload limit; keep outputs small` });
    }
  }
}

/** Estimates a compiled definition's history. `continueAsNewAfterEvents` is RUN_CONTINUE_AS_NEW_EVENTS. */
export function estimateHistory(plan: Plan, options: { continueAsNewAfterEvents?: number; path?: RunPath } = {}): HistoryEstimate {
  const estimator = new Estimator(plan, options);
  const threshold = estimator.threshold;
  const typical = estimator.run('typical');
  const worst = estimator.run('worst');
  estimator.mustExceed(plan.steps, true);
  estimator.limitsWarn(typical.total, 'typical');
  estimator.limitsWarn(worst.total, 'worst');

  return {
    typical: typical.total,
    worst: worst.total,
    limits: { ...HISTORY_LIMITS, continueAsNewAfterEvents: threshold },
    steps: plan.steps.map((s, i) => ({ stepId: s.id, path: s.pointer, typical: typical.perStep[i] ?? 0, worst: worst.perStep[i] ?? 0 })),
    warnings: estimator.warnings,
    problems: estimator.problems,
    assumptions: [
      'typical: every step runs once with its if true, the costlier branch, loops at min(3, max_iterations), for_each over its literal items (else 10), one event per wait_for_event, approvals decided by their quorum, no failures, outputs of 1 KiB',
      'worst: loops at max_iterations, for_each over its literal items (else 100000), linear retries exhausted, custom handlers run, approvals escalated, timers fire, the rollback path runs, outputs of 64 KiB',
      `continue-as-new after ${threshold} events at the next safe point; nothing inside a parallel step, a for_each iteration, a handler or the rollback path can be split`,
      'lifecycle events recorded: one write per slow wait (approval, timer of 2 s or more, event, child, model or agent call) and one at the end',
    ],
  };
}
