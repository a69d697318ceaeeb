import { Context } from '@temporalio/activity';
import type { Pool } from '../../common/db.ts';
import type { ProofCheck } from '../../interpreter/approvals.ts';
import type { AuditEntry } from '../../interpreter/approvals.ts';
import type { RunEventsBatch } from '../../common/contracts/run-events.ts';
import { laneOfTaskQueue, recordRunMetrics } from '../../common/metrics-runs.ts';
import { insertAuditEntries } from './audit-rows.ts';
import { DecisionKeys, verifyDecisionToken } from './decision-tokens.ts';
import { RunEventStore } from './events.ts';

/** Writes and reads the approval audit trail (table `approval_audit`). */
export class AuditStore {
  constructor(readonly pool: Pool) {}

  /** Inserts entries; an entry already written (same id, e.g. an activity retry) is left alone. */
  async record(entries: readonly AuditEntry[]): Promise<void> {
    await insertAuditEntries(this.pool, entries);
  }

  /** A run's trail, oldest first. */
  async forRun(tenant: string, runId: string): Promise<AuditEntry[]> {
    const result = await this.pool.query<Record<string, any>>(
      'SELECT * FROM approval_audit WHERE tenant = $1 AND run_id = $2 ORDER BY at, recorded_at, id',
      [tenant, runId],
    );
    return result.rows.map((r) => {
      const entry: AuditEntry = {
        id: r.id,
        runId: r.run_id,
        tenant: r.tenant,
        definition: r.definition,
        version: r.version,
        stepId: r.step_id,
        principal: r.principal,
        decision: r.decision,
        via: r.via,
        outcome: r.outcome,
        at: new Date(r.at).toISOString(),
      };
      if (r.step_path) entry.stepPath = r.step_path;
      if (r.comment) entry.comment = r.comment;
      if (r.code) entry.code = r.code;
      if (r.reason) entry.reason = r.reason;
      return entry;
    });
  }
}

/** The task queue of the running activity (`<lane>.platform`; '' outside an activity). */
function taskQueueOf(): string {
  try {
    return Context.current().info.taskQueue;
  } catch {
    return '';
  }
}

/** The Temporal run id of the execution calling the activity ('' outside an activity). */
function executionOf(): string {
  try {
    return Context.current().info.workflowExecution?.runId ?? '';
  } catch {
    return '';
  }
}

/**
 * The platform's own activities, on each lane's `platform` queue. Their names are stored in
 * histories: never rename one. `events` defaults to a store on the audit store's pool.
 */
export function createPlatformActivities(
  store: AuditStore,
  events: RunEventStore = new RunEventStore(store.pool),
  proofs: { keys?: DecisionKeys; trustTemporal?: boolean } = {},
) {
  const keys = proofs.keys ?? new DecisionKeys(store.pool);
  return {
    /**
     * Checks a decision token's signature for the workflow, which checks what it is bound to. With
     * APPROVAL_TRUST_TEMPORAL, an attempt without a token is trusted as Temporal let it through.
     */
    async verifyDecisionToken(token: unknown): Promise<ProofCheck> {
      const check = await verifyDecisionToken(keys, token);
      if (!check.valid && token === undefined && proofs.trustTemporal) return { ...check, trustTemporal: true };
      return check;
    },
    /** Approval audit entries of runs that record no lifecycle events (histories from before them). */
    async recordAudit(entries: AuditEntry[]): Promise<void> {
      await store.record(entries);
    },
    /** Lifecycle events and audit entries in one transaction; a re-sent batch writes nothing twice. */
    async recordRunEvents(batch: RunEventsBatch): Promise<void> {
      // The execution that sent the batch tells a reset run's new events from its old ones.
      const result = await events.record(batch, { execution: executionOf() });
      if (result.stored?.length) recordRunMetrics(result.stored, laneOfTaskQueue(taskQueueOf()));
    },
  };
}
