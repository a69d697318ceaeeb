// The simulated port a dry run executes behind: mocks, scripted approvals and events, simulated time (see dry-run.ts).
import { sample } from 'openapi-sampler';
import { countsForCurrentStage, decide as decideAttempt, hasDecidedCurrentStage, type ApprovalRecord } from '../../interpreter/approvals.ts';
import { compileDefinition, outputContractOf } from '../../interpreter/compile.ts';
import { RunFailedError, StepCallError, executePlan, initialRunState, type ActivityCall, type CancellableHandle, type ChildCall, type InterpreterPort, type RunEvent, type RunState } from '../../interpreter/engine.ts';
import type { Definition, Step } from '../../interpreter/schema.ts';
import { withRegisteredDefaults } from '../../interpreter/activity-defaults.ts';
import { Scope, SimulatedCancellation, SimulatedTime } from './simulated-time.ts';
import type { CallRecord, DecisionScript, DryRunEnvironment, DryRunRequest, MockAttempt } from './dry-run-contract.ts';
import { calleeOf, runInfo, stepsOf, typeOf, type Recorder } from './dry-run-steps.ts';

export interface Waiting {
  describe: () => string;
}

/** The port one (simulated) run executes behind. */
export class SimulatedPort implements InterpreterPort {
  private readonly buffered: RunEvent[];
  private waiters: Array<{ predicate: (e: RunEvent) => boolean; resolve: (e: RunEvent) => void; purpose: string }> = [];
  private conditions: Array<{ predicate: () => boolean; resolve: (v: boolean) => void; purpose: string }> = [];
  private readonly scheduled = new Set<string>();
  state?: RunState;

  constructor(
    private readonly time: SimulatedTime,
    private readonly rootScope: Scope,
    private readonly rec: Recorder,
    private readonly request: DryRunRequest,
    private readonly env: DryRunEnvironment,
    private readonly steps: Map<string, Step>,
    /** `""` for the run itself, the step path of a child run. */
    readonly run: string,
    private readonly waiting: Set<Waiting>,
    events: RunEvent[],
  ) {
    this.buffered = events;
    time.onWake(() => this.recheck());
  }

  private scope(): Scope {
    const current = this.time.scope();
    return current === this.time.root ? this.rootScope : current;
  }

  private seconds(): number {
    return this.time.elapsed / 1000;
  }

  private delay(ms: number): Promise<void> {
    return this.time.runIn(this.scope(), () => this.time.delay(ms));
  }

  /** Delivers an event to this run (scripted events reach the top-level run only). */
  deliver(event: RunEvent): void {
    this.rec.delivered.push({ name: event.name, atSeconds: this.seconds() });
    const index = this.waiters.findIndex((w) => w.predicate(event));
    if (index >= 0) {
      const [waiter] = this.waiters.splice(index, 1);
      waiter?.resolve(event);
      return;
    }
    this.buffered.push(event);
  }

  undelivered(): RunEvent[] {
    return this.buffered;
  }

  async runActivity(requested: ActivityCall): Promise<unknown> {
    const call = withRegisteredDefaults(requested, this.env.activityDefaults);
    const step = this.steps.get(call.stepId);
    const script = this.request.mocks?.[call.stepId];
    const record: CallRecord = {
      stepId: call.stepId,
      stepPath: this.run ? `${this.run}/${call.stepPath}` : call.stepPath,
      kind: 'activity',
      callee: step ? calleeOf(step) : `${call.type} ${call.name}`,
      input: call.input,
      attempts: 0,
      source: script ? 'mock' : 'generated',
      run: this.run,
      startedAtSeconds: this.seconds(),
    };
    this.rec.calls.push(record);
    this.rec.payload(call.input);
    const retry = call.retry;
    try {
      for (let attempt = 1; ; attempt += 1) {
        record.attempts = attempt;
        this.rec.attempts += 1;
        if (this.rec.attempts > (this.env.maxAttempts ?? 10_000)) {
          this.rec.aborted ??= `more than ${this.env.maxAttempts ?? 10_000} activity attempts were simulated`;
          throw new StepCallError('the dry run made too many activity attempts', 'DryRunLimit');
        }
        const answer = script ? this.nextMock(call.stepId, script) : { output: this.generated(step, call) };
        const durationMs = (answer.durationSeconds ?? 0) * 1000;
        const timedOut = durationMs > call.timeoutSeconds * 1000;
        await this.delay(timedOut ? call.timeoutSeconds * 1000 : durationMs);
        let failure: StepCallError | undefined;
        let nonRetryable = false;
        if (timedOut) {
          failure = new StepCallError(`${call.type} "${call.name}" timed out (start-to-close; limit ${call.timeoutSeconds}s)`, 'Timeout', attempt);
        } else if ('error' in answer) {
          failure = new StepCallError(answer.error.message ?? `mocked ${answer.error.type}`, answer.error.type, attempt);
          nonRetryable = answer.error.nonRetryable === true;
        }
        if (!failure) {
          const output = 'output' in answer ? (answer.output ?? null) : null;
          record.output = output;
          record.endedAtSeconds = this.seconds();
          this.rec.payload(output);
          return structuredClone(output);
        }
        if (nonRetryable || attempt >= retry.maxAttempts || retry.nonRetryableErrorTypes.includes(failure.type)) throw failure;
        // Temporal's retry policy: initial interval × coefficient^(attempt-1), capped.
        const backoff = Math.min(retry.initialIntervalSeconds * retry.backoffCoefficient ** (attempt - 1), retry.maxIntervalSeconds);
        await this.delay(backoff * 1000);
      }
    } catch (error) {
      if (error instanceof SimulatedCancellation) record.error = { message: 'cancelled', type: 'Cancelled' };
      else if (error instanceof StepCallError) record.error = { message: error.message, type: error.type, ...(error.attempts ? { attempts: error.attempts } : {}) };
      record.endedAtSeconds = this.seconds();
      throw error;
    }
  }

  private nextMock(stepId: string, script: MockAttempt | MockAttempt[]): MockAttempt {
    if (!Array.isArray(script)) return script;
    const used = this.rec.mockUse.get(stepId) ?? 0;
    this.rec.mockUse.set(stepId, used + 1);
    return script[Math.min(used, script.length - 1)] as MockAttempt;
  }

  private generated(step: Step | undefined, call: ActivityCall): unknown {
    const contract = step ? outputContractOf(step, this.env.outputs) : undefined;
    if (!contract) {
      this.warn(`step "${call.stepId}" (${call.type} ${call.name}) has no registered output schema: it answered null; mock it to see more`);
      return null;
    }
    try {
      return sample(contract.schema as never, { skipReadOnly: true, quiet: true });
    } catch (error) {
      this.warn(`step "${call.stepId}": no sample could be generated from the output schema of ${contract.label} (${(error as Error).message}); it answered null`);
      return null;
    }
  }

  private warn(message: string): void {
    if (!this.rec.warnings.includes(message)) this.rec.warnings.push(message);
  }

  async runChild(call: ChildCall): Promise<unknown> {
    const key = `${call.definition}@${call.version}`;
    const script = this.request.mocks?.[call.stepId];
    const stepPath = this.run ? `${this.run}/${call.stepPath}` : call.stepPath;
    const record: CallRecord = {
      stepId: call.stepId,
      stepPath,
      kind: 'sub_workflow',
      callee: `sub_workflow ${key}`,
      input: call.input,
      attempts: 1,
      source: script ? 'mock' : 'simulated',
      run: this.run,
      startedAtSeconds: this.seconds(),
    };
    this.rec.calls.push(record);
    this.rec.payload(call.input);
    try {
      let output: unknown;
      if (script) {
        const answer = this.nextMock(call.stepId, script);
        await this.delay((answer.durationSeconds ?? 0) * 1000);
        if ('error' in answer) throw new StepCallError(`sub-workflow ${key} failed: ${answer.error.message ?? `mocked ${answer.error.type}`}`, 'ChildRunFailed');
        output = answer.output ?? null;
      } else {
        const pinned = this.env.subDefinitions[key];
        if (!pinned) throw new StepCallError(`definition ${key} was not resolved when the run started`, 'UnknownDefinition');
        output = await this.simulateChild(pinned.definition, call, stepPath);
      }
      record.output = output;
      record.endedAtSeconds = this.seconds();
      this.rec.payload(output);
      return structuredClone(output);
    } catch (error) {
      if (error instanceof SimulatedCancellation) record.error = { message: 'cancelled', type: 'Cancelled' };
      else if (error instanceof StepCallError) record.error = { message: error.message, type: error.type };
      record.endedAtSeconds = this.seconds();
      throw error;
    }
  }

  /** A child run, simulated the same way in the same simulated time (its scope nested in the step's). */
  private async simulateChild(definition: Definition, call: ChildCall, stepPath: string): Promise<unknown> {
    const { plan, problems } = compileDefinition(definition);
    if (problems.length > 0) throw new StepCallError(`sub-workflow ${call.definition}@${call.version} does not compile: ${problems[0]?.message}`, 'ChildRunFailed');
    const child = new SimulatedPort(this.time, new Scope(true, this.scope()), this.rec, this.request, this.env, stepsOf(definition), stepPath, this.waiting, []);
    const state = initialRunState(plan, definition.context?.mutable ?? {});
    child.state = state;
    try {
      return await this.time.runIn(child.rootScope, () =>
        executePlan(plan, { input: call.input, signal: call.input, context: { readonly: definition.context?.readonly ?? {} }, run: runInfo(definition, stepPath, this.env) }, child, state),
      );
    } catch (error) {
      if (error instanceof RunFailedError) throw new StepCallError(`sub-workflow ${call.definition}@${call.version} failed: ${error.message}`, 'ChildRunFailed');
      throw error;
    }
  }

  sleep(ms: number): Promise<void> {
    return this.delay(ms);
  }

  now(): number {
    return this.time.now();
  }

  waitForEvent(predicate: (event: RunEvent) => boolean, timeoutMs?: number, purpose?: string): Promise<RunEvent | undefined> {
    const scope = this.scope();
    if (scope.consideredCancelled) return Promise.reject(new SimulatedCancellation('cancelled before the wait started'));
    const index = this.buffered.findIndex(predicate);
    if (index >= 0) {
      const [event] = this.buffered.splice(index, 1);
      return Promise.resolve(event);
    }
    return new Promise<RunEvent | undefined>((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const waiting: Waiting = { describe: () => `${this.label()}${purpose ?? 'an event'}` };
      this.waiting.add(waiting);
      const settle = () => {
        unwatch();
        cancelTimer?.();
        this.waiting.delete(waiting);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter = {
        predicate,
        purpose: purpose ?? 'an event',
        resolve: (event: RunEvent) => {
          settle();
          resolve(event);
        },
      };
      const unwatch = scope.watch(() => {
        settle();
        reject(new SimulatedCancellation('event wait cancelled'));
      });
      this.waiters.push(waiter);
      if (timeoutMs !== undefined) {
        cancelTimer = this.time.at(timeoutMs, () => {
          settle();
          resolve(undefined);
        });
      }
      this.time.poke();
    });
  }

  private label(): string {
    return this.run ? `(child run ${this.run}) ` : '';
  }

  private recheck(): void {
    for (const c of [...this.conditions]) if (c.predicate()) c.resolve(true);
  }

  waitUntil(predicate: () => boolean, timeoutMs?: number, purpose?: string): Promise<boolean> {
    const scope = this.scope();
    if (scope.consideredCancelled) return Promise.reject(new SimulatedCancellation('cancelled before the condition'));
    if (predicate()) return Promise.resolve(true);
    return new Promise<boolean>((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const waiting: Waiting = { describe: () => `${this.label()}${purpose ?? 'a condition'}` };
      this.waiting.add(waiting);
      const entry = {
        predicate,
        purpose: purpose ?? 'a condition',
        resolve: (value: boolean) => {
          this.conditions = this.conditions.filter((c) => c !== entry);
          this.waiting.delete(waiting);
          unwatch();
          cancelTimer?.();
          resolve(value);
        },
      };
      const unwatch = scope.watch(() => {
        this.conditions = this.conditions.filter((c) => c !== entry);
        this.waiting.delete(waiting);
        cancelTimer?.();
        reject(new SimulatedCancellation('condition cancelled'));
      });
      this.conditions.push(entry);
      if (timeoutMs !== undefined) cancelTimer = this.time.at(timeoutMs, () => entry.resolve(predicate()));
      this.time.poke();
    });
  }

  /** Plays the scripted (or default) decisions of every approval newly requested or escalated. */
  onApprovalsChanged(state: RunState): void {
    for (const record of Object.values(state.approvals)) {
      const id = `${this.run}|${record.stepPath}`;
      if (this.rec.approvals.get(id)?.record !== record) {
        this.rec.approvals.set(id, { run: this.run, record, refused: [], scripted: this.request.approvals?.[record.stepId] !== undefined });
      }
      const key = `${id}|${record.stage}|${record.requestedAt}`;
      if (record.status !== 'pending' || this.scheduled.has(key)) continue;
      this.scheduled.add(key);
      for (const decision of this.decisionsFor(record)) {
        if (decision.decision === 'timeout') continue;
        this.time.at((decision.afterSeconds ?? 0) * 1000, () => this.decide(record, decision));
      }
    }
  }

  /** The decisions for this approval's current approver set: the request's, else its quorum approving (the first set only). */
  private decisionsFor(record: ApprovalRecord): DecisionScript[] {
    const script = this.request.approvals?.[record.stepId];
    if (script !== undefined) return (Array.isArray(script) ? script : [script]).filter((d) => countsForCurrentStage(record, d));
    if (record.stage > 0) return [];
    return this.defaultApprovers(record).map((by) => ({ decision: 'approve' as const, by }));
  }

  private defaultApprovers(record: ApprovalRecord): string[] {
    const candidates = [
      ...record.approvers.principals,
      ...record.approvers.groups.flatMap((g) => this.env.directory[g] ?? []),
    ].filter((p, i, all) => all.indexOf(p) === i && (record.allowSelfApproval || p !== record.startedBy));
    const chosen = candidates.slice(0, record.quorum);
    // Group approvers the API keys do not list: stand-ins named after the group, vouched for by it.
    for (let i = 0; chosen.length < record.quorum && record.approvers.groups.length > 0; i += 1) chosen.push(`${record.approvers.groups[i % record.approvers.groups.length]}-approver-${i + 1}`);
    return chosen;
  }

  private decide(record: ApprovalRecord, script: DecisionScript): void {
    if (!this.state) return;
    const by = script.by ?? this.defaultApprovers(record).find((p) => !hasDecidedCurrentStage(record, p)) ?? 'dry-run-approver';
    const standIn = record.approvers.groups.find((g) => by.startsWith(`${g}-approver-`));
    const groups = script.groups ?? (standIn ? [standIn] : Object.entries(this.env.directory).filter(([, members]) => members.includes(by)).map(([g]) => g));
    const attempt = { step: record.stepPath, principal: by, decision: script.decision, groups, via: 'api' as const, ...(script.comment ? { comment: script.comment } : {}) };
    const at = new Date(this.time.now()).toISOString();
    const verdict = decideAttempt(this.state.approvals, attempt, this.env.directory, at);
    if (!verdict.ok) this.rec.approvals.get(`${this.run}|${record.stepPath}`)?.refused.push({ principal: by, decision: script.decision, code: verdict.code, reason: verdict.reason, at });
  }

  cancellable<T>(fn: () => Promise<T>): CancellableHandle<T> {
    const scope = new Scope(true, this.scope());
    return { promise: this.time.runIn(scope, fn), cancel: () => scope.cancel() };
  }

  nonCancellable<T>(fn: () => Promise<T>): Promise<T> {
    return this.time.runIn(new Scope(false, this.scope()), fn);
  }

  async yield(): Promise<void> {
    await Promise.resolve();
  }

  /** The simulation keeps the whole run in memory: it never continues as new (the estimate counts the runs). */
  shouldContinueAsNew(): boolean {
    return false;
  }

  isCancellation(error: unknown): boolean {
    return error instanceof SimulatedCancellation;
  }

  cancellation(message: string): Error {
    return new SimulatedCancellation(message);
  }

  /** A new run: every patch applies. */
  patched(): boolean {
    return true;
  }

  /** Called at every step start (and once more when the run settles, with no current step). */
  onProgress(state: RunState): void {
    if (state.currentStep === undefined) return;
    const step = this.steps.get(state.currentStep);
    this.rec.path.push({ run: this.run, step: state.currentStep, type: step ? typeOf(step) : 'step', atSeconds: this.seconds() });
  }
}
