import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Seed 003 §8 on the real platform: GET /v1/lanes shows each lane's workers, pollers, backlog and
 * runs in flight; pausing a lane holds its steps (the run starts, an approval still lands, the
 * next step waits in the backlog), survives a restart of the workers, and resuming lets the run
 * finish where it stood. Pause and resume need the operator role, are audited and idempotent.
 */

const calls: string[] = [];
const tally = defineSkill({
  name: 'tally',
  description: 'test: records each call',
  input: z.object({ tag: z.string() }),
  output: z.object({ tag: z.string() }),
  sideEffects: false,
  async handler(input) {
    calls.push(input.tag);
    return { tag: input.tag };
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('lanes: status, pause and resume', () => {
  let platform: TestPlatform;
  let lane: string;

  before(async () => {
    platform = await startTestPlatform({ database: 'postgres', catalog: { skills: [tally] } });
    lane = platform.lanes[0]!;
  });

  after(async () => {
    // Never leave a lane of the shared dev server paused.
    await platform?.api(`/v1/lanes/${lane}/resume`, { method: 'POST', key: KEYS.operator, json: {} }).catch(() => undefined);
    await platform?.stop();
  });

  test('GET /v1/lanes: every lane with its workers and queues; the operator role is needed', async () => {
    const denied = await platform.api('/v1/lanes', { key: KEYS.submitter });
    assert.equal(denied.status, 403);
    assert.match(denied.headers.get('content-type') ?? '', /problem\+json/);
    const { status, body } = await platform.api('/v1/lanes', { key: KEYS.operator });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.lanes.map((l: any) => l.lane), platform.lanes);
    for (const l of body.lanes) {
      assert.equal(l.paused, false);
      assert.ok(l.workers.length >= 1, `${l.lane} has workers: ${JSON.stringify(l.workers)}`);
      assert.ok(l.workers.every((w: any) => w.identity.startsWith(`${l.lane}@`)));
      const roles = l.queues.map((q: any) => q.role).sort();
      assert.deepEqual(roles, ['agents', 'integrations', 'models', 'platform', 'skills', 'workflows']);
      assert.ok(l.queues.find((q: any) => q.role === 'skills').pollers >= 1);
      assert.equal(typeof l.runsInFlight, 'number');
    }
    const one = await platform.api(`/v1/lanes/${lane}`, { key: KEYS.admin });
    assert.equal(one.status, 200);
    assert.equal(one.body.lane, lane);
    const unknown = await platform.api('/v1/lanes/no-such-lane/pause', { method: 'POST', key: KEYS.operator, json: {} });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errors[0].path, 'lane');
    const badBody = await platform.api(`/v1/lanes/${lane}/pause`, { method: 'POST', key: KEYS.operator, json: { reason: 5 } });
    assert.equal(badBody.status, 400);
    assert.equal(badBody.body.errors[0].path, '/reason');
    const submitterPause = await platform.api(`/v1/lanes/${lane}/pause`, { method: 'POST', key: KEYS.submitter, json: {} });
    assert.equal(submitterPause.status, 403);
  });

  test('a paused lane holds its steps (approvals still land), stays paused across a worker restart, and resumes where it stood', async () => {
    const name = 'paused-lane';
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: {
        name,
        version: '1.0.0',
        lane,
        steps: [
          { id: 'sign-off', type: 'approval', approvers: { principals: ['abby'] }, summary: 'go ahead?' },
          { id: 'after', type: 'skill', skill: 'tally', inputs: { tag: '${input.tag}' } },
        ],
      },
    });
    assert.ok([200, 201].includes(registered.status), JSON.stringify(registered.body));

    const paused = await platform.api(`/v1/lanes/${lane}/pause`, {
      method: 'POST',
      key: KEYS.operator,
      headers: { 'idempotency-key': 'pause-1' },
      json: { reason: 'maintenance window' },
    });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.paused, true);
    assert.equal(paused.body.pause.reason, 'maintenance window');
    assert.match(paused.body.pause.by, /otto/);
    for (const q of paused.body.queues.filter((q: any) => ['skills', 'integrations', 'models', 'agents'].includes(q.role))) assert.equal(q.rateLimit, 0, q.taskQueue);
    for (const q of paused.body.queues.filter((q: any) => ['workflows', 'platform'].includes(q.role))) assert.equal(q.rateLimit, undefined, q.taskQueue);
    // The same key again: the same answer, no second audit entry.
    const again = await platform.api(`/v1/lanes/${lane}/pause`, { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'pause-1' }, json: { reason: 'maintenance window' } });
    assert.equal(again.status, 200);
    assert.equal(again.body.paused, true);
    const reused = await platform.api(`/v1/lanes/${lane}/pause`, { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'pause-1' }, json: { reason: 'other' } });
    assert.equal(reused.status, 409);

    // The run starts and reaches its approval: the workflow queue is open.
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: { tag: 'held' } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const runId = started.body.runId as string;
    await until('the pending approval', async () => {
      const view = (await platform.api(`/v1/runs/${runId}`)).body;
      return (view.approvals ?? []).some((a: any) => a.status === 'pending') ? true : undefined;
    });
    const decided = await platform.api(`/v1/runs/${runId}/approvals/sign-off`, { method: 'POST', key: KEYS.approver, json: { decision: 'approve' } });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));

    // The step after it waits in the lane's skills queue and does not run.
    const waiting = await until('a skills backlog', async () => {
      const status = (await platform.api(`/v1/lanes/${lane}`, { key: KEYS.operator })).body;
      const skills = status.queues.find((q: any) => q.role === 'skills');
      return skills.backlog >= 1 ? status : undefined;
    });
    assert.equal(waiting.paused, true);
    assert.ok(waiting.runsInFlight >= 1);
    await sleep(1500);
    assert.deepEqual(calls.filter((c) => c === 'held'), []);
    assert.equal((await platform.api(`/v1/runs/${runId}`)).body.status, 'running');

    // Workers restart: the pause is the server's, not theirs.
    await platform.restartWorkers();
    await sleep(1500);
    assert.equal((await platform.api(`/v1/lanes/${lane}`, { key: KEYS.operator })).body.paused, true);
    assert.deepEqual(calls.filter((c) => c === 'held'), []);

    const resumed = await platform.api(`/v1/lanes/${lane}/resume`, { method: 'POST', key: KEYS.operator, json: { reason: 'done' } });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal(resumed.body.paused, false);
    assert.equal(resumed.body.pause, undefined);
    const finished = await platform.waitForRun(runId);
    assert.equal(finished.status, 'completed', JSON.stringify(finished));
    assert.deepEqual(calls.filter((c) => c === 'held'), ['held']);
    assert.equal(finished.steps.find((s: any) => s.id === 'after').output.tag, 'held');

    // The audit trail: one pause (the replay added none), one resume, newest first.
    const trail = await platform.api(`/v1/operations?target=${lane}`, { key: KEYS.operator });
    assert.equal(trail.status, 200, JSON.stringify(trail.body));
    assert.deepEqual(trail.body.operations.map((o: any) => o.action), ['lane.resume', 'lane.pause']);
    assert.equal(trail.body.operations[1].principal, 'otto');
    assert.equal(trail.body.operations[1].idempotencyKey, 'pause-1');
    assert.deepEqual(trail.body.operations[1].request, { reason: 'maintenance window' });
    const badQuery = await platform.api('/v1/operations?action=lane.explode', { key: KEYS.operator });
    assert.equal(badQuery.status, 400);
  });
});
