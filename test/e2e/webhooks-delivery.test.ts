import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { AuditStore, createPlatformActivities } from '../../activities/platform/audit.ts';
import { RunEventStore } from '../../activities/platform/events.ts';
import { WebhookDispatcher, type WebhookDispatcherOptions } from '../../api/webhooks/dispatcher.ts';
import { SecretBox } from '../../api/webhooks/secret-box.ts';
import { WebhookStore } from '../../api/webhooks/store.ts';
import { createPool, migrate, type Pool } from '../../common/db.ts';
import { createLogger } from '../../common/logger.ts';
import type { AuditEntry, LifecycleEvent, LifecycleEventType, RunEventsBatch } from '../../workflows/types.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { postgresAdminUrl } from '../support/platform.ts';

/**
 * The lifecycle-event store and the webhook dispatcher against a real PostgreSQL database, with
 * loopback receivers standing in for subscribers: the platform activity is called directly with
 * the batches the interpreter sends.
 */

const logger = createLogger('test', process.env.LOG_LEVEL ?? 'silent');
const TENANT = 'acme';

let databaseUrl: string;
let dbName: string;
let pool: Pool;
let activities: ReturnType<typeof createPlatformActivities>;
let webhooks: WebhookStore;
let events: RunEventStore;

before(async () => {
  dbName = `webhooks_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(postgresAdminUrl());
  url.pathname = `/${dbName}`;
  databaseUrl = url.toString();
  await migrate(databaseUrl, logger);
  pool = createPool(databaseUrl, 5);
  events = new RunEventStore(pool);
  activities = createPlatformActivities(new AuditStore(pool), events);
  webhooks = new WebhookStore(pool, new SecretBox(randomBytes(32)));
});

after(async () => {
  await pool?.end();
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

function lifecycle(runId: string, seq: number, type: LifecycleEventType, data: Record<string, unknown> = {}, overrides: Partial<LifecycleEvent> = {}): LifecycleEvent {
  return {
    id: `${runId}/event/${seq}`,
    type,
    runId,
    seq,
    tenant: TENANT,
    definition: 'orders',
    version: '1.0',
    correlationId: `corr-${runId}`,
    causationId: `cause-${runId}`,
    time: new Date(Date.UTC(2026, 10, 21, 7, 0, seq)).toISOString(),
    data,
    ...overrides,
  };
}

/** A run's worth of events, in the batches the interpreter would send. */
function runBatches(runId: string): RunEventsBatch[] {
  const audit: AuditEntry = {
    id: `${runId}/approval/1`,
    runId,
    tenant: TENANT,
    definition: 'orders',
    version: '1.0',
    stepId: 'sign-off',
    principal: 'abby',
    decision: 'approve',
    via: 'api',
    outcome: 'accepted',
    at: new Date(Date.UTC(2026, 10, 21, 7, 0, 4)).toISOString(),
  };
  return [
    { events: [lifecycle(runId, 1, 'workflow.run.started'), lifecycle(runId, 2, 'workflow.step.completed', { stepId: 'charge', stepPath: 'charge', stepType: 'skill', status: 'completed' })], audit: [] },
    { events: [lifecycle(runId, 3, 'workflow.approval.requested', { stepId: 'sign-off', stepPath: 'sign-off', summary: 'ok?', approvers: ['abby'], quorum: 1 })], audit: [] },
    {
      events: [
        lifecycle(runId, 4, 'workflow.approval.decided', { stepId: 'sign-off', stepPath: 'sign-off', decision: 'approve', principal: 'abby', via: 'api', timedOut: false }),
        lifecycle(runId, 5, 'workflow.run.completed', { status: 'completed' }),
      ],
      audit: [audit],
    },
  ];
}

const count = async (sql: string, params: unknown[] = []) => Number((await pool.query<{ n: string }>(sql, params)).rows[0]?.n);

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function dispatcher(overrides: Partial<WebhookDispatcherOptions> = {}): WebhookDispatcher {
  const d = new WebhookDispatcher({
    store: webhooks,
    databaseUrl,
    logger,
    maxAttempts: 3,
    retryBaseMs: 50,
    retryMaxMs: 200,
    timeoutMs: 2000,
    pollMs: 60_000,
    // Every receiver here is a loopback server (any port).
    allowedHosts: ['127.0.0.1'],
    ...overrides,
  });
  d.start();
  return d;
}

/** A receiver that verifies each delivery's signature and answers per `answer`. */
async function receiver(secret: () => string, answer: (eventId: string, attempt: number) => number) {
  const seen = new Map<string, number>();
  const acknowledged: Array<{ id: string; body: any; at: number }> = [];
  const badSignatures: string[] = [];
  const server: LoopbackHttp = await startLoopbackHttp({
    '/hook': (req, res, body) => {
      const id = String(req.headers['webhook-id']);
      try {
        new Webhook(secret()).verify(body, req.headers as Record<string, string>);
      } catch (error) {
        badSignatures.push(`${id}: ${(error as Error).message}`);
        json(res, 401, { error: 'bad signature' });
        return;
      }
      const attempt = (seen.get(id) ?? 0) + 1;
      seen.set(id, attempt);
      const status = answer(id, attempt);
      if (status >= 200 && status < 300) acknowledged.push({ id, body: JSON.parse(body), at: Date.now() });
      json(res, status, { attempt });
    },
  });
  return { server, seen, acknowledged, badSignatures, url: `${server.url}/hook` };
}

describe('recordRunEvents', () => {
  test('writes events, audit entries and one delivery per matching subscription, once even when a batch is re-sent', async () => {
    const every = await webhooks.create({ tenant: TENANT, url: 'http://127.0.0.1:9/every', events: ['workflow.*'], createdBy: 'admin' });
    const steps = await webhooks.create({ tenant: TENANT, url: 'http://127.0.0.1:9/steps', events: ['workflow.step.*', 'workflow.run.completed'], createdBy: 'admin' });
    const refunds = await webhooks.create({ tenant: TENANT, url: 'http://127.0.0.1:9/refunds', events: ['*'], definitions: ['refunds'], createdBy: 'admin' });
    const other = await webhooks.create({ tenant: 'globex', url: 'http://127.0.0.1:9/other', events: ['*'], createdBy: 'admin' });
    const disabled = await webhooks.create({ tenant: TENANT, url: 'http://127.0.0.1:9/off', events: ['*'], enabled: false, createdBy: 'admin' });

    const runId = 'fanout-1';
    const batches = runBatches(runId);
    for (const batch of batches) await activities.recordRunEvents(batch);
    // The activity retried after a lost acknowledgement, and a batch re-sent after continue-as-new.
    for (const batch of batches) await activities.recordRunEvents(batch);
    await activities.recordRunEvents({ events: [batches[2]!.events[1]!, lifecycle(runId, 6, 'workflow.run.failed', { status: 'failed' })], audit: batches[2]!.audit });

    assert.equal(await count('SELECT count(*) AS n FROM run_events WHERE run_id = $1', [runId]), 6);
    assert.equal(await count('SELECT count(*) AS n FROM approval_audit WHERE run_id = $1', [runId]), 1);
    const perSubscription = async (id: string) => count('SELECT count(*) AS n FROM webhook_deliveries WHERE subscription_id = $1', [id]);
    assert.equal(await perSubscription(every.subscription.id), 6);
    assert.equal(await perSubscription(steps.subscription.id), 2, 'step.completed and run.completed');
    assert.equal(await perSubscription(refunds.subscription.id), 0, 'another definition');
    assert.equal(await perSubscription(other.subscription.id), 0, 'another tenant');
    assert.equal(await perSubscription(disabled.subscription.id), 0, 'disabled');

    // Read back in seq order, paginated, as GET /v1/runs/{id}/events does; another tenant sees none.
    const firstPage = await events.forRun(TENANT, runId, { limit: 4 });
    assert.deepEqual(firstPage.map((e) => e.seq), [1, 2, 3, 4]);
    const secondPage = await events.forRun(TENANT, runId, { after: 4, limit: 4 });
    assert.deepEqual(secondPage.map((e) => e.type), ['workflow.run.completed', 'workflow.run.failed']);
    assert.deepEqual(await events.forRun('globex', runId, { limit: 10 }), []);
    const { recordedAt, ...stored } = firstPage[1]!;
    assert.ok(recordedAt);
    assert.deepEqual(stored, batches[0]!.events[1]);
    assert.deepEqual((await new AuditStore(pool).forRun(TENANT, runId)).map((e) => e.id), [`${runId}/approval/1`]);

    for (const s of [every, steps, refunds, disabled]) await webhooks.delete(TENANT, s.subscription.id);
    await webhooks.delete('globex', other.subscription.id);
  });

  test('the old recordAudit activity still writes the audit trail alone', async () => {
    const [batch] = runBatches('audit-only').slice(2);
    await activities.recordAudit(batch!.audit);
    await activities.recordAudit(batch!.audit);
    assert.equal(await count('SELECT count(*) AS n FROM approval_audit WHERE run_id = $1', ['audit-only']), 1);
    assert.equal(await count('SELECT count(*) AS n FROM run_events WHERE run_id = $1', ['audit-only']), 0);
  });
});

describe('webhook dispatcher', () => {
  test('a receiver failing each first delivery gets every event exactly once (acknowledged), signed, woken by NOTIFY', async () => {
    let secret = '';
    const hook = await receiver(() => secret, (_id, attempt) => (attempt === 1 ? 500 : 204));
    const created = await webhooks.create({ tenant: TENANT, url: hook.url, events: ['workflow.*'], createdBy: 'admin' });
    secret = created.secret;
    // A poll interval of a minute: only NOTIFY and the dispatcher's own retry timer can be this quick.
    const d = dispatcher();
    const runId = 'flaky-1';
    try {
      await waitFor('LISTEN', async () => ((d as unknown as { listener?: unknown }).listener ? true : undefined));
      const started = Date.now();
      for (const batch of runBatches(runId)) await activities.recordRunEvents(batch);
      await activities.recordRunEvents(runBatches(runId)[0]!);
      await waitFor('5 acknowledged deliveries', async () => (hook.acknowledged.length >= 5 ? true : undefined));
      const firstSeen = Math.min(...hook.acknowledged.map((a) => a.at)) - started;
      await new Promise((r) => setTimeout(r, 300));

      assert.deepEqual(hook.badSignatures, []);
      assert.deepEqual(hook.acknowledged.map((a) => a.id).sort(), [1, 2, 3, 4, 5].map((n) => `${runId}/event/${n}`));
      for (const [, attempts] of hook.seen) assert.equal(attempts, 2);
      const body = hook.acknowledged.find((a) => a.id === `${runId}/event/2`)!.body;
      assert.deepEqual(body, {
        specversion: '1.0',
        id: `${runId}/event/2`,
        type: 'workflow.step.completed',
        source: `/v1/runs/${runId}`,
        subject: 'charge',
        time: '2026-11-21T07:00:02.000Z',
        datacontenttype: 'application/json',
        correlationid: `corr-${runId}`,
        causationid: `cause-${runId}`,
        tenant: TENANT,
        definition: 'orders',
        version: '1.0',
        seq: 2,
        data: { stepId: 'charge', stepPath: 'charge', stepType: 'skill', status: 'completed' },
      });
      const rows = await webhooks.deliveries(TENANT, created.subscription.id, { limit: 10 });
      assert.deepEqual(rows.map((r) => [r.status, r.attempts, r.lastStatus]), Array(5).fill(['delivered', 2, 204]));
      assert.ok(firstSeen < 2000, `first acknowledged delivery ${firstSeen} ms after recording`);
      process.stdout.write(`# first acknowledged delivery ${firstSeen} ms after recording (first attempt refused, retry 25-50 ms later)\n`);
    } finally {
      await d.stop();
      await hook.server.close();
      await webhooks.delete(TENANT, created.subscription.id);
    }
  });

  test('two dispatchers (two API replicas) never send one delivery twice', async () => {
    let secret = '';
    const hook = await receiver(() => secret, () => 200);
    const created = await webhooks.create({ tenant: TENANT, url: hook.url, events: ['workflow.*'], createdBy: 'admin' });
    secret = created.secret;
    const replicas = [dispatcher({ batchSize: 4 }), dispatcher({ batchSize: 4 })];
    try {
      const runs = Array.from({ length: 8 }, (_, i) => `replicas-${i}`);
      await Promise.all(runs.map(async (runId) => {
        for (const batch of runBatches(runId)) await activities.recordRunEvents(batch);
      }));
      await waitFor('40 deliveries', async () => (hook.acknowledged.length >= 40 ? true : undefined));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(hook.acknowledged.length, 40);
      assert.equal(new Set(hook.acknowledged.map((a) => a.id)).size, 40);
      assert.deepEqual(hook.badSignatures, []);
    } finally {
      await Promise.all(replicas.map((r) => r.stop()));
      await hook.server.close();
      await webhooks.delete(TENANT, created.subscription.id);
    }
  });

  test('a receiver that always fails: dead after the last attempt, re-queued by retry; 410 disables the subscription', async () => {
    let secret = '';
    let status = 503;
    const hook = await receiver(() => secret, () => status);
    const created = await webhooks.create({ tenant: TENANT, url: hook.url, events: ['workflow.run.*'], createdBy: 'admin' });
    secret = created.secret;
    const d = dispatcher({ pollMs: 50 });
    const runId = 'down-1';
    try {
      await activities.recordRunEvents(runBatches(runId)[0]!);
      const [dead] = await waitFor('a dead letter', async () => {
        const rows = await webhooks.deliveries(TENANT, created.subscription.id, { status: 'dead', limit: 10 });
        return rows.length > 0 ? rows : undefined;
      });
      assert.equal(dead!.eventId, `${runId}/event/1`);
      assert.equal(dead!.attempts, 3);
      assert.equal(dead!.lastStatus, 503);
      assert.match(dead!.lastError ?? '', /HTTP 503 \(attempt 3 of 3\)/);
      assert.equal(hook.seen.get(`${runId}/event/1`), 3);
      assert.equal(await count("SELECT count(*) AS n FROM webhook_deliveries WHERE subscription_id = $1 AND status <> 'dead'", [created.subscription.id]), 0, 'step events were not subscribed');

      // Not dead any more once re-queued; retrying a delivered one is refused.
      status = 200;
      const requeued = await webhooks.retry(TENANT, created.subscription.id, dead!.id);
      assert.equal(typeof requeued === 'object' && requeued.status, 'pending');
      await waitFor('redelivery', async () => (hook.acknowledged.length === 1 ? true : undefined));
      const delivered = await waitFor('delivered', async () => {
        const row = await webhooks.delivery(TENANT, created.subscription.id, dead!.id);
        return row?.status === 'delivered' ? row : undefined;
      });
      assert.equal(delivered.attempts, 1);
      assert.match(String(await webhooks.retry(TENANT, created.subscription.id, dead!.id)), /is delivered; only dead deliveries/);
      assert.equal(await webhooks.retry('globex', created.subscription.id, dead!.id), undefined, 'another tenant');

      // 410 Gone: the receiver unsubscribes; later events wait, and go out once it is enabled again.
      status = 410;
      await activities.recordRunEvents(runBatches(runId)[2]!);
      const disabled = await waitFor('disabled', async () => {
        const s = await webhooks.get(TENANT, created.subscription.id);
        return s && !s.enabled ? s : undefined;
      });
      assert.match(disabled.disabledReason ?? '', /410 Gone/);
      const gone = await webhooks.deliveries(TENANT, created.subscription.id, { status: 'dead', after: dead!.id, limit: 10 });
      assert.deepEqual(gone.map((g) => [g.eventId, g.lastStatus]), [[`${runId}/event/5`, 410]]);
      // A disabled subscription gets nothing queued; enabled again, it gets the events recorded from then on.
      await activities.recordRunEvents({ events: [lifecycle(runId, 6, 'workflow.run.failed', { status: 'failed' })], audit: [] });
      status = 200;
      await webhooks.update(TENANT, created.subscription.id, { enabled: true });
      await activities.recordRunEvents({ events: [lifecycle(runId, 7, 'workflow.run.started')], audit: [] });
      await waitFor('the next event', async () => (hook.acknowledged.some((a) => a.id === `${runId}/event/7`) ? true : undefined));
      assert.equal(hook.seen.get(`${runId}/event/6`), undefined, 'nothing was queued while it was disabled');
    } finally {
      await d.stop();
      await hook.server.close();
      await webhooks.delete(TENANT, created.subscription.id);
    }
  });

  test('hosts outside WEBHOOK_ALLOWED_HOSTS are never called; an unanswering receiver times out and is retried', async () => {
    const hook = await receiver(() => 'whsec_AAAA', () => 200);
    const blocked = await webhooks.create({ tenant: TENANT, url: hook.url, events: ['workflow.run.started'], createdBy: 'admin' });
    const hang = await startLoopbackHttp({ '/hang': () => undefined });
    const slow = await webhooks.create({ tenant: TENANT, url: `${hang.url}/hang`, events: ['workflow.run.started'], createdBy: 'admin' });
    const d = dispatcher({ pollMs: 50, timeoutMs: 200, maxAttempts: 2, allowedHosts: [hang.host] });
    try {
      await activities.recordRunEvents(runBatches('guarded-1')[0]!);
      const [refused] = await waitFor('refused', async () => {
        const rows = await webhooks.deliveries(TENANT, blocked.subscription.id, { status: 'dead', limit: 10 });
        return rows.length > 0 ? rows : undefined;
      });
      assert.match(refused!.lastError ?? '', /not in WEBHOOK_ALLOWED_HOSTS/);
      assert.equal(hook.seen.size, 0);
      const [timedOut] = await waitFor('timed out', async () => {
        const rows = await webhooks.deliveries(TENANT, slow.subscription.id, { status: 'dead', limit: 10 });
        return rows.length > 0 ? rows : undefined;
      });
      assert.equal(timedOut!.attempts, 2);
      assert.match(timedOut!.lastError ?? '', /no answer within 200 ms/);
      assert.equal(hang.requests.length, 2);
    } finally {
      await d.stop();
      await hook.server.close();
      await hang.close();
      await webhooks.delete(TENANT, blocked.subscription.id);
      await webhooks.delete(TENANT, slow.subscription.id);
    }
  });
  test('DNS rebinding: a listed receiver name that resolves to a private address is never called unless that address is listed', async () => {
    let secret = '';
    const hook = await receiver(() => secret, () => 200);
    const port = new URL(hook.server.url).port;
    const rebound = await webhooks.create({ tenant: TENANT, url: `http://hooks.partner.example:${port}/hook`, events: ['workflow.run.started'], createdBy: 'admin' });
    secret = rebound.secret;
    // The "DNS" answers loopback for the partner's name, as a rebinding attacker's would.
    const resolver = async (hostname: string) => {
      if (hostname !== 'hooks.partner.example') throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return [{ address: '127.0.0.1', family: 4 }];
    };
    let d = dispatcher({ pollMs: 50, maxAttempts: 3, allowedHosts: ['hooks.partner.example'], resolver });
    try {
      await activities.recordRunEvents(runBatches('rebound-1')[0]!);
      const [refused] = await waitFor('refused', async () => {
        const rows = await webhooks.deliveries(TENANT, rebound.subscription.id, { status: 'dead', limit: 10 });
        return rows.length > 0 ? rows : undefined;
      });
      assert.match(refused!.lastError ?? '', /hooks\.partner\.example.*resolves to 127\.0\.0\.1/);
      assert.equal(refused!.attempts, 1, 'a refusal is final, not retried');
      assert.equal(hook.seen.size, 0, 'the loopback receiver saw nothing');
      await d.stop();
      // Listing the address itself lets the same name through.
      d = dispatcher({ pollMs: 50, maxAttempts: 3, allowedHosts: ['hooks.partner.example', `127.0.0.1:${port}`], resolver });
      await activities.recordRunEvents(runBatches('rebound-2')[0]!);
      await waitFor('delivered', async () => (hook.acknowledged.length > 0 ? true : undefined));
      assert.equal(hook.badSignatures.length, 0);
    } finally {
      await d.stop();
      await hook.server.close();
      await webhooks.delete(TENANT, rebound.subscription.id);
    }
  });
});
