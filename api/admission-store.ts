import type { Pool, PoolClient } from 'pg';
import type { SearchAttributePair } from '@temporalio/common';
import type { RunInput } from '../workflows/types.ts';

/**
 * Everything `client.workflow.start` needs for one run, as plain JSON: what the API would have
 * started at once is what the dispatcher starts later, unchanged (same workflow id, memo, search
 * attributes, priority), so a deferred run is indistinguishable from one started directly.
 */
export interface StartSpec {
  workflowId: string;
  taskQueue: string;
  args: [RunInput];
  executionTimeoutMs: number;
  staticSummary: string;
  staticDetails: string;
  memo: Record<string, string>;
  searchAttributes: SearchAttributePair[];
  priorityKey?: number | undefined;
}

export interface DeferRequest {
  spec: StartSpec;
  lane: string;
  priorityKey: number;
  tenant: string;
  definition: { name: string; version: string };
  startedBy: string;
  correlationId: string;
  requestHash: string;
  reason: string;
}

/** One deferred start, as GET /v1/runs/{id} shows it: the request without its spec, and its place in the queue. */
export interface DeferredRun extends Omit<DeferRequest, 'spec'> {
  runId: string;
  enqueuedAt: string;
  attempts: number;
  lastError?: string;
}

type Row = {
  run_id: string;
  lane: string;
  priority_key: number;
  tenant: string;
  definition: string;
  version: string;
  started_by: string;
  correlation_id: string;
  request_hash: string;
  reason: string;
  enqueued_at: Date;
  attempts: number;
  last_error: string | null;
};

const COLUMNS = 'run_id, lane, priority_key, tenant, definition, version, started_by, correlation_id, request_hash, reason, enqueued_at, attempts, last_error';

function deferredOf(row: Row): DeferredRun {
  return {
    runId: row.run_id,
    lane: row.lane,
    priorityKey: row.priority_key,
    tenant: row.tenant,
    definition: { name: row.definition, version: row.version },
    startedBy: row.started_by,
    correlationId: row.correlation_id,
    requestHash: row.request_hash,
    reason: row.reason,
    enqueuedAt: row.enqueued_at.toISOString(),
    attempts: row.attempts,
    ...(row.last_error ? { lastError: row.last_error } : {}),
  };
}

/** The durable queue of deferred starts (table admission_queue), one ordered queue per lane. */
export class AdmissionStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Adds a start at the back of its lane's queue unless the lane already holds `max`. Under a
   * per-lane advisory lock, so concurrent requests on several API processes never overfill it.
   * A start whose run id is already queued (the same idempotency key) is not added again.
   */
  async enqueue(request: DeferRequest, max: number): Promise<{ outcome: 'queued' } | { outcome: 'full'; depth: number } | { outcome: 'exists'; existing: DeferredRun }> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('admission_queue:' || $1))`, [request.lane]);
      const existing = await client.query<Row>(`SELECT ${COLUMNS} FROM admission_queue WHERE run_id = $1`, [request.spec.workflowId]);
      if (existing.rows[0]) {
        await client.query('COMMIT');
        return { outcome: 'exists', existing: deferredOf(existing.rows[0]) };
      }
      const depth = Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM admission_queue WHERE lane = $1', [request.lane])).rows[0]?.n ?? 0);
      if (depth >= max) {
        await client.query('COMMIT');
        return { outcome: 'full', depth };
      }
      await client.query(
        `INSERT INTO admission_queue (run_id, lane, priority_key, tenant, definition, version, started_by, correlation_id, request_hash, reason, spec)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          request.spec.workflowId,
          request.lane,
          request.priorityKey,
          request.tenant,
          request.definition.name,
          request.definition.version,
          request.startedBy,
          request.correlationId,
          request.requestHash,
          request.reason,
          JSON.stringify(request.spec),
        ],
      );
      await client.query('COMMIT');
      return { outcome: 'queued' };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** How many starts each lane holds (lanes with none are absent). */
  async depths(): Promise<Record<string, number>> {
    const { rows } = await this.pool.query<{ lane: string; n: string }>('SELECT lane, count(*) AS n FROM admission_queue GROUP BY lane');
    return Object.fromEntries(rows.map((r) => [r.lane, Number(r.n)]));
  }

  async depth(lane: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM admission_queue WHERE lane = $1', [lane]);
    return Number(rows[0]?.n ?? 0);
  }

  /** A deferred start of the tenant, with how many of its lane's starts go before it. */
  async get(tenant: string, runId: string): Promise<(DeferredRun & { position: number }) | undefined> {
    const { rows } = await this.pool.query<Row & { position: string }>(
      `SELECT ${COLUMNS.split(', ').map((c) => `q.${c}`).join(', ')},
              (SELECT count(*) FROM admission_queue o
                WHERE o.lane = q.lane AND (o.priority_key < q.priority_key OR (o.priority_key = q.priority_key AND o.seq < q.seq))) AS position
         FROM admission_queue q WHERE q.run_id = $1 AND q.tenant = $2`,
      [runId, tenant],
    );
    const row = rows[0];
    return row ? { ...deferredOf(row), position: Number(row.position) } : undefined;
  }

  /** The tenant's deferred starts, newest first. */
  async list(tenant: string, definition: string | undefined, limit: number): Promise<DeferredRun[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT ${COLUMNS} FROM admission_queue WHERE tenant = $1 AND ($2::text IS NULL OR definition = $2) ORDER BY seq DESC LIMIT $3`,
      [tenant, definition ?? null, limit],
    );
    return rows.map(deferredOf);
  }

  /** Removes a deferred start of the tenant (cancelled before it started); false if there was none. */
  async remove(tenant: string, runId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('DELETE FROM admission_queue WHERE run_id = $1 AND tenant = $2', [runId, tenant]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * Takes up to `n` starts off the front of a lane's queue (urgent before high before normal, then
   * in arrival order) and hands each to `start`; a start that resolves is deleted, one that throws
   * stays where it was (with its error) and ends the batch, so order is kept. Rows are locked
   * (SKIP LOCKED) for the transaction: two dispatchers never start the same run, and a dispatcher
   * that dies mid-batch leaves its rows to the next. Returns how many were started.
   */
  async drain(lane: string, n: number, start: (spec: StartSpec, run: DeferredRun) => Promise<void>): Promise<{ started: number; error?: unknown }> {
    const client: PoolClient = await this.pool.connect();
    let started = 0;
    let failure: { runId: string; error: unknown } | undefined;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<Row & { spec: StartSpec }>(
        `SELECT ${COLUMNS}, spec FROM admission_queue WHERE lane = $1 ORDER BY priority_key, seq LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [lane, n],
      );
      for (const row of rows) {
        try {
          await start(row.spec, deferredOf(row));
        } catch (error) {
          failure = { runId: row.run_id, error };
          break;
        }
        await client.query('DELETE FROM admission_queue WHERE run_id = $1', [row.run_id]);
        started += 1;
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    if (failure) {
      const message = failure.error instanceof Error ? failure.error.message : String(failure.error);
      await this.pool.query('UPDATE admission_queue SET attempts = attempts + 1, last_error = $2 WHERE run_id = $1', [failure.runId, message.slice(0, 1000)]);
      return { started, error: failure.error };
    }
    return { started };
  }
}
