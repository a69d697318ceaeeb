import type { ActivityDefaults } from '../interpreter/activity-defaults.ts';
import type { AuditEntry } from '../interpreter/approvals.ts';
import type { LifecycleEvent } from '../common/contracts/run-events.ts';
import type { RunEvent, RunState } from '../interpreter/engine.ts';
import type { Definition } from '../interpreter/schema.ts';
import type { AgentDefinition } from '../activities/agents/types.ts';

/** The run records' homes are the approval module and common/contracts; re-exported for this file's readers above. */
export type { ActivityDefaults, AuditEntry };
export { LIFECYCLE_EVENT_TYPES, type LifecycleEvent, type LifecycleEventType, type RunEventsBatch } from '../common/contracts/run-events.ts';

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

/** The interpreter's result: the run's output and the final state of every step. */
export interface RunResult {
  output: unknown;
  state: RunState;
}
