import { WorkflowFailedError, WorkflowUpdateFailedError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { AGENT_WORKFLOW_TYPE, INTERPRETER_WORKFLOW_TYPE } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { traceIdOf } from '../common/trace-context.ts';
import type { RunState } from '../interpreter/engine.ts';
import { signDecisionToken, type DecisionKeys } from '../activities/platform/decision-tokens.ts';
import { approvalsCounted, awaitsDecisionFrom, type ApprovalRecord } from '../interpreter/approvals.ts';
import { decodeArrayFromPayloads } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { approvalUpdate, pendingApprovalsQuery, runStateQuery, type ApprovalUpdateResult } from '../workflows/definitions.ts';
import type { RunResult } from '../workflows/types.ts';
import type { Principal } from './auth.ts';
import { HttpProblem } from './problem.ts';
import type { Admission } from './admission.ts';
import { PendingActivities, type PendingActivity } from './run-activities.ts';
import { runIdFor, startRun, type StartRunRequest } from './run-start.ts';
import { deferredView, isRunState, runStatusOf, stepsOf, summaryOf, traceIdOfMemo, type RunStatus, type RunSummary, type RunView } from './run-views.ts';
import { deliverEvent, listStartedRuns, quoteable } from './run-visibility.ts';

// The run's parts live by concept (run-views, run-start, run-visibility, run-activities); these names stay importable from here.
export { RUN_STATUSES, runStatusOf, type RunStatus, type RunSummary, type RunView, type StepView } from './run-views.ts';
export { runIdFor, type StartRunRequest } from './run-start.ts';
export type { PendingActivity } from './run-activities.ts';

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
  ) {
    this.activities = new PendingActivities(client);
  }

  private readonly activities: PendingActivities;

  get defaultExecutionTimeoutSeconds(): number {
    return this.options.executionTimeoutSeconds ?? 7 * 24 * 3600;
  }

  /**
   * Starts a run, or returns the run an earlier request with the same idempotency key started.
   * Reusing a key with a different request is a 409, as with any idempotent API.
   */
  async start(request: StartRunRequest): Promise<{ runId: string; created: boolean; status: RunStatus }> {
    return startRun(this.client, this.admission, this.options.continueAsNewAfterEvents, request);
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
    const started = await listStartedRuns(this.client, tenant, { ...filter, status: filter.status, limit: filter.limit - deferred.length });
    return [...deferred, ...started];
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
    return deliverEvent(this.client, tenant, correlationId, name, event, skip);
  }

  /**
   * The run's activities Temporal is running or retrying, with the step each belongs to: the only
   * place a retry shows while it happens (a retried attempt writes nothing to the history).
   */
  async pendingActivities(runId: string): Promise<PendingActivity[]> {
    return this.activities.of(runId);
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
