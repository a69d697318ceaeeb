import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { z } from 'zod';
import { catalogDefaults, createActivityCatalog } from '../../activities/catalog.ts';
import { HttpClient } from '../../activities/integrations/http-client.ts';
import { createSkillActivities } from '../../activities/skills/activities.ts';
import { delaySkill } from '../../activities/skills/delay.ts';
import { createNotifyWebhookSkill, SIGNATURE_HEADER, signBody } from '../../activities/skills/notify-webhook.ts';
import { createSkillRegistry } from '../../activities/skills/registry.ts';
import { defineSkill, type SkillContext } from '../../activities/skills/skill.ts';
import { transformSkill } from '../../activities/skills/transform.ts';
import type { SkillCallMeta } from '../../activities/skills/types.ts';
import { createLogger } from '../../common/logger.ts';
import { renderSkillDocs, SKILL_DOCS_FILE } from '../../scripts/write-skill-docs.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';

const logger = createLogger('test', 'silent');
const meta: SkillCallMeta = {
  stepId: 'step',
  definition: 'unit',
  version: '1.0.0',
  lane: 'prod-critical',
  tenant: 'acme',
  correlationId: 'corr-9',
  idempotencyKey: 'run-9/steps/0',
};
const ctx = (over: Partial<SkillContext> = {}): SkillContext => ({
  meta,
  logger,
  signal: new AbortController().signal,
  attempt: 1,
  heartbeat: () => {},
  ...over,
});

describe('skills registry', () => {
  const skills = createSkillRegistry({ HTTP_FETCH_ALLOWED_HOSTS: [] });

  test('the built-ins: echo, http-fetch, transform, delay, notify-webhook, code_inline, code_session', () => {
    assert.deepEqual(skills.map((s) => s.name), ['echo', 'http-fetch', 'transform', 'delay', 'notify-webhook', 'code_inline', 'code_session']);
  });

  test('every skill declares description, schemas, side effects and defaults', () => {
    for (const skill of skills) {
      assert.ok(skill.description.length > 20, skill.name);
      assert.ok(skill.input instanceof z.ZodType && skill.output instanceof z.ZodType, skill.name);
      assert.equal(typeof skill.sideEffects, 'boolean', skill.name);
      assert.ok(skill.defaults?.timeoutSeconds && skill.defaults.retry?.maxAttempts, `${skill.name} declares defaults`);
    }
  });

  test('catalogDefaults keys defaults by <family>:<name>', () => {
    const defaults = catalogDefaults(createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] } as never));
    assert.deepEqual(defaults['skills:http-fetch'], { timeoutSeconds: 30, retry: { maxAttempts: 5, initialIntervalSeconds: 1, backoffCoefficient: 2, maxIntervalSeconds: 60 } });
    assert.equal(defaults['skills:delay']?.timeoutSeconds, 3660);
    assert.ok(defaults['integrations:http.request']);
  });
});

describe('docs/skills.md', () => {
  test('is generated from the registry (`npm run docs:skills` after changing a skill)', () => {
    assert.equal(readFileSync(SKILL_DOCS_FILE, 'utf8'), renderSkillDocs());
  });
  test('documents every skill and "one file plus one line"', () => {
    const docs = renderSkillDocs();
    for (const name of ['echo', 'http-fetch', 'transform', 'delay', 'notify-webhook', 'code_inline', 'code_session', 'prompt_inline', 'conversation', 'http.request']) assert.match(docs, new RegExp(`### \`${name.replace('.', '\\.')}\``));
    assert.match(docs, /Adding a skill: one file plus one line/);
  });
});

describe('transform', () => {
  test('evaluates an expression over data, with the language\'s functions', async () => {
    assert.deepEqual(await transformSkill.handler({ expression: 'sum(prices) * (1 + vat)', data: { prices: [10, 20], vat: 0.5 } }, ctx()), { value: 45 });
    assert.deepEqual(await transformSkill.handler({ expression: 'items|length', data: { items: [1, 2, 3] } }, ctx()), { value: 3 });
    assert.deepEqual(await transformSkill.handler({ expression: 'input.user.name|upper', data: { user: { name: 'ada' } } }, ctx()), { value: 'ADA' });
    assert.deepEqual(await transformSkill.handler({ expression: 'missing', data: { missing: null } }, ctx()), { value: null });
  });
  test('a bad expression or unknown name fails without retry', async () => {
    for (const expression of ['1 +', 'nope + 1']) {
      await assert.rejects(transformSkill.handler({ expression, data: {} }, ctx()), (e: unknown) => e instanceof ApplicationFailure && e.nonRetryable === true && e.type === 'InvalidExpression', expression);
    }
  });
});

describe('delay', () => {
  test('waits, heartbeating', async () => {
    const beats: unknown[] = [];
    const started = Date.now();
    const out = await delaySkill.handler({ seconds: 1.2 }, ctx({ heartbeat: (d) => beats.push(d) }));
    assert.ok(Date.now() - started >= 1200);
    assert.ok(out.waited_seconds >= 1.2);
    assert.equal(beats.length, 2);
  });
  test('stops when cancelled', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await assert.rejects(delaySkill.handler({ seconds: 30 }, ctx({ signal: controller.signal })));
    assert.ok(Date.now() - started < 5000);
  });
});

describe('notify-webhook and the activity wrapper', () => {
  let receiver: LoopbackHttp;
  let http: HttpClient;
  const SECRET = 'whk-unit-secret-4f1c2a';
  before(async () => {
    receiver = await startLoopbackHttp({
      '/hook': (_req, res) => json(res, 202, { accepted: true }),
      '/echo-back': (req, res) => json(res, 400, { error: `bad signature ${String(req.headers[SIGNATURE_HEADER])} key ${SECRET}` }),
    });
    http = new HttpClient({ allowedHosts: [receiver.host] });
    process.env.SECRET_UNIT_HOOK_KEY = SECRET;
  });
  after(async () => {
    delete process.env.SECRET_UNIT_HOOK_KEY;
    await http.close();
    await receiver.close();
  });

  test('POSTs the message as JSON with the idempotency key and an HMAC signature from a secret reference', async () => {
    const activities = createSkillActivities([createNotifyWebhookSkill(http)], logger, { secrets: { env: process.env } });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const out = await env.run(activities['notify-webhook']!, {
      input: { url: `${receiver.url}/hook`, message: { text: 'deploy done' }, signing_secret: { secret: 'UNIT_HOOK_KEY' } },
      meta,
    });
    assert.deepEqual(out, { status: 202, delivered: true });
    const request = receiver.requests.at(-1)!;
    assert.equal(request.method, 'POST');
    assert.equal(request.body, '{"text":"deploy done"}');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['idempotency-key'], meta.idempotencyKey);
    assert.equal(request.headers[SIGNATURE_HEADER], signBody('{"text":"deploy done"}', SECRET));
  });

  test('a resolved secret is redacted from errors that echo it', async () => {
    const activities = createSkillActivities([createNotifyWebhookSkill(http)], logger, { secrets: { env: process.env } });
    const env = new MockActivityEnvironment({ attempt: 1 });
    const error = await env
      .run(activities['notify-webhook']!, { input: { url: `${receiver.url}/echo-back`, message: {}, signing_secret: { secret: 'UNIT_HOOK_KEY' } }, meta })
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ApplicationFailure);
    assert.equal(error.type, 'HttpBadRequest');
    assert.equal(error.nonRetryable, true);
    assert.doesNotMatch(error.message, new RegExp(SECRET));
    assert.match(error.message, /\[redacted\]/);
    assert.deepEqual(error.details, [{ status: 400, attempt: 1 }]);
  });

  test('a skill output holding a resolved secret is redacted', async () => {
    const leaky = defineSkill({
      name: 'leaky',
      description: 'returns its input',
      input: z.object({ token: z.string() }),
      output: z.object({ token: z.string() }),
      sideEffects: false,
      async handler(input) {
        return { token: `got ${input.token}` };
      },
    });
    const activities = createSkillActivities([leaky], logger, { secrets: { env: { SECRET_LEAK: 'top-secret-value' } } });
    const out = await new MockActivityEnvironment().run(activities.leaky!, { input: { token: { secret: 'LEAK' } }, meta });
    assert.deepEqual(out, { token: 'got [redacted]' });
  });

  test('a missing secret fails the step without retry', async () => {
    const activities = createSkillActivities([createNotifyWebhookSkill(http)], logger, { secrets: { env: {} } });
    await assert.rejects(
      new MockActivityEnvironment().run(activities['notify-webhook']!, { input: { url: `${receiver.url}/hook`, message: {}, signing_secret: { secret: 'ABSENT' } }, meta }),
      (e: unknown) => e instanceof ApplicationFailure && e.type === 'SecretNotFound' && e.nonRetryable === true,
    );
  });
});
