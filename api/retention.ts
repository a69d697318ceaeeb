import type { Pool } from '../common/db.ts';
import type { Logger } from '../common/logger.ts';

/**
 * Retention (docs/OPERATIONS.md "Retention"): so that no table grows without bound, the API
 * prunes old rows on a timer, in batches:
 *
 * - webhook deliveries in a final state (`delivered`, `dead`) last changed more than
 *   RETENTION_DELIVERIES_DAYS ago (pending and delivering ones are never pruned);
 * - lifecycle events of runs whose newest event is older than RETENTION_EVENTS_DAYS, a run's
 *   events together (never half a history), and only once none of them has a delivery left;
 *   the workers' run log lines recorded that long ago go with them;
 * - deferred starts that have waited in the admission queue longer than RETENTION_DEFERRED_DAYS,
 *   only when that is set (default 0: never, since a deferred start is accepted work; each one
 *   removed is logged as a warning with its run id and last error).
 *
 * 0 days keeps that kind forever. The approval audit trail is never pruned.
 */
export interface RetentionPolicy {
  eventsDays: number;
  deliveriesDays: number;
  deferredDays: number;
  /** Seconds between rounds; 0 = no timer (pruneOnce still works). */
  intervalSeconds: number;
  /** Rows deleted per statement, so one round never holds long locks. @default 1000 */
  batchSize?: number;
}

export interface PruneResult {
  events: number;
  /** SLO report samples (step_attempts, model_requests) older than RETENTION_EVENTS_DAYS. */
  samples: number;
  /** Workers' run log lines (run_logs) recorded more than RETENTION_EVENTS_DAYS ago. */
  logs: number;
  deliveries: number;
  deferred: number;
}

export class Retention {
  #timer: NodeJS.Timeout | undefined;
  #first: NodeJS.Timeout | undefined;
  #round: Promise<unknown> | undefined;
  readonly #batch: number;
  readonly #log: Logger;

  constructor(
    private readonly pool: Pool,
    private readonly policy: RetentionPolicy,
    logger: Logger,
  ) {
    this.#batch = policy.batchSize ?? 1000;
    this.#log = logger.child({ component: 'retention' });
  }

  /** One round: every kind of row past its retention, in batches until none is left. */
  async pruneOnce(): Promise<PruneResult> {
    const result: PruneResult = { events: 0, samples: 0, logs: 0, deliveries: 0, deferred: 0 };
    const days = (n: number) => `${n} days`;
    if (this.policy.deliveriesDays > 0) {
      result.deliveries = await this.#repeat(
        `DELETE FROM webhook_deliveries WHERE id IN (
           SELECT id FROM webhook_deliveries
           WHERE status IN ('delivered', 'dead') AND updated_at < now() - $1::interval
           LIMIT $2)`,
        [days(this.policy.deliveriesDays)],
      );
    }
    if (this.policy.eventsDays > 0) {
      result.events = await this.#repeat(
        `DELETE FROM run_events WHERE run_id IN (
           SELECT e.run_id FROM run_events e
           GROUP BY e.run_id
           HAVING max(e.recorded_at) < now() - $1::interval
              AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d JOIN run_events x ON x.id = d.event_id WHERE x.run_id = e.run_id)
           LIMIT $2)`,
        [days(this.policy.eventsDays)],
      );
      result.logs = await this.#repeat(
        `DELETE FROM run_logs WHERE id IN (SELECT id FROM run_logs WHERE recorded_at < now() - $1::interval LIMIT $2)`,
        [days(this.policy.eventsDays)],
      );
      for (const table of ['step_attempts', 'model_requests']) {
        result.samples += await this.#repeat(
          `DELETE FROM ${table} WHERE ctid IN (SELECT ctid FROM ${table} WHERE at < now() - $1::interval LIMIT $2)`,
          [days(this.policy.eventsDays)],
        );
      }
    }
    if (this.policy.deferredDays > 0) {
      for (;;) {
        const { rows } = await this.pool.query<{ run_id: string; tenant: string; definition: string; lane: string; attempts: number; last_error: string | null }>(
          `DELETE FROM admission_queue WHERE run_id IN (
             SELECT run_id FROM admission_queue WHERE enqueued_at < now() - $1::interval LIMIT $2)
           RETURNING run_id, tenant, definition, lane, attempts, last_error`,
          [days(this.policy.deferredDays), this.#batch],
        );
        for (const row of rows) {
          this.#log.warn(
            { runId: row.run_id, tenant: row.tenant, definition: row.definition, lane: row.lane, attempts: row.attempts, lastError: row.last_error ?? undefined },
            `deferred start dropped after waiting more than ${this.policy.deferredDays} days (RETENTION_DEFERRED_DAYS)`,
          );
        }
        result.deferred += rows.length;
        if (rows.length < this.#batch) break;
      }
    }
    return result;
  }

  async #repeat(sql: string, params: unknown[]): Promise<number> {
    let total = 0;
    for (;;) {
      const { rowCount } = await this.pool.query(sql, [...params, this.#batch]);
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < this.#batch) return total;
    }
  }

  /** Prunes now and then every intervalSeconds; a failed round is logged and the next one tries again. */
  start(): void {
    if (this.policy.intervalSeconds <= 0 || this.#timer) return;
    const round = () => {
      if (this.#round) return;
      this.#round = this.pruneOnce()
        .then((pruned) => {
          if (pruned.events + pruned.deliveries + pruned.deferred > 0) this.#log.info(pruned, 'old rows pruned');
        })
        .catch((error: unknown) => this.#log.warn({ err: (error as Error).message }, 'retention round failed; retrying next round'))
        .finally(() => (this.#round = undefined));
    };
    this.#timer = setInterval(round, this.policy.intervalSeconds * 1000);
    this.#timer.unref();
    // The first round soon after start, not a whole interval later.
    this.#first = setTimeout(round, Math.min(5000, this.policy.intervalSeconds * 1000));
    this.#first.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#first);
    this.#timer = undefined;
    await this.#round;
  }
}
