import { sample } from 'openapi-sampler';
import { z } from 'zod';
import { countsForCurrentStage, decide as decideAttempt, hasDecidedCurrentStage, type ApprovalRecord, type Directory } from '../../interpreter/approvals.ts';
import { compileDefinition, outputContractOf, walkSteps, type Plan } from '../../interpreter/compile.ts';
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
  type RunEvent,
  type RunState,
  type StepError,
} from '../../interpreter/engine.ts';
import { estimateHistory, type CaseEstimate, type RunPath } from '../../interpreter/estimate.ts';
import type { OutputContracts } from '../../interpreter/output-shapes.ts';
import { MAX_WAIT_SECONDS, type Definition, type Step } from '../../interpreter/schema.ts';
import type { PinnedDefinition } from '../../workflows/types.ts';
import { withRegisteredDefaults, type ActivityDefaults } from '../../interpreter/activity-defaults.ts';
import type { ProblemDetail } from '../problem.ts';
import { Scope, SimulatedCancellation, SimulatedTime } from './simulated-time.ts';

/**
 * Dry runs (POST /v1/definitions/dry-run): a definition runs through the real interpreter
 * (interpreter/engine.ts, `executePlan`) behind an InterpreterPort whose effects are all
 * simulated. Activities and child runs answer from the request's mocks (or a sample generated
 * from the callee's registered output schema), with Temporal's retry policy applied attempt by
 * attempt; approvals are decided as the request scripts them, through the same rules the workflow
 * applies (interpreter/approvals.ts `decide`); timers, waits and deadlines pass
 * in simulated time (simulated-time.ts); events arrive as scripted. Nothing leaves the process:
 * no Temporal call, no activity, no HTTP, no database write.
 *
 * Temporal's time-skipping test server (@temporalio/testing) downloads its binary at run time,
 * which this installation forbids, so the dry run uses this dedicated in-process environment
 * over the pure interpreter instead (docs/authoring.md).
 */

const stepKey = z.string().min(1).max(64);
const seconds = z.number().min(0).max(MAX_WAIT_SECONDS);

const mockAttemptSchema = z.union([
  z.strictObject({
    output: z.unknown().describe('what the attempt returns'),
    durationSeconds: seconds.optional().describe('simulated time the attempt takes (past the step timeout it times out)'),
  }),
  z.strictObject({
    error: z.strictObject({
      type: z.string().min(1).max(200).describe('the error type, as an activity reports it (NetworkError, HttpError, ...)'),
      message: z.string().max(2000).optional(),
      nonRetryable: z.boolean().optional().describe('the activity marks it non-retryable (no further attempt)'),
    }),
    durationSeconds: seconds.optional(),
  }),
]);

const decisionScriptSchema = z.strictObject({
  decision: z.enum(['approve', 'reject', 'timeout']).describe('timeout: nobody decides; the step’s timeout policy applies'),
  by: z.string().min(1).max(200).optional().describe('the approver (default: a member of the approver set who did not start the run)'),
  groups: z.array(z.string().min(1).max(200)).max(50).optional().describe('groups the approver’s key vouches for (default: from the API keys)'),
  comment: z.string().max(2000).optional(),
  afterSeconds: seconds.optional().describe('simulated seconds after the approval is requested (default 0)'),
  stage: z.union([z.literal(0), z.literal(1)]).optional().describe('the approver set it is made to: 0 (default), or 1 after an escalation'),
});

export const dryRunRequestSchema = z
  .strictObject({
    definition: z.unknown().optional().describe('an inline definition (not registered); or give name (and version)'),
    name: z.string().min(1).max(100).optional().describe('a registered definition'),
    version: z.string().min(1).max(100).optional().describe('its version (default: the highest active one)'),
    input: z.unknown().optional().describe('the run input'),
    signal: z.unknown().optional().describe('the triggering event (read as `signal`; default: the input)'),
    startedBy: z.string().min(1).max(200).optional().describe('who starts the run (default: the caller); refused as approver unless self-approval is allowed'),
    mocks: z
      .record(stepKey, z.union([mockAttemptSchema, z.array(mockAttemptSchema).min(1).max(100)]))
      .optional()
      .describe('per step id (activity or sub_workflow steps): one answer for every attempt, or a list consumed attempt by attempt (the last repeats)'),
    approvals: z
      .record(stepKey, z.union([decisionScriptSchema, z.array(decisionScriptSchema).min(1).max(50)]))
      .optional()
      .describe('per approval step id: one decision or several (a quorum, a refused one then another), made each time the step is reached (default: approved by its quorum)'),
    events: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(200),
          payload: z.unknown().optional(),
          afterSeconds: seconds.optional().describe('simulated seconds after the run starts (default 0)'),
        }),
      )
      .max(1000)
      .optional()
      .describe('events (signals) delivered to the run'),
  })
  .refine((r) => (r.definition === undefined) !== (r.name === undefined), {
    message: 'give either "definition" (inline) or "name" (a registered definition), not both',
    path: ['definition'],
  })
  .refine((r) => r.version === undefined || r.name !== undefined, { message: '"version" needs "name"', path: ['version'] });

const stepErrorSchema = z.object({ message: z.string(), type: z.string(), attempts: z.number().optional(), step: z.string().optional() });

/** The answer (documented in the OpenAPI; DryRunReport below is its type). */
export const dryRunReportSchema = z.object({
  definition: z.object({ name: z.string(), version: z.string(), source: z.enum(['inline', 'registered']) }),
  status: z.enum(['completed', 'failed', 'blocked', 'aborted']).describe('blocked: the run waits for something nothing scripted (see `blocked`); aborted: the simulation hit its own limits'),
  output: z.unknown().optional().describe('the run output, when completed'),
  error: stepErrorSchema.optional().describe('why the run failed: the failing step’s error, with `step`'),
  blocked: z.object({ waitingFor: z.array(z.string()) }).optional(),
  path: z.array(z.object({ run: z.string(), step: z.string(), type: z.string(), atSeconds: z.number() })).describe('every step start in order (`run` is "" for the run, a child run’s step path otherwise)'),
  steps: z.array(z.record(z.string(), z.unknown())).describe('every step: id, type, status (or "not reached"), callee, input, output, error, branch, iterations, items, attempts, source (mock, generated, simulated)'),
  calls: z
    .array(
      z.object({
        stepId: z.string(),
        stepPath: z.string(),
        kind: z.enum(['activity', 'sub_workflow']),
        callee: z.string(),
        input: z.unknown(),
        output: z.unknown().optional(),
        error: stepErrorSchema.optional(),
        attempts: z.number(),
        source: z.enum(['mock', 'generated', 'simulated']),
        run: z.string(),
        startedAtSeconds: z.number(),
        endedAtSeconds: z.number().optional(),
      }),
    )
    .describe('every activity and child-run call, with its simulated attempts'),
  approvals: z.array(z.record(z.string(), z.unknown())).describe('each approval reached: status, decisions accepted, attempts refused (code, reason)'),
  events: z.object({ delivered: z.array(z.object({ name: z.string(), atSeconds: z.number() })), undelivered: z.array(z.object({ name: z.string() })) }),
  rollback: z.unknown().optional(),
  simulatedSeconds: z.number().describe('simulated time from start to end'),
  predicted: z.object({
    events: z.number().describe('history events of this path (interpreter/estimate.ts over the branches, iterations, items and decisions taken)'),
    eventsPerRun: z.number(),
    runs: z.number().describe('runs after continue-as-new'),
    payloadBytes: z.number().describe('bytes of every payload written: the run input and output, each call’s input and output'),
    largestPayloadBytes: z.number(),
    estimate: z.record(z.string(), z.unknown()).describe('the estimator’s case for this path'),
  }),
  warnings: z.array(z.string()),
});

export type DryRunRequest = z.infer<typeof dryRunRequestSchema>;
type MockAttempt = z.infer<typeof mockAttemptSchema>;
type DecisionScript = z.infer<typeof decisionScriptSchema>;

/** What the dry run knows about the installation (all of it read before the simulation starts). */
export interface DryRunEnvironment {
  tenant: string;
  startedBy: string;
  /** Registered output schemas by `<family>:<name>`, for generated outputs. */
  outputs?: OutputContracts;
  activityDefaults?: Record<string, ActivityDefaults>;
  /** Group members, from the API keys (approvals by a group member). */
  directory: Directory;
  /** The definitions its sub_workflow steps start, transitively, by `name@version`. */
  subDefinitions: Record<string, PinnedDefinition>;
  continueAsNewAfterEvents?: number;
  /** Caps on the simulation itself. */
  maxAttempts?: number;
  maxWallMs?: number;
}

export interface CallRecord {
  stepId: string;
  stepPath: string;
  kind: 'activity' | 'sub_workflow';
  /** `skill http-fetch`, `sub_workflow child@1.0.0`, ... */
  callee: string;
  input: unknown;
  output?: unknown;
  error?: StepError;
  attempts: number;
  /** Where the answer came from. */
  source: 'mock' | 'generated' | 'simulated';
  /** The run (or child run path) the call belongs to. */
  run: string;
  startedAtSeconds: number;
  endedAtSeconds?: number;
}

export interface PathEntry {
  run: string;
  step: string;
  type: string;
  atSeconds: number;
}

export interface DryRunReport {
  definition: { name: string; version: string; source: 'inline' | 'registered' };
  status: 'completed' | 'failed' | 'blocked' | 'aborted';
  output?: unknown;
  error?: StepError & { message: string };
  /** Why the run could not go on: what it was waiting for when nothing else was scheduled. */
  blocked?: { waitingFor: string[] };
  /** Steps in the order they started (top-level run `""`, a child run by its step path). */
  path: PathEntry[];
  /** Every step of the definition: what it did (its last state, for steps repeated in loops). */
  steps: Array<Record<string, unknown>>;
  calls: CallRecord[];
  approvals: Array<Record<string, unknown>>;
  events: { delivered: Array<{ name: string; atSeconds: number }>; undelivered: Array<{ name: string }> };
  rollback?: RunState['rollback'];
  simulatedSeconds: number;
  predicted: {
    /** History events of this path (estimate.ts over the branches, iterations, items and decisions taken). */
    events: number;
    eventsPerRun: number;
    runs: number;
    /** Bytes of every payload the run writes: its input and output, each call's input and output, events. */
    payloadBytes: number;
    largestPayloadBytes: number;
    estimate: CaseEstimate;
  };
  warnings: string[];
}

const jsonBytes = (value: unknown): number => (value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'));

function typeOf(step: Step): string {
  return step.type;
}

function calleeOf(step: Step): string {
  switch (step.type) {
    case 'skill':
      return `skill ${step.skill}`;
    case 'integration':
      return `integration ${step.integration}`;
    case 'directive':
      return `directive ${step.directive}`;
    case 'agent':
      return `agent ${step.agent ?? step.agent_ref?.slug ?? ''}`;
    case 'model':
      return `model ${step.model}`;
    case 'sub_workflow':
      return `sub_workflow ${step.definition}@${step.version}`;
    default:
      return step.type;
  }
}

const ACTIVITY_TYPES = new Set(['skill', 'integration', 'directive', 'agent', 'model']);

/** Steps by id of a definition (nested, handlers and compensations included). */
function stepsOf(definition: Definition): Map<string, Step> {
  const byId = new Map<string, Step>();
  const visit = (step: Step) => byId.set(step.id, step);
  walkSteps(definition.steps, '/steps', visit);
  const rollback = (definition as { error_handling?: { rollback?: { steps?: Step[] } } }).error_handling?.rollback?.steps;
  if (rollback) walkSteps(rollback, '/error_handling/rollback/steps', visit);
  return byId;
}

/**
 * Checks the mocks and approval scripts name steps that can take them: a 400 for each that does
 * not, with its path in the request and the steps that would.
 */
export function scriptProblems(request: DryRunRequest, definitions: readonly Definition[]): ProblemDetail[] {
  const all = new Map<string, Step>();
  for (const d of definitions) for (const [id, step] of stepsOf(d)) if (!all.has(id)) all.set(id, step);
  const problems: ProblemDetail[] = [];
  const mockable = [...all.values()].filter((s) => ACTIVITY_TYPES.has(s.type) || s.type === 'sub_workflow').map((s) => s.id);
  for (const id of Object.keys(request.mocks ?? {})) {
    const step = all.get(id);
    if (!step) problems.push({ path: `/mocks/${id}`, message: `no step "${id}" in the definition; steps that take mocks: ${mockable.join(', ') || '(none)'}` });
    else if (!ACTIVITY_TYPES.has(step.type) && step.type !== 'sub_workflow') {
      const hint = step.type === 'approval' ? 'script it under "approvals"' : step.type === 'wait_for_event' ? 'deliver its event under "events"' : 'it has no effect to mock';
      problems.push({ path: `/mocks/${id}`, message: `step "${id}" is a ${step.type} step: ${hint}; steps that take mocks: ${mockable.join(', ') || '(none)'}` });
    }
  }
  const approvals = [...all.values()].filter((s) => s.type === 'approval').map((s) => s.id);
  for (const id of Object.keys(request.approvals ?? {})) {
    const step = all.get(id);
    if (!step || step.type !== 'approval') {
      problems.push({ path: `/approvals/${id}`, message: `${step ? `step "${id}" is a ${step.type} step, not an approval` : `no step "${id}" in the definition`}; approval steps: ${approvals.join(', ') || '(none)'}` });
    }
  }
  return problems;
}

/** Shared by the top-level run and its simulated children. */
class Recorder {
  readonly calls: CallRecord[] = [];
  readonly path: PathEntry[] = [];
  readonly warnings: string[] = [];
  readonly delivered: Array<{ name: string; atSeconds: number }> = [];
  readonly approvals = new Map<string, { run: string; record: ApprovalRecord; refused: Array<Record<string, unknown>>; scripted: boolean }>();
  readonly mockUse = new Map<string, number>();
  readonly approvalUse = new Map<string, number>();
  attempts = 0;
  payloadBytes = 0;
  largestPayload = 0;
  aborted?: string;

  payload(value: unknown): void {
    const bytes = jsonBytes(value);
    this.payloadBytes += bytes;
    this.largestPayload = Math.max(this.largestPayload, bytes);
  }
}

interface Waiting {
  describe: () => string;
}

/** The port one (simulated) run executes behind. */
class SimulatedPort implements InterpreterPort {
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

function runInfo(definition: Definition, id: string, env: DryRunEnvironment): Record<string, unknown> {
  return { id: id || 'dry-run', definition: definition.name, version: definition.version, startedBy: env.startedBy, correlationId: 'dry-run', lane: definition.lane ?? '', tenant: env.tenant, dryRun: true };
}

/** The path this run took, in the estimator's terms (interpreter/estimate.ts RunPath). */
function runPathOf(plan: Plan, state: RunState, rec: Recorder): RunPath {
  const path: Required<Pick<RunPath, 'iterations' | 'items' | 'branches' | 'signals' | 'approvals'>> & { skipped: string[] } = {
    iterations: {},
    items: {},
    branches: {},
    signals: {},
    approvals: {},
    skipped: [],
  };
  // Steps inside for_each iterations keep their state per iteration, not in the run's: what
  // started is what the path recorded.
  const started = new Set(rec.path.filter((p) => p.run === '').map((p) => p.step));
  for (const [id, step] of plan.byId) {
    const st = state.steps[id];
    if (!started.has(id) || st?.status === 'skipped') {
      path.skipped.push(id);
      continue;
    }
    if (!st) continue;
    if (step.kind === 'loop' && st.iteration !== undefined) path.iterations[id] = st.iteration;
    if (step.kind === 'for_each' && st.total !== undefined) path.items[id] = st.total;
    if (st.branch !== undefined && st.branch !== 'none') {
      path.branches[id] = st.branch === 'then' || st.branch === 'else' || st.branch === 'default' ? st.branch : Number(st.branch.slice(5));
    }
    if (step.kind === 'wait_for_event') path.signals[id] = st.output === null && st.status === 'completed' ? 0 : 1;
  }
  // Scripted decisions are API decisions: a refused one is stopped by the update's validator and
  // leaves no event. A step reached more than once (in a loop) is given its average.
  const reached = new Map<string, ApprovalRecord[]>();
  for (const { run, record } of rec.approvals.values()) if (run === '') reached.set(record.stepId, [...(reached.get(record.stepId) ?? []), record]);
  for (const [stepId, records] of reached) {
    const mean = (f: (r: ApprovalRecord) => number) => Math.round(records.reduce((n, r) => n + f(r), 0) / records.length);
    path.approvals[stepId] = {
      updates: mean((r) => r.decisions.length),
      stages: mean((r) => r.stage + 1),
      timersFired: mean((r) => (r.escalated ? 1 : 0) + (r.timedOut ? 1 : 0)),
    };
  }
  return path;
}

function stepReport(definition: Definition, state: RunState, rec: Recorder): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const [id, step] of stepsOf(definition)) {
    const st = state.steps[id];
    const calls = rec.calls.filter((c) => c.run === '' && c.stepId === id);
    const entry: Record<string, unknown> = { id, type: step.type, status: st?.status ?? 'not reached' };
    if (ACTIVITY_TYPES.has(step.type) || step.type === 'sub_workflow') entry.callee = calleeOf(step);
    const last = calls[calls.length - 1];
    if (last) {
      entry.input = last.input;
      entry.source = last.source;
      entry.attempts = last.attempts;
      if (calls.length > 1) entry.calls = calls.length;
    }
    if (st?.output !== undefined) entry.output = st.output;
    if (st?.error) entry.error = st.error;
    if (st?.branch !== undefined) entry.branch = st.branch;
    if (st?.iteration !== undefined) entry.iterations = st.iteration;
    if (st?.total !== undefined) entry.items = st.total;
    if (st?.continued) entry.continued = true;
    if (st?.handled) entry.handled = true;
    out.push(entry);
  }
  return out;
}

/** Runs the dry run. `plan` is the validated definition's plan. */
export async function dryRun(definition: Definition, plan: Plan, request: DryRunRequest, env: DryRunEnvironment, source: 'inline' | 'registered'): Promise<DryRunReport> {
  const rec = new Recorder();
  const waiting = new Set<Waiting>();
  const startMs = Date.parse('2030-01-01T00:00:00.000Z');
  let finish: (value: 'settled' | 'stalled' | 'aborted') => void = () => undefined;
  const outcome = new Promise<'settled' | 'stalled' | 'aborted'>((resolve) => {
    finish = resolve;
  });
  const wallStart = Date.now();
  const time = new SimulatedTime(startMs, () => finish('stalled'));
  // The wall-clock cap: checked at every wake-up of the simulated clock.
  time.onWake(() => {
    if (Date.now() - wallStart > (env.maxWallMs ?? 10_000)) {
      rec.aborted ??= `the simulation ran longer than ${env.maxWallMs ?? 10_000} ms of real time`;
      finish('aborted');
    }
  });
  const events: RunEvent[] = [];
  const port = new SimulatedPort(time, time.root, rec, request, env, stepsOf(definition), '', waiting, events);
  for (const event of request.events ?? []) {
    time.at((event.afterSeconds ?? 0) * 1000, () => port.deliver({ name: event.name, payload: event.payload ?? null }));
  }
  const state = initialRunState(plan, definition.context?.mutable ?? {});
  port.state = state;
  const input = request.input ?? null;
  rec.payload(input);
  let output: unknown;
  let failure: RunFailedError | undefined;
  let unexpected: unknown;
  const run = executePlan(plan, { input, signal: request.signal ?? input, context: { readonly: definition.context?.readonly ?? {} }, run: runInfo(definition, '', env) }, port, state).then(
    (value) => {
      output = value;
      finish('settled');
    },
    (error: unknown) => {
      if (error instanceof RunFailedError) failure = error;
      else unexpected = error;
      finish('settled');
    },
  );
  time.poke();
  const result = await outcome;
  time.stop();
  void run;
  if (unexpected !== undefined && !(unexpected instanceof ContinueAsNewRequest)) throw unexpected;

  const path = runPathOf(plan, state, rec);
  const estimate = estimateHistory(plan, { path, ...(env.continueAsNewAfterEvents ? { continueAsNewAfterEvents: env.continueAsNewAfterEvents } : {}) }).typical;
  if (result === 'settled' && failure === undefined) rec.payload(output);
  const status: DryRunReport['status'] = result === 'aborted' || rec.aborted ? 'aborted' : result === 'stalled' ? 'blocked' : failure ? 'failed' : 'completed';
  const report: DryRunReport = {
    definition: { name: definition.name, version: definition.version, source },
    status,
    path: rec.path,
    steps: stepReport(definition, state, rec),
    calls: rec.calls,
    approvals: [...rec.approvals.values()].map(({ run: r, record, refused, scripted }) => ({
      run: r,
      step: record.stepId,
      stepPath: record.stepPath,
      status: record.status,
      scripted,
      stage: record.stage,
      quorum: record.quorum,
      ...(record.timedOut ? { timedOut: true } : {}),
      ...(record.escalated ? { escalated: true } : {}),
      decisions: record.decisions.map((d) => ({ principal: d.principal, decision: d.decision, at: d.at, ...(d.comment ? { comment: d.comment } : {}) })),
      refused,
    })),
    events: { delivered: rec.delivered, undelivered: port.undelivered().map((e) => ({ name: e.name })) },
    simulatedSeconds: time.elapsed / 1000,
    predicted: {
      events: estimate.events,
      eventsPerRun: estimate.eventsPerRun,
      runs: estimate.runs,
      payloadBytes: rec.payloadBytes,
      largestPayloadBytes: rec.largestPayload,
      estimate,
    },
    warnings: rec.warnings,
  };
  if (status === 'completed') report.output = output ?? null;
  if (status === 'failed' && failure) report.error = { ...(state.error ?? { type: 'RunFailed' }), message: failure.message };
  if (status === 'blocked') report.blocked = { waitingFor: [...waiting].map((w) => w.describe()) };
  if (status === 'aborted') report.error = { type: 'DryRunLimit', message: rec.aborted ?? 'the simulation was stopped' };
  if (state.rollback) report.rollback = state.rollback;
  if (rec.largestPayload > 2 * 1024 * 1024) rec.warnings.push(`a payload of ${rec.largestPayload} bytes is past Temporal's 2 MiB payload limit`);
  return report;
}
