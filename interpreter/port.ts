import type { ApprovalRecord } from './approvals.ts';
import type { ActivityFamily, EffectiveRetry, Plan } from './plan.ts';
import type { BindingName } from './expressions.ts';

/**
 * The engine's contracts with the outside: the run state it keeps (plain JSON, carried across
 * continue-as-new and shown by the workflow's query), the port it asks for every effect, and the
 * errors it reports. The Temporal binding (workflows/) implements the port; unit tests bind it to
 * plain functions (test/support/fake-port.ts).
 */

export type StepStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/**
 * A structured error's problem details (RFC 9457, as Serverless Workflow errors are): what a
 * `fail` step may give besides its message and type, kept through catch and re-raise.
 */
export interface Problem {
  status?: number;
  title?: string;
  detail?: string;
  /** Where it happened: a `fail` step's JSON Pointer unless it says otherwise. */
  instance?: string;
}

export interface StepError extends Problem {
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
  /** How many `uuid()` values the run's expressions took (absent until the first). */
  uuidsIssued?: number;
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
    /** A `fail` step's problem details. */
    readonly problem?: Problem,
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
  /**
   * Workflow-level, taken by every run at its start (workflows/approval-handlers.ts): approval
   * decisions prove their sender through the `verifyDecisionToken` activity.
   */
  decisionProofs: 'approval-decision-proofs',
  /** Workflow-level, taken when a run fails (workflows/interpreter.ts): it fails with the step's own error type. */
  stepFailureType: 'run-failure-step-type',
} as const;
