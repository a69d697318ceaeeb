import type { PoolClient } from 'pg';
import type { Pool } from '../../common/db.ts';
import type { AuditEntry } from '../../interpreter/approvals.ts';

/**
 * Inserts audit entries through a pool or a client inside a transaction; an entry already written
 * (same id, e.g. an activity retry) is left alone.
 */
export async function insertAuditEntries(db: Pool | PoolClient, entries: readonly AuditEntry[]): Promise<void> {
  for (const e of entries) {
    await db.query(
      `INSERT INTO approval_audit (id, tenant, run_id, definition, version, step_id, step_path, principal, decision, comment, via, outcome, code, reason, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
       ON CONFLICT (id) DO NOTHING`,
      [e.id, e.tenant, e.runId, e.definition, e.version, e.stepId, e.stepPath ?? null, e.principal, e.decision, e.comment ?? null, e.via, e.outcome, e.code ?? null, e.reason ?? null, e.at],
    );
  }
}
