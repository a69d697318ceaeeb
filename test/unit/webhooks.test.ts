import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretBox } from '../../api/webhooks/secret-box.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { eventPatternProblem, matchesEventPattern, subscriptionWants } from '../../activities/platform/event-patterns.ts';
import { buildOpenApiDocument } from '../../api/openapi.ts';
import { createWebhookSchema, updateWebhookSchema } from '../../api/schemas.ts';
import { parseRetryAfter, retryDelayMs } from '../../api/webhooks/backoff.ts';
import { signedDelivery, toCloudEvent } from '../../api/webhooks/cloud-event.ts';
import { webhookAllowList } from '../../api/webhooks/allow-list.ts';
import { newWebhookSecret } from '../../api/webhooks/store.ts';
import { loadConfig } from '../../common/config.ts';
import type { LifecycleEvent } from '../../workflows/types.ts';

const event: LifecycleEvent = {
  id: 'orders-7/event/3',
  type: 'workflow.step.failed',
  runId: 'orders-7',
  seq: 3,
  tenant: 'acme',
  definition: 'orders',
  version: '1.2',
  correlationId: 'corr-1',
  causationId: 'evt-9',
  time: '2026-11-21T07:00:00.000Z',
  data: { stepId: 'charge', stepPath: 'charge', stepType: 'skill', status: 'failed', error: { message: 'declined', type: 'CardDeclined' } },
};

describe('event patterns', () => {
  test('exact types, prefix patterns and * match as documented', () => {
    assert.ok(matchesEventPattern('workflow.step.failed', 'workflow.step.failed'));
    assert.ok(!matchesEventPattern('workflow.step.failed', 'workflow.step.completed'));
    assert.ok(matchesEventPattern('workflow.step.*', 'workflow.step.completed'));
    assert.ok(!matchesEventPattern('workflow.step.*', 'workflow.run.started'));
    assert.ok(matchesEventPattern('workflow.*', 'workflow.approval.decided'));
    assert.ok(matchesEventPattern('*', 'workflow.run.failed'));
    // A prefix matches whole segments only.
    assert.ok(!matchesEventPattern('workflow.st.*', 'workflow.step.failed'));
  });

  test('patterns that match no lifecycle event type are refused', () => {
    for (const ok of ['workflow.*', 'workflow.step.*', 'workflow.run.failed', '*', 'workflow.approval.*']) assert.equal(eventPatternProblem(ok), undefined, ok);
    assert.match(eventPatternProblem('workflow.stop.*') ?? '', /matches no lifecycle event type/);
    assert.match(eventPatternProblem('workflow.run.started.*') ?? '', /matches no lifecycle event type/);
    assert.match(eventPatternProblem('order.created') ?? '', /matches no lifecycle event type/);
    assert.match(eventPatternProblem('workflow.**') ?? '', /not an event type or a pattern/);
    assert.match(eventPatternProblem('workflow.*.failed') ?? '', /not an event type or a pattern/);
  });

  test('a subscription wants events of its tenant, its patterns and its definitions, while enabled', () => {
    const base = { tenant: 'acme', events: ['workflow.step.*'], enabled: true };
    assert.ok(subscriptionWants(base, event));
    assert.ok(!subscriptionWants({ ...base, tenant: 'globex' }, event));
    assert.ok(!subscriptionWants({ ...base, enabled: false }, event));
    assert.ok(!subscriptionWants({ ...base, events: ['workflow.run.*'] }, event));
    assert.ok(subscriptionWants({ ...base, definitions: ['orders', 'refunds'] }, event));
    assert.ok(!subscriptionWants({ ...base, definitions: ['refunds'] }, event));
    assert.ok(subscriptionWants({ ...base, definitions: null }, event));
  });
});

describe('retry backoff', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };

  test('doubles per failed attempt, with jitter between half and the whole nominal delay', () => {
    assert.equal(retryDelayMs(1, policy, () => 0), 500);
    assert.equal(retryDelayMs(1, policy, () => 1), 1000);
    assert.equal(retryDelayMs(2, policy, () => 1), 2000);
    assert.equal(retryDelayMs(4, policy, () => 1), 8000);
    assert.equal(retryDelayMs(4, policy, () => 0.5), 6000);
    for (let i = 0; i < 200; i += 1) {
      const d = retryDelayMs(3, policy);
      assert.ok(d >= 2000 && d <= 4000, String(d));
    }
  });

  test('is capped at the maximum, even for huge attempt counts and long Retry-After', () => {
    assert.equal(retryDelayMs(30, policy, () => 1), 60_000);
    assert.equal(retryDelayMs(10_000, policy, () => 1), 60_000);
    assert.ok(retryDelayMs(10_000, policy, () => 0) >= 30_000);
    assert.equal(retryDelayMs(1, policy, () => 0, 3_600_000), 60_000);
  });

  test('a Retry-After longer than the backoff wins', () => {
    assert.equal(retryDelayMs(1, policy, () => 0, 7000), 7000);
    assert.equal(retryDelayMs(1, policy, () => 1, 10), 1000);
  });

  test('Retry-After is read as seconds or an HTTP date', () => {
    assert.equal(parseRetryAfter('120'), 120_000);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
    const now = Date.parse('2026-11-21T07:00:00Z');
    assert.equal(parseRetryAfter('Sat, 21 Nov 2026 07:00:30 GMT', now), 30_000);
  });
});

describe('delivery body and signature', () => {
  test('the body is a CloudEvents 1.0 structured event with the platform extensions', () => {
    const ce = toCloudEvent(event);
    assert.deepEqual(ce, {
      specversion: '1.0',
      id: 'orders-7/event/3',
      type: 'workflow.step.failed',
      source: '/v1/runs/orders-7',
      subject: 'charge',
      time: '2026-11-21T07:00:00.000Z',
      datacontenttype: 'application/json',
      correlationid: 'corr-1',
      causationid: 'evt-9',
      tenant: 'acme',
      definition: 'orders',
      version: '1.2',
      seq: 3,
      data: event.data,
    });
    // Run events have the run as subject; extension names are lower-case alphanumerics (CloudEvents).
    const { causationId: _c, ...noCause } = event;
    const run = toCloudEvent({ ...noCause, type: 'workflow.run.started', data: {} });
    assert.equal(run.subject, 'orders-7');
    assert.ok(!('causationid' in run));
    for (const key of Object.keys(ce)) assert.match(key, /^[a-z0-9]+$/);
  });

  test('the Standard Webhooks signature verifies with the secret, and not with another', () => {
    const secret = newWebhookSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    const { body, headers } = signedDelivery(secret, event);
    assert.equal(headers['webhook-id'], event.id);
    assert.match(headers['webhook-timestamp'] ?? '', /^\d{10}$/);
    assert.match(headers['webhook-signature'] ?? '', /^v1,[A-Za-z0-9+/]+=*$/);
    assert.match(headers['content-type'] ?? '', /^application\/cloudevents\+json/);
    assert.deepEqual(new Webhook(secret).verify(body, headers), toCloudEvent(event));
    assert.throws(() => new Webhook(newWebhookSecret()).verify(body, headers), /No matching signature/);
    assert.throws(() => new Webhook(secret).verify(body.replace('declined', 'accepted'), headers), /No matching signature/);
    const old = signedDelivery(secret, event, new Date(Date.now() - 3_600_000));
    assert.throws(() => new Webhook(secret).verify(old.body, old.headers), /too old/);
  });

  test('during a rotation the delivery carries one signature per secret: a receiver holding either verifies', () => {
    const [fresh, previous, stranger] = [newWebhookSecret(), newWebhookSecret(), newWebhookSecret()];
    const { body, headers } = signedDelivery([fresh, previous], event);
    assert.match(headers['webhook-signature'] ?? '', /^v1,[A-Za-z0-9+/]+=* v1,[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(new Webhook(fresh).verify(body, headers), toCloudEvent(event));
    assert.deepEqual(new Webhook(previous).verify(body, headers), toCloudEvent(event));
    assert.throws(() => new Webhook(stranger).verify(body, headers), /No matching signature/);
  });
});

describe('SecretBox: webhook secrets at rest', () => {
  test('AES-256-GCM: opens what it sealed, for the same row only; another key is named as such', () => {
    const box = new SecretBox(randomBytes(32));
    const secret = newWebhookSecret();
    const sealed = box.seal(secret, 'wh_1');
    assert.ok(SecretBox.isSealed(sealed) && !sealed.includes(secret.slice(6, 20)));
    assert.notEqual(box.seal(secret, 'wh_1'), sealed, 'a fresh IV each time');
    assert.equal(box.open(sealed, 'wh_1'), secret);
    assert.throws(() => box.open(sealed, 'wh_2'), /auth/i, 'bound to its row');
    const tampered = sealed.slice(0, -3) + (sealed.endsWith('A') ? 'BBB' : 'AAA');
    assert.throws(() => box.open(tampered, 'wh_1'));
    assert.throws(() => new SecretBox(randomBytes(32)).open(sealed, 'wh_1'), /sealed with another key .*WEBHOOK_SECRET_KEY/);
    assert.throws(() => new SecretBox(randomBytes(16)), /32 bytes/);
  });

  test('the key: WEBHOOK_SECRET_KEY (base64 or hex), else a key file created once in the data folder (0600)', () => {
    const key = randomBytes(32);
    const sealed = new SecretBox(key).seal('s', 'id');
    assert.equal(SecretBox.fromConfig({ WEBHOOK_SECRET_KEY: key.toString('base64'), DATA_DIR: '/nonexistent' }).open(sealed, 'id'), 's');
    assert.equal(SecretBox.fromConfig({ WEBHOOK_SECRET_KEY: key.toString('hex'), DATA_DIR: '/nonexistent' }).open(sealed, 'id'), 's');
    assert.throws(() => SecretBox.fromConfig({ WEBHOOK_SECRET_KEY: 'short', DATA_DIR: '/nonexistent' }), /WEBHOOK_SECRET_KEY: a webhook secret key is 32 bytes/);
    const dir = mkdtempSync(join(tmpdir(), 'secret-box-'));
    try {
      const first = SecretBox.fromConfig({ DATA_DIR: dir });
      const file = join(dir, 'webhook-secret.key');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const again = SecretBox.fromConfig({ DATA_DIR: dir });
      assert.equal(again.keyId, first.keyId, 'the same key on the next start');
      assert.equal(again.open(first.seal('x', 'wh'), 'wh'), 'x');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('webhook request schemas', () => {
  test('events default to workflow.*, and every bad field is reported with its JSON path', () => {
    assert.deepEqual(createWebhookSchema.parse({ url: 'https://hooks.example.com/x' }).events, ['workflow.*']);
    const bad = createWebhookSchema.safeParse({ url: 'ftp://x', events: ['workflow.run.started', 'workflow.nope.*'], definitions: [], extra: 1 });
    assert.ok(!bad.success);
    const paths = bad.error.issues.map((i) => i.path.join('/')).sort();
    assert.deepEqual(paths, ['', 'definitions', 'events/1', 'url']);
    const creds = createWebhookSchema.safeParse({ url: 'https://user:pw@hooks.example.com/' });
    assert.ok(!creds.success && /credentials/.test(creds.error.issues[0]!.message));
    assert.ok(!updateWebhookSchema.safeParse({}).success);
    assert.ok(updateWebhookSchema.safeParse({ definitions: null, enabled: true }).success);
  });

  test('configuration has the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.WEBHOOK_MAX_ATTEMPTS, 8);
    assert.equal(config.WEBHOOK_RETRY_BASE_MS, 5000);
    assert.equal(config.WEBHOOK_RETRY_MAX_MS, 3_600_000);
    assert.equal(config.WEBHOOK_TIMEOUT_MS, 10_000);
    assert.equal(config.WEBHOOK_POLL_MS, 1000);
    assert.deepEqual(config.WEBHOOK_ALLOWED_HOSTS, []);
    // Closed by default; loopback only where the embedded platform (`up`) allows it.
    assert.deepEqual(webhookAllowList(config), []);
    assert.deepEqual(webhookAllowList(loadConfig({ WEBHOOK_ALLOW_LOOPBACK: 'true', WEBHOOK_ALLOWED_HOSTS: 'hooks.example.com' })), [
      'hooks.example.com',
      'localhost',
      '127.0.0.1',
      '[::1]',
    ]);
    assert.deepEqual(loadConfig({ WEBHOOK_ALLOWED_HOSTS: 'hooks.example.com, 127.0.0.1:9000' }).WEBHOOK_ALLOWED_HOSTS, ['hooks.example.com', '127.0.0.1:9000']);
  });
});

describe('OpenAPI', () => {
  test('documents every webhook and run-events route with bearer auth', () => {
    const paths = buildOpenApiDocument().paths as Record<string, Record<string, { security?: unknown[]; parameters?: Array<{ name: string; in: string }> }>>;
    const expected: Record<string, string[]> = {
      '/v1/runs/{runId}/events': ['get'],
      '/v1/webhooks': ['get', 'post'],
      '/v1/webhooks/{webhookId}': ['get', 'patch', 'delete'],
      '/v1/webhooks/{webhookId}/deliveries': ['get'],
      '/v1/webhooks/{webhookId}/deliveries/{deliveryId}/retry': ['post'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      for (const method of methods) {
        const op = paths[path]?.[method];
        assert.ok(op, `${method.toUpperCase()} ${path}`);
        assert.ok(op.security?.length, `${method.toUpperCase()} ${path} needs bearer`);
        const params = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
        for (const name of path.match(/\{(\w+)\}/g) ?? []) assert.ok(params.includes(name.slice(1, -1)), `${path} declares ${name}`);
      }
    }
  });
});
