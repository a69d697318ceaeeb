import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Triggers and the definition lifecycle end to end: Temporal Schedules from `schedule` triggers
 * (a 2-second interval here), idempotent event-triggered runs with lineage, events delivered to
 * waiting runs by correlation id, deprecate / retire / activate, and diffs between versions.
 */
describe('triggers and lifecycle end to end', () => {
  let platform: TestPlatform;
  let client: Client;

  before(async () => {
    platform = await startTestPlatform({ database: 'postgres' });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    // Schedules outlive the test platform: delete what this file created.
    const tenant = `acme-${platform?.lanes[0]?.split('-').at(-1)}`;
    for await (const s of client.schedule.list()) {
      if (s.scheduleId.startsWith(`sched:${tenant}:`)) {
        await client.schedule.getHandle(s.scheduleId).delete().catch(() => undefined);
      }
    }
    await client?.connection.close();
    await platform?.stop();
  });

  const register = async (definition: unknown) => {
    const answer = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.ok(answer.status === 201 || answer.status === 200, JSON.stringify(answer.body));
    return answer.body;
  };

  async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  test('a schedule trigger becomes a Temporal Schedule that fires, shows next and recent runs, pauses, resumes, triggers and backfills', async () => {
    const v1 = await register({
      name: 'nightly-report',
      version: '1.0.0',
      triggers: [{ type: 'schedule', interval: 2, overlap: 'skip', input: { report: 'daily' } }],
      steps: [{ id: 'build', type: 'skill', skill: 'echo', inputs: { report: '${input.report}' } }],
    });
    assert.equal(v1.schedules.length, 1);
    const scheduleId = v1.schedules[0] as string;
    assert.match(scheduleId, /^sched:.*:nightly-report:0$/);

    const fired = await eventually('a scheduled run to complete', async () => {
      const view = (await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).body;
      return view.recentRuns?.find((r: any) => r.status === 'completed') ? view : undefined;
    });
    assert.deepEqual(fired.definition, { name: 'nightly-report', version: '1.0.0' });
    assert.deepEqual(fired.spec, { interval: 2 });
    assert.equal(fired.overlap, 'skip');
    assert.ok(fired.nextRuns.length > 0 && new Date(fired.nextRuns[0]).getTime() > Date.now() - 2000);
    // The scheduled run is an ordinary run of the tenant, named per scheduled time.
    const runId = fired.recentRuns.find((r: any) => r.status === 'completed').runId as string;
    assert.match(runId, /^nightly-report-scheduled-0-[0-9a-f]{8}-\d{4}-\d\d-\d\dT/);
    const run = (await platform.api(`/v1/runs/${encodeURIComponent(runId)}`)).body;
    assert.deepEqual([run.status, run.output, run.startedBy], ['completed', { report: 'daily' }, 'schedule']);
    assert.ok((await platform.api('/v1/schedules')).body.schedules.some((s: any) => s.scheduleId === scheduleId));

    const paused = await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}/pause`, { method: 'POST', json: { note: 'maintenance' } });
    assert.deepEqual([paused.status, paused.body.paused, paused.body.note], [200, true, 'maintenance']);
    // A trigger follows the schedule's overlap policy (skip): on a loaded machine the last scheduled
    // run may still be running, and the trigger would be skipped. recentRuns keeps the last 10, so
    // the triggered run is found by a new run id, not by a longer list.
    const idle = await eventually('the scheduled runs to finish', async () => {
      const view = (await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).body;
      return view.recentRuns.every((r: any) => r.status !== 'running') ? view : undefined;
    });
    const before = new Set(idle.recentRuns.map((r: any) => r.runId));
    // The scheduler learns that its last run closed a moment after visibility does; a trigger in
    // that moment is skipped by the overlap policy, so a trigger that started nothing is sent again.
    let triggered: any;
    for (let attempt = 0; attempt < 5 && !triggered; attempt++) {
      assert.equal((await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}/trigger`, { method: 'POST' })).status, 202);
      triggered = await eventually('the triggered run', async () => {
        const view = (await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).body;
        return view.recentRuns.some((r: any) => !before.has(r.runId)) ? view : undefined;
      }, 6_000).catch(() => undefined);
    }
    assert.ok(triggered, 'a triggered run starts');
    const now = Date.now();
    const backfill = await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}/backfill`, {
      method: 'POST',
      json: { start: new Date(now - 10_000).toISOString(), end: new Date(now - 5_000).toISOString(), overlap: 'allow_all' },
    });
    assert.equal(backfill.status, 202);
    const badBackfill = await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}/backfill`, { method: 'POST', json: { start: 'yesterday' } });
    assert.equal(badBackfill.status, 400);
    const resumed = await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}/resume`, { method: 'POST' });
    assert.equal(resumed.body.paused, false);

    // A new version updates the schedule; retiring every version deletes it.
    await register({
      name: 'nightly-report',
      version: '2.0.0',
      triggers: [{ type: 'schedule', cron: '0 9 * * *', timezone: 'Europe/Paris', catchup_window: 600 }],
      steps: [{ id: 'build', type: 'skill', skill: 'echo' }],
    });
    const updated = (await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).body;
    assert.deepEqual([updated.definition.version, updated.spec, updated.catchupWindowSeconds], ['2.0.0', { cron: '0 9 * * *', timezone: 'Europe/Paris' }, 600]);
    const deprecated = await platform.api('/v1/definitions/nightly-report/versions/2.0.0/deprecate', { method: 'POST' });
    assert.deepEqual([deprecated.status, deprecated.body.status], [200, 'deprecated']);
    assert.equal((await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).body.definition.version, '1.0.0', 'back to the newest active version');
    for (const version of ['1.0.0', '2.0.0']) {
      assert.equal((await platform.api(`/v1/definitions/nightly-report/versions/${version}/retire`, { method: 'POST' })).status, 200);
    }
    assert.equal((await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).status, 404);
    assert.equal((await platform.api('/v1/definitions/nightly-report/versions/1.0.0/activate', { method: 'POST' })).status, 409, 'retirement is final');
  });

  test('an event starts every matching definition once, with its lineage; a redelivery starts nothing new', async () => {
    await register({
      name: 'big-orders',
      version: '1.0.0',
      triggers: [{ type: 'event', event: 'order.created', filter: 'event.data.amount > 10' }],
      steps: [{ id: 'note', type: 'skill', skill: 'echo', inputs: { order: '${input.orderId}', from: '${signal.source}' } }],
    });
    await register({
      workflow: {
        name: 'all-orders',
        version: '1.0.0',
        trigger: { signal: 'order.created' },
        steps: [{ id: 'count', type: 'skill', skill: 'echo', inputs: { subject: '${signal.subject}' } }],
      },
    });
    const event = { id: 'evt-1', type: 'order.created', source: 'shop', subject: 'order/1', data: { orderId: 'o-1', amount: 20 } };
    const first = await platform.api('/v1/events', { method: 'POST', json: event });
    assert.equal(first.status, 201, JSON.stringify(first.body));
    assert.deepEqual(first.body.runs.map((r: any) => [r.definition, r.created]).sort(), [['all-orders', true], ['big-orders', true]]);
    const again = await platform.api('/v1/events', { method: 'POST', json: event });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.runs.map((r: any) => [r.runId, r.created]).sort(), first.body.runs.map((r: any) => [r.runId, false]).sort());

    const big = first.body.runs.find((r: any) => r.definition === 'big-orders').runId;
    const view = await platform.waitForRun(big);
    assert.deepEqual(view.output, { order: 'o-1', from: 'shop' });
    assert.equal(view.correlationId, 'evt-1');
    const desc = await client.workflow.getHandle(big).describe();
    assert.equal(desc.searchAttributes.CausationId?.[0], 'evt-1');
    assert.equal(desc.memo?.causationId, 'evt-1');

    const small = await platform.api('/v1/events', { method: 'POST', json: { ...event, id: 'evt-2', data: { orderId: 'o-2', amount: 5 } } });
    assert.deepEqual(small.body.runs.map((r: any) => r.definition), ['all-orders']);
    const unmatched = await platform.api('/v1/events', { method: 'POST', json: { id: 'evt-3', type: 'nobody.cares', source: 'shop' } });
    assert.deepEqual([unmatched.status, unmatched.body.runs, unmatched.body.delivered], [200, [], []]);
    const invalid = await platform.api('/v1/events', { method: 'POST', json: { type: 'order.created' } });
    assert.equal(invalid.status, 400);
    assert.deepEqual(invalid.body.errors.map((e: any) => e.path).sort(), ['/id', '/source']);
  });

  test('an event with a correlation id reaches runs waiting for it, once even if delivered twice', async () => {
    await register({
      name: 'await-payment',
      version: '1.0.0',
      steps: [
        { id: 'paid', type: 'wait_for_event', event: 'order.paid', timeout: 60 },
        { id: 'second', type: 'wait_for_event', event: 'order.paid', timeout: 2, on_timeout: 'continue' },
      ],
      output: { paid: '${steps.paid.output.data}', second: '${steps.second.output}' },
    });
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'await-payment' }, headers: { 'x-correlation-id': 'order-77' } });
    const runId = started.body.runId as string;
    const paid = { id: 'evt-pay-1', type: 'order.paid', source: 'psp', correlationId: 'order-77', data: { amount: 99 } };
    const delivered = await eventually('delivery to the waiting run', async () => {
      const answer = await platform.api('/v1/events', { method: 'POST', json: paid });
      return answer.body.delivered.length > 0 ? answer.body.delivered : undefined;
    });
    assert.deepEqual(delivered, [{ runId }]);
    await platform.api('/v1/events', { method: 'POST', json: paid });
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { paid: { amount: 99 }, second: null }, 'the redelivered event was not taken a second time');
  });

  test('deprecated versions start no new runs (running ones finish); diffs show what changed', async () => {
    await register({ name: 'lifecycle', version: '1.0.0', steps: [{ id: 'a', type: 'skill', skill: 'echo', inputs: { v: 1 } }] });
    await register({ name: 'lifecycle', version: '1.1.0', steps: [{ id: 'a', type: 'skill', skill: 'echo', inputs: { v: 2 } }, { id: 'b', type: 'set', values: { x: 1 } }] });
    const diff = await platform.api('/v1/definitions/lifecycle/diff?from=1.0.0&to=1.1.0');
    assert.deepEqual(diff.body, {
      name: 'lifecycle',
      from: '1.0.0',
      to: '1.1.0',
      patch: [
        { op: 'replace', path: '/version', value: '1.1.0' },
        { op: 'replace', path: '/steps/0/inputs/v', value: 2 },
        { op: 'add', path: '/steps/-', value: { id: 'b', type: 'set', values: { x: 1 } } },
      ],
    });
    assert.equal((await platform.api('/v1/definitions/lifecycle/diff?from=1.0.0&to=9.9.9')).status, 404);

    const keyed = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'lifecycle', version: '1.1.0', idempotencyKey: 'k-1' } });
    assert.equal(keyed.status, 201);
    assert.equal((await platform.api('/v1/definitions/lifecycle/versions/1.1.0/deprecate', { method: 'POST' })).status, 200);
    // A retry of a request made before the deprecation still gets its run.
    const retried = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'lifecycle', version: '1.1.0', idempotencyKey: 'k-1' } });
    assert.deepEqual([retried.status, retried.body.runId, retried.body.created], [200, keyed.body.runId, false]);
    const latest = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'lifecycle' } });
    assert.equal(latest.status, 201);
    assert.equal((await platform.waitForRun(latest.body.runId)).definition.version, '1.0.0', '"latest" skips deprecated versions');
    const pinned = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'lifecycle', version: '1.1.0' } });
    assert.equal(pinned.status, 409);
    assert.match(pinned.body.detail, /lifecycle@1.1.0 is deprecated; no new runs start/);
    assert.equal((await platform.api('/v1/definitions/lifecycle/versions/1.0.0/retire', { method: 'POST' })).status, 200);
    const none = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'lifecycle' } });
    assert.equal(none.status, 409);
    assert.equal((await platform.api('/v1/definitions/lifecycle/versions/1.1.0/activate', { method: 'POST' })).status, 200);
    assert.equal((await platform.api('/v1/runs', { method: 'POST', json: { definition: 'lifecycle' } })).status, 201);
    assert.equal((await platform.api('/v1/definitions/lifecycle/versions/1.0.0')).body.status, 'retired');
  });
});
