import { approvalsCounted, currentDeciders, type ApprovalRecord } from './approvals.ts';
import type {
  ActivityFamily,
  CompiledActivityStep,
  CompiledApprovalStep,
  CompiledForEachStep,
  CompiledLoopStep,
  CompiledParallelStep,
  CompiledStep,
  CompiledSwitchStep,
  EffectiveRetry,
  Plan,
} from './compile.ts';
import { runtimeDurationMs } from './compile.ts';
import { ExpressionError, evaluate, type BindingName, type EvaluationData } from './expressions.ts';
import { resolveValue, testCondition } from './references.ts';
import { LIMITS } from './schema.ts';

/**
 * The step-execution engine: pure, deterministic code that walks a compiled plan and asks a small
 * port for everything with an effect (activities, child runs, timers, events, cancellation
 * scopes). The Temporal workflow binds the port to Temporal APIs; unit tests bind it to plain
 * functions.
 *
 * Every piece of progress lives in `RunState`, which is plain JSON: the workflow exposes it through
 * a query and carries it across continue-as-new, and re-running the plan over a carried state
 * skips what is done and resumes loops, for_each steps and branches where they stopped.
 */

export type StepStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

export interface StepError {
  message: string;
  /** The error's type: an activity's ApplicationFailure type, or one of the interpreter's own. */
  type: string;
  /** How many attempts were made before the step gave up. */
  attempts?: number;
  /** The innermost step that failed, when it is not the step reporting the error. */
  step?: string;
}

export interface StepState {
  status: StepStatus;
  output?: unknown;
  error?: StepError;
  /** True when the step failed and the error policy let the run continue. */
  continued?: boolean;
  /** True when the step failed and a `custom` handler recovered; `output` is the handler's. */
  handled?: boolean;
  /** loop: iterations started; `inIteration` while one is under way. */
  iteration?: number;
  inIteration?: boolean;
  /** conditional and switch: the branch taken (`then`, `else`, `case:<n>`, `default`, `none`). */
  branch?: string;
  /** for_each: the list, its length, iterations finished (in order), and their results so far. */
  items?: unknown[];
  total?: number;
  done?: number;
  results?: unknown[];
}

/** A completed step whose `compensate` steps run if the run rolls back. */
export interface CompensationRecord {
  step: string;
  /** The step's path (its idempotency-key suffix). */
  path: string;
  output: unknown;
  bindings?: Partial<Record<BindingName, unknown>>;
}

export interface RunState {
  status: RunStatus;
  currentStep?: string;
  /** Top-level step ids in definition order. */
  order: string[];
  /** Every step that has state, nested ones included (ids are unique in a definition). */
  steps: Record<string, StepState>;
  /** Variables: `context.mutable`, updated by `set` steps. */
  vars: Record<string, unknown>;
  output?: unknown;
  error?: StepError;
  /** Completed steps with compensation, oldest first. */
  compensations: CompensationRecord[];
  /** Approval requests by step path: pending ones, and every decision made. */
  approvals: Record<string, ApprovalRecord>;
  rollback?: { status: 'completed' | 'failed'; compensated: string[]; errors: Array<StepError & { step: string }> };
  /** How many times this run has continued as new. */
  continuedAsNew: number;
}

/** One activity call the engine asks the port to make. */
export interface ActivityCall {
  family: ActivityFamily;
  /** The activity (skill, integration or agent) name. */
  name: string;
  /** The step type as written, for summaries. */
  type: string;
  stepId: string;
  /** Stable path of the step within the run, the suffix of its idempotency key. */
  stepPath: string;
  input: unknown;
  timeoutSeconds: number;
  retry: EffectiveRetry;
  guardrails?: Record<string, unknown>;
  /** What the step left unset, so the skill's registered defaults may apply (see RunInput.activityDefaults). */
  defaulted?: { timeout: boolean; retry: boolean };
}

/** One child run (sub_workflow step). */
export interface ChildCall {
  stepId: string;
  stepPath: string;
  definition: string;
  version: string;
  input: unknown;
}

/** An event delivered to the run (a signal): its name and JSON payload. */
export interface RunEvent {
  name: string;
  payload: unknown;
}

/** Thrown by a port when a call failed for good (retries exhausted or not retryable). */
export class StepCallError extends Error {
  override name = 'StepCallError';
  constructor(
    message: string,
    readonly type: string,
    readonly attempts?: number,
  ) {
    super(message);
  }
}

export interface CancellableHandle<T> {
  promise: Promise<T>;
  cancel(): void;
}

export interface InterpreterPort {
  runActivity(call: ActivityCall): Promise<unknown>;
  runChild(call: ChildCall): Promise<unknown>;
  /** `purpose` names what the timer waits for (Temporal Web shows it as the timer's summary). */
  sleep(ms: number, purpose?: string): Promise<void>;
  /** The run's deterministic clock, in epoch milliseconds. */
  now(): number;
  /** Resolves with the first buffered or future event the predicate accepts; undefined on timeout. */
  waitForEvent(predicate: (event: RunEvent) => boolean, timeoutMs?: number, purpose?: string): Promise<RunEvent | undefined>;
  /**
   * Resolves true once `predicate` holds (checked whenever the workflow wakes, e.g. after a signal
   * or an update), or false when `timeoutMs` passes first.
   */
  waitUntil(predicate: () => boolean, timeoutMs?: number, purpose?: string): Promise<boolean>;
  /** Called when an approval is requested, escalated or settled (e.g. to update search attributes). */
  onApprovalsChanged?(state: RunState): void;
  /** Runs `fn` in a scope that can be cancelled on its own. */
  cancellable<T>(fn: () => Promise<T>): CancellableHandle<T>;
  /** Runs `fn` where cancelling the run cannot reach it (compensation). */
  nonCancellable<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Ends the current workflow task and resumes in the next one (a 1 ms timer in Temporal). The
   * engine calls it after a long stretch of pure steps so no single task runs long enough to trip
   * Temporal's deadlock detector.
   */
  yield(): Promise<void>;
  /** True when the history is long enough that the run should continue as new. */
  shouldContinueAsNew(): boolean;
  /** True for the port's cancellation errors, which the engine must never swallow. */
  isCancellation(error: unknown): boolean;
  /** An error of the port's cancellation kind (`isCancellation` holds), for work the engine stops itself. */
  cancellation(message: string): Error;
  /**
   * Temporal's `patched(patchId)`: true when the run may take the behaviour introduced under
   * `patchId` (a new run, or a history recorded with it); false while replaying a history recorded
   * before it, which must get the commands it got then. See `PATCHES`.
   */
  patched(patchId: string): boolean;
  /** Called whenever the run state changes (e.g. to update current details). */
  onProgress?(state: RunState): void;
  /** Called when a step that does work (see `SETTLE_REPORTED`) completes, or any step fails. */
  onStepSettled?(settled: SettledStep): void;
  /** Called when an approval is requested (again on escalation) and when it is decided. */
  onApproval?(phase: 'requested' | 'decided', record: ApprovalRecord): void;
}

/** A step that finished, for lifecycle events. */
export interface SettledStep {
  stepId: string;
  stepPath: string;
  /** The step's `type` as written. */
  stepType: string;
  status: 'completed' | 'failed';
  error?: StepError;
  /** Failed, and its error policy let the run go on (`skip`, `custom`). */
  continued?: boolean;
}

/**
 * Steps whose completion is reported: the ones that do work or wait. Pure bookkeeping (`set`,
 * `conditional`, `switch`, `succeed`) is not, so a 10,000-iteration loop of them reports nothing
 * per iteration; a failure is reported for every kind.
 */
const SETTLE_REPORTED = new Set(['activity', 'sub_workflow', 'approval', 'wait', 'wait_for_event', 'parallel', 'for_each', 'loop']);

function stepTypeOf(step: CompiledStep): string {
  return step.kind === 'activity' ? step.type : step.kind;
}

/** Thrown when the run fails; carries the state so callers can report every step. */
export class RunFailedError extends Error {
  override name = 'RunFailedError';
  constructor(
    message: string,
    readonly state: RunState,
  ) {
    super(message);
  }
}

/** Thrown at a safe point when the run should continue as new; `state` is what to carry. */
export class ContinueAsNewRequest {
  constructor(readonly state: RunState) {}
}

/** A `succeed` step ends the run early with this output. */
class SucceedSignal {
  constructor(
    readonly stepId: string,
    readonly output: unknown,
    readonly hasOutput: boolean,
  ) {}
}

/** A step failure travelling up to the run (or to a policy that handles it). */
class StepFailure extends Error {
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

export interface RunContext {
  input: unknown;
  /** The triggering event when an event started the run, else the run's input (seed 004 `${signal...}`). */
  signal: unknown;
  context: { readonly: Record<string, unknown> };
  run: Record<string, unknown>;
}

export function initialRunState(plan: Plan, vars: Record<string, unknown>): RunState {
  return {
    status: 'running',
    order: plan.steps.map((s) => s.id),
    steps: Object.fromEntries(plan.steps.map((s) => [s.id, { status: 'pending' } satisfies StepState])),
    vars: { ...vars },
    compensations: [],
    approvals: {},
    continuedAsNew: 0,
  };
}

/** Deterministic FIFO semaphore (plain promises: safe in the workflow sandbox). */
class Semaphore {
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
class StateStore {
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

interface Frame {
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
 * Changes to the commands the engine emits, each gated with `InterpreterPort.patched` so histories
 * recorded before it replay unchanged.
 */
export const PATCHES = {
  /**
   * `parallel` with `wait_for` "any" or N: exactly the first branches to complete win. Before it,
   * branches finishing in the same workflow task (pure steps, or activity results delivered
   * together) all ran to the end and were all kept.
   */
  parallelFirstWins: 'parallel-first-wins',
} as const;

/**
 * A `parallel` step waiting for fewer than all of its branches. A branch wins the moment its own
 * step completes (synchronously, inside that step's completion), so branches finishing in the same
 * workflow task cannot all win. Once enough have won, or the step gave up on a failure, the race is
 * over: no step of another branch starts or completes any more, it is cancelled instead.
 */
interface Race {
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

function raceOver(race: Race | undefined): boolean {
  for (let r = race; r; r = r.parent) if (r.over) return true;
  return false;
}

function toStepError(error: unknown): StepError {
  if (error instanceof StepFailure) return error.error;
  if (error instanceof StepCallError) {
    return error.attempts === undefined ? { message: error.message, type: error.type } : { message: error.message, type: error.type, attempts: error.attempts };
  }
  if (error instanceof ExpressionError) return { message: error.message, type: 'ExpressionError' };
  if (error instanceof Error) return { message: error.message, type: error.name };
  return { message: String(error), type: 'Error' };
}

function jsonSize(value: unknown): number {
  return value === undefined ? 0 : (JSON.stringify(value)?.length ?? 0);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const DONE_STATUSES = new Set<StepStatus>(['completed', 'skipped']);

/**
 * A value now, or later. Pure steps (set, conditions, templating, loop bookkeeping) complete
 * synchronously: inside the Temporal sandbox every promise is tracked for stack traces, so a long
 * run of pure steps stays cheap only if it creates none.
 */
type Maybe<T> = T | Promise<T>;

interface StepResult {
  output: unknown;
  ran: boolean;
}

function isPromise<T>(value: Maybe<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

function then<T, R>(value: Maybe<T>, next: (v: T) => Maybe<R>): Maybe<R> {
  return isPromise(value) ? value.then(next) : next(value);
}

/** Pure steps (set, conditional, ...) run back to back before the engine yields the workflow task. */
export const PURE_STEPS_PER_TASK = 10_000;

class Execution {
  private readonly limiter?: Semaphore;
  /** Steps run since the workflow last waited on Temporal (an activity, a child, a timer, an event). */
  private stepsSinceWait = 0;

  constructor(
    private readonly plan: Plan,
    private readonly ctx: RunContext,
    private readonly port: InterpreterPort,
    private readonly state: RunState,
  ) {
    if (plan.maxConcurrentSteps !== undefined) this.limiter = new Semaphore(plan.maxConcurrentSteps);
  }

  private isControl(error: unknown): boolean {
    return this.port.isCancellation(error) || error instanceof ContinueAsNewRequest || error instanceof SucceedSignal;
  }

  private data(frame: Frame, extra?: Partial<Record<BindingName, unknown>>): EvaluationData {
    return {
      input: this.ctx.input,
      context: { readonly: this.ctx.context.readonly, mutable: this.state.vars },
      steps: frame.states.view(),
      run: this.ctx.run,
      signal: this.ctx.signal,
      bindings: extra ? { ...frame.bindings, ...extra } : frame.bindings,
    };
  }

  private progress(stepId?: string): void {
    if (stepId === undefined) delete this.state.currentStep;
    else this.state.currentStep = stepId;
    this.port.onProgress?.(this.state);
  }

  /** Before each step of a persistable sequence: continue as new when the history is long. */
  private safePoint(frame: Frame): void {
    if (frame.persistable && !frame.concurrent && this.port.shouldContinueAsNew()) throw new ContinueAsNewRequest(this.state);
  }

  /**
   * Runs a step list in order; resolves with the last output of a step that ran. Maybe-sync (see
   * `Maybe`): a list of pure steps completes without creating a promise.
   */
  runList(steps: readonly CompiledStep[], frame: Frame, from = 0, last: unknown = null): Maybe<unknown> {
    for (let i = from; i < steps.length; i += 1) {
      this.safePoint(frame);
      const result = this.runStep(steps[i] as CompiledStep, frame);
      if (isPromise(result)) return result.then((r) => this.runList(steps, frame, i + 1, r.ran ? r.output : last));
      if (result.ran) last = result.output;
    }
    return last;
  }

  /** Runs one step under its `if`, retry, timeout and error policy. `ran` is false when skipped. */
  runStep(step: CompiledStep, frame: Frame): Maybe<StepResult> {
    const existing = frame.states.get(step.id);
    if (existing && (DONE_STATUSES.has(existing.status) || (existing.status === 'failed' && existing.continued))) {
      return { output: existing.output ?? null, ran: existing.status !== 'skipped' };
    }
    const resuming = existing?.status === 'running';
    this.stepsSinceWait += 1;
    if (this.stepsSinceWait >= PURE_STEPS_PER_TASK) {
      return this.waited(this.port.yield()).then(() => this.startStep(step, frame, resuming && existing ? existing : undefined));
    }
    return this.startStep(step, frame, resuming && existing ? existing : undefined);
  }

  private startStep(step: CompiledStep, frame: Frame, resumed: StepState | undefined): Maybe<StepResult> {
    const st: StepState = resumed ?? { status: 'running' };
    let output: Maybe<unknown>;
    try {
      if (raceOver(frame.race)) {
        frame.states.set(step.id, st);
        throw this.lostRace(step);
      }
      if (!resumed && step.if && !testCondition(step.if, this.data(frame))) {
        frame.states.set(step.id, { status: 'skipped', output: null });
        return { output: null, ran: false };
      }
      frame.states.set(step.id, st);
      this.progress(step.id);
      output = this.withRetryAndTimeout(step, frame, st, resumed !== undefined);
    } catch (error) {
      return this.stepFailed(step, frame, st, error);
    }
    if (isPromise(output)) {
      return output.then((value) => this.stepCompleted(step, frame, st, value)).catch((error: unknown) => this.stepFailed(step, frame, st, error));
    }
    try {
      return this.stepCompleted(step, frame, st, output);
    } catch (error) {
      return this.stepFailed(step, frame, st, error);
    }
  }

  private stepCompleted(step: CompiledStep, frame: Frame, st: StepState, output: unknown): StepResult {
    if (raceOver(frame.race)) throw this.lostRace(step);
    if (jsonSize(output) > LIMITS.maxStepOutputBytes) {
      throw new StepCallError(`the output is larger than ${LIMITS.maxStepOutputBytes} characters of JSON`, 'OutputTooLarge');
    }
    this.winBranch(step, frame);
    st.status = 'completed';
    st.output = output ?? null;
    delete st.inIteration;
    if (step.compensate) {
      const record: CompensationRecord = { step: step.id, path: frame.path + step.id, output: st.output };
      if (Object.keys(frame.bindings).length > 0) record.bindings = { ...frame.bindings };
      this.state.compensations.push(record);
    }
    if (this.port.onStepSettled && SETTLE_REPORTED.has(step.kind)) {
      this.port.onStepSettled({ stepId: step.id, stepPath: frame.path + step.id, stepType: stepTypeOf(step), status: 'completed' });
    }
    return { output: st.output, ran: true };
  }

  /** The cancellation a step of a losing `parallel` branch ends with (see Race). */
  private lostRace(step: CompiledStep): Error {
    return this.port.cancellation(`step "${step.id}" was cancelled: its parallel step no longer needs the branch`);
  }

  /** When `step` is a branch of a race still on, it has just completed: it wins. */
  private winBranch(step: CompiledStep, frame: Frame): void {
    if (frame.race?.branches.has(step.id) && !raceOver(frame.race)) frame.race.win(step.id);
  }

  /** Applies the step's error policy: returns the step's result when the run goes on, else throws. */
  private stepFailed(step: CompiledStep, frame: Frame, st: StepState, error: unknown): Maybe<StepResult> {
    if (error instanceof ContinueAsNewRequest) throw error;
    if (error instanceof SucceedSignal) {
      st.status = 'completed';
      if (error.stepId === step.id) st.output = error.output ?? null;
      throw error;
    }
    if (this.port.isCancellation(error)) {
      st.status = 'cancelled';
      st.error = { message: 'cancelled', type: 'Cancelled' };
      throw error;
    }
    frame.states.set(step.id, st);
    const stepError = toStepError(error);
    const innermost = error instanceof StepFailure ? error.stepId : step.id;
    st.status = 'failed';
    st.error = innermost === step.id ? stepError : { ...stepError, step: innermost };
    const continued = step.onError.action === 'skip' || step.onError.action === 'custom';
    this.port.onStepSettled?.({
      stepId: step.id,
      stepPath: frame.path + step.id,
      stepType: stepTypeOf(step),
      status: 'failed',
      error: st.error,
      ...(continued && !(error instanceof StepFailure && error.rollback) ? { continued: true } : {}),
    });
    if (error instanceof StepFailure && error.rollback) throw error;
    switch (step.onError.action) {
      case 'skip':
        st.continued = true;
        st.output = null;
        this.winBranch(step, frame);
        return { output: null, ran: true };
      case 'custom': {
        // The handler runs afresh for every failure (in a loop, a for_each, or a shared handler).
        this.resetSteps(step.onError.handler, frame);
        const handlerFrame: Frame = {
          ...frame,
          bindings: { ...frame.bindings, error: { ...stepError, step: innermost } },
          persistable: false,
        };
        return then(this.runList(step.onError.handler, handlerFrame), (output) => {
          st.status = 'completed';
          st.handled = true;
          st.output = output ?? null;
          this.winBranch(step, frame);
          return { output: st.output, ran: true };
        });
      }
      case 'rollback':
        throw new StepFailure(stepError, innermost, true);
      case 'halt':
        throw error instanceof StepFailure ? error : new StepFailure(stepError, step.id);
    }
  }

  private withRetryAndTimeout(step: CompiledStep, frame: Frame, st: StepState, resuming: boolean): Maybe<unknown> {
    // Activities retry inside Temporal's retry policy (no extra history), except `linear` backoff.
    if (step.kind === 'activity' && !step.retry.linear) return this.execute(step, frame, st, resuming);
    // Activities, events and approvals interpret `timeout` themselves.
    const deadline = step.kind === 'activity' || step.kind === 'wait_for_event' || step.kind === 'approval' ? undefined : step.timeoutSeconds;
    if (step.retry.maxAttempts <= 1 && deadline === undefined) return this.execute(step, frame, st, resuming);
    return this.withRetries(step, frame, st, resuming, deadline);
  }

  private async withRetries(step: CompiledStep, frame: Frame, st: StepState, resuming: boolean, deadline: number | undefined): Promise<unknown> {
    const { retry } = step;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const run = async () => this.execute(step, frame, st, resuming && attempt === 1);
        return deadline === undefined ? await run() : await this.withDeadline(step, deadline, run);
      } catch (error) {
        if (this.isControl(error) || (error instanceof StepFailure && error.rollback)) throw error;
        const type = toStepError(error).type;
        if (attempt >= retry.maxAttempts || retry.nonRetryableErrorTypes.includes(type)) {
          if (retry.maxAttempts > 1 && error instanceof StepCallError) throw new StepCallError(error.message, error.type, attempt);
          if (retry.maxAttempts > 1 && error instanceof StepFailure) {
            throw new StepFailure({ ...error.error, attempts: attempt }, error.stepId);
          }
          throw error;
        }
        const delaySeconds = retry.linear
          ? retry.initialIntervalSeconds * attempt
          : retry.initialIntervalSeconds * retry.backoffCoefficient ** (attempt - 1);
        await this.waited(this.port.sleep(Math.min(delaySeconds, retry.maxIntervalSeconds) * 1000, `retry of step ${frame.path}${step.id} (attempt ${attempt + 1})`));
        // A retried composite starts over: forget its partial progress.
        this.resetDescendants(step.id, frame);
        st.status = 'running';
        delete st.branch;
        delete st.iteration;
        delete st.inIteration;
        delete st.done;
        delete st.results;
      }
    }
  }

  private async withDeadline<T>(step: CompiledStep, seconds: number, fn: () => Promise<T>): Promise<T> {
    let timedOut = false;
    const work = this.port.cancellable(fn);
    const timer = this.port.cancellable(() => this.port.sleep(seconds * 1000, `timeout of step ${step.id} (${seconds} s)`));
    timer.promise.then(
      () => {
        timedOut = true;
        work.cancel();
      },
      () => undefined,
    );
    try {
      return await work.promise;
    } catch (error) {
      if (timedOut && this.port.isCancellation(error)) {
        throw new StepCallError(`step "${step.id}" did not finish within its ${seconds}s timeout`, 'Timeout');
      }
      throw error;
    } finally {
      if (!timedOut) timer.cancel();
    }
  }

  /** Awaits something Temporal schedules (so the workflow task ends there) and resets the pure-step count. */
  private async waited<T>(promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } finally {
      this.stepsSinceWait = 0;
    }
  }

  private resetSteps(steps: readonly CompiledStep[], frame: Frame): void {
    for (const s of steps) {
      frame.states.delete(s.id);
      this.resetDescendants(s.id, frame);
    }
  }

  private resetDescendants(stepId: string, frame: Frame): void {
    for (const id of this.plan.descendants.get(stepId) ?? []) frame.states.delete(id);
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.limiter) return fn();
    await this.limiter.acquire();
    try {
      return await fn();
    } finally {
      this.limiter.release();
    }
  }

  private execute(step: CompiledStep, frame: Frame, st: StepState, resuming: boolean): Maybe<unknown> {
    switch (step.kind) {
      case 'activity':
        return this.runActivity(step, frame);
      case 'parallel':
        return this.runParallel(step, frame);
      case 'for_each':
        return this.runForEach(step, frame, st, resuming);
      case 'loop':
        return this.runLoop(step, frame, st, resuming);
      case 'conditional': {
        if (!resuming || st.branch === undefined) st.branch = testCondition(step.condition, this.data(frame)) ? 'then' : 'else';
        const steps = st.branch === 'then' ? step.then : step.else;
        return steps.length === 0 ? null : this.runList(steps, frame);
      }
      case 'switch':
        return this.runSwitch(step, frame, st, resuming);
      case 'wait': {
        let ms = step.durationMs ?? 0;
        if (step.duration) {
          const value = resolveValue(step.duration, this.data(frame));
          try {
            ms = runtimeDurationMs(value);
          } catch (error) {
            throw new StepCallError((error as Error).message, 'InvalidDuration');
          }
        }
        if (step.until) {
          const when = resolveValue(step.until, this.data(frame));
          const at = typeof when === 'number' ? when : Date.parse(String(when));
          if (Number.isNaN(at)) throw new StepCallError(`"until" is not a timestamp: ${JSON.stringify(when)}`, 'InvalidTimestamp');
          ms = at - this.port.now();
        }
        return ms > 0 ? this.waited(this.port.sleep(ms, `wait step ${frame.path}${step.id}`)).then(() => null) : null;
      }
      case 'wait_for_event': {
        const arrived = this.waited(this.port.waitForEvent(
          (candidate) => {
            if (candidate.name !== step.event) return false;
            if (!step.filter) return true;
            try {
              return testCondition(step.filter, this.data(frame, { event: candidate.payload }));
            } catch {
              return false;
            }
          },
          step.timeoutSeconds === undefined ? undefined : step.timeoutSeconds * 1000,
          `event "${step.event}" for step ${frame.path}${step.id}`,
        ));
        return arrived.then((event) => {
          if (event === undefined) {
            if (step.onTimeout === 'continue') return null;
            throw new StepCallError(`no "${step.event}" event arrived within ${step.timeoutSeconds}s`, 'Timeout');
          }
          return event.payload ?? null;
        });
      }
      case 'set': {
        const written: Record<string, unknown> = {};
        for (const [name, value] of step.values) {
          const resolved = resolveValue(value, this.data(frame));
          if (jsonSize(resolved) > LIMITS.maxStepOutputBytes) {
            throw new StepCallError(`variable "${name}" would be larger than ${LIMITS.maxStepOutputBytes} characters of JSON`, 'OutputTooLarge');
          }
          this.state.vars[name] = resolved;
          written[name] = resolved;
        }
        return written;
      }
      case 'sub_workflow': {
        const input = resolveValue(step.inputs, this.data(frame));
        return this.waited(
          this.limited(() =>
            this.port.runChild({ stepId: step.id, stepPath: frame.path + step.id, definition: step.definition, version: step.version, input }),
          ),
        );
      }
      case 'fail': {
        const message = resolveValue(step.error, this.data(frame));
        const type = typeof step.errorType === 'string' ? step.errorType : resolveValue(step.errorType, this.data(frame));
        throw new StepCallError(typeof message === 'string' ? message : JSON.stringify(message), typeof type === 'string' && type !== '' ? type : 'WorkflowFailed');
      }
      case 'succeed': {
        const output = step.output === undefined ? undefined : resolveValue(step.output, this.data(frame));
        throw new SucceedSignal(step.id, output, step.output !== undefined);
      }
      case 'approval':
        return this.runApproval(step, frame, resuming);
    }
  }

  private iso(ms: number): string {
    return new Date(ms).toISOString();
  }

  /**
   * Blocks until enough approvers decide (through the workflow's update and signal handlers, which
   * change the record) or a timeout policy settles it. No activity and no polling: a condition.
   */
  private async runApproval(step: CompiledApprovalStep, frame: Frame, resuming: boolean): Promise<unknown> {
    const path = frame.path + step.id;
    let record = this.state.approvals[path];
    if (!record || (!resuming && record.status !== 'pending')) {
      const first = step.stages[0] as (typeof step.stages)[number];
      const summary = step.summary === undefined ? `Approve step "${step.id}" of ${String(this.ctx.run.definition ?? 'this run')}` : resolveValue(step.summary, this.data(frame));
      const now = this.port.now();
      record = {
        stepId: step.id,
        stepPath: path,
        summary: typeof summary === 'string' ? summary : JSON.stringify(summary),
        status: 'pending',
        stage: 0,
        approvers: { principals: [...first.approvers.principals], groups: [...first.approvers.groups] },
        quorum: first.quorum,
        allowSelfApproval: step.allowSelfApproval,
        startedBy: String(this.ctx.run.startedBy ?? ''),
        requestedAt: this.iso(now),
        decisions: [],
      };
      if (first.timeoutMs !== undefined) record.deadline = this.iso(now + first.timeoutMs);
      this.state.approvals[path] = record;
      this.port.onApproval?.('requested', record);
    }
    const rec = record;
    this.port.onApprovalsChanged?.(this.state);
    for (;;) {
      const remaining = rec.deadline === undefined ? undefined : Date.parse(rec.deadline) - this.port.now();
      let decided: boolean;
      try {
        decided =
          remaining !== undefined && remaining <= 0
            ? rec.status !== 'pending'
            : await this.waited(this.port.waitUntil(() => rec.status !== 'pending', remaining, `deadline of approval ${rec.stepPath}${rec.stage > 0 ? ' (escalation)' : ''}`));
      } catch (error) {
        // A cancelled run (or branch) closes its approval: nobody is asked any longer.
        if (this.port.isCancellation(error) && rec.status === 'pending') {
          rec.status = 'cancelled';
          this.port.onApprovalsChanged?.(this.state);
        }
        throw error;
      }
      if (decided) break;
      const stage = step.stages[rec.stage] as (typeof step.stages)[number];
      const next = step.stages[rec.stage + 1];
      if (stage.onTimeout === 'escalate' && next) {
        rec.stage += 1;
        rec.escalated = true;
        rec.approvers = { principals: [...next.approvers.principals], groups: [...next.approvers.groups] };
        rec.quorum = next.quorum;
        // The new set decides afresh: decisions made to the first set stay on record but do not count.
        if (next.timeoutMs !== undefined) rec.deadline = this.iso(this.port.now() + next.timeoutMs);
        else delete rec.deadline;
        this.port.onApprovalsChanged?.(this.state);
        this.port.onApproval?.('requested', rec);
        continue;
      }
      rec.timedOut = true;
      if (stage.onTimeout === 'approve') rec.status = 'approved';
      else if (stage.onTimeout === 'reject') rec.status = 'rejected';
      else {
        rec.status = 'failed';
        this.port.onApprovalsChanged?.(this.state);
        this.port.onApproval?.('decided', rec);
        throw new StepCallError(`approval "${step.id}" timed out with ${approvalsCounted(rec)} of ${rec.quorum} approval(s)`, 'ApprovalTimeout');
      }
      break;
    }
    this.port.onApprovalsChanged?.(this.state);
    this.port.onApproval?.('decided', rec);
    const output = {
      decision: rec.status === 'approved' ? 'approve' : 'reject',
      approved: rec.status === 'approved',
      // Who decided it: the current approver set's deciders (every decision stays in `decisions`).
      deciders: currentDeciders(rec),
      decisions: rec.decisions,
      comments: rec.decisions.filter((d) => d.comment).map((d) => ({ principal: d.principal, comment: d.comment })),
      timedOut: rec.timedOut === true,
      escalated: rec.escalated === true,
    };
    if (rec.status === 'rejected' && step.onReject === 'fail') {
      const by = rec.decisions.find((d) => d.decision === 'reject');
      const why = by ? ` by ${by.principal}${by.comment ? `: ${by.comment}` : ''}` : ' on timeout';
      throw new StepCallError(`approval "${step.id}" was rejected${why}`, 'ApprovalRejected');
    }
    return output;
  }

  private async runActivity(step: CompiledActivityStep, frame: Frame): Promise<unknown> {
    const input = step.fromSignal ? this.ctx.signal : resolveValue(step.inputs, this.data(frame));
    const call: ActivityCall = {
      family: step.family,
      name: step.name,
      type: step.type,
      stepId: step.id,
      stepPath: frame.path + step.id,
      input,
      timeoutSeconds: step.timeoutSeconds ?? 30,
      retry: step.retry.linear ? { ...step.retry, maxAttempts: 1 } : step.retry,
    };
    if (step.guardrails) call.guardrails = step.guardrails;
    if (step.defaulted.timeout || step.defaulted.retry) call.defaulted = step.defaulted;
    const output = await this.waited(this.limited(() => this.port.runActivity(call)));
    const missing = step.outputs.filter(
      (name) => output === null || typeof output !== 'object' || !Object.prototype.hasOwnProperty.call(output, name),
    );
    if (missing.length > 0) {
      throw new StepCallError(
        `${step.type} "${step.name}" returned no ${missing.map((m) => `"${m}"`).join(', ')}, which the step declares in "outputs"`,
        'MissingOutput',
      );
    }
    return output;
  }

  private async runParallel(step: CompiledParallelStep, frame: Frame): Promise<unknown> {
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
    // "any" and N race (see Race). Runs recorded before that counted a branch only once its result
    // reached the handlers below, after siblings finishing in the same workflow task had run too.
    const race: Race | undefined =
      step.waitFor !== 'all' && this.port.patched(PATCHES.parallelFirstWins)
        ? {
            branches: new Set(step.branches.map((b) => b.id)),
            winners,
            over: false,
            win: (id) => {
              winners.add(id);
              if (winners.size >= needed) stopOthers();
            },
            ...(frame.race ? { parent: frame.race } : {}),
          }
        : undefined;
    if (race) branchFrame.race = race;
    const runs = step.branches.map((branch, i) => {
      const handle = this.port.cancellable(async () => {
        await gate.acquire();
        try {
          // In a race, a branch that lost before it started still starts, to be marked cancelled.
          if (stopping && !race) return undefined;
          return await this.runStep(branch, branchFrame);
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
          if (this.port.isCancellation(error) && stopping) return;
          // Control flow, and a failure whose policy is rollback, always end the parallel step.
          if (this.isControl(error) || (error instanceof StepFailure && error.rollback)) {
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
  }

  private async runForEach(step: CompiledForEachStep, frame: Frame, st: StepState, resuming: boolean): Promise<unknown> {
    // The list is fixed when the step starts (and carried across continue-as-new), so variables the
    // iterations change cannot reshape it halfway.
    if (!resuming || !Array.isArray(st.items)) {
      const items = resolveValue(step.items, this.data(frame));
      if (!Array.isArray(items)) throw new StepCallError(`"items" is ${items === null ? 'null' : typeof items}, not a list`, 'InvalidItems');
      if (items.length > LIMITS.maxForEachItems) {
        throw new StepCallError(`"items" has ${items.length} entries; the limit is ${LIMITS.maxForEachItems}`, 'TooManyItems');
      }
      st.items = items;
      st.results = [];
      st.done = 0;
    }
    const items = st.items ?? [];
    st.total = items.length;
    const results = st.results ?? [];
    st.results = results;
    let next = st.done ?? 0;
    const concurrency = step.maxConcurrency;
    const inFlight = new Map<number, CancellableHandle<unknown>>();
    const finished = new Set<number>();
    let failure: unknown;
    let launchedHere = 0;
    let draining = false;
    await new Promise<void>((resolveAll) => {
      const launch = () => {
        // Continue-as-new only where this step's progress is the run's own state: stop launching,
        // let the iterations in flight finish, then carry `done` and `results`.
        if (!draining && launchedHere > 0 && frame.persistable && !frame.concurrent && this.port.shouldContinueAsNew()) draining = true;
        while (failure === undefined && !draining && inFlight.size < concurrency && next < items.length) {
          const index = next;
          next += 1;
          launchedHere += 1;
          const iterationFrame: Frame = {
            ...(frame.race ? { race: frame.race } : {}),
            states: frame.states.child(),
            bindings: { ...frame.bindings, item: items[index], index },
            path: `${frame.path}${step.id}[${index}]/`,
            concurrent: frame.concurrent || concurrency > 1,
            persistable: false,
          };
          const handle = this.port.cancellable(async () => this.runList(step.steps, iterationFrame));
          inFlight.set(index, handle);
          handle.promise.then(
            (output) => {
              inFlight.delete(index);
              results[index] = output ?? null;
              finished.add(index);
              let done = st.done ?? 0;
              while (finished.delete(done)) done += 1;
              st.done = done;
              launch();
            },
            (error: unknown) => {
              inFlight.delete(index);
              if (failure === undefined) {
                failure = error;
                for (const other of inFlight.values()) other.cancel();
              }
              launch();
            },
          );
        }
        if (inFlight.size === 0) resolveAll();
      };
      launch();
    });
    if (failure !== undefined) throw failure;
    if (next < items.length) throw new ContinueAsNewRequest(this.state);
    delete st.items;
    return results.slice(0, items.length);
  }

  private async runLoop(step: CompiledLoopStep, frame: Frame, st: StepState, resuming: boolean): Promise<unknown> {
    let last: unknown = resuming ? (st.output ?? null) : null;
    let resumeInside = resuming && st.inIteration === true;
    if (!resuming) st.iteration = 0;
    for (;;) {
      const started = st.iteration ?? 0;
      if (!resumeInside) {
        if (!testCondition(step.condition, this.data(frame, { iteration: started }))) break;
        if (started >= step.maxIterations) {
          throw new StepCallError(
            `loop "${step.id}" reached max_iterations (${step.maxIterations}) while its condition "${step.condition.source}" still holds`,
            'LoopLimitExceeded',
          );
        }
        this.resetDescendants(step.id, frame);
        st.iteration = started + 1;
        st.inIteration = true;
      }
      resumeInside = false;
      const index = (st.iteration ?? 1) - 1;
      const iterationFrame: Frame = { ...frame, bindings: { ...frame.bindings, iteration: index }, path: `${frame.path}${step.id}[${index}]/` };
      const body = this.runList(step.steps, iterationFrame);
      last = isPromise(body) ? await body : body;
      st.inIteration = false;
      st.output = last;
    }
    return last;
  }

  private runSwitch(step: CompiledSwitchStep, frame: Frame, st: StepState, resuming: boolean): Maybe<unknown> {
    if (!resuming || st.branch === undefined) {
      const data = this.data(frame);
      const value = step.value ? evaluate(step.value, data) : undefined;
      const index = step.cases.findIndex((c) => (c.when ? testCondition(c.when, data) : deepEqual(c.equals, value)));
      st.branch = index >= 0 ? `case:${index}` : step.default.length > 0 ? 'default' : 'none';
    }
    const branch = st.branch;
    const steps = branch === 'default' ? step.default : branch.startsWith('case:') ? (step.cases[Number(branch.slice(5))]?.steps ?? []) : [];
    return steps.length === 0 ? null : this.runList(steps, frame);
  }

  /** Runs compensations newest first, then the rollback steps, where cancellation cannot reach. */
  async rollback(cause: StepError): Promise<void> {
    const errors: Array<StepError & { step: string }> = [];
    const compensated: string[] = [];
    // Compensation step states are shown in the run's state once rollback is over; merging them
    // earlier would make the next compensation of a repeated step (loop, for_each) look done.
    const shown: Record<string, StepState> = {};
    await this.port.nonCancellable(async () => {
      const top = new StateStore(this.state.steps);
      for (const record of [...this.state.compensations].reverse()) {
        const compensate = this.plan.byId.get(record.step)?.compensate ?? [];
        const states = top.child();
        states.set(record.step, { status: 'completed', output: record.output });
        const frame: Frame = {
          states,
          bindings: { ...(record.bindings ?? {}), error: cause },
          path: `${record.path}/compensate/`,
          concurrent: false,
          persistable: false,
        };
        try {
          await this.runList(compensate, frame);
          compensated.push(record.step);
        } catch (error) {
          errors.push({ ...toStepError(error), step: record.step });
        }
        // Show the compensation steps in the run's state (their ids are unique in the definition).
        for (const [id, s] of Object.entries(states.own())) if (id !== record.step) shown[id] = s;
      }
      // Compensations are over: show them before the rollback steps that follow.
      Object.assign(this.state.steps, shown);
      const frame: Frame = { states: top, bindings: { error: cause }, path: 'rollback/', concurrent: false, persistable: false };
      for (const step of this.plan.rollback.steps) {
        try {
          await this.runStep(step, frame);
        } catch (error) {
          errors.push({ ...toStepError(error), step: step.id });
        }
      }
    });
    this.state.rollback = { status: errors.length === 0 ? 'completed' : 'failed', compensated, errors };
  }

  buildOutput(last: unknown): unknown {
    return this.plan.output === undefined ? last : resolveValue(this.plan.output, this.data(this.topFrame()));
  }

  topFrame(): Frame {
    return { states: new StateStore(this.state.steps), bindings: {}, path: '', concurrent: false, persistable: true };
  }
}

/**
 * Executes the plan, updating `state` in place. Resolves with the run's output; rejects with
 * RunFailedError when a step fails for good, ContinueAsNewRequest when the run should continue as
 * new (carry `state` and call again), or the port's cancellation error when the run is cancelled.
 */
export async function executePlan(plan: Plan, ctx: RunContext, port: InterpreterPort, state: RunState): Promise<unknown> {
  const execution = new Execution(plan, ctx, port, state);
  /** Every way out of the run leaves no current step and reports the final state once. */
  const settle = (status: RunStatus) => {
    state.status = status;
    delete state.currentStep;
    port.onProgress?.(state);
  };
  const fail = (error: StepError, message: string): never => {
    state.error = error;
    settle('failed');
    throw new RunFailedError(message, state);
  };
  let output: unknown;
  try {
    const last = await execution.runList(plan.steps, execution.topFrame());
    output = execution.buildOutput(last);
  } catch (error) {
    if (error instanceof ContinueAsNewRequest) {
      state.continuedAsNew += 1;
      throw error;
    }
    if (error instanceof SucceedSignal) {
      try {
        output = error.hasOutput ? error.output : plan.output === undefined ? null : execution.buildOutput(null);
      } catch (buildError) {
        return fail(toStepError(buildError), `the definition's "output" could not be built: ${toStepError(buildError).message}`);
      }
      state.output = output ?? null;
      settle('completed');
      return state.output;
    }
    if (port.isCancellation(error)) {
      if (plan.rollsBackOnCancel) await execution.rollback({ message: 'the run was cancelled', type: 'Cancelled' });
      settle('cancelled');
      throw error;
    }
    if (error instanceof StepFailure) {
      const stepError: StepError = { ...error.error, step: error.stepId };
      if (error.rollback || plan.rollback.enabled) await execution.rollback(stepError);
      const attempts = stepError.attempts === undefined ? '' : ` after ${stepError.attempts} attempt(s)`;
      const rolledBack = state.rollback ? ` (rolled back${state.rollback.status === 'failed' ? ' with errors' : ''})` : '';
      return fail(stepError, `step "${error.stepId}" failed${attempts}: ${stepError.message}${rolledBack}`);
    }
    const unexpected = toStepError(error);
    return fail(unexpected, `the run failed: ${unexpected.message}`);
  }
  state.output = output ?? null;
  settle('completed');
  return state.output;
}
