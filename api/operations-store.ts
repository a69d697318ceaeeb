import { canonicalJson, sha256Hex } from '../common/canonical-json.ts';
import type { Pool } from '../common/db.ts';
import type { Principal } from './auth.ts';
import { HttpProblem } from './problem.ts';

export const OPERATION_ACTIONS = ['lane.pause', 'lane.resume', 'run.retry', 'runs.retry'] as const;
export type OperationAction = (typeof OPERATION_ACTIONS)[number];

/** One operator action as the audit trail keeps it (table `operations_audit`). */
export interface OperationRecord {
  id: string;
  at: string;
  tenant: string;
  principal: string;
  action: OperationAction;
  target: string;
  idempotencyKey?: string;
  request: unknown;
  result: unknown;
  correlationId?: string;
}

function recordFromRow(r: Record<string, any>): OperationRecord {
  return {
    id: String(r.id),
    at: new Date(r.at).toISOString(),
    tenant: r.tenant,
    principal: r.principal,
    action: r.action,
    target: r.target,
    ...(r.idempotency_key ? { idempotencyKey: r.idempotency_key } : {}),
    request: r.request,
    result: r.result,
    ...(r.correlation_id ? { correlationId: r.correlation_id } : {}),
  };
}

const PENDING = { pending: true };

/**
 * The audit trail of operator actions, which is also their idempotency record. `perform` claims
 * the (tenant, action, key) row before acting, so two requests with one key never both act: the
 * second gets the first's stored result (200), or a 409 while the first is still at work. A
 * request without a key always acts and is recorded all the same.
 */
export class OperationsStore {
  constructor(private readonly pool: Pool) {}

  async perform<T>(
    op: { principal: Principal; action: OperationAction; target: string; request: unknown; idempotencyKey?: string | undefined; correlationId?: string | undefined },
    act: () => Promise<T>,
  ): Promise<{ result: T; replayed: boolean }> {
    const requestHash = sha256Hex(canonicalJson({ target: op.target, request: op.request ?? null }));
    const claimed = await this.pool.query<{ id: string }>(
      `INSERT INTO operations_audit (tenant, principal, action, target, idempotency_key, request_hash, request, result, correlation_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
       ON CONFLICT (tenant, action, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
       RETURNING id`,
      [op.principal.tenant, op.principal.principal, op.action, op.target, op.idempotencyKey ?? null, requestHash, JSON.stringify(op.request ?? null), JSON.stringify(PENDING), op.correlationId ?? null],
    );
    const id = claimed.rows[0]?.id;
    if (id === undefined) {
      const existing = await this.pool.query<Record<string, any>>(
        'SELECT request_hash, result FROM operations_audit WHERE tenant = $1 AND action = $2 AND idempotency_key = $3',
        [op.principal.tenant, op.action, op.idempotencyKey],
      );
      const row = existing.rows[0];
      if (row && row.request_hash !== requestHash) {
        throw new HttpProblem(409, 'Idempotency key reused', `the Idempotency-Key was already used for a different ${op.action} request`, [
          { path: 'Idempotency-Key', message: 'already used for a different request' },
        ]);
      }
      if (!row || (row.result as { pending?: boolean })?.pending) {
        throw new HttpProblem(409, 'Conflict', `a ${op.action} request with this Idempotency-Key is still in progress; retry in a moment`, [
          { path: 'Idempotency-Key', message: 'in progress' },
        ]);
      }
      return { result: row.result as T, replayed: true };
    }
    let result: T;
    try {
      result = await act();
    } catch (error) {
      // Nothing was done: the key is free for a corrected request, and the trail keeps no false entry.
      await this.pool.query('DELETE FROM operations_audit WHERE id = $1', [id]).catch(() => undefined);
      throw error;
    }
    await this.pool.query('UPDATE operations_audit SET result = $2 WHERE id = $1', [id, JSON.stringify(result ?? null)]);
    return { result, replayed: false };
  }

  /**
   * The newest actions first, optionally of one action or target: the tenant's own, and every
   * tenant's lane actions (lanes are shared by all tenants).
   */
  async list(tenant: string, filter: { action?: OperationAction | undefined; target?: string | undefined; limit: number }): Promise<OperationRecord[]> {
    const result = await this.pool.query<Record<string, any>>(
      `SELECT * FROM operations_audit
       WHERE (tenant = $1 OR action LIKE 'lane.%') AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3)
         AND NOT (result ? 'pending')
       ORDER BY at DESC, id DESC LIMIT $4`,
      [tenant, filter.action ?? null, filter.target ?? null, filter.limit],
    );
    return result.rows.map(recordFromRow);
  }
}
