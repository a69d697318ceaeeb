import type { AuditEntry } from '../interpreter/approvals.ts';
import type { RunEvent, RunState } from '../interpreter/engine.ts';
import type { Definition } from '../interpreter/schema.ts';
import type { AgentDefinition } from '../activities/agents/types.ts';

/** The audit entry's home is the approval module; re-exported for this file's old readers. */
export type { AuditEntry };

/** A definition a run may start as a child (sub_workflow), pinned by its hash. */
export interface PinnedDefinition {
  definition: Definition;
  hash: string;
}

/** What the API passes to the interpreter workflow: the pinned definition and the run's identity. */
export interface RunInput {
  /** The validated definition, exactly as registered; the run never re-reads a mutable copy. */
  definition: Definition;
  /** sha256 of the registered definition's canonical JSON. */
  definitionHash: string;
  input: unknown;
  lane: string;
  tenant: string;
  /** The principal whose credential started the run. */
  startedBy: string;
  correlationId: string;
  /** The event that started the run, when one did (read as `signal` in expressions). */
  trigger?: { event: unknown };
  /** The id of the event that caused the run, logged with every activity. */
  causationId?: string;
  /**
   * Every definition the run's sub_workflow steps may start, transitively, keyed `name@version`.
   * Resolved by the API at start, so child runs are pinned like their parent.
   */
  subDefinitions?: Record<string, PinnedDefinition>;
  /** Continue as new once the history reaches this many events (Temporal's own suggestion also counts). */
  continueAsNewAfterEvents?: number;
  /** Members of the groups the definition's approval steps name, captured at start (for signals). */
  directory?: Record<string, string[]>;
  /**
   * The registry agents the run's agent steps use, pinned at start: such a step runs as a child
   * workflow `agent`. Agent steps naming no pinned agent call the activity of that name.
   */
  agents?: Record<string, AgentDefinition>;
  /** Per-skill defaults (`<family>:<name>`), from the registry at start; a step's own values win. */
  activityDefaults?: Record<string, ActivityDefaults>;
  /** Emit lifecycle events (set for every run the API starts; histories from before it lack them). */
  recordEvents?: boolean;
  /** Set by continue-as-new: the state, undelivered events and unwritten audit entries carried over. */
  resume?: {
    state: RunState;
    events: RunEvent[];
    audit?: AuditEntry[];
    auditSeq?: number;
    seenEvents?: string[];
    /** Lifecycle events not yet written, and the last sequence number used. */
    lifecycle?: LifecycleEvent[];
    lifecycleSeq?: number;
  };
}

/** A skill's registered defaults, applied when a step sets no timeout or retry of its own. */
export interface ActivityDefaults {
  timeoutSeconds?: number;
  retry?: { maxAttempts?: number; initialIntervalSeconds?: number; backoffCoefficient?: number; maxIntervalSeconds?: number };
}

/** The interpreter's result: the run's output and the final state of every step. */
export interface RunResult {
  output: unknown;
  state: RunState;
}

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
