import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { activityTaskQueue } from '../../common/constants.ts';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * The admission stage end to end (api/admission.ts), on a real Temporal dev server and a real
 * PostgreSQL: congestion is made real (prod-critical's only skill slot held, two more prod tasks
 * waiting in its queue), and the API measures it through DescribeTaskQueue. Experimental starts
 * are then deferred (202, `deferred` in GET, in the admission_queue table), bounded (429 with
 * Retry-After), deduped by idempotency key, cancellable; prod-critical starts are never deferred;
 * once the hold is released the deferred runs start in priority, then arrival order, and complete.
 */

function holdSkill() {
  const gates = new Map<string, () => void>();
  const waiting = new Map<string, Promise<void>>();
  const gate = (key: string) => {
    if (!waiting.has(key)) waiting.set(key, new Promise<void>((resolve) => gates.set(key, resolve)));
    return waiting.get(key) as Promise<void>;
  };
  const spec = defineSkill({
    name: 'hold',
    description: 'test: holds its worker slot until released',
    input: z.object({ key: z.string() }),
    output: z.object({ key: z.string() }),
    sideEffects: false,
    async handler(input, ctx) {
      await Promise.race([
        gate(input.key),
        new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true })),
      ]);
      return { key: input.key };
    },
  });
  return {
    spec,
    release(key: string) {
      void gate(key);
      gates.get(key)?.();
    },
    releaseAll() {
      for (const release of gates.values()) release();
    },
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('admission control per lane', () => {
  let platform: TestPlatform;
  let client: Client;
  let prod: string;
  let experimental: string;
  const hold = holdSkill();

  before(async () => {
    platform = await startTestPlatform({
      database: 'postgres',
      env: (lanes) => ({
        // One skill at a time per lane, so a held prod-critical skill makes the next ones queue.
        LANE_LIMITS: JSON.stringify({ '*': { skills: 1 } }),
        ADMISSION_DEFERRABLE_LANES: lanes[1]!,
        ADMISSION_QUEUE_MAX: '5',
        ADMISSION_START_RATE: '2',
        ADMISSION_START_BURST: '1',
        ADMISSION_PROTECTED_BACKLOG_MAX: '0',
        ADMISSION_PROBE_MS: '100',
      }),
      catalog: { skills: [hold.spec] },
    });
    [prod, experimental] = platform.lanes as [string, string];
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    hold.releaseAll();
    await client?.connection.close();
    await platform?.stop();
  });

  async function register(definition: Record<string, unknown>): Promise<void> {
    const { status, body } = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.ok(status === 201 || status === 200, `register ${String(definition.name)}: ${status} ${JSON.stringify(body)}`);
  }

  const start = (definition: string, input: unknown, headers: Record<string, string> = {}) =>
    platform.api('/v1/runs', { method: 'POST', json: { definition, input }, headers });

  /** Polls until the run has left both `deferred` and `running`. */
  async function settled(runId: string): Promise<any> {
    return until(`run ${runId} to finish`, async () => {
      const { status, body } = await platform.api(`/v1/runs/${encodeURIComponent(runId)}`);
      assert.equal(status, 200, JSON.stringify(body));
      return body.status === 'deferred' || body.status === 'running' ? undefined : body;
    }, 60_000);
  }

  const prodBacklog = async () =>
    Number(
      (
        await client.connection.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name: activityTaskQueue(prod, 'skills'), kind: 1 },
          taskQueueType: 2,
          reportStats: true,
        })
      ).stats?.approximateBacklogCount ?? 0,
    );

  test('experimental starts are deferred under measured congestion, bounded, deduped, and started in order once it clears; prod-critical never waits', async () => {
    await register({ name: 'prod-hold', version: '1.0.0', lane: prod, priority: 'high', steps: [{ id: 'h', type: 'skill', skill: 'hold', inputs: { key: '${input.key}' } }] });
    const expSteps = [{ id: 'e', type: 'skill', skill: 'echo', inputs: { n: '${input.n}' } }];
    await register({ name: 'exp-normal', version: '1.0.0', lane: experimental, priority: 'normal', steps: expSteps });
    await register({ name: 'exp-urgent', version: '1.0.0', lane: experimental, priority: 'urgent', steps: expSteps });
    await register({
      name: 'exp-event',
      version: '1.0.0',
      lane: experimental,
      triggers: [{ type: 'event', event: 'pilot.ready' }],
      steps: [{ id: 'e', type: 'skill', skill: 'echo', inputs: { n: '${input.n}' } }],
    });

    // Healthy: an experimental start goes straight to Temporal.
    const healthy = await start('exp-normal', { n: 0 });
    assert.equal(healthy.status, 201, JSON.stringify(healthy.body));
    assert.equal((await settled(healthy.body.runId)).status, 'completed');

    // Congestion, made real: prod-critical's only skill slot held, two more of its tasks waiting.
    const held: string[] = [];
    for (const key of ['a', 'b', 'c']) {
      const r = await start('prod-hold', { key });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      held.push(r.body.runId);
    }
    await until('prod-critical skills backlog', async () => ((await prodBacklog()) >= 2 ? true : undefined));

    const n1 = await start('exp-normal', { n: 1 });
    assert.equal(n1.status, 202, JSON.stringify(n1.body));
    assert.deepEqual([n1.body.status, n1.body.created], ['deferred', true]);
    assert.equal(n1.headers.get('location'), `/v1/runs/${n1.body.runId}`);
    const n2 = await start('exp-normal', { n: 2 }, { 'Idempotency-Key': 'pilot-2' });
    const u1 = await start('exp-urgent', { n: 3 });
    const ev = await platform.api('/v1/events', { method: 'POST', json: { id: 'evt-pilot', type: 'pilot.ready', source: 'lab', data: { n: 4 } } });
    const n3 = await start('exp-normal', { n: 5 });
    assert.deepEqual([n2.status, u1.status, ev.status, n3.status], [202, 202, 202, 202], JSON.stringify([n2.body, u1.body, ev.body, n3.body]));
    assert.equal(ev.body.runs[0].status, 'deferred');
    const evRun: string = ev.body.runs[0].runId;

    // Deferred runs are visible, with why and their place: urgent first, then by arrival.
    const view = await platform.api(`/v1/runs/${u1.body.runId}`);
    assert.equal(view.status, 200);
    assert.equal(view.body.status, 'deferred');
    assert.equal(view.body.lane, experimental);
    assert.equal(view.body.definition.name, 'exp-urgent');
    assert.match(view.body.admission.reason, new RegExp(`${prod}\\.skills holds \\d+ waiting tasks|earlier deferred`));
    assert.equal(view.body.admission.position, 0);
    assert.equal((await platform.api(`/v1/runs/${n1.body.runId}`)).body.admission.position, 1);
    assert.equal((await platform.api(`/v1/runs/${n3.body.runId}`)).body.admission.position, 4);
    const listed = await platform.api('/v1/runs?status=deferred');
    assert.deepEqual(listed.body.runs.map((r: any) => r.runId).sort(), [n1, n2, u1, n3].map((r) => r.body.runId).concat(evRun).sort());
    assert.equal((await platform.api('/v1/runs')).body.runs[0].status, 'deferred', 'deferred runs are the newest');

    // The same idempotency key returns the deferred run; with another input it is a conflict.
    const again = await start('exp-normal', { n: 2 }, { 'Idempotency-Key': 'pilot-2' });
    assert.deepEqual([again.status, again.body.runId, again.body.status, again.body.created], [200, n2.body.runId, 'deferred', false]);
    const conflict = await start('exp-normal', { n: 99 }, { 'Idempotency-Key': 'pilot-2' });
    assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
    assert.equal((await platform.api('/v1/events', { method: 'POST', json: { id: 'evt-pilot', type: 'pilot.ready', source: 'lab', data: { n: 4 } } })).status, 200, 'a redelivered event defers nothing new');

    // Bounded: the lane's queue holds ADMISSION_QUEUE_MAX (5); the next start is refused, with when to retry.
    const full = await start('exp-normal', { n: 6 });
    assert.equal(full.status, 429, JSON.stringify(full.body));
    assert.match(full.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.ok(Number(full.headers.get('retry-after')) >= 1, `Retry-After: ${full.headers.get('retry-after')}`);
    assert.match(full.body.detail, /queue of deferred starts is full/);

    // A deferred run can be cancelled: it leaves the queue and never starts.
    const cancelled = await platform.api(`/v1/runs/${n3.body.runId}/cancel`, { method: 'POST' });
    assert.deepEqual([cancelled.status, cancelled.body.status], [200, 'cancelled']);
    assert.equal((await platform.api(`/v1/runs/${n3.body.runId}`)).status, 404);

    // Prod-critical is never deferred, congestion or not.
    const p4 = await start('prod-hold', { key: 'd' });
    assert.deepEqual([p4.status, p4.body.status], [201, 'running'], JSON.stringify(p4.body));
    held.push(p4.body.runId);
    assert.equal((await platform.api(`/v1/runs/${u1.body.runId}`)).body.status, 'deferred', 'still congested: nothing started');

    // Congestion clears: the deferred runs start in order (urgent, then arrival) and complete.
    for (const key of ['a', 'b', 'c', 'd']) hold.release(key);
    for (const id of held) assert.equal((await settled(id)).status, 'completed');
    const order = [u1.body.runId, n1.body.runId, n2.body.runId, evRun];
    const finished = await Promise.all(order.map((id) => settled(id)));
    assert.deepEqual(finished.map((r) => r.status), ['completed', 'completed', 'completed', 'completed']);
    assert.deepEqual(finished.map((r) => r.output), [{ n: 3 }, { n: 1 }, { n: 2 }, { n: 4 }]);
    const startTimes = await Promise.all(order.map(async (id) => (await client.workflow.getHandle(id).describe()).startTime.getTime()));
    assert.deepEqual([...startTimes].sort((a, b) => a - b), startTimes, `started in order: ${JSON.stringify(startTimes)}`);

    // The key now finds the started run, still deduped.
    const after = await start('exp-normal', { n: 2 }, { 'Idempotency-Key': 'pilot-2' });
    assert.deepEqual([after.status, after.body.runId, after.body.created, after.body.status], [200, n2.body.runId, false, 'completed']);
    assert.equal((await platform.api('/v1/runs?status=deferred')).body.runs.length, 0);
  });
});
