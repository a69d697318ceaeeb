import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { AuditStore, createPlatformActivities } from '../../activities/platform/audit.ts';
import { createPool, type Pool } from '../../common/db.ts';
import type { LifecycleEvent } from '../../workflows/types.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * The webhook REST API on a whole platform (real API server, its dispatcher, real PostgreSQL):
 * subscriptions, validation, tenant scoping, the dead-letter list and re-queueing, and the
 * run-events route. Events are written through the platform activity, as a run's would be.
 */

const ADMIN_B = 'test-admin-tenant-b-key-0';
const tenant = `hooks-${randomBytes(3).toString('hex')}`;

let platform: TestPlatform;
let receiver: LoopbackHttp;
let answer = 500;
let pool: Pool;
let record: ReturnType<typeof createPlatformActivities>['recordRunEvents'];

before(async () => {
  receiver = await startLoopbackHttp({ '/hook': (_req, res) => json(res, answer, {}) });
  platform = await startTestPlatform({
    database: 'postgres',
    env: {
      API_KEYS: JSON.stringify([
        { key: KEYS.admin, principal: 'admin', roles: ['admin'], tenant },
        { key: KEYS.submitter, principal: 'sam', roles: ['submit'], tenant },
        { key: ADMIN_B, principal: 'bea', roles: ['admin'], tenant: `${tenant}-b` },
      ]),
      WEBHOOK_MAX_ATTEMPTS: '2',
      WEBHOOK_RETRY_BASE_MS: '20',
      WEBHOOK_RETRY_MAX_MS: '50',
      WEBHOOK_POLL_MS: '100',
      WEBHOOK_ALLOWED_HOSTS: receiver.host,
    },
  });
  pool = createPool(platform.config.DATABASE_URL!, 2);
  record = createPlatformActivities(new AuditStore(pool)).recordRunEvents;
});

after(async () => {
  await pool?.end();
  await platform?.stop();
  await receiver?.close();
});

const admin = (path: string, init: RequestInit & { json?: unknown } = {}) => platform.api(path, { key: KEYS.admin, ...init });

function event(runId: string, seq: number): LifecycleEvent {
  return {
    id: `${runId}/event/${seq}`,
    type: seq === 1 ? 'workflow.run.started' : 'workflow.run.completed',
    runId,
    seq,
    tenant,
    definition: 'orders',
    version: '1.0',
    correlationId: 'c-1',
    time: new Date().toISOString(),
    data: seq === 1 ? {} : { status: 'completed' },
  };
}

async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('webhook subscriptions API', () => {
  test('subscribing needs the admin role; the secret is shown once; bad input is a 400 with JSON pointers', async () => {
    const url = `${receiver.url}/hook`;
    assert.equal((await platform.api('/v1/webhooks', { method: 'POST', json: { url } })).status, 403);
    assert.equal((await platform.api('/v1/webhooks')).status, 403);

    const bad = await admin('/v1/webhooks', { method: 'POST', json: { url: 'ftp://x/y', events: ['workflow.run.started', 'workflow.nope.*'], extra: true } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.errors.map((e: { path: string }) => e.path).sort(), ['', '/events/1', '/url']);
    assert.match(bad.body.errors.find((e: { path: string }) => e.path === '/events/1').message, /matches no lifecycle event type/);
    const foreign = await admin('/v1/webhooks', { method: 'POST', json: { url: 'https://hooks.example.com/x' } });
    assert.equal(foreign.status, 400);
    assert.deepEqual(foreign.body.errors, [{ path: '/url', message: 'host not allowed' }]);

    const created = await admin('/v1/webhooks', { method: 'POST', json: { url, description: 'ops' } });
    assert.equal(created.status, 201);
    assert.match(created.body.secret, /^whsec_/);
    assert.deepEqual(created.body.events, ['workflow.*']);
    assert.equal(created.headers.get('location'), `/v1/webhooks/${created.body.id}`);
    const { secret: _s, ...shown } = created.body;
    assert.deepEqual((await admin(`/v1/webhooks/${created.body.id}`)).body, shown);
    const list = await admin('/v1/webhooks');
    assert.deepEqual(list.body.webhooks, [shown]);
    assert.doesNotMatch(JSON.stringify(list.body), /whsec_/);

    // Another tenant's admin sees nothing of it.
    assert.equal((await platform.api(`/v1/webhooks/${created.body.id}`, { key: ADMIN_B })).status, 404);
    assert.deepEqual((await platform.api('/v1/webhooks', { key: ADMIN_B })).body.webhooks, []);
    assert.equal((await platform.api(`/v1/webhooks/${created.body.id}`, { key: ADMIN_B, method: 'DELETE' })).status, 404);

    const patched = await admin(`/v1/webhooks/${created.body.id}`, { method: 'PATCH', json: { events: ['workflow.step.*'], definitions: ['orders'], description: null } });
    assert.equal(patched.status, 200);
    assert.deepEqual([patched.body.events, patched.body.definitions, patched.body.description], [['workflow.step.*'], ['orders'], undefined]);
    const badPatch = await admin(`/v1/webhooks/${created.body.id}`, { method: 'PATCH', json: { events: [] } });
    assert.deepEqual(badPatch.body.errors.map((e: { path: string }) => e.path), ['/events']);
    assert.equal((await admin(`/v1/webhooks/${created.body.id}`, { method: 'PATCH', json: {} })).status, 400);
    assert.equal((await admin('/v1/webhooks/wh_nope', { method: 'PATCH', json: { enabled: false } })).status, 404);

    assert.equal((await admin(`/v1/webhooks/${created.body.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await admin(`/v1/webhooks/${created.body.id}`)).status, 404);
  });

  test('dead letters are listed (paginated) and re-queued by retry; the redelivery verifies', async () => {
    answer = 500;
    const created = await admin('/v1/webhooks', { method: 'POST', json: { url: `${receiver.url}/hook`, events: ['workflow.run.*'] } });
    const id = created.body.id as string;
    const runId = `dead-${randomBytes(3).toString('hex')}`;
    await record({ events: [event(runId, 1), event(runId, 2)], audit: [] });

    const dead = await eventually('two dead letters', async () => {
      const page = await admin(`/v1/webhooks/${id}/deliveries?status=dead`);
      return page.body.deliveries.length === 2 ? page.body.deliveries : undefined;
    });
    assert.deepEqual(dead.map((d: any) => [d.eventId, d.eventType, d.runId, d.seq, d.attempts, d.lastStatus]), [
      [`${runId}/event/1`, 'workflow.run.started', runId, 1, 2, 500],
      [`${runId}/event/2`, 'workflow.run.completed', runId, 2, 2, 500],
    ]);
    const first = await admin(`/v1/webhooks/${id}/deliveries?status=dead&limit=1`);
    assert.equal(first.body.deliveries.length, 1);
    assert.equal(first.body.next, dead[0].id);
    const second = await admin(`/v1/webhooks/${id}/deliveries?status=dead&limit=1&after=${first.body.next}`);
    assert.deepEqual(second.body.deliveries.map((d: any) => d.id), [dead[1].id]);
    assert.deepEqual((await admin(`/v1/webhooks/${id}/deliveries?status=delivered`)).body.deliveries, []);
    const badQuery = await admin(`/v1/webhooks/${id}/deliveries?status=lost&limit=0`);
    assert.equal(badQuery.status, 400);
    assert.deepEqual(badQuery.body.errors.map((e: { path: string }) => e.path).sort(), ['limit', 'status']);

    answer = 200;
    const before = receiver.requests.length;
    const retried = await admin(`/v1/webhooks/${id}/deliveries/${dead[0].id}/retry`, { method: 'POST' });
    assert.equal(retried.status, 202);
    assert.deepEqual([retried.body.status, retried.body.attempts], ['pending', 0]);
    const delivered = await eventually('redelivery', async () => {
      const page = await admin(`/v1/webhooks/${id}/deliveries?status=delivered`);
      return page.body.deliveries.length === 1 ? page.body.deliveries[0] : undefined;
    });
    assert.deepEqual([delivered.eventId, delivered.attempts, delivered.lastStatus], [`${runId}/event/1`, 1, 200]);
    const sent = receiver.requests.slice(before);
    assert.equal(sent.length, 1);
    assert.equal((new Webhook(created.body.secret).verify(sent[0]!.body, sent[0]!.headers as Record<string, string>) as { id: string }).id, `${runId}/event/1`);

    assert.equal((await admin(`/v1/webhooks/${id}/deliveries/${dead[0].id}/retry`, { method: 'POST' })).status, 409);
    assert.equal((await admin(`/v1/webhooks/${id}/deliveries/999999/retry`, { method: 'POST' })).status, 404);
    assert.equal((await admin(`/v1/webhooks/${id}/deliveries/abc/retry`, { method: 'POST' })).status, 404);
    assert.equal((await platform.api(`/v1/webhooks/${id}/deliveries/${dead[1].id}/retry`, { key: ADMIN_B, method: 'POST' })).status, 404);
  });

  test('GET /v1/runs/{runId}/events: 404 for an unknown run, 400 for a bad query', async () => {
    const unknown = await platform.api('/v1/runs/no-such-run/events');
    assert.equal(unknown.status, 404);
    const bad = await platform.api('/v1/runs/no-such-run/events?after=-1&limit=5000');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.errors.map((e: { path: string }) => e.path).sort(), ['after', 'limit']);
  });
});

describe('webhook secrets: encrypted at rest, rotatable with an overlap', () => {
  const verifies = (secret: string, sent: { body: string; headers: Record<string, unknown> }) => {
    try {
      new Webhook(secret).verify(sent.body, sent.headers as Record<string, string>);
      return true;
    } catch {
      return false;
    }
  };
  /**
   * Records one event and answers the request the receiver got for it on the subscription whose URL
   * carries `?sub=<tag>` (an earlier describe's `workflow.run.*` subscription gets the event too).
   */
  const deliverOne = async (runId: string, tag: string) => {
    answer = 200;
    const before = receiver.requests.length;
    await record({ events: [event(runId, 1)], audit: [] });
    return eventually(`delivery of ${runId} to ${tag}`, async () =>
      receiver.requests.slice(before).find((r) => r.url.includes(`sub=${tag}`) && r.body.includes(runId)),
    );
  };

  test('the database holds no secret in plaintext; the stored value is AES-256-GCM sealed to its row', async () => {
    const created = await admin('/v1/webhooks', { method: 'POST', json: { url: `${receiver.url}/hook?sub=sealed`, events: ['workflow.run.started'] } });
    assert.equal(created.status, 201);
    const stored = (await pool.query<{ secret: string }>('SELECT secret FROM webhook_subscriptions WHERE id = $1', [created.body.id])).rows[0]!.secret;
    assert.match(stored, /^v1\.[\w-]{8}\.[\w-]+\.[\w-]+$/);
    assert.ok(!stored.includes(created.body.secret.slice(6)), 'not the secret');
    assert.ok(!Buffer.from(stored.split('.')[3]!, 'base64url').toString('latin1').includes(created.body.secret), 'not the secret, in any encoding');
    const sent = await deliverOne(`sealed-${randomBytes(3).toString('hex')}`, 'sealed');
    assert.ok(verifies(created.body.secret, sent), 'deliveries are still signed with it');
    assert.equal((await admin(`/v1/webhooks/${created.body.id}`, { method: 'DELETE' })).status, 204);
  });

  test('rotate-secret: during the overlap deliveries verify with the old and the new secret; after it (or with 0) only the new', async () => {
    const created = await admin('/v1/webhooks', { method: 'POST', json: { url: `${receiver.url}/hook?sub=rotate`, events: ['workflow.run.started'] } });
    const id = created.body.id as string;
    const old = created.body.secret as string;

    const rotated = await admin(`/v1/webhooks/${id}/rotate-secret`, { method: 'POST', json: { overlapSeconds: 3600 } });
    assert.equal(rotated.status, 200);
    assert.match(rotated.body.secret, /^whsec_/);
    assert.notEqual(rotated.body.secret, old);
    const expires = Date.parse(rotated.body.previousSecretExpiresAt);
    assert.ok(Math.abs(expires - (Date.now() + 3_600_000)) < 60_000, rotated.body.previousSecretExpiresAt);
    assert.ok(rotated.body.secretRotatedAt);
    const shown = await admin(`/v1/webhooks/${id}`);
    assert.equal(shown.body.previousSecretExpiresAt, rotated.body.previousSecretExpiresAt);
    assert.equal(shown.body.secret, undefined, 'the secret is shown only by create and rotate');

    const during = await deliverOne(`overlap-${randomBytes(3).toString('hex')}`, 'rotate');
    assert.equal(String(during.headers['webhook-signature']).split(' ').length, 2, 'two signatures');
    assert.ok(verifies(old, during), 'the old secret still verifies during the overlap');
    assert.ok(verifies(rotated.body.secret, during), 'the new secret verifies');

    // The overlap ends (as if its time had passed): only the new secret signs.
    await pool.query("UPDATE webhook_subscriptions SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1", [id]);
    const after = await deliverOne(`after-${randomBytes(3).toString('hex')}`, 'rotate');
    assert.equal(verifies(old, after), false, 'the old secret no longer verifies');
    assert.ok(verifies(rotated.body.secret, after));
    assert.equal((await admin(`/v1/webhooks/${id}`)).body.previousSecretExpiresAt, undefined);

    const immediate = await admin(`/v1/webhooks/${id}/rotate-secret`, { method: 'POST', json: { overlapSeconds: 0 } });
    assert.equal(immediate.status, 200);
    assert.equal(immediate.body.previousSecretExpiresAt, undefined);
    const now = await deliverOne(`immediate-${randomBytes(3).toString('hex')}`, 'rotate');
    assert.equal(verifies(rotated.body.secret, now), false);
    assert.ok(verifies(immediate.body.secret, now));

    // The default overlap is 24 h; bad bodies, other tenants and other roles are refused.
    const byDefault = await admin(`/v1/webhooks/${id}/rotate-secret`, { method: 'POST' });
    assert.equal(byDefault.status, 200);
    assert.ok(Math.abs(Date.parse(byDefault.body.previousSecretExpiresAt) - (Date.now() + 86_400_000)) < 60_000);
    const bad = await admin(`/v1/webhooks/${id}/rotate-secret`, { method: 'POST', json: { overlapSeconds: 8 * 86_400, extra: 1 } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.errors.map((e: { path: string }) => e.path).sort(), ['', '/overlapSeconds']);
    assert.equal((await platform.api(`/v1/webhooks/${id}/rotate-secret`, { key: ADMIN_B, method: 'POST' })).status, 404);
    assert.equal((await platform.api(`/v1/webhooks/${id}/rotate-secret`, { key: KEYS.submitter, method: 'POST' })).status, 403);
    assert.equal((await admin('/v1/webhooks/wh_nope/rotate-secret', { method: 'POST' })).status, 404);
    assert.equal((await admin(`/v1/webhooks/${id}`, { method: 'DELETE' })).status, 204);
  });

  test('rows stored before encryption (plaintext secrets) are sealed by the API at start and keep working', async () => {
    const created = await admin('/v1/webhooks', { method: 'POST', json: { url: `${receiver.url}/hook?sub=legacy`, events: ['workflow.run.started'] } });
    const id = created.body.id as string;
    // A row as the previous release wrote it: the secret itself in the column.
    const legacy = `whsec_${randomBytes(32).toString('base64')}`;
    await pool.query('UPDATE webhook_subscriptions SET secret = $2 WHERE id = $1', [id, legacy]);
    const { SecretBox } = await import('../../api/webhooks/secret-box.ts');
    const { WebhookStore } = await import('../../api/webhooks/store.ts');
    const store = new WebhookStore(pool, SecretBox.fromConfig(platform.config));
    assert.ok((await store.sealPlaintextSecrets()) >= 1);
    assert.equal(await store.sealPlaintextSecrets(), 0, 'idempotent');
    const stored = (await pool.query<{ secret: string }>('SELECT secret FROM webhook_subscriptions WHERE id = $1', [id])).rows[0]!.secret;
    assert.ok(SecretBox.isSealed(stored) && !stored.includes(legacy));
    const sent = await deliverOne(`legacy-${randomBytes(3).toString('hex')}`, 'legacy');
    assert.ok(verifies(legacy, sent), 'the receiver keeps its secret');
    assert.equal((await admin(`/v1/webhooks/${id}`, { method: 'DELETE' })).status, 204);
  });
});
