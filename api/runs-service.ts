import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { canonicalJson, sha256Hex } from '../common/canonical-json.ts';
import { AGENT_WORKFLOW_TYPE, INTERPRETER_WORKFLOW_TYPE, MEMO_KEYS, PRIORITY_KEYS, workflowTaskQueue } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { currentTraceparent, traceIdOf } from '../common/trace-context.ts';
import type { Problem, RunState, StepState } from '../interpreter/engine.ts';
import { signDecisionToken, type DecisionKeys } from '../activities/platform/decision-tokens.ts';
import { approvalsCounted, awaitsDecisionFrom, type ApprovalRecord } from '../interpreter/approvals.ts';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { approvalUpdate, pendingApprovalsQuery, runStateQuery, type ApprovalUpdateResult } from '../workflows/definitions.ts';
import type { RunResult } from '../workflows/types.ts';
import type { Principal } from './auth.ts';
import { runInputFor, runSearchAttributes, type RunIdentity, type RunPins } from './run-inputs.ts';
import type { StoredDefinition } from './definitions-store.ts';
import { HttpProblem } from './problem.ts';
import { startFromSpec, type Admission } from './admission.ts';
import type { DeferredRun, StartSpec } from './admission-store.ts';
import { failureMessageOf } from '../common/temporal.ts';

/** Escapes a value for a single-quoted string in a visibility query. */
function quoteable(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
}

export const RUN_STATUSES = ['deferred', 'running', 'completed', 'failed', 'cancelled', 'terminated', 'timed_out'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

const STATUS_QUERY_VALUE: Record<Exclude<RunStatus, 'deferred'>, string> = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  timed_out: 'TimedOut',
};

export interface StartRunRequest {
  definition: StoredDefinition;
  input: unknown;
  idempotencyKey?: string | undefined;
  /** The version the caller asked for (undefined: latest), which the idempotency check compares. */
  requestedVersion?: string | undefined;
  principal: Principal;
  correlationId: string;
  executionTimeoutSeconds: number;
  /** Child definitions and the approval directory, pinned at start (see RunInput). */
  pins?: RunPins;
  /** The event that caused this run (its id becomes the causation id). */
  trigger?: { event: { id: string; [key: string]: unknown } };
}

/** An activity Temporal is running or retrying for a run (describe's pending activities). */
export interface PendingActivity {
  activityId: string;
  activity: string;
  /** The step's id (the last segment of its path), as the run's step views name it. */
  stepId?: string;
  /** Where in the run: `loop[2]/flaky` inside a loop or for_each iteration, else the step id. */
  stepPath?: string;
  attempt: number;
  maximumAttempts?: number;
  lastFailure?: string;
  nextAttemptAt?: string;
}

/** One entry of an approver's inbox. */
/** How long the proof of an API decision is valid: it travels straight to the workflow. */
const API_PROOF_TTL_MS = 5 * 60_000;

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface InboxItem {
  runId: string;
  definition: { name: string; version: string };
  step: string;
  stepPath: string;
  summary: string;
  requestedAt: string;
  deadline?: string;
  quorum: number;
  approvals: number;
  startedBy: string;
  token?: string;
  tokenExpiresAt?: string;
  signal?: { name: 'approval'; input: { step: string; approver: string; decision: 'approve'; token: string } };
  cli?: string;
}

const REFUSAL_STATUS: Record<string, number> = { not_found: 404, forbidden: 403, self_approval: 403, conflict: 409, invalid: 400 };

export interface RunSummary {
  runId: string;
  status: RunStatus;
  definition: { name: string; version: string };
  lane: string | undefined;
  startedAt: string | undefined;
  closedAt: string | undefined;
}

export interface StepView extends StepState {
  id: string;
}

export interface RunView extends RunSummary {
  startedBy: string | undefined;
  correlationId: string | undefined;
  /** The OpenTelemetry trace the run belongs to (its memo's, else its lifecycle events'), when tracing was on. */
  traceId?: string;
  historyLength: number;
  currentStep?: string;
  /** Absent when no worker could answer for a run whose result does not carry its steps. */
  steps?: StepView[];
  variables?: Record<string, unknown>;
  rollback?: RunState['rollback'];
  continuedAsNew?: number;
  /** Every approval the run reached: pending ones and the decisions made. */
  approvals?: ApprovalRecord[];
  output?: unknown;
  error?: { message: string; type?: string; step?: string; attempts?: number } & Problem;
  /** A deferred run: why, since when, how many of its lane's deferred starts go first. */
  admission?: { reason: string; deferredAt: string; position?: number; attempts?: number; lastError?: string };
}

/** Maps Temporal's execution status names to the API's lower-case values. */
export function runStatusOf(name: string): RunStatus {
  switch (name) {
    case 'COMPLETED':
      return 'completed';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'cancelled';
    case 'TERMINATED':
      return 'terminated';
    case 'TIMED_OUT':
      return 'timed_out';
    default:
      return 'running';
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'run';
}

/**
 * The workflow id of a run. With an idempotency key it is derived from tenant, definition and key,
 * so the same key always lands on the same run; without one it is unique.
 */
export function runIdFor(tenant: string, definitionName: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return `${slug(definitionName)}-${randomUUID()}`;
  return `${slug(definitionName)}-${sha256Hex(`${tenant}\u0000${definitionName}\u0000${idempotencyKey}`).slice(0, 32)}`;
}

function summaryOf(desc: WorkflowExecutionDescription): RunSummary {
  return {
    runId: desc.workflowId,
    status: runStatusOf(desc.status.name),
    definition: {
      name: desc.typedSearchAttributes.get(SA.definition) ?? '',
      version: desc.typedSearchAttributes.get(SA.version) ?? '',
    },
    lane: desc.typedSearchAttributes.get(SA.lane),
    startedAt: desc.startTime.toISOString(),
    closedAt: desc.closeTime?.toISOString(),
  };
}

/** Top-level steps in definition order, then nested ones in the order they first ran. */
function stepsOf(state: RunState): StepView[] {
  const ids = [...state.order, ...Object.keys(state.steps).filter((id) => !state.order.includes(id))];
  return ids.map((id) => {
    // `items` and `results` are a for_each's working copy; its output carries the results.
    const { items: _items, results: _results, inIteration: _in, ...view } = state.steps[id] ?? { status: 'pending' as const };
    return { id, ...view };
  });
}

function isRunState(value: unknown): value is RunState {
  return Boolean(value && typeof value === 'object' && Array.isArray((value as RunState).order) && (value as RunState).steps);
}

function idempotencyConflict(runId: string): HttpProblem {
  return new HttpProblem(
    409,
    'Idempotency key reused',
    `the idempotency key already started run ${runId} with a different version or input`,
    [{ path: '/idempotencyKey', message: 'already used for a different request' }],
    { runId },
  );
}

/** The memo fields that tie a run to the trace of the request starting it (none outside a trace). */
function traceMemo(): Record<string, string> {
  const traceparent = currentTraceparent();
  const traceId = traceIdOf(traceparent);
  return traceparent && traceId ? { [MEMO_KEYS.traceId]: traceId, [MEMO_KEYS.traceparent]: traceparent } : {};
}

function traceIdOfMemo(memo: Record<string, unknown> | undefined): { traceId?: string } {
  const traceId = memo?.[MEMO_KEYS.traceId];
  return typeof traceId === 'string' ? { traceId } : {};
}

/** A deferred start as a run: not in Temporal yet, waiting in its lane's admission queue. */
function deferredView(run: DeferredRun & { position?: number }): RunView {
  return {
    runId: run.runId,
    status: 'deferred',
    definition: run.definition,
    lane: run.lane,
    startedAt: undefined,
    closedAt: undefined,
    startedBy: run.startedBy,
    correlationId: run.correlationId,
    historyLength: 0,
    admission: {
      reason: run.reason,
      deferredAt: run.enqueuedAt,
      ...(run.position === undefined ? {} : { position: run.position }),
      ...(run.attempts > 0 ? { attempts: run.attempts } : {}),
      ...(run.lastError ? { lastError: run.lastError } : {}),
    },
  };
}

/** Starts, reads, lists and cancels runs: the API's view of the interpreter's executions. */
export class RunsService {
  constructor(
    private readonly client: Client,
    private readonly options: {
      queryTimeoutMs?: number;
      continueAsNewAfterEvents?: number;
      executionTimeoutSeconds?: number;
      /** Signs the proof of every API decision and the inbox's decision tokens (docs/approvals.md). */
      decisionKeys?: DecisionKeys;
      /** How long an inbox decision token is valid (default one day). */
      tokenTtlSeconds?: number;
      /** The namespace the inbox's CLI command names. */
      namespace?: string;
      /** The traceparent a run's lifecycle events were recorded in (RunEventStore), for runs no request started. */
      traceparentOf?: (tenant: string, runId: string) => Promise<string | undefined>;
    } = {},
    /** The admission stage (api/admission.ts); without one every start goes straight to Temporal. */
    private readonly admission?: Admission,
  ) {}

  get defaultExecutionTimeoutSeconds(): number {
    return this.options.executionTimeoutSeconds ?? 7 * 24 * 3600;
  }

  /**
   * Starts a run, or returns the run an earlier request with the same idempotency key started.
   * Reusing a key with a different request is a 409, as with any idempotent API.
   */
  async start(request: StartRunRequest): Promise<{ runId: string; created: boolean; status: RunStatus }> {
    const { definition, principal } = request;
    const runId = runIdFor(principal.tenant, definition.name, request.idempotencyKey);
    // The request as the caller sent it: a retry without a version still matches after a newer
    // version was registered, and gets the run it started before.
    const requestHash = sha256Hex(canonicalJson({ version: request.requestedVersion ?? null, input: request.input ?? null }));
    const requestId = randomUUID();
    const who: RunIdentity = {
      tenant: principal.tenant,
      startedBy: principal.principal,
      correlationId: request.correlationId,
      ...(request.trigger ? { trigger: request.trigger } : {}),
    };
    const args = runInputFor(definition, request.input, who, request.pins, this.options.continueAsNewAfterEvents);
    const priority = definition.body.priority;
    const spec: StartSpec = {
      workflowId: runId,
      taskQueue: workflowTaskQueue(definition.lane),
      args: [args],
      executionTimeoutMs: request.executionTimeoutSeconds * 1000,
      staticSummary: `${definition.name}@${definition.version}`,
      staticDetails: `Started by ${principal.principal} (tenant ${principal.tenant}), correlation id ${request.correlationId}`,
      memo: {
        [MEMO_KEYS.requestHash]: requestHash,
        [MEMO_KEYS.correlationId]: request.correlationId,
        [MEMO_KEYS.requestId]: requestId,
        ...(request.trigger ? { [MEMO_KEYS.causationId]: request.trigger.event.id } : {}),
        ...traceMemo(),
      },
      searchAttributes: runSearchAttributes(definition, who),
      ...(priority ? { priorityKey: PRIORITY_KEYS[priority] } : {}),
    };
    if (this.admission) {
      const verdict = await this.admission.admit({
        spec,
        keyed: request.idempotencyKey !== undefined,
        lane: definition.lane,
        priorityKey: PRIORITY_KEYS[priority ?? 'normal'],
        tenant: principal.tenant,
        definition: { name: definition.name, version: definition.version },
        startedBy: principal.principal,
        correlationId: request.correlationId,
        requestHash,
        reason: '',
      });
      if (verdict.deferred) {
        if (verdict.existing && verdict.existing.requestHash !== requestHash) throw idempotencyConflict(runId);
        return { runId, created: verdict.created, status: 'deferred' };
      }
    }
    await startFromSpec(this.client, spec);
    const desc = await this.client.workflow.getHandle(runId).describe();
    if (desc.memo?.[MEMO_KEYS.requestHash] !== requestHash) throw idempotencyConflict(runId);
    return { runId, created: desc.memo?.[MEMO_KEYS.requestId] === requestId, status: runStatusOf(desc.status.name) };
  }

  /** The run an earlier request with this idempotency key started, if any. */
  async existing(tenant: string, definition: string, idempotencyKey: string): Promise<{ runId: string; status: RunStatus } | undefined> {
    const runId = runIdFor(tenant, definition, idempotencyKey);
    try {
      const desc = await this.describeOwned(runId, tenant);
      return { runId, status: runStatusOf(desc.status.name) };
    } catch (error) {
      if (!(error instanceof HttpProblem && error.status === 404)) throw error;
      return (await this.admission?.store.get(tenant, runId)) ? { runId, status: 'deferred' } : undefined;
    }
  }

  /** 404 unless the run exists and belongs to the tenant. */
  async assertOwned(runId: string, tenant: string): Promise<void> {
    // Agent runs keep an approval trail of their own (high-risk tool calls).
    await this.describeOwned(runId, tenant, [INTERPRETER_WORKFLOW_TYPE, AGENT_WORKFLOW_TYPE]);
  }

  private async describeOwned(runId: string, tenant: string, types: readonly string[] = [INTERPRETER_WORKFLOW_TYPE]): Promise<WorkflowExecutionDescription> {
    try {
      const desc = await this.client.workflow.getHandle(runId).describe();
      if (!types.includes(desc.type) || desc.typedSearchAttributes.get(SA.tenant) !== tenant) {
        throw new HttpProblem(404, 'Not Found', `no run "${runId}"`);
      }
      return desc;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new HttpProblem(404, 'Not Found', `no run "${runId}"`);
      throw error;
    }
  }

  private async queryState(runId: string): Promise<RunState | undefined> {
    const handle = this.client.workflow.getHandle(runId);
    const timeout = this.options.queryTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        handle.query(runStateQuery),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), timeout);
        }),
      ]);
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A run with every step's status and output, its output or its error. */
  async get(runId: string, tenant: string): Promise<RunView> {
    let desc: WorkflowExecutionDescription;
    try {
      desc = await this.describeOwned(runId, tenant);
    } catch (error) {
      const deferred = error instanceof HttpProblem && error.status === 404 ? await this.admission?.store.get(tenant, runId) : undefined;
      if (!deferred) throw error;
      return deferredView(deferred);
    }
    const view: RunView = {
      ...summaryOf(desc),
      startedBy: desc.typedSearchAttributes.get(SA.startedBy),
      correlationId: desc.typedSearchAttributes.get(SA.correlationId),
      ...traceIdOfMemo(desc.memo),
      historyLength: desc.historyLength,
    };
    // A scheduled run or a child run has no request's trace in its memo: the trace its workflow
    // recorded its lifecycle events in names it (once its first events are written).
    if (!view.traceId && this.options.traceparentOf) {
      const traceId = traceIdOf(await this.options.traceparentOf(tenant, runId).catch(() => undefined));
      if (traceId) view.traceId = traceId;
    }
    let state: RunState | undefined;
    if (view.status === 'completed') {
      const result = (await this.client.workflow.getHandle(runId).result()) as RunResult;
      state = result.state;
      view.output = result.output;
    } else if (view.status === 'failed') {
      try {
        await this.client.workflow.getHandle(runId).result();
      } catch (error) {
        const cause = error instanceof WorkflowFailedError ? error.cause : undefined;
        if (cause instanceof ApplicationFailure) {
          const detail: unknown = cause.details?.[0];
          if (isRunState(detail)) state = detail;
          view.error = { message: cause.message, type: cause.type ?? 'Error' };
        } else if (cause) {
          view.error = { message: cause.message, type: cause.name };
        }
      }
    }
    state ??= await this.queryState(runId);
    if (state) {
      view.steps = stepsOf(state);
      if (Object.keys(state.vars ?? {}).length > 0) view.variables = state.vars;
      if (state.rollback) view.rollback = state.rollback;
      const approvals = Object.values(state.approvals ?? {});
      if (approvals.length > 0) view.approvals = approvals;
      if (state.continuedAsNew) view.continuedAsNew = state.continuedAsNew;
      if (state.currentStep !== undefined && view.status === 'running') view.currentStep = state.currentStep;
      if (state.error && view.error) {
        view.error = {
          ...view.error,
          type: state.error.type,
          ...(state.error.step === undefined ? {} : { step: state.error.step }),
          ...(state.error.attempts === undefined ? {} : { attempts: state.error.attempts }),
          // A structured error's problem details (a fail step's status, title, detail, instance).
          ...Object.fromEntries((['status', 'title', 'detail', 'instance'] as const).filter((k) => state.error?.[k] !== undefined).map((k) => [k, state.error?.[k]])),
        };
      }
    }
    if (view.status === 'timed_out') view.error = { message: 'the run exceeded its execution timeout', type: 'Timeout' };
    if (view.status === 'terminated') view.error = { message: 'the run was terminated', type: 'Terminated' };
    return view;
  }

  /**
   * The input the run was started with (the `input` of its RunInput), from the first event of its
   * history, decoded by the client's data converter (the payload codec). One page of one event.
   */
  async runInput(runId: string): Promise<unknown> {
    const { history } = await this.client.workflowService.getWorkflowExecutionHistory({
      namespace: this.client.options.namespace,
      execution: { workflowId: runId },
      maximumPageSize: 1,
    });
    const payloads = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
    if (!payloads?.length) return undefined;
    const [args] = await decodeArrayFromPayloads(this.client.options.loadedDataConverter, payloads);
    return (args as { input?: unknown } | undefined)?.input;
  }

  /** Runs of the caller's tenant, newest first, optionally filtered. */
  async list(tenant: string, filter: { definition?: string; status?: RunStatus; limit: number }): Promise<RunSummary[]> {
    // Deferred runs have not started: they are the newest, listed first.
    const deferred =
      this.admission && (filter.status === undefined || filter.status === 'deferred')
        ? (await this.admission.store.list(tenant, filter.definition, filter.limit)).map((d) => {
            const { runId, status, definition, lane, startedAt, closedAt } = deferredView(d);
            return { runId, status, definition, lane, startedAt, closedAt };
          })
        : [];
    if (filter.status === 'deferred' || deferred.length >= filter.limit) return deferred.slice(0, filter.limit);
    const started = await this.listStarted(tenant, { ...filter, status: filter.status, limit: filter.limit - deferred.length });
    return [...deferred, ...started];
  }

  private async listStarted(tenant: string, filter: { definition?: string; status?: Exclude<RunStatus, 'deferred'> | undefined; limit: number }): Promise<RunSummary[]> {
    // A run that continued as new is one run to its caller: list only the latest link of each chain.
    const clauses = [`WorkflowType = '${INTERPRETER_WORKFLOW_TYPE}'`, `${SA.tenant.name} = '${quoteable(tenant)}'`, `ExecutionStatus != 'ContinuedAsNew'`];
    if (filter.definition) clauses.push(`${SA.definition.name} = '${quoteable(filter.definition)}'`);
    if (filter.status) clauses.push(`ExecutionStatus = '${STATUS_QUERY_VALUE[filter.status]}'`);
    const runs: RunSummary[] = [];
    for await (const info of this.client.workflow.list({ query: clauses.join(' AND '), pageSize: filter.limit })) {
      runs.push({
        runId: info.workflowId,
        status: runStatusOf(info.status.name),
        definition: {
          name: info.typedSearchAttributes.get(SA.definition) ?? '',
          version: info.typedSearchAttributes.get(SA.version) ?? '',
        },
        lane: info.typedSearchAttributes.get(SA.lane),
        startedAt: info.startTime.toISOString(),
        closedAt: info.closeTime?.toISOString(),
      });
      if (runs.length >= filter.limit) break;
    }
    return runs;
  }

  /**
   * Records an approver's decision through the workflow's update: its validator answers at once,
   * so a refused attempt (403/404/409) adds nothing to the run's history. `onRefused` is called
   * with the refusal so the caller can write it to the audit trail.
   */
  async decide(
    runId: string,
    principal: Principal,
    step: string,
    decision: 'approve' | 'reject',
    comment: string | undefined,
    onRefused: (refusal: { code: string; reason: string; definition: { name: string; version: string } }) => Promise<void>,
  ): Promise<ApprovalUpdateResult> {
    // Agent runs (child workflows) take decisions on their high-risk tool calls the same way.
    const desc = await this.describeOwned(runId, principal.tenant, [INTERPRETER_WORKFLOW_TYPE, AGENT_WORKFLOW_TYPE]);
    const definition = summaryOf(desc).definition;
    const refuse = async (code: string, reason: string): Promise<never> => {
      await onRefused({ code, reason, definition });
      throw new HttpProblem(REFUSAL_STATUS[code] ?? 409, code === 'not_found' ? 'Not Found' : code === 'conflict' ? 'Conflict' : code === 'invalid' ? 'Invalid request' : 'Forbidden', reason, [
        { path: code === 'invalid' ? '/decision' : '/stepId', message: reason },
      ]);
    };
    if (runStatusOf(desc.status.name) !== 'running') return refuse('conflict', `run "${runId}" is ${runStatusOf(desc.status.name)}; its approvals are closed`);
    try {
      // The proof that this decision comes from the API, for this caller: the workflow has it
      // verified (runs started before decision proofs ignore it).
      const keys = this.options.decisionKeys;
      const proof = keys
        ? await signDecisionToken(keys, {
            run: runId,
            step,
            principal: principal.principal,
            groups: principal.groups,
            channel: 'api',
            decision,
            exp: Date.now() + API_PROOF_TTL_MS,
          })
        : undefined;
      return await this.client.workflow.getHandle(runId).executeUpdate(approvalUpdate, {
        args: [{ step, decision, ...(comment ? { comment } : {}), principal: principal.principal, groups: principal.groups, ...(proof ? { proof } : {}) }],
      });
    } catch (error) {
      const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === 'unproven') {
        // The workflow recorded it; the API and the workers disagree on the signing key.
        throw new HttpProblem(500, 'Internal Server Error', `the workers could not verify the API's decision proof (${cause.message}); check that APPROVAL_SIGNING_KEY is the same on the API and the workers`);
      }
      if (cause instanceof ApplicationFailure && cause.type && cause.type in REFUSAL_STATUS) return refuse(cause.type, cause.message);
      if (error instanceof WorkflowNotFoundError) return refuse('conflict', `run "${runId}" is no longer running; its approvals are closed`);
      throw error;
    }
  }

  /** Pending approvals the principal may decide, across the tenant's running runs. */
  async inbox(principal: Principal, limit = 100): Promise<InboxItem[]> {
    const keys = [`user:${principal.principal}`, ...principal.groups.map((g) => `group:${g}`)].map((k) => `'${quoteable(k)}'`);
    const query = [
      `WorkflowType IN ('${INTERPRETER_WORKFLOW_TYPE}', '${AGENT_WORKFLOW_TYPE}')`,
      `${SA.tenant.name} = '${quoteable(principal.tenant)}'`,
      `ExecutionStatus = 'Running'`,
      `${SA.pendingApprovers.name} IN (${keys.join(', ')})`,
    ].join(' AND ');
    const items: InboxItem[] = [];
    for await (const info of this.client.workflow.list({ query, pageSize: limit })) {
      let pending: ApprovalRecord[];
      try {
        pending = await this.client.workflow.getHandle(info.workflowId).query(pendingApprovalsQuery);
      } catch {
        continue; // closed meanwhile, or no worker to answer: not actionable now
      }
      for (const record of pending) {
        // Not the caller's to decide, or already decided by the caller: not in the inbox.
        if (!awaitsDecisionFrom(record, principal.principal, principal.groups)) continue;
        items.push({
          runId: info.workflowId,
          definition: { name: info.typedSearchAttributes.get(SA.definition) ?? '', version: info.typedSearchAttributes.get(SA.version) ?? '' },
          step: record.stepId,
          stepPath: record.stepPath,
          summary: record.summary,
          requestedAt: record.requestedAt,
          ...(record.deadline ? { deadline: record.deadline } : {}),
          quorum: record.quorum,
          approvals: approvalsCounted(record),
          startedBy: record.startedBy,
          ...(await this.decisionToken(info.workflowId, record, principal)),
        });
      }
      if (items.length >= limit) break;
    }
    return items.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
  }

  /**
   * The caller's decision token for a pending step, and the signal that carries it: bound to the
   * run, the step path, its approver set and the caller, valid for tokenTtlSeconds.
   */
  private async decisionToken(runId: string, record: ApprovalRecord, principal: Principal): Promise<Partial<InboxItem>> {
    const keys = this.options.decisionKeys;
    if (!keys) return {};
    const exp = Date.now() + (this.options.tokenTtlSeconds ?? 86_400) * 1000;
    const token = await signDecisionToken(keys, {
      run: runId,
      step: record.stepPath,
      stage: record.stage,
      principal: principal.principal,
      groups: principal.groups,
      channel: 'signal',
      exp,
    });
    const input = { step: record.stepPath, approver: principal.principal, decision: 'approve' as const, token };
    const cli = [
      'temporal workflow signal',
      ...(this.options.namespace && this.options.namespace !== 'default' ? [`--namespace ${shellQuote(this.options.namespace)}`] : []),
      `--workflow-id ${shellQuote(runId)}`,
      '--name approval',
      `--input ${shellQuote(JSON.stringify(input))}`,
    ].join(' ');
    return { token, tokenExpiresAt: new Date(exp).toISOString(), signal: { name: 'approval', input }, cli };
  }

  /** Signals an event to the tenant's running runs with this correlation id (except `skip`). */
  async deliver(tenant: string, correlationId: string, name: string, event: unknown, skip: ReadonlySet<string>): Promise<Array<{ runId: string }>> {
    const query = [
      `WorkflowType = '${INTERPRETER_WORKFLOW_TYPE}'`,
      `${SA.tenant.name} = '${quoteable(tenant)}'`,
      `${SA.correlationId.name} = '${quoteable(correlationId)}'`,
      `ExecutionStatus = 'Running'`,
    ].join(' AND ');
    const delivered: Array<{ runId: string }> = [];
    for await (const info of this.client.workflow.list({ query })) {
      if (skip.has(info.workflowId)) continue;
      try {
        await this.client.workflow.getHandle(info.workflowId).signal(name, event);
        delivered.push({ runId: info.workflowId });
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      }
    }
    return delivered;
  }

  /** Step of each activity id, read once from the run's history (the activity summary `step <id>`). */
  private readonly activitySteps = new Map<string, Map<string, string>>();

  /**
   * The run's activities Temporal is running or retrying, with the step each belongs to: the only
   * place a retry shows while it happens (a retried attempt writes nothing to the history).
   */
  async pendingActivities(runId: string): Promise<PendingActivity[]> {
    const handle = this.client.workflow.getHandle(runId);
    const desc = await handle.describe();
    const pending = (desc.raw.pendingActivities ?? []) as Array<Record<string, any>>;
    if (pending.length === 0) {
      this.activitySteps.delete(runId);
      return [];
    }
    let steps = this.activitySteps.get(runId);
    if (!steps || pending.some((p) => !steps?.has(String(p.activityId)))) {
      steps = new Map();
      const history = await handle.fetchHistory();
      for (const event of history.events ?? []) {
        const scheduled = event.activityTaskScheduledEventAttributes;
        const summary = event.userMetadata?.summary;
        if (!scheduled?.activityId || !summary) continue;
        try {
          const text = this.client.options.loadedDataConverter.payloadConverter.fromPayload<string>(summary as never);
          if (typeof text === 'string' && text.startsWith('step ')) steps.set(scheduled.activityId, text.slice(5));
        } catch {
          // A summary the converter cannot read (another codec): the activity stays unattributed.
        }
      }
      // Bounded: one entry per run being followed right now.
      if (this.activitySteps.size > 1000) this.activitySteps.clear();
      this.activitySteps.set(runId, steps);
    }
    const converter = this.client.options.loadedDataConverter;
    return Promise.all(pending.map(async (p) => {
      const lastFailure = await failureMessageOf(converter, p.lastFailure);
      const stepPath = steps?.get(String(p.activityId));
      // The summary holds the step's path (`each[3]/inner`); the views name steps by id.
      const stepId = stepPath?.slice(stepPath.lastIndexOf('/') + 1);
      const seconds = (t: any) => (t?.seconds === undefined ? undefined : new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString());
      return {
        activityId: String(p.activityId),
        activity: String(p.activityType?.name ?? ''),
        ...(stepId === undefined ? {} : { stepId, stepPath }),
        attempt: Number(p.attempt ?? 1),
        ...(p.maximumAttempts ? { maximumAttempts: Number(p.maximumAttempts) } : {}),
        ...(lastFailure ? { lastFailure } : {}),
        ...(seconds(p.nextAttemptScheduleTime) ? { nextAttemptAt: seconds(p.nextAttemptScheduleTime) } : {}),
      };
    }));
  }

  /** Requests cancellation; the run ends `cancelled` once the workflow observes it. */
  async cancel(runId: string, tenant: string): Promise<RunStatus> {
    // A deferred run never starts once it leaves the queue (a dispatcher holding it starts it: then it is cancelled below).
    if (await this.admission?.store.remove(tenant, runId)) return 'deferred';
    const desc = await this.describeOwned(runId, tenant);
    const status = runStatusOf(desc.status.name);
    if (status !== 'running') throw new HttpProblem(409, 'Conflict', `run "${runId}" is already ${status}`);
    await this.client.workflow.getHandle(runId).cancel();
    return status;
  }
}
