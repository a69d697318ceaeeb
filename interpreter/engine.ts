// Over 400 lines: one concept, the runner (scheduling, state, cancellation, continue-as-new, rollback); it names no step kind.
import type { CompiledStep, Plan } from './plan.ts';
import { runUuid, type BindingName, type EvaluationData, type RunClock } from './expressions.ts';
import { ContinueAsNewRequest, RunFailedError, StepCallError, type CompensationRecord, type InterpreterPort, type RunContext, type RunState, type RunStatus, type StepError, type StepState } from './port.ts';
import { resolveValue, testCondition } from './references.ts';
import {
  DONE_STATUSES,
  isPromise,
  jsonSize,
  raceOver,
  Semaphore,
  StateStore,
  StepFailure,
  SucceedSignal,
  then,
  toStepError,
  type Frame,
  type Maybe,
  type Runner,
  type StepResult,
} from './runtime.ts';
import { LIMITS } from './schema.ts';
import { executorOf } from './steps/registry.ts';

/**
 * The step-execution engine: pure, deterministic code that walks a compiled plan and asks a small
 * port for everything with an effect (activities, child runs, timers, events, cancellation
 * scopes). The Temporal workflow binds the port to Temporal APIs; unit tests bind it to plain
 * functions.
 *
 * This file is the runner: scheduling (step lists, safe points, yielding long pure stretches),
 * state, retries and deadlines, error policies, cancellation, rollback and continue-as-new. What a
 * step of a given kind does is its module's (interpreter/steps/<kind>.ts); the runner names none.
 *
 * Every piece of progress lives in `RunState`, which is plain JSON: the workflow exposes it through
 * a query and carries it across continue-as-new, and re-running the plan over a carried state
 * skips what is done and resumes loops, for_each steps and branches where they stopped.
 */

export * from './port.ts';

/** Pure steps (set, conditional, ...) run back to back before the engine yields the workflow task. */
export const PURE_STEPS_PER_TASK = 10_000;

function stepTypeOf(step: CompiledStep): string {
  return executorOf(step).typeOf?.(step) ?? step.kind;
}

class Execution implements Runner {
  private readonly limiter?: Semaphore;
  /** `now()` is the workflow's time; `uuid()` counts its calls in the run state, so they survive continue-as-new. */
  private readonly clock: RunClock = {
    now: () => this.port.now(),
    uuid: () => {
      const n = this.state.uuidsIssued ?? 0;
      this.state.uuidsIssued = n + 1;
      return runUuid(String(this.ctx.run.id ?? ''), n);
    },
  };
  /** Steps run since the workflow last waited on Temporal (an activity, a child, a timer, an event). */
  private stepsSinceWait = 0;

  constructor(
    readonly plan: Plan,
    readonly ctx: RunContext,
    readonly port: InterpreterPort,
    readonly state: RunState,
  ) {
    if (plan.maxConcurrentSteps !== undefined) this.limiter = new Semaphore(plan.maxConcurrentSteps);
  }

  isControl(error: unknown): boolean {
    return this.port.isCancellation(error) || error instanceof ContinueAsNewRequest || error instanceof SucceedSignal;
  }

  data(frame: Frame, extra?: Partial<Record<BindingName, unknown>>): EvaluationData {
    return {
      input: this.ctx.input,
      context: { readonly: this.ctx.context.readonly, mutable: this.state.vars },
      steps: frame.states.view(),
      run: this.ctx.run,
      signal: this.ctx.signal,
      bindings: extra ? { ...frame.bindings, ...extra } : frame.bindings,
      clock: this.clock,
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
    if (this.port.onStepSettled && executorOf(step).reportsSettle) {
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
          bindings: { ...frame.bindings, error: this.caught(stepError, innermost) },
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

  /**
   * The error a handler sees: the failure as recorded, with `step` (the innermost failing step)
   * and `instance` (that step's JSON Pointer, unless the failure names its own place).
   */
  private caught(stepError: StepError, innermost: string): StepError {
    const instance = stepError.instance ?? this.plan.byId.get(innermost)?.pointer;
    return instance === undefined ? { ...stepError, step: innermost } : { ...stepError, step: innermost, instance };
  }

  private withRetryAndTimeout(step: CompiledStep, frame: Frame, st: StepState, resuming: boolean): Maybe<unknown> {
    const executor = executorOf(step);
    // A kind the port retries itself (activities, inside Temporal's retry policy) runs once here.
    if (executor.retriesItself?.(step)) return this.execute(step, frame, st, resuming);
    // Kinds that interpret `timeout` themselves (activities, events, approvals) get no deadline.
    const deadline = executor.ownsTimeout ? undefined : step.timeoutSeconds;
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
          if (retry.maxAttempts > 1 && error instanceof StepCallError) throw new StepCallError(error.message, error.type, attempt, error.problem);
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
  async waited<T>(promise: Promise<T>): Promise<T> {
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

  resetDescendants(stepId: string, frame: Frame): void {
    for (const id of this.plan.descendants.get(stepId) ?? []) frame.states.delete(id);
  }

  async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.limiter) return fn();
    await this.limiter.acquire();
    try {
      return await fn();
    } finally {
      this.limiter.release();
    }
  }

  private execute(step: CompiledStep, frame: Frame, st: StepState, resuming: boolean): Maybe<unknown> {
    return executorOf(step).execute(step, { frame, st, resuming, runner: this });
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