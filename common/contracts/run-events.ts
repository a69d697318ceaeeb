import type { AuditEntry } from '../../interpreter/approvals.ts';

/**
 * What the workflows hand the platform activities and the API reads back: lifecycle events and
 * the batch that carries them with the audit entries. Below both (activities/platform writes them,
 * workflows/ emit them), and sandbox-safe: types and one constant, no imports but types.
 */

/** Lifecycle events (seed 004 §6), recorded durably and delivered to subscribed webhooks. */
export const LIFECYCLE_EVENT_TYPES = [
  'workflow.run.started',
  'workflow.step.completed',
  'workflow.step.failed',
  'workflow.approval.requested',
  'workflow.approval.decided',
  'workflow.run.completed',
  'workflow.run.failed',
  'workflow.run.cancelled',
] as const;
export type LifecycleEventType = (typeof LIFECYCLE_EVENT_TYPES)[number];

/**
 * One lifecycle event, written by the workflow through the platform activity `recordRunEvents`.
 * Its id (`<runId>/event/<seq>`) is stable across retries and replays: the store inserts it once
 * and webhooks receive it once per subscription (receivers dedupe by it).
 */
export interface LifecycleEvent {
  id: string;
  type: LifecycleEventType;
  /** The platform run id (the workflow id). */
  runId: string;
  /** 1, 2, ... in the order the run emitted them, across continue-as-new. */
  seq: number;
  tenant: string;
  definition: string;
  version: string;
  correlationId: string;
  causationId?: string;
  /** Workflow time, ISO-8601. */
  time: string;
  /**
   * Per type: steps `{stepId, stepPath, stepType, status, error?, attempts?}`; approvals
   * `{stepId, stepPath, summary, approvers, quorum, deadline?}` / `{stepId, stepPath, decision,
   * principal?, via?, timedOut}`; run `{status, error?}`.
   */
  data: Record<string, unknown>;
}

/** What the workflow hands the platform activity `recordRunEvents` in one batch. */
export interface RunEventsBatch {
  events: LifecycleEvent[];
  /** Approval audit entries, written in the same transaction when the run records events. */
  audit: AuditEntry[];
}
