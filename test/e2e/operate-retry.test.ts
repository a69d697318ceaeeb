import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Retrying failed runs on the real platform: a reset takes a failed run back to just before its
 * failed step (earlier steps do not run again, the run keeps its id and the step its idempotency
 * key), `mode: rerun` starts a new run with the same input, and the bulk route counts the failed
 * runs a filter selects (dry run) before retrying them. Operator role, audited, idempotent.
 */

/** Tags that `flaky` refuses while they are listed; every call is recorded with its idempotency key. */
const refusing = new Set<string>();
const calls: Array<{ skill: string; tag: string; key?: string }> = [];
const first = defineSkill({
  name: 'first-step',
  description: 'test: records each call',
  input: z.object({ tag: z.string() }),
  output: z.object({ tag: z.string() }),
  sideEffects: false,
  async handler(input) {
    calls.push({ skill: 'first-step', tag: input.tag });
    return { tag: input.tag };
  },
});
const flaky = defineSkill({
  name: 'flaky',
  description: 'test: fails while its tag is refused',
  input: z.object({ tag: z.string() }),
  output: z.object({ tag: z.string(), done: z.boolean() }),
  sideEffects: true,
  async handler(input, ctx) {
    calls.push({ skill: 'flaky', tag: input.tag, key: ctx.meta.idempotencyKey });
    if (refusing.has(input.tag)) throw ApplicationFailure.create({ message: `refused ${input.tag}`, type: 'Refused', nonRetryable: true });
    return { tag: input.tag, done: true };
  },
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('retry of failed runs', () => {
  let platform: TestPlatform;
  const name = 'retry-me';
  /** The bulk case's own definition, so the other cases' failed runs are not in its filter. */
  const bulkName = 'retry-in-bulk';

  before(async () => {
    platform = await startTestPlatform({ database: 'postgres', catalog: { skills: [first, flaky] } });
    for (const definition of [name, bulkName]) {
      const registered = await platform.api('/v1/definitions', {
        method: 'POST',
        key: KEYS.admin,
        json: {
          name: definition,
          version: '1.0.0',
          steps: [
            { id: 'a', type: 'skill', skill: 'first-step', inputs: { tag: '${input.tag}' } },
            { id: 'b', type: 'skill', skill: 'flaky', inputs: { tag: '${input.tag}' }, retry: { max_attempts: 1 } },
          ],
        },
      });
      assert.ok([200, 201].includes(registered.status), JSON.stringify(registered.body));
    }
  });

  after(async () => {
    await platform?.stop();
  });

  async function failedRun(tag: string, definition = name): Promise<string> {
    refusing.add(tag);
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition, input: { tag } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const run = await platform.waitForRun(started.body.runId);
    assert.equal(run.status, 'failed', JSON.stringify(run));
    return run.runId as string;
  }

  test('reset: the run goes on from its failed step, keeps its id and the step its idempotency key; a second request with the key changes nothing', async () => {
    const runId = await failedRun('r1');
    assert.equal((await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', json: {} })).status, 403);
    refusing.delete('r1');
    const retried = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'retry-r1' }, json: { reason: 'upstream fixed' } });
    assert.equal(retried.status, 202, JSON.stringify(retried.body));
    assert.equal(retried.body.mode, 'reset');
    assert.equal(retried.body.runId, runId);
    assert.equal(retried.body.step, 'b');
    assert.equal(retried.body.previousStatus, 'failed');
    assert.ok(retried.body.resetToEventId > 0);
    const done = await platform.waitForRun(runId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.steps.find((s: any) => s.id === 'b').output, { tag: 'r1', done: true });
    // Step a ran once; step b twice, with the same idempotency key.
    assert.equal(calls.filter((c) => c.tag === 'r1' && c.skill === 'first-step').length, 1);
    const bCalls = calls.filter((c) => c.tag === 'r1' && c.skill === 'flaky');
    assert.equal(bCalls.length, 2);
    assert.equal(bCalls[0]!.key, `${runId}/b`);
    assert.equal(bCalls[1]!.key, `${runId}/b`);

    // Lifecycle events: the failed attempt's stay, the retried part's follow with new numbers.
    const events = await until('the run.completed event', async () => {
      const listed = (await platform.api(`/v1/runs/${runId}/events?limit=1000`)).body.events as any[];
      return listed.some((e) => e.type === 'workflow.run.completed') ? listed : undefined;
    });
    const types = events.map((e) => e.type);
    assert.equal(types.filter((t) => t === 'workflow.run.started').length, 1, JSON.stringify(types));
    assert.ok(types.indexOf('workflow.run.failed') < types.indexOf('workflow.run.completed'), JSON.stringify(types));
    assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1));
    const replay = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'retry-r1' }, json: { reason: 'upstream fixed' } });
    assert.equal(replay.status, 200, JSON.stringify(replay.body));
    assert.deepEqual(replay.body, retried.body);
    // Without the key a completed run is not reset: 409 naming rerun.
    const completed = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.operator, json: {} });
    assert.equal(completed.status, 409);
    assert.match(completed.body.detail, /rerun/);
    const trail = await platform.api(`/v1/operations?action=run.retry&target=${runId}`, { key: KEYS.operator });
    assert.equal(trail.body.operations.length, 1, JSON.stringify(trail.body));
    assert.equal(trail.body.operations[0].principal, 'otto');
    assert.equal(trail.body.operations[0].result.step, 'b');
  });

  test('rerun: a new run of the same version with the same input; bad bodies and unknown runs are 4xx', async () => {
    const runId = await failedRun('r2');
    refusing.delete('r2');
    const rerun = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.admin, headers: { 'idempotency-key': 'rerun-r2' }, json: { mode: 'rerun' } });
    assert.equal(rerun.status, 202, JSON.stringify(rerun.body));
    assert.equal(rerun.body.mode, 'rerun');
    assert.notEqual(rerun.body.newRunId, runId);
    const fresh = await platform.waitForRun(rerun.body.newRunId);
    assert.equal(fresh.status, 'completed', JSON.stringify(fresh));
    assert.equal(fresh.definition.version, '1.0.0');
    assert.deepEqual(fresh.steps.find((s: any) => s.id === 'a').output, { tag: 'r2' });
    assert.equal((await platform.api(`/v1/runs/${runId}`)).body.status, 'failed');
    const again = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.admin, headers: { 'idempotency-key': 'rerun-r2' }, json: { mode: 'rerun' } });
    assert.equal(again.status, 200);
    assert.equal(again.body.newRunId, rerun.body.newRunId);

    const badMode = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.operator, json: { mode: 'twice' } });
    assert.equal(badMode.status, 400);
    assert.equal(badMode.body.errors[0].path, '/mode');
    const missing = await platform.api('/v1/runs/no-such-run/retry', { method: 'POST', key: KEYS.operator, json: {} });
    assert.equal(missing.status, 404);
    const badKey = await platform.api(`/v1/runs/${runId}/retry`, { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'has space' }, json: {} });
    assert.equal(badKey.status, 400);
  });

  test('bulk: a dry run counts the failed runs the filter selects; the retry then resets each once', async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    const runs = [await failedRun('bulk-1', bulkName), await failedRun('bulk-2', bulkName)];
    const filter = { definition: bulkName, errorType: 'Refused', since };
    const dry = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, json: { filter, dryRun: true } });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dryRun, true);
    assert.deepEqual(dry.body.runs.map((r: any) => r.runId).sort(), [...runs].sort());
    assert.equal(dry.body.count, 2);
    assert.equal(dry.body.runs[0].error.type, 'Refused');
    const otherType = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, json: { filter: { ...filter, errorType: 'Nope' }, dryRun: true } });
    assert.equal(otherType.body.count, 0);
    const badRange = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, json: { filter: { since, until: since } } });
    assert.equal(badRange.status, 400);
    const badDate = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, json: { filter: { since: 'yesterday' } } });
    assert.equal(badDate.status, 400);
    assert.equal(badDate.body.errors[0].path, '/filter/since');

    refusing.delete('bulk-1');
    refusing.delete('bulk-2');
    const bulk = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'bulk-a' }, json: { filter } });
    assert.equal(bulk.status, 202, JSON.stringify(bulk.body));
    assert.equal(bulk.body.retried.length, 2);
    assert.deepEqual(bulk.body.failed, []);
    for (const runId of runs) assert.equal((await platform.waitForRun(runId)).status, 'completed');
    const replay = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, headers: { 'idempotency-key': 'bulk-a' }, json: { filter } });
    assert.equal(replay.status, 200);
    assert.deepEqual(replay.body, bulk.body);
    // Nothing failed is left to retry.
    const none = await platform.api('/v1/runs/retry', { method: 'POST', key: KEYS.operator, json: { filter, dryRun: true } });
    assert.equal(none.body.count, 0);
  });
});
