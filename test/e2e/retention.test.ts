import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { Retention } from '../../api/retention.ts';
import { createPool, migrate, type Pool } from '../../common/db.ts';
import { createLogger } from '../../common/logger.ts';
import { postgresAdminUrl, startTestPlatform } from '../support/platform.ts';

/**
 * Retention (issue 12: no table grows without bound) against a real PostgreSQL database: rows are
 * written with old timestamps, a round prunes exactly what the policy says, and the API process
 * runs the rounds by itself.
 */

const logger = createLogger('test', process.env.LOG_LEVEL ?? 'silent');
let dbName: string;
let pool: Pool;

before(async () => {
  dbName = `retention_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(postgresAdminUrl());
  url.pathname = `/${dbName}`;
  await migrate(url.toString(), logger);
  pool = createPool(url.toString(), 3);
});

after(async () => {
  await pool?.end();
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

/** Lifecycle events of a run, recorded `ageDays` ago (one per entry). */
async function events(p: Pool, runId: string, ageDays: number[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, age] of ageDays.entries()) {
    const id = `${runId}/event/${i + 1}`;
    await p.query(
      `INSERT INTO run_events (id, run_id, seq, type, tenant, definition, version, correlation_id, time, data, recorded_at)
       VALUES ($1, $2, $3, 'workflow.run.started', 'acme', 'd', '1.0.0', 'c', now(), '{}', now() - $4 * interval '1 day')`,
      [id, runId, i + 1, age],
    );
    ids.push(id);
  }
  return ids;
}

async function subscription(p: Pool): Promise<string> {
  const id = `wh_${randomBytes(6).toString('hex')}`;
  await p.query(`INSERT INTO webhook_subscriptions (id, tenant, url, secret, events, created_by) VALUES ($1, 'acme', 'http://127.0.0.1:9/x', 'v1.x.y.z', '{*}', 'admin')`, [id]);
  return id;
}

async function delivery(p: Pool, subscriptionId: string, eventId: string, status: string, ageDays: number): Promise<string> {
  const { rows } = await p.query<{ id: string }>(
    `INSERT INTO webhook_deliveries (subscription_id, event_id, status, updated_at) VALUES ($1, $2, $3, now() - $4 * interval '1 day') RETURNING id`,
    [subscriptionId, eventId, status, ageDays],
  );
  return String(rows[0]!.id);
}

async function deferred(p: Pool, runId: string, ageDays: number): Promise<void> {
  await p.query(
    `INSERT INTO admission_queue (run_id, lane, priority_key, tenant, definition, version, started_by, correlation_id, request_hash, reason, spec, enqueued_at)
     VALUES ($1, 'experimental', 2, 'acme', 'd', '1.0.0', 'sam', 'c', 'h', 'congested', '{}', now() - $2 * interval '1 day')`,
    [runId, ageDays],
  );
}

const ids = async (sql: string) => (await pool.query<{ id: string }>(sql)).rows.map((r) => String(r.id)).sort();

test('a round prunes final deliveries and quiet runs past their days, and nothing else', async () => {
  const sub = await subscription(pool);
  const oldRun = await events(pool, 'old-run', [45, 44, 40]);
  const recentRun = await events(pool, 'recent-run', [3, 1]);
  // A long run: its first events are old, its newest is recent; its history stays whole.
  const longRun = await events(pool, 'long-run', [90, 60, 2]);
  // Old, but one of its events still has a delivery waiting: the run's events stay.
  const waitingRun = await events(pool, 'waiting-run', [50, 49]);
  const oldDelivered = await delivery(pool, sub, oldRun[0]!, 'delivered', 40);
  const oldDead = await delivery(pool, sub, oldRun[1]!, 'dead', 35);
  const recentDelivered = await delivery(pool, sub, recentRun[0]!, 'delivered', 1);
  const oldPending = await delivery(pool, sub, waitingRun[0]!, 'pending', 40);
  await deferred(pool, 'deferred-old', 20);
  await deferred(pool, 'deferred-new', 1);
  // SLO report samples: one attempt and one model request past 30 days, one of each recent.
  for (const age of [31, 1]) {
    await pool.query(
      `INSERT INTO step_attempts (at, lane, kind, task_queue, activity, priority, wait_ms, duration_ms, outcome)
       VALUES (now() - $1 * interval '1 day', 'prod-critical', 'skills', 'prod-critical.skills', 'echo', 3, 5, 5, 'ok')`,
      [age],
    );
    await pool.query(
      `INSERT INTO model_requests (at, lane, requested, first_cloud, cloud, fell_back, outcome, latency_ms) VALUES (now() - $1 * interval '1 day', 'prod-critical', 'default', false, false, false, 'ok', 100)`,
      [age],
    );
  }
  await pool.query(
    `INSERT INTO approval_audit (id, tenant, run_id, definition, version, step_id, principal, decision, via, outcome, at, recorded_at)
     VALUES ('audit-old', 'acme', 'old-run', 'd', '1.0.0', 's', 'abby', 'approve', 'api', 'accepted', now() - interval '400 days', now() - interval '400 days')`,
  );
  // Workers' run log lines: one recorded 45 days ago, one yesterday.
  for (const age of [45, 1]) {
    await pool.query(
      `INSERT INTO run_logs (run_id, tenant, time, level, msg, recorded_at) VALUES ('old-run', 'acme', now() - $1 * interval '1 day', 'info', $2, now() - $1 * interval '1 day')`,
      [age, `line of day ${age}`],
    );
  }
  const auditBefore = Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM approval_audit')).rows[0]!.n);

  const retention = new Retention(pool, { eventsDays: 30, deliveriesDays: 30, deferredDays: 0, intervalSeconds: 0, batchSize: 2 }, logger);
  const pruned = await retention.pruneOnce();
  assert.deepEqual(pruned, { deliveries: 2, events: 3, samples: 2, logs: 1, deferred: 0 });
  assert.deepEqual(await ids('SELECT msg AS id FROM run_logs'), ['line of day 1'], 'only the recent log line is left');
  for (const table of ['step_attempts', 'model_requests']) {
    assert.deepEqual(await ids(`SELECT extract(day FROM now() - at)::int AS id FROM ${table}`), ['1'], `only the recent ${table} row is left`);
  }
  assert.deepEqual(await ids('SELECT id FROM webhook_deliveries'), [oldPending, recentDelivered].sort());
  assert.ok(![oldDelivered, oldDead].some((id) => [oldPending, recentDelivered].includes(id)));
  assert.deepEqual(await ids('SELECT id FROM run_events'), [...recentRun, ...longRun, ...waitingRun].sort());
  assert.deepEqual(await ids('SELECT run_id AS id FROM admission_queue'), ['deferred-new', 'deferred-old'], 'deferred starts are kept by default');
  assert.equal(Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM approval_audit')).rows[0]!.n), auditBefore, 'the audit trail is never pruned');
  assert.deepEqual(await retention.pruneOnce(), { deliveries: 0, events: 0, samples: 0, logs: 0, deferred: 0 }, 'a second round finds nothing');

  // Once the waiting delivery is final and old, the run's events go too.
  await pool.query(`UPDATE webhook_deliveries SET status = 'dead', updated_at = now() - interval '31 days' WHERE id = $1`, [oldPending]);
  assert.deepEqual(await retention.pruneOnce(), { deliveries: 1, events: 2, samples: 0, logs: 0, deferred: 0 });

  // With RETENTION_DEFERRED_DAYS set, deferred starts older than that are dropped (and logged).
  const strict = new Retention(pool, { eventsDays: 0, deliveriesDays: 0, deferredDays: 7, intervalSeconds: 0 }, logger);
  assert.deepEqual(await strict.pruneOnce(), { deliveries: 0, events: 0, samples: 0, logs: 0, deferred: 1 });
  assert.deepEqual(await ids('SELECT run_id AS id FROM admission_queue'), ['deferred-new']);
  assert.deepEqual(await ids('SELECT id FROM run_events'), [...recentRun, ...longRun].sort(), '0 days keeps events forever');
});

test('the API process prunes on its own, every RETENTION_INTERVAL_SECONDS', async () => {
  const platform = await startTestPlatform({ database: 'postgres', env: { RETENTION_INTERVAL_SECONDS: '1', RETENTION_EVENTS_DAYS: '7' } });
  const own = createPool(platform.config.DATABASE_URL!, 1);
  try {
    await events(own, 'quiet-run', [10, 9]);
    await events(own, 'fresh-run', [0]);
    const deadline = Date.now() + 20_000;
    let left: string[] = [];
    while (Date.now() < deadline) {
      left = (await own.query<{ run_id: string }>('SELECT DISTINCT run_id FROM run_events ORDER BY run_id')).rows.map((r) => r.run_id);
      if (!left.includes('quiet-run')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(left, ['fresh-run']);
  } finally {
    await own.end();
    await platform.stop();
  }
});
