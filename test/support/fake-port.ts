/**
 * An in-memory InterpreterPort for the engine's unit tests, with the semantics of the Temporal
 * binding in workflows/interpreter.ts and nothing else:
 *
 * - Activities answer from a script per activity name (outputs, failures, virtual durations); the
 *   default echoes the input. Child runs answer from a script per `definition@version`.
 * - A virtual clock: `sleep` and `now` never touch real time. Whenever nothing else can happen
 *   (all microtasks done), the clock jumps to the earliest pending timer, as Temporal's
 *   time-skipping test server does.
 * - An event queue for `waitForEvent`: events are buffered until a wait accepts them, timeouts run
 *   on the virtual clock, events can be scheduled at a virtual time.
 * - Cancellation scopes that nest like Temporal's: cancelling a scope rejects every pending
 *   sleep, activity, child run and event wait started inside it (or in a cancellable scope nested
 *   in it) with a FakeCancelled error; `nonCancellable` shields what runs inside it, and
 *   `cancelRun` cancels the root scope the way a run cancellation does.
 * - `patched()` answers true (a new run) except for the patch ids listed in `unpatched` (a run
 *   replaying a history recorded before the change).
 * - A switch that asks for continue-as-new once N activity calls were made in the current run
 *   (`startNewRun` resets the count, as a new run's fresh history would).
 * - A record of every call.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Scope } from '../../api/authoring/simulated-time.ts';
import {
  ContinueAsNewRequest,
  RunFailedError,
  StepCallError,
  executePlan,
  initialRunState,
  type ActivityCall,
  type CancellableHandle,
  type ChildCall,
  type InterpreterPort,
  type RunContext,
  type RunEvent,
  type RunState,
  type SettledStep,
} from '../../interpreter/engine.ts';
import type { ApprovalRecord } from '../../interpreter/approvals.ts';
import type { Plan } from '../../interpreter/compile.ts';

/** The fake's cancellation error, standing in for Temporal's CancelledFailure. */
export class FakeCancelled extends Error {
  override name = 'FakeCancelled';
}

/**
 * One scripted answer: an output, an error, or a function of the call; `delayMs` is virtual time
 * the call takes before it answers (a number, or a function of the call). A bare function is
 * shorthand for `{respond}`.
 */
/** An answer fixed in advance: an output or an error, after an optional virtual delay. */
export interface FixedAnswer {
  output?: unknown;
  error?: Error;
  delayMs?: number;
}
export interface ScriptedAnswer<C> {
  output?: unknown;
  error?: Error;
  respond?: (call: C, attempt: number) => unknown;
  delayMs?: number | ((call: C) => number);
}
export type Outcome = ScriptedAnswer<ActivityCall> | ((call: ActivityCall, attempt: number) => unknown);

export const ok = (output: unknown, delayMs?: number): FixedAnswer => (delayMs === undefined ? { output } : { output, delayMs });

export const fail = (message: string, type: string, options: { attempts?: number; delayMs?: number } = {}): FixedAnswer => {
  const outcome: FixedAnswer = { error: new StepCallError(message, type, options.attempts) };
  if (options.delayMs !== undefined) outcome.delayMs = options.delayMs;
  return outcome;
};

/** A child-run answer, by `definition@version`. */
export type ChildOutcome = ScriptedAnswer<ChildCall> | ((call: ChildCall) => unknown);

export interface ActivityRecord {
  call: ActivityCall;
  /** 1-based count of calls for this activity name so far. */
  attempt: number;
  startedAt: number;
  endedAt?: number;
  outcome?: 'completed' | 'failed' | 'cancelled';
  /** Names of the activities in flight when this one started, itself included. */
  inFlightAtStart: string[];
  /** Whether the call was made inside a nonCancellable scope (compensation). */
  shielded: boolean;
}

export interface ChildRecord {
  call: ChildCall;
  startedAt: number;
  outcome?: 'completed' | 'failed' | 'cancelled';
}

export interface SleepRecord {
  ms: number;
  at: number;
  outcome?: 'fired' | 'cancelled';
}

export interface EventWaitRecord {
  at: number;
  timeoutMs?: number;
  outcome?: 'event' | 'timeout' | 'cancelled';
  event?: RunEvent;
}

export interface FakePortOptions {
  /** Scripts per activity name: a single outcome, or a list consumed call by call (the last repeats). */
  activities?: Record<string, Outcome | Outcome[]>;
  /** What an activity without a script does: echo its input (default) or fail. */
  unscripted?: 'echo' | 'fail';
  /** Scripts per `definition@version`. Unscripted children answer `{child: input}`. */
  children?: Record<string, ChildOutcome>;
  /** Ask for continue-as-new once this many activity calls were made in the current run. */
  continueAsNewAfterActivityCalls?: number;
  /** Virtual epoch milliseconds the clock starts at. */
  startMs?: number;
  /**
   * Called whenever an approval is requested, escalated or settled: the test plays the approvers
   * (e.g. with applyDecision) at a virtual time of its choosing via `port.at(ms, fn)`.
   */
  onApprovalsChanged?: (state: RunState, port: FakePort) => void;
  /** Patch ids `patched()` answers false for, as when replaying a history recorded before them. */
  unpatched?: readonly string[];
}

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
}

interface EventWaiter {
  predicate: (event: RunEvent) => boolean;
  resolve: (event: RunEvent) => void;
}

export class FakePort implements InterpreterPort {
  readonly activities: ActivityRecord[] = [];
  readonly children: ChildRecord[] = [];
  readonly sleeps: SleepRecord[] = [];
  readonly eventWaits: EventWaitRecord[] = [];
  /** Snapshots handed to onProgress: status and current step. */
  readonly progress: Array<{ status: string; currentStep?: string }> = [];
  /** Undelivered events, oldest first. */
  readonly buffered: RunEvent[] = [];
  /** How many times shouldContinueAsNew answered true. */
  continueAsNewRequests = 0;
  /** Runs started so far (1 + continuations). */
  runs = 1;

  private readonly storage = new AsyncLocalStorage<Scope>();
  private readonly root = new Scope(true);
  private clock: number;
  private timers: Timer[] = [];
  private seq = 0;
  private advancing = false;
  private waiters: EventWaiter[] = [];
  private readonly inFlight = new Set<ActivityRecord>();
  private callsThisRun = 0;
  private readonly perName = new Map<string, number>();

  constructor(private readonly options: FakePortOptions = {}) {
    this.clock = options.startMs ?? 0;
  }

  // ------------------------------------------------------------------------------------------
  // Test controls

  /** Virtual milliseconds since the clock started. */
  get elapsed(): number {
    return this.clock - (this.options.startMs ?? 0);
  }

  /** Cancels the run's root scope, as a cancellation request to the run does. */
  cancelRun(): void {
    this.root.cancel();
  }

  /** Cancels the run at a virtual time. */
  cancelRunAt(ms: number): void {
    this.addTimer(ms, () => this.cancelRun());
  }

  /** Delivers an event now (a signal to the run). */
  sendEvent(name: string, payload: unknown): void {
    const event: RunEvent = { name, payload };
    const index = this.waiters.findIndex((w) => w.predicate(event));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(event);
      return;
    }
    this.buffered.push(event);
  }

  /** Delivers an event at a virtual time (milliseconds from now). */
  sendEventAt(ms: number, name: string, payload: unknown): void {
    this.addTimer(ms, () => this.sendEvent(name, payload));
  }

  /** A new run begins (after continue-as-new): its history, and so the activity count, is fresh. */
  startNewRun(): void {
    this.callsThisRun = 0;
    this.runs += 1;
  }

  /** The highest number of activities in flight at once, optionally among some names only. */
  peakInFlight(names?: readonly string[]): number {
    let peak = 0;
    for (const r of this.activities) {
      if (names && !names.includes(r.call.name)) continue;
      peak = Math.max(peak, names ? r.inFlightAtStart.filter((n) => names.includes(n)).length : r.inFlightAtStart.length);
    }
    return peak;
  }

  /** Activity names in call order. */
  names(): string[] {
    return this.activities.map((r) => r.call.name);
  }

  /** Activity step ids in call order. */
  stepIds(): string[] {
    return this.activities.map((r) => r.call.stepId);
  }

  // ------------------------------------------------------------------------------------------
  // The port

  async runActivity(call: ActivityCall): Promise<unknown> {
    const attempt = (this.perName.get(call.name) ?? 0) + 1;
    this.perName.set(call.name, attempt);
    this.callsThisRun += 1;
    const record: ActivityRecord = {
      call: structuredClone(call),
      attempt,
      startedAt: this.elapsed,
      inFlightAtStart: [],
      shielded: this.scope().shielded,
    };
    this.inFlight.add(record);
    record.inFlightAtStart = [...this.inFlight].map((r) => r.call.name);
    this.activities.push(record);
    try {
      const output = await this.perform(this.outcomeFor(call.name, attempt), call, attempt);
      record.outcome = 'completed';
      return output;
    } catch (error) {
      record.outcome = this.isCancellation(error) ? 'cancelled' : 'failed';
      throw error;
    } finally {
      record.endedAt = this.elapsed;
      this.inFlight.delete(record);
    }
  }

  async runChild(call: ChildCall): Promise<unknown> {
    const record: ChildRecord = { call: structuredClone(call), startedAt: this.elapsed };
    this.children.push(record);
    const scripted = this.options.children?.[`${call.definition}@${call.version}`] ?? { respond: (c: ChildCall) => ({ child: c.input }) };
    try {
      const output = await this.perform(scripted, call, this.children.length);
      record.outcome = 'completed';
      return output;
    } catch (error) {
      record.outcome = this.isCancellation(error) ? 'cancelled' : 'failed';
      throw error;
    }
  }

  sleep(ms: number): Promise<void> {
    const record: SleepRecord = { ms, at: this.elapsed };
    this.sleeps.push(record);
    return this.virtualDelay(ms).then(
      () => {
        record.outcome = 'fired';
      },
      (error: unknown) => {
        record.outcome = 'cancelled';
        throw error;
      },
    );
  }

  /** How many times the engine yielded the workflow task after a long run of pure steps. */
  yields = 0;

  async yield(): Promise<void> {
    this.yields += 1;
    await Promise.resolve();
  }

  now(): number {
    return this.clock;
  }

  waitForEvent(predicate: (event: RunEvent) => boolean, timeoutMs?: number): Promise<RunEvent | undefined> {
    const record: EventWaitRecord = { at: this.elapsed };
    if (timeoutMs !== undefined) record.timeoutMs = timeoutMs;
    this.eventWaits.push(record);
    const scope = this.scope();
    if (scope.consideredCancelled) {
      record.outcome = 'cancelled';
      return Promise.reject(new FakeCancelled('cancelled before the wait started'));
    }
    const index = this.buffered.findIndex(predicate);
    if (index >= 0) {
      const [event] = this.buffered.splice(index, 1);
      record.outcome = 'event';
      record.event = event as RunEvent;
      return Promise.resolve(event);
    }
    return new Promise<RunEvent | undefined>((resolve, reject) => {
      let timer: Timer | undefined;
      const settle = () => {
        unwatch();
        if (timer) this.removeTimer(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter: EventWaiter = {
        predicate,
        resolve: (event) => {
          settle();
          record.outcome = 'event';
          record.event = event;
          resolve(event);
        },
      };
      const unwatch = scope.watch(() => {
        settle();
        record.outcome = 'cancelled';
        reject(new FakeCancelled('event wait cancelled'));
      });
      this.waiters.push(waiter);
      if (timeoutMs !== undefined) {
        timer = this.addTimer(timeoutMs, () => {
          settle();
          record.outcome = 'timeout';
          resolve(undefined);
        });
      }
    });
  }

  /** Steps reported settled (lifecycle events), in order. */
  settled: SettledStep[] = [];
  /** Approval lifecycle notices: phase, step path and status at that moment. */
  approvalPhases: Array<[string, string, string]> = [];

  onStepSettled(settled: SettledStep): void {
    this.settled.push(settled);
  }

  onApproval(phase: 'requested' | 'decided', record: ApprovalRecord): void {
    this.approvalPhases.push([phase, record.stepPath, record.status]);
  }

  /** Approvals-changed notifications, in order (the statuses of every approval at that moment). */
  approvalNotices: Array<Record<string, string>> = [];

  onApprovalsChanged(state: RunState): void {
    this.approvalNotices.push(Object.fromEntries(Object.entries(state.approvals).map(([k, a]) => [k, a.status])));
    this.options.onApprovalsChanged?.(state, this);
  }

  private conditions: Array<{ predicate: () => boolean; resolve: (value: boolean) => void }> = [];

  /** Runs `fn` at virtual time `ms` after now (e.g. an approver deciding), then rechecks conditions. */
  at(ms: number, fn: () => void): void {
    this.addTimer(ms, () => {
      fn();
      this.recheck();
    });
  }

  /** Re-evaluates pending conditions, as Temporal does after every signal, update or timer. */
  recheck(): void {
    for (const c of [...this.conditions]) {
      if (c.predicate()) c.resolve(true);
    }
  }

  waitUntil(predicate: () => boolean, timeoutMs?: number): Promise<boolean> {
    const scope = this.scope();
    if (scope.consideredCancelled) return Promise.reject(new FakeCancelled('cancelled before the condition'));
    if (predicate()) return Promise.resolve(true);
    return new Promise<boolean>((resolve, reject) => {
      let timer: Timer | undefined;
      const entry = {
        predicate,
        resolve: (value: boolean) => {
          this.conditions = this.conditions.filter((c) => c !== entry);
          unwatch();
          if (timer) this.removeTimer(timer);
          resolve(value);
        },
      };
      const unwatch = scope.watch(() => {
        this.conditions = this.conditions.filter((c) => c !== entry);
        if (timer) this.removeTimer(timer);
        reject(new FakeCancelled('condition cancelled'));
      });
      this.conditions.push(entry);
      if (timeoutMs !== undefined) timer = this.addTimer(timeoutMs, () => entry.resolve(predicate()));
    });
  }

  cancellable<T>(fn: () => Promise<T>): CancellableHandle<T> {
    const scope = new Scope(true, this.scope());
    return { promise: this.storage.run(scope, fn), cancel: () => scope.cancel() };
  }

  nonCancellable<T>(fn: () => Promise<T>): Promise<T> {
    return this.storage.run(new Scope(false, this.scope()), fn);
  }

  shouldContinueAsNew(): boolean {
    const limit = this.options.continueAsNewAfterActivityCalls;
    const yes = limit !== undefined && this.callsThisRun >= limit;
    if (yes) this.continueAsNewRequests += 1;
    return yes;
  }

  isCancellation(error: unknown): boolean {
    return error instanceof FakeCancelled;
  }

  cancellation(message: string): Error {
    return new FakeCancelled(message);
  }

  /** Patch ids the engine asked about, in order (each once per call). */
  readonly patchChecks: string[] = [];

  patched(patchId: string): boolean {
    this.patchChecks.push(patchId);
    return !(this.options.unpatched ?? []).includes(patchId);
  }

  onProgress(state: RunState): void {
    const snapshot: { status: string; currentStep?: string } = { status: state.status };
    if (state.currentStep !== undefined) snapshot.currentStep = state.currentStep;
    this.progress.push(snapshot);
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  private scope(): Scope {
    return this.storage.getStore() ?? this.root;
  }

  private outcomeFor(name: string, attempt: number): Outcome {
    const script = this.options.activities?.[name];
    if (script === undefined) {
      if (this.options.unscripted === 'fail') return { error: new StepCallError(`no script for activity "${name}"`, 'Unscripted') };
      return (call) => structuredClone(call.input);
    }
    if (Array.isArray(script)) {
      const outcome = script[Math.min(attempt, script.length) - 1];
      if (outcome === undefined) throw new Error(`empty script for activity "${name}"`);
      return outcome;
    }
    return script;
  }

  /** Waits the outcome's virtual delay (cancellably), then answers or throws. */
  private async perform<C>(outcome: ScriptedAnswer<C> | ((call: C, attempt: number) => unknown), call: C, attempt: number): Promise<unknown> {
    const answer: ScriptedAnswer<C> = typeof outcome === 'function' ? { respond: outcome } : outcome;
    const delayMs = typeof answer.delayMs === 'function' ? answer.delayMs(call) : answer.delayMs;
    if (this.scope().consideredCancelled) throw new FakeCancelled('cancelled before the call started');
    if (delayMs !== undefined && delayMs > 0) await this.virtualDelay(delayMs);
    else await Promise.resolve();
    if (answer.error) throw answer.error;
    if (answer.respond) return await answer.respond(call, attempt);
    return structuredClone(answer.output);
  }

  /** Resolves after `ms` of virtual time; rejects with FakeCancelled when its scope is cancelled. */
  private virtualDelay(ms: number): Promise<void> {
    const scope = this.scope();
    if (scope.consideredCancelled) return Promise.reject(new FakeCancelled('cancelled before the timer started'));
    return new Promise<void>((resolve, reject) => {
      const timer = this.addTimer(ms, () => {
        unwatch();
        resolve();
      });
      const unwatch = scope.watch(() => {
        this.removeTimer(timer);
        reject(new FakeCancelled('timer cancelled'));
      });
    });
  }

  private addTimer(ms: number, fire: () => void): Timer {
    const timer: Timer = { at: this.clock + Math.max(0, ms), seq: this.seq++, fire };
    this.timers.push(timer);
    this.scheduleAdvance();
    return timer;
  }

  private removeTimer(timer: Timer): void {
    this.timers = this.timers.filter((t) => t !== timer);
  }

  /** Once every microtask has run, fire the earliest timers (moving the clock to them). */
  private scheduleAdvance(): void {
    if (this.advancing) return;
    this.advancing = true;
    setImmediate(() => {
      this.advancing = false;
      if (this.timers.length === 0) return;
      const at = Math.min(...this.timers.map((t) => t.at));
      const due = this.timers.filter((t) => t.at === at).sort((a, b) => a.seq - b.seq);
      this.timers = this.timers.filter((t) => t.at !== at);
      this.clock = Math.max(this.clock, at);
      for (const t of due) t.fire();
      if (this.timers.length > 0) this.scheduleAdvance();
    });
  }
}

// --------------------------------------------------------------------------------------------
// Drivers

export const defaultContext: RunContext = {
  input: {},
  signal: {},
  context: { readonly: {} },
  run: { id: 'run-1' },
};

export interface Completed {
  output: unknown;
  state: RunState;
  /** The state carried across each continue-as-new, in order. */
  carried: RunState[];
}

/**
 * Runs a plan to the end, continuing as new whenever the engine asks: the carried state goes
 * through JSON (as it does through Temporal) and the port starts a new run.
 */
export async function runToEnd(
  plan: Plan,
  port: FakePort,
  options: { ctx?: Partial<RunContext>; vars?: Record<string, unknown>; state?: RunState; maxRuns?: number } = {},
): Promise<Completed> {
  const ctx: RunContext = { ...defaultContext, ...options.ctx };
  let state = options.state ?? initialRunState(plan, options.vars ?? {});
  const carried: RunState[] = [];
  for (let run = 0; run < (options.maxRuns ?? 500); run += 1) {
    try {
      const output = await executePlan(plan, ctx, port, state);
      return { output, state, carried };
    } catch (error) {
      if (!(error instanceof ContinueAsNewRequest)) throw error;
      const json = JSON.parse(JSON.stringify(error.state)) as RunState;
      carried.push(structuredClone(json));
      state = json;
      port.startNewRun();
    }
  }
  throw new Error(`the run did not finish within ${options.maxRuns ?? 500} runs`);
}

/** Runs a plan that must fail; returns the RunFailedError (whose state is the run's state). */
export async function runToFailure(
  plan: Plan,
  port: FakePort,
  options: { ctx?: Partial<RunContext>; vars?: Record<string, unknown> } = {},
): Promise<RunFailedError> {
  try {
    const { output } = await runToEnd(plan, port, options);
    throw new Error(`expected the run to fail, it completed with ${JSON.stringify(output)}`);
  } catch (error) {
    if (error instanceof RunFailedError) return error;
    throw error;
  }
}
