import { ExpressionError, type BindingName, type EvaluationData } from './expressions.ts';
import type { CompiledStep, Plan } from './plan.ts';
import { StepCallError, type InterpreterPort, type RunContext, type RunState, type StepError, type StepState, type StepStatus } from './port.ts';

/**
 * What the engine and the step kinds' executors share: the control signals that travel up the
 * call stack, frames (the step states and bindings one sequence sees), the race of a `parallel`
 * step, and `Runner`, the engine's services a step kind's `execute` may call.
 */

/** A `succeed` step ends the run early with this output. */
export class SucceedSignal {
  constructor(
    readonly stepId: string,
    readonly output: unknown,
    readonly hasOutput: boolean,
  ) {}
}

/** A step failure travelling up to the run (or to a policy that handles it). */
export class StepFailure extends Error {
  override name = 'StepFailure';
  constructor(
    readonly error: StepError,
    /** The innermost failing step. */
    readonly stepId: string,
    /** A `rollback` policy fired: no outer policy may swallow this failure. */
    readonly rollback = false,
  ) {
    super(error.message);
  }
}

/** Deterministic FIFO semaphore (plain promises: safe in the workflow sandbox). */
export class Semaphore {
  private waiters: Array<() => void> = [];
  constructor(private available: number) {}
  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available += 1;
  }
}

/** Step states visible to one sequence: the run's own map, or an overlay per for_each iteration. */
export class StateStore {
  constructor(
    private readonly local: Record<string, StepState>,
    private readonly parent?: StateStore,
  ) {}
  get(id: string): StepState | undefined {
    return Object.prototype.hasOwnProperty.call(this.local, id) ? this.local[id] : this.parent?.get(id);
  }
  set(id: string, state: StepState): void {
    this.local[id] = state;
  }
  delete(id: string): void {
    delete this.local[id];
  }
  /** This store's own entries (not its parent's). */
  own(): Record<string, StepState> {
    return this.local;
  }
  view(): Record<string, StepState> {
    return this.parent ? { ...this.parent.view(), ...this.local } : this.local;
  }
  child(): StateStore {
    return new StateStore({}, this);
  }
}

export interface Frame {
  /** Set inside the branches of a `parallel` step that waits for fewer than all of them. */
  race?: Race;
  states: StateStore;
  bindings: Partial<Record<BindingName, unknown>>;
  /** Prefix of step paths (idempotency keys) in this frame, e.g. `each[3]/`. */
  path: string;
  /** Inside a parallel branch or a concurrent for_each: other work may be in flight. */
  concurrent: boolean;
  /** Progress here lives in the run's own state and can resume after continue-as-new. */
  persistable: boolean;
}

/**
 * A `parallel` step waiting for fewer than all of its branches. A branch wins the moment its own
 * step completes (synchronously, inside that step's completion), so branches finishing in the same
 * workflow task cannot all win. Once enough have won, or the step gave up on a failure, the race is
 * over: no step of another branch starts or completes any more, it is cancelled instead.
 */
export interface Race {
  /** The branches' step ids. */
  branches: ReadonlySet<string>;
  /** Ids of the branches that won, in the order they completed. */
  winners: Set<string>;
  over: boolean;
  /** Records a win; ends the race when it is the last one needed. */
  win(branchId: string): void;
  /** The race of an enclosing `parallel` step whose branch this one runs in. */
  parent?: Race;
}

export function raceOver(race: Race | undefined): boolean {
  for (let r = race; r; r = r.parent) if (r.over) return true;
  return false;
}

export function toStepError(error: unknown): StepError {
  if (error instanceof StepFailure) return error.error;
  if (error instanceof StepCallError) {
    const base: StepError = error.attempts === undefined ? { message: error.message, type: error.type } : { message: error.message, type: error.type, attempts: error.attempts };
    return error.problem ? { ...base, ...error.problem } : base;
  }
  if (error instanceof ExpressionError) return { message: error.message, type: 'ExpressionError' };
  if (error instanceof Error) return { message: error.message, type: error.name };
  return { message: String(error), type: 'Error' };
}

export function jsonSize(value: unknown): number {
  return value === undefined ? 0 : (JSON.stringify(value)?.length ?? 0);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export const DONE_STATUSES = new Set<StepStatus>(['completed', 'skipped']);

/**
 * A value now, or later. Pure steps (set, conditions, templating, loop bookkeeping) complete
 * synchronously: inside the Temporal sandbox every promise is tracked for stack traces, so a long
 * run of pure steps stays cheap only if it creates none.
 */
export type Maybe<T> = T | Promise<T>;

export interface StepResult {
  output: unknown;
  ran: boolean;
}

export function isPromise<T>(value: Maybe<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

export function then<T, R>(value: Maybe<T>, next: (v: T) => Maybe<R>): Maybe<R> {
  return isPromise(value) ? value.then(next) : next(value);
}

/** The engine's services to a step kind's `execute`: the only way a kind reaches the run. */
export interface Runner {
  readonly plan: Plan;
  readonly ctx: RunContext;
  readonly port: InterpreterPort;
  readonly state: RunState;
  /** What expressions in `frame` read; `extra` adds bindings (`event`, `iteration`). */
  data(frame: Frame, extra?: Partial<Record<BindingName, unknown>>): EvaluationData;
  /** Runs a step list in order; the last output of a step that ran. */
  runList(steps: readonly CompiledStep[], frame: Frame): Maybe<unknown>;
  /** Runs one step under its `if`, retry, timeout and error policy. */
  runStep(step: CompiledStep, frame: Frame): Maybe<StepResult>;
  /** Awaits something Temporal schedules (the workflow task ends there). */
  waited<T>(promise: Promise<T>): Promise<T>;
  /** Runs `fn` under the definition's `max_concurrent_steps`. */
  limited<T>(fn: () => Promise<T>): Promise<T>;
  /** Forgets the state of every step nested in `stepId` (a new iteration starts afresh). */
  resetDescendants(stepId: string, frame: Frame): void;
  /** Control flow (cancellation, continue-as-new, succeed) that no policy may swallow. */
  isControl(error: unknown): boolean;
}

/** One execution of a step: where it runs, its state, and whether it resumes a carried state. */
export interface StepRun {
  frame: Frame;
  st: StepState;
  resuming: boolean;
  runner: Runner;
}
