import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { seedCatalog } from '../support/seed-catalog.ts';

/**
 * Lifecycle events end to end: real runs on the dev server emit them through the platform
 * activity, the API's dispatcher delivers them to a loopback receiver subscribed through the API.
 * The receiver refuses the first delivery of every event (500) and verifies every signature; it
 * must still acknowledge each event exactly once, and GET /v1/runs/{id}/events lists the same
 * events in seq order.
 */

let platform: TestPlatform;
let receiver: LoopbackHttp;
let secret = '';
/** Attempts per event id, and the bodies of the acknowledged ones (in arrival order). */
const attempts = new Map<string, number>();
const acknowledged: Array<{ id: string; body: any }> = [];
const badSignatures: string[] = [];

before(async () => {
  receiver = await startLoopbackHttp({
    '/events': (req, res, body) => {
      const id = String(req.headers['webhook-id']);
      try {
        new Webhook(secret).verify(body, req.headers as Record<string, string>);
      } catch (error) {
        badSignatures.push(`${id}: ${(error as Error).message}`);
        json(res, 400, { error: 'bad signature' });
        return;
      }
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      if (attempt === 1) {
        json(res, 500, { error: 'try again' });
        return;
      }
      acknowledged.push({ id, body: JSON.parse(body) });
      res.writeHead(204).end();
    },
  });
  platform = await startTestPlatform({
    database: 'postgres',
    catalog: seedCatalog().catalog,
    env: { WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200', WEBHOOK_POLL_MS: '200', WEBHOOK_ALLOWED_HOSTS: receiver.host },
  });
});

after(async () => {
  await platform?.stop();
  await receiver?.close();
});

async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startRun(definition: Record<string, unknown>): Promise<string> {
  const registered = await platform.api('/v1/definitions', { method: 'POST', json: { version: '1.0.0', ...definition } });
  assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
  const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: definition.name, input: { amount: 120 } } });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  return started.body.runId as string;
}

/** Every event of the run through the API, paging 3 at a time. */
async function listEvents(runId: string): Promise<any[]> {
  const all: any[] = [];
  let after: number | undefined;
  for (;;) {
    const page = await platform.api(`/v1/runs/${encodeURIComponent(runId)}/events?limit=3${after === undefined ? '' : `&after=${after}`}`);
    assert.equal(page.status, 200, JSON.stringify(page.body));
    all.push(...page.body.events);
    if (page.body.next === undefined) return all;
    after = page.body.next;
  }
}

describe('lifecycle events', () => {
  test('a receiver failing every first delivery gets each lifecycle event of real runs exactly once, signed, as the API lists them', async () => {
    const subscribed = await platform.api('/v1/webhooks', { method: 'POST', key: KEYS.admin, json: { url: `${receiver.url}/events`, description: 'e2e' } });
    assert.equal(subscribed.status, 201, JSON.stringify(subscribed.body));
    secret = subscribed.body.secret;

    const okRun = await startRun({
      name: 'lifecycle-ok',
      steps: [
        { id: 'prepare', type: 'skill', skill: 'record', inputs: { amount: '${input.amount}' } },
        { id: 'broken', type: 'skill', skill: 'boom', inputs: { nonRetryable: true } },
        { id: 'sign-off', type: 'approval', approvers: { groups: ['finance'] }, summary: 'Pay ${input.amount} EUR' },
      ],
      error_handling: { per_step: { broken: { strategy: 'custom', handler: [{ id: 'explain', type: 'skill', skill: 'record', inputs: { why: '${error.message}' } }] } } },
    });
    const failedRun = await startRun({ name: 'lifecycle-fail', steps: [{ id: 'doomed', type: 'skill', skill: 'boom', inputs: { nonRetryable: true } }] });

    await eventually('the pending approval', async () => {
      const view = (await platform.api(`/v1/runs/${okRun}`)).body;
      return (view.approvals ?? []).some((a: any) => a.status === 'pending') ? true : undefined;
    });
    const decided = await platform.api(`/v1/runs/${okRun}/approvals/sign-off`, { method: 'POST', key: KEYS.bob, json: { decision: 'approve' } });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    assert.equal((await platform.waitForRun(okRun)).status, 'completed');
    assert.equal((await platform.waitForRun(failedRun)).status, 'failed');

    // The run writes its last events before it closes; the API lists them in seq order.
    const okEvents = await listEvents(okRun);
    const failedEvents = await listEvents(failedRun);
    for (const events of [okEvents, failedEvents]) {
      assert.deepEqual(events.map((e) => e.seq), events.map((_e, i) => i + 1));
      for (const e of events) assert.equal(e.id, `${e.runId}/event/${e.seq}`);
    }
    const types = okEvents.map((e) => e.type);
    assert.equal(types[0], 'workflow.run.started');
    assert.equal(types.at(-1), 'workflow.run.completed');
    for (const type of ['workflow.step.completed', 'workflow.step.failed', 'workflow.approval.requested', 'workflow.approval.decided']) assert.ok(types.includes(type), `${type} in ${types.join(', ')}`);
    assert.ok(types.indexOf('workflow.approval.requested') < types.indexOf('workflow.approval.decided'));
    const stepEvent = (type: string, stepId: string) => okEvents.find((e) => e.type === type && e.data.stepId === stepId);
    assert.ok(stepEvent('workflow.step.completed', 'prepare'), 'prepare completed');
    assert.equal(stepEvent('workflow.step.failed', 'broken')?.data.error.message, 'boom #1');
    assert.equal(stepEvent('workflow.approval.decided', 'sign-off')?.data.decision, 'approve');
    assert.deepEqual(stepEvent('workflow.approval.decided', 'sign-off')?.data.deciders, ['bob']);
    assert.deepEqual(failedEvents.map((e) => e.type), ['workflow.run.started', 'workflow.step.failed', 'workflow.run.failed']);

    // Every event reaches the receiver, once acknowledged, after one refused attempt.
    const expected = [...okEvents, ...failedEvents];
    await eventually(`${expected.length} acknowledged deliveries`, async () => (acknowledged.length >= expected.length ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(badSignatures, []);
    assert.deepEqual(acknowledged.map((a) => a.id).sort(), expected.map((e) => e.id).sort());
    for (const e of expected) assert.equal(attempts.get(e.id), 2, e.id);
    const view = (await platform.api(`/v1/runs/${okRun}`)).body;
    for (const e of expected) {
      const body = acknowledged.find((a) => a.id === e.id)!.body;
      assert.deepEqual(
        { id: body.id, type: body.type, source: body.source, seq: body.seq, time: body.time, definition: body.definition, version: body.version, correlationid: body.correlationid, data: body.data },
        { id: e.id, type: e.type, source: `/v1/runs/${e.runId}`, seq: e.seq, time: e.time, definition: e.definition, version: e.version, correlationid: e.correlationId, data: e.data },
      );
      assert.equal(body.specversion, '1.0');
    }
    assert.equal(okEvents[0].correlationId, view.correlationId);

    const deliveries = await platform.api(`/v1/webhooks/${subscribed.body.id}/deliveries?status=delivered&limit=200`, { key: KEYS.admin });
    assert.equal(deliveries.body.deliveries.length, expected.length);
    assert.ok(deliveries.body.deliveries.every((d: any) => d.attempts === 2 && d.lastStatus === 204));
    process.stdout.write(`# ${okEvents.length} + ${failedEvents.length} lifecycle events, each acknowledged once after a refused first attempt\n`);
  });
});
