import type { WorkflowExecutionInfo } from '@temporalio/client';
import { MEMO_KEYS } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import type { ApprovalRecord } from '../interpreter/approvals.ts';
import type { Problem, RunState, StepState } from '../interpreter/engine.ts';
import type { DeferredRun } from './admission-store.ts';

/** The API's view of a run: its status values, its summary and full view, built from Temporal's description or an admission queue entry. */

export const RUN_STATUSES = ['deferred', 'running', 'completed', 'failed', 'cancelled', 'terminated', 'timed_out'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

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

/** A run's summary from its description or a visibility list entry. */
export function summaryOf(desc: Pick<WorkflowExecutionInfo, 'workflowId' | 'status' | 'typedSearchAttributes' | 'startTime' | 'closeTime'>): RunSummary {
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
export function stepsOf(state: RunState): StepView[] {
  const ids = [...state.order, ...Object.keys(state.steps).filter((id) => !state.order.includes(id))];
  return ids.map((id) => {
    // `items` and `results` are a for_each's working copy; its output carries the results.
    const { items: _items, results: _results, inIteration: _in, ...view } = state.steps[id] ?? { status: 'pending' as const };
    return { id, ...view };
  });
}

export function isRunState(value: unknown): value is RunState {
  return Boolean(value && typeof value === 'object' && Array.isArray((value as RunState).order) && (value as RunState).steps);
}

export function traceIdOfMemo(memo: Record<string, unknown> | undefined): { traceId?: string } {
  const traceId = memo?.[MEMO_KEYS.traceId];
  return typeof traceId === 'string' ? { traceId } : {};
}

/** A deferred start as a run: not in Temporal yet, waiting in its lane's admission queue. */
export function deferredView(run: DeferredRun & { position?: number }): RunView {
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
