import type { Pool } from '../../common/db.ts';
import type { AuditEntry } from '../../workflows/types.ts';

/** Writes and reads the approval audit trail (table `approval_audit`). */
export class AuditStore {
  constructor(private readonly pool: Pool) {}

  /** Inserts entries; an entry already written (same id, e.g. an activity retry) is left alone. */
  async record(entries: readonly AuditEntry[]): Promise<void> {
    for (const e of entries) {
      await this.pool.query(
        `INSERT INTO approval_audit (id, tenant, run_id, definition, version, step_id, step_path, principal, decision, comment, via, outcome, code, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO NOTHING`,
        [e.id, e.tenant, e.runId, e.definition, e.version, e.stepId, e.stepPath ?? null, e.principal, e.decision, e.comment ?? null, e.via, e.outcome, e.code ?? null, e.reason ?? null, e.at],
      );
    }
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

/** The platform's own activities, on each lane's `platform` queue. */
export function createPlatformActivities(store: AuditStore) {
  return {
    async recordAudit(entries: AuditEntry[]): Promise<void> {
      await store.record(entries);
    },
  };
}
