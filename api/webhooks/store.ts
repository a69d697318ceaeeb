import { randomBytes } from 'node:crypto';
import type { Pool } from '../../common/db.ts';
import { runEventFromRow, WEBHOOK_NOTIFY_CHANNEL, type StoredRunEvent } from '../../activities/platform/events.ts';
import { SecretBox } from './secret-box.ts';

export const DELIVERY_STATUSES = ['pending', 'delivering', 'delivered', 'dead'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** A subscription as the API shows it: never with its secret (that is shown once, at creation). */
export interface WebhookSubscription {
  id: string;
  url: string;
  events: string[];
  definitions?: string[];
  enabled: boolean;
  disabledReason?: string;
  description?: string;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  /** When the secret was last rotated. */
  secretRotatedAt?: string;
  /** Until when the secret before the last rotation still signs deliveries (alongside the new one). */
  previousSecretExpiresAt?: string;
}

/** The longest overlap a rotation may keep the old secret valid (7 days). */
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 24 * 3600;

export interface WebhookDelivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  runId: string;
  seq: number;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt?: string;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: string;
  createdAt: string;
  updatedAt: string;
}

/** A delivery the dispatcher claimed: what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  subscriptionId: string;
  attempts: number;
  url: string;
  /** The secrets that sign this attempt: the current one, then the previous one during a rotation's overlap. */
  secrets: string[];
  event: StoredRunEvent;
  /** The trace context the event was recorded in (W3C traceparent), when tracing was on. */
  traceparent?: string;
}

/** A new signing secret in the Standard Webhooks format: `whsec_` + base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

function subscriptionFromRow(r: Record<string, any>): WebhookSubscription {
  const s: WebhookSubscription = {
    id: r.id,
    url: r.url,
    events: r.events,
    enabled: r.enabled,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
  if (r.definitions) s.definitions = r.definitions;
  if (r.disabled_reason) s.disabledReason = r.disabled_reason;
  if (r.description) s.description = r.description;
  if (r.secret_rotated_at) s.secretRotatedAt = new Date(r.secret_rotated_at).toISOString();
  if (r.previous_secret_expires_at && new Date(r.previous_secret_expires_at).getTime() > Date.now()) {
    s.previousSecretExpiresAt = new Date(r.previous_secret_expires_at).toISOString();
  }
  return s;
}

function deliveryFromRow(r: Record<string, any>): WebhookDelivery {
  const d: WebhookDelivery = {
    id: String(r.id),
    subscriptionId: r.subscription_id,
    eventId: r.event_id,
    eventType: r.type,
    runId: r.run_id,
    seq: Number(r.seq),
    status: r.status,
    attempts: r.attempts,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
  if (r.status === 'pending' || r.status === 'delivering') d.nextAttemptAt = new Date(r.next_attempt_at).toISOString();
  if (r.last_status !== null && r.last_status !== undefined) d.lastStatus = r.last_status;
  if (r.last_error) d.lastError = r.last_error;
  if (r.delivered_at) d.deliveredAt = new Date(r.delivered_at).toISOString();
  return d;
}

/**
 * Webhook subscriptions and their deliveries (tables `webhook_subscriptions`, `webhook_deliveries`).
 * Every read and write is scoped by tenant; the dispatcher's claim and completion are not (they
 * serve every tenant).
 */
export class WebhookStore {
  /** `box` seals signing secrets at rest (AES-256-GCM); they are opened only to sign a delivery. */
  constructor(
    private readonly pool: Pool,
    private readonly box: SecretBox,
  ) {}

  /**
   * Seals every secret still stored in plaintext (rows from before secrets were encrypted at
   * rest). Idempotent, and safe while other replicas do the same (each row is updated only while
   * it still holds that plaintext). Returns how many were sealed.
   */
  async sealPlaintextSecrets(): Promise<number> {
    const rows = await this.pool.query<{ id: string; secret: string; previous_secret: string | null }>(
      `SELECT id, secret, previous_secret FROM webhook_subscriptions WHERE secret NOT LIKE 'v1.%' OR previous_secret NOT LIKE 'v1.%'`,
    );
    let sealed = 0;
    for (const row of rows.rows) {
      const secret = SecretBox.isSealed(row.secret) ? row.secret : this.box.seal(row.secret, row.id);
      const previous = row.previous_secret === null || SecretBox.isSealed(row.previous_secret) ? row.previous_secret : this.box.seal(row.previous_secret, `${row.id}/previous`);
      const result = await this.pool.query(
        'UPDATE webhook_subscriptions SET secret = $2, previous_secret = $3 WHERE id = $1 AND secret = $4 AND previous_secret IS NOT DISTINCT FROM $5',
        [row.id, secret, previous, row.secret, row.previous_secret],
      );
      sealed += result.rowCount ?? 0;
    }
    return sealed;
  }

  /**
   * A new signing secret for the subscription. The old one keeps signing deliveries next to the
   * new one for `overlapSeconds` (0: it stops at once), so receivers can switch without a gap.
   */
  async rotateSecret(tenant: string, id: string, overlapSeconds: number): Promise<{ subscription: WebhookSubscription; secret: string } | undefined> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const current = await client.query<{ secret: string }>('SELECT secret FROM webhook_subscriptions WHERE tenant = $1 AND id = $2 FOR UPDATE', [tenant, id]);
      if (!current.rows[0]) {
        await client.query('ROLLBACK');
        return undefined;
      }
      const old = this.box.open(current.rows[0].secret, id);
      const secret = newWebhookSecret();
      const result = await client.query(
        `UPDATE webhook_subscriptions
         SET secret = $3,
             previous_secret = CASE WHEN $5::integer > 0 THEN $4 ELSE NULL END,
             previous_secret_expires_at = CASE WHEN $5::integer > 0 THEN now() + $5 * interval '1 second' ELSE NULL END,
             secret_rotated_at = now(), updated_at = now()
         WHERE tenant = $1 AND id = $2 RETURNING *`,
        [tenant, id, this.box.seal(secret, id), this.box.seal(old, `${id}/previous`), overlapSeconds],
      );
      await client.query('COMMIT');
      return { subscription: subscriptionFromRow(result.rows[0]), secret };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async create(input: {
    tenant: string;
    url: string;
    events: string[];
    definitions?: string[] | undefined;
    description?: string | undefined;
    enabled?: boolean | undefined;
    createdBy: string;
  }): Promise<{ subscription: WebhookSubscription; secret: string }> {
    const id = `wh_${randomBytes(12).toString('hex')}`;
    const secret = newWebhookSecret();
    const result = await this.pool.query(
      `INSERT INTO webhook_subscriptions (id, tenant, url, secret, events, definitions, enabled, description, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
      [id, input.tenant, input.url, this.box.seal(secret, id), input.events, input.definitions ?? null, input.enabled ?? true, input.description ?? null, input.createdBy],
    );
    return { subscription: subscriptionFromRow(result.rows[0]), secret };
  }

  async list(tenant: string): Promise<WebhookSubscription[]> {
    const result = await this.pool.query('SELECT * FROM webhook_subscriptions WHERE tenant = $1 ORDER BY created_at, id', [tenant]);
    return result.rows.map(subscriptionFromRow);
  }

  async get(tenant: string, id: string): Promise<WebhookSubscription | undefined> {
    const result = await this.pool.query('SELECT * FROM webhook_subscriptions WHERE tenant = $1 AND id = $2', [tenant, id]);
    return result.rows[0] ? subscriptionFromRow(result.rows[0]) : undefined;
  }

  /** Changes the given fields; `null` clears `definitions` or `description`. Enabling clears the disabled reason. */
  async update(
    tenant: string,
    id: string,
    patch: { url?: string | undefined; events?: string[] | undefined; definitions?: string[] | null | undefined; description?: string | null | undefined; enabled?: boolean | undefined },
  ): Promise<WebhookSubscription | undefined> {
    const sets: string[] = [];
    const values: unknown[] = [tenant, id];
    const set = (column: string, value: unknown) => {
      values.push(value);
      sets.push(`${column} = $${values.length}`);
    };
    if (patch.url !== undefined) set('url', patch.url);
    if (patch.events !== undefined) set('events', patch.events);
    if (patch.definitions !== undefined) set('definitions', patch.definitions);
    if (patch.description !== undefined) set('description', patch.description);
    if (patch.enabled !== undefined) {
      set('enabled', patch.enabled);
      set('disabled_reason', patch.enabled ? null : 'disabled through the API');
    }
    sets.push('updated_at = now()');
    const result = await this.pool.query(`UPDATE webhook_subscriptions SET ${sets.join(', ')} WHERE tenant = $1 AND id = $2 RETURNING *`, values);
    if (patch.enabled) await this.notify();
    return result.rows[0] ? subscriptionFromRow(result.rows[0]) : undefined;
  }

  /** Deletes the subscription and its deliveries; false when there was none. */
  async delete(tenant: string, id: string): Promise<boolean> {
    const result = await this.pool.query('DELETE FROM webhook_subscriptions WHERE tenant = $1 AND id = $2', [tenant, id]);
    return (result.rowCount ?? 0) > 0;
  }

  /** A subscription's deliveries, oldest first, after the delivery id `after`; `status` filters. */
  async deliveries(tenant: string, subscriptionId: string, query: { status?: DeliveryStatus | undefined; after?: string | undefined; limit: number }): Promise<WebhookDelivery[]> {
    const result = await this.pool.query(
      `SELECT d.*, e.type, e.run_id, e.seq
       FROM webhook_deliveries d
       JOIN webhook_subscriptions s ON s.id = d.subscription_id
       JOIN run_events e ON e.id = d.event_id
       WHERE s.tenant = $1 AND d.subscription_id = $2 AND ($3::text IS NULL OR d.status = $3) AND d.id > $4
       ORDER BY d.id
       LIMIT $5`,
      [tenant, subscriptionId, query.status ?? null, query.after ?? '0', query.limit],
    );
    return result.rows.map(deliveryFromRow);
  }

  async delivery(tenant: string, subscriptionId: string, deliveryId: string): Promise<WebhookDelivery | undefined> {
    const result = await this.pool.query(
      `SELECT d.*, e.type, e.run_id, e.seq
       FROM webhook_deliveries d
       JOIN webhook_subscriptions s ON s.id = d.subscription_id
       JOIN run_events e ON e.id = d.event_id
       WHERE s.tenant = $1 AND d.subscription_id = $2 AND d.id = $3`,
      [tenant, subscriptionId, deliveryId],
    );
    return result.rows[0] ? deliveryFromRow(result.rows[0]) : undefined;
  }

  /**
   * Puts a dead delivery back in the queue with a fresh attempt budget. Returns the delivery, or
   * a string saying why not (it is not dead), or undefined when there is no such delivery.
   */
  async retry(tenant: string, subscriptionId: string, deliveryId: string): Promise<WebhookDelivery | string | undefined> {
    const result = await this.pool.query(
      `UPDATE webhook_deliveries d
       SET status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()
       FROM webhook_subscriptions s
       WHERE s.id = d.subscription_id AND s.tenant = $1 AND d.subscription_id = $2 AND d.id = $3 AND d.status = 'dead'
       RETURNING d.id`,
      [tenant, subscriptionId, deliveryId],
    );
    const current = await this.delivery(tenant, subscriptionId, deliveryId);
    if (!current) return undefined;
    if ((result.rowCount ?? 0) === 0) return `delivery ${deliveryId} is ${current.status}; only dead deliveries are re-queued`;
    await this.notify();
    return current;
  }

  /** Wakes every dispatcher (they LISTEN on the channel). */
  async notify(): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [WEBHOOK_NOTIFY_CHANNEL, 'api']);
  }

  /**
   * Claims up to `limit` due deliveries of enabled subscriptions for this dispatcher: marks them
   * `delivering`, counts the attempt and leases them until `leaseMs` from now. SKIP LOCKED lets
   * several API replicas claim side by side without taking the same row; an expired lease (a
   * dispatcher died mid-send) makes the row due again.
   */
  async claim(limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
    const result = await this.pool.query(
      `UPDATE webhook_deliveries d
       SET status = 'delivering', attempts = d.attempts + 1, next_attempt_at = now() + $2 * interval '1 millisecond', updated_at = now()
       FROM webhook_subscriptions s, run_events e
       WHERE d.id IN (
           SELECT q.id FROM webhook_deliveries q JOIN webhook_subscriptions qs ON qs.id = q.subscription_id
           WHERE q.status IN ('pending', 'delivering') AND q.next_attempt_at <= now() AND qs.enabled
           ORDER BY q.next_attempt_at, q.id
           LIMIT $1
           FOR UPDATE OF q SKIP LOCKED)
         AND s.id = d.subscription_id AND e.id = d.event_id
       RETURNING d.id AS delivery_id, d.subscription_id, d.attempts, s.url, s.secret,
                 CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret END AS previous_secret, e.*`,
      [limit, leaseMs],
    );
    return result.rows.map((r) => ({
      id: String(r.delivery_id),
      subscriptionId: r.subscription_id,
      attempts: r.attempts,
      url: r.url,
      secrets: [this.box.open(r.secret, r.subscription_id), ...(r.previous_secret ? [this.box.open(r.previous_secret, `${r.subscription_id}/previous`)] : [])],
      event: runEventFromRow(r),
      ...(r.traceparent ? { traceparent: String(r.traceparent) } : {}),
    }));
  }

  /**
   * Records the outcome of a claimed attempt. Guarded by the attempt number, so a dispatcher whose
   * lease expired (and whose row another claimed) cannot overwrite the newer attempt's outcome.
   */
  async complete(
    claimed: Pick<ClaimedDelivery, 'id' | 'attempts'>,
    outcome: { status: 'delivered' | 'pending' | 'dead'; httpStatus?: number | undefined; error?: string | undefined; retryInMs?: number | undefined },
  ): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE webhook_deliveries
       SET status = $3, last_status = $4, last_error = $5,
           delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END,
           next_attempt_at = CASE WHEN $3 = 'pending' THEN now() + $6 * interval '1 millisecond' ELSE next_attempt_at END,
           updated_at = now()
       WHERE id = $1 AND attempts = $2 AND status = 'delivering'`,
      [claimed.id, claimed.attempts, outcome.status, outcome.httpStatus ?? null, outcome.error ?? null, outcome.retryInMs ?? 0],
    );
    return (result.rowCount ?? 0) > 0;
  }

  /** Disables a subscription because its receiver asked (410 Gone); its deliveries wait until it is enabled again. */
  async disable(subscriptionId: string, reason: string): Promise<void> {
    await this.pool.query('UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1', [subscriptionId, reason]);
  }
}
