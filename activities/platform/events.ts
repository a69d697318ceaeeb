import type { Pool } from '../../common/db.ts';
import { currentTraceparent } from '../../common/trace-context.ts';
import type { EventForMetrics } from '../../common/metrics-runs.ts';
import type { LifecycleEvent, LifecycleEventType, RunEventsBatch } from '../../common/contracts/run-events.ts';
import { insertAuditEntries } from './audit-rows.ts';
import { subscriptionWants } from './event-patterns.ts';

/** The channel `recordRunEvents` notifies when it queued deliveries; the API's dispatcher listens. */
export const WEBHOOK_NOTIFY_CHANNEL = 'webhook_deliveries';

/** What one `record` call wrote (re-sent events and deliveries already queued are not counted). */
export interface RecordResult {
  events: number;
  deliveries: number;
  /** The events this call stored (for the run metrics); an approval decision carries its request's time. */
  stored?: StoredForMetrics[];
}

/** What the run metrics need of a newly stored event (common/metrics-runs.ts). */
export type StoredForMetrics = EventForMetrics;

/** A stored lifecycle event as read back. */
export interface StoredRunEvent extends LifecycleEvent {
  recordedAt: string;
}

/** Maps a `run_events` row to the event the workflow wrote. */
export function runEventFromRow(r: Record<string, any>): StoredRunEvent {
  const event: StoredRunEvent = {
    id: r.id,
    type: r.type as LifecycleEventType,
    runId: r.run_id,
    seq: Number(r.seq),
    tenant: r.tenant,
    definition: r.definition,
    version: r.version,
    correlationId: r.correlation_id,
    time: new Date(r.time).toISOString(),
    data: (r.data ?? {}) as Record<string, unknown>,
    recordedAt: new Date(r.recorded_at).toISOString(),
  };
  if (r.causation_id) event.causationId = r.causation_id;
  return event;
}

type Queryable = { query<R extends Record<string, any>>(text: string, values?: unknown[]): Promise<{ rows: R[] }> };

/**
 * A run reset to an earlier point (POST /v1/runs/{id}/retry) replays its events up to there with
 * the same ids and contents, then numbers its new ones from there again: ids the failed attempt
 * already used for other events. Such an event, and every later one from the same execution, is
 * given the run's next free number (`source_id` keeps the id it came with), so the failed
 * attempt's events stay, the retried part's follow in order, and none is lost as a "duplicate".
 * Events identical to stored ones (replays, re-sent batches) pass through to ON CONFLICT as before.
 */
async function renumberAfterReset(client: Queryable, events: readonly LifecycleEvent[], execution: string): Promise<Array<LifecycleEvent & { sourceId?: string; sourceExec?: string }>> {
  const out: Array<LifecycleEvent & { sourceId?: string; sourceExec?: string }> = [];
  for (const runId of [...new Set(events.map((e) => e.runId))]) {
    const mine = events.filter((e) => e.runId === runId);
    // One writer per run at a time: the numbering reads the run's highest seq.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [runId]);
    const stored = await client.query<{ id: string; type: string; time: Date; source_id: string | null; source_exec: string | null }>(
      `SELECT id, type, time, source_id, source_exec FROM run_events
       WHERE run_id = $1 AND (id = ANY($2::text[]) OR (source_exec = $3 AND source_id = ANY($2::text[])) OR (source_exec = $3 AND $3 <> ''))`,
      [runId, mine.map((e) => e.id), execution],
    );
    const byId = new Map(stored.rows.map((r) => [r.id, r]));
    const renumbered = new Set(stored.rows.filter((r) => r.source_exec === execution && r.source_id).map((r) => r.source_id));
    let shifted = execution !== '' && stored.rows.some((r) => r.source_exec === execution);
    let next: number | undefined;
    for (const event of mine) {
      if (renumbered.has(event.id)) continue;
      const same = byId.get(event.id);
      const identical = same !== undefined && same.type === event.type && new Date(same.time).getTime() === Date.parse(event.time);
      if (identical || (!same && !shifted)) {
        out.push(event);
        continue;
      }
      if (next === undefined) {
        const max = await client.query<{ max: number | null }>('SELECT max(seq) AS max FROM run_events WHERE run_id = $1', [runId]);
        next = Number(max.rows[0]?.max ?? 0);
      }
      next += 1;
      shifted = true;
      out.push({ ...event, id: `${runId}/event/${next}`, seq: next, sourceId: event.id, sourceExec: execution });
    }
  }
  return out;
}

/** The stored events as the run metrics read them; a decision gets the time its approval was requested. */
async function forMetrics(
  client: Queryable,
  inserted: ReadonlyArray<{ run_id: string; tenant: string; type: string; definition: string; time: Date; data: Record<string, unknown> }>,
): Promise<StoredForMetrics[]> {
  const out: StoredForMetrics[] = [];
  for (const e of inserted) {
    const item: StoredForMetrics = { type: e.type, tenant: e.tenant, definition: e.definition, time: new Date(e.time).toISOString(), data: e.data ?? {} };
    if (e.type === 'workflow.approval.decided' && typeof e.data?.stepPath === 'string') {
      const requested = await client.query<{ time: Date }>(
        `SELECT time FROM run_events WHERE run_id = $1 AND type = 'workflow.approval.requested' AND data->>'stepPath' = $2 AND time <= $3
         ORDER BY seq DESC LIMIT 1`,
        [e.run_id, e.data.stepPath, e.time],
      );
      if (requested.rows[0]) item.requestedAt = new Date(requested.rows[0].time).toISOString();
    }
    out.push(item);
  }
  return out;
}

/**
 * Lifecycle events (table `run_events`) and their webhook outbox (`webhook_deliveries`). Recording
 * is one transaction: the events, a delivery per new event and matching subscription, the batch's
 * approval audit entries, and a NOTIFY that wakes the dispatcher once the transaction commits.
 */
export class RunEventStore {
  constructor(private readonly pool: Pool) {}

  /**
   * Writes a batch. Event ids are stable across activity retries, so a re-sent batch inserts
   * nothing and, as deliveries are only fanned out for events this call inserted, queues nothing.
   */
  async record(batch: RunEventsBatch, options: { execution?: string } = {}): Promise<RecordResult> {
    if (batch.events.length === 0 && batch.audit.length === 0) return { events: 0, deliveries: 0 };
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const events = batch.events.length === 0 ? [] : await renumberAfterReset(client, batch.events, options.execution ?? '');
      const inserted =
        events.length === 0
          ? []
          : (
              await client.query<{ id: string; run_id: string; tenant: string; type: string; definition: string; time: Date; data: Record<string, unknown> }>(
                `INSERT INTO run_events (id, run_id, seq, type, tenant, definition, version, correlation_id, causation_id, time, data, source_id, source_exec, traceparent)
                 SELECT e.id, e."runId", e.seq, e.type, e.tenant, e.definition, e.version, e."correlationId", e."causationId", e.time, COALESCE(e.data, '{}'::jsonb),
                        e."sourceId", e."sourceExec", $2
                 FROM jsonb_to_recordset($1::jsonb) AS e(id text, "runId" text, seq integer, type text, tenant text, definition text, version text,
                                                        "correlationId" text, "causationId" text, time timestamptz, data jsonb, "sourceId" text, "sourceExec" text)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id, run_id, tenant, type, definition, time, data`,
                // The recording activity's span: the run's trace (webhooks carry it, api/webhooks/cloud-event.ts).
                [JSON.stringify(events), currentTraceparent() ?? null],
              )
            ).rows;

      const subscriptionIds: string[] = [];
      const eventIds: string[] = [];
      if (inserted.length > 0) {
        const tenants = [...new Set(inserted.map((e) => e.tenant))];
        const subscriptions = await client.query<{ id: string; tenant: string; events: string[]; definitions: string[] | null; enabled: boolean }>(
          'SELECT id, tenant, events, definitions, enabled FROM webhook_subscriptions WHERE enabled AND tenant = ANY($1::text[]) ORDER BY created_at, id',
          [tenants],
        );
        for (const event of inserted) {
          for (const subscription of subscriptions.rows) {
            if (!subscriptionWants(subscription, event)) continue;
            subscriptionIds.push(subscription.id);
            eventIds.push(event.id);
          }
        }
      }
      let deliveries = 0;
      if (subscriptionIds.length > 0) {
        const queued = await client.query(
          `INSERT INTO webhook_deliveries (subscription_id, event_id)
           SELECT * FROM unnest($1::text[], $2::text[])
           ON CONFLICT (subscription_id, event_id) DO NOTHING`,
          [subscriptionIds, eventIds],
        );
        deliveries = queued.rowCount ?? 0;
        if (deliveries > 0) await client.query('SELECT pg_notify($1, $2)', [WEBHOOK_NOTIFY_CHANNEL, String(deliveries)]);
      }
      await insertAuditEntries(client, batch.audit);
      const stored = await forMetrics(client, inserted);
      await client.query('COMMIT');
      return { events: inserted.length, deliveries, stored };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** A run's events in seq order, after `after` (a seq), at most `limit`. */
  async forRun(tenant: string, runId: string, options: { after?: number; limit: number }): Promise<StoredRunEvent[]> {
    const result = await this.pool.query<Record<string, any>>(
      'SELECT * FROM run_events WHERE tenant = $1 AND run_id = $2 AND seq > $3 ORDER BY seq LIMIT $4',
      [tenant, runId, options.after ?? 0, options.limit],
    );
    return result.rows.map(runEventFromRow);
  }

  /**
   * The trace a run's lifecycle events were recorded in (the earliest with one): a run that no
   * request started, by a schedule or as a parent's child, has its trace id here and nowhere else.
   */
  async traceparentOf(tenant: string, runId: string): Promise<string | undefined> {
    const result = await this.pool.query<{ traceparent: string }>(
      'SELECT traceparent FROM run_events WHERE tenant = $1 AND run_id = $2 AND traceparent IS NOT NULL ORDER BY seq LIMIT 1',
      [tenant, runId],
    );
    return result.rows[0]?.traceparent ?? undefined;
  }
}
