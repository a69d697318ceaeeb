import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { KEYS, startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Long runs continue as new before Temporal's history limits, carrying their state, loop cursor
 * and undelivered events. The threshold is lowered to 100 events so a 40-iteration loop crosses
 * it twice; production runs use 10,000 (or Temporal's own suggestion).
 */
describe('long runs continue as new', () => {
  let platform: TestPlatform;
  let client: Client;

  before(async () => {
    platform = await startTestPlatform({ database: 'postgres', env: { RUN_CONTINUE_AS_NEW_EVENTS: '100' } });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    await client?.connection.close();
    await platform?.stop();
  });

  test('a loop of activities crosses continue-as-new with its cursor, variables and outputs; signals before and after still arrive', async () => {
    const definition = {
      name: 'long-loop',
      version: '1.0.0',
      context: { mutable: { counter: 0, sum: 0 } },
      steps: [
        { id: 'first', type: 'skill', skill: 'echo', inputs: { started: true } },
        {
          id: 'work',
          type: 'loop',
          condition: 'counter < 40',
          max_iterations: 40,
          steps: [
            { id: 'unit', type: 'skill', skill: 'echo', inputs: { n: '${iteration}' } },
            { id: 'acc', type: 'set', values: { counter: '${counter + 1}', sum: '${sum + steps.unit.output.n}' } },
          ],
        },
        { id: 'early', type: 'wait_for_event', event: 'early.bird', timeout: 120 },
        { id: 'late', type: 'wait_for_event', event: 'go', filter: 'event.ok == true', timeout: 120 },
      ],
      output: { first: '${steps.first.output}', counter: '${counter}', sum: '${sum}', early: '${steps.early.output}', late: '${steps.late.output}' },
    };
    assert.equal((await platform.api('/v1/definitions', { method: 'POST', json: definition })).status, 201);
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'long-loop' } });
    const runId = started.body.runId as string;
    const handle = client.workflow.getHandle(runId);
    // Sent while the loop runs: buffered, and carried across every continue-as-new.
    await handle.signal('early.bird', { sent: 'during the loop' });

    // Wait until the run has continued as new at least twice, then signal the latest run.
    let view: any;
    for (let i = 0; i < 300; i += 1) {
      view = (await platform.api(`/v1/runs/${runId}`)).body;
      if ((view.continuedAsNew ?? 0) >= 2 || view.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(view.status, 'running', JSON.stringify(view));
    assert.ok(view.continuedAsNew >= 2, `continued as new ${view.continuedAsNew} times`);
    await handle.signal('go', { ok: false });
    await handle.signal('go', { ok: true, sent: 'after continue-as-new' });

    const done = await platform.waitForRun(runId, 60_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(done.output, {
      first: { started: true },
      counter: 40,
      sum: (39 * 40) / 2,
      early: { sent: 'during the loop' },
      late: { ok: true, sent: 'after continue-as-new' },
    });
    assert.ok(done.continuedAsNew >= 2);

    // Every run of the chain stayed near the threshold, and each iteration ran its activity once.
    const runs: Array<{ runId: string; historyLength: number }> = [];
    for await (const execution of client.workflow.list({ query: `WorkflowId = '${runId}'` })) {
      runs.push({ runId: execution.runId, historyLength: execution.historyLength });
    }
    assert.equal(runs.length, done.continuedAsNew + 1);
    // (Beyond the threshold: the step in flight, and writing the lifecycle events queued so far before continuing.)
    for (const r of runs) assert.ok(r.historyLength < 100 + 35, `a run of the chain has ${r.historyLength} events`);
    let activities = 0;
    for (const r of runs) {
      const history = await client.workflow.getHandle(runId, r.runId).fetchHistory();
      activities += (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes && e.activityTaskScheduledEventAttributes.activityType?.name !== 'recordRunEvents',
      ).length;
    }
    assert.equal(activities, 41, 'first + 40 iterations, none repeated across runs');

    // To the API's callers the chain is one run (visibility may lag a moment behind the close).
    let listed: any[] = [];
    for (let i = 0; i < 50; i += 1) {
      listed = (await platform.api('/v1/runs?definition=long-loop')).body.runs;
      if (listed.length === 1 && listed[0].status === 'completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(listed.map((r) => [r.runId, r.status]), [[runId, 'completed']]);
  });
  test('approvals survive continue-as-new: decided through the API after the run continued as new, with every record, the audit trail and PendingApprovers intact', async (t) => {
    // Every tenth iteration waits for a finance approval; after the loop a quorum of 2 closes the run.
    const definition = {
      name: 'long-approvals',
      version: '1.0.0',
      context: { mutable: { counter: 0 } },
      steps: [
        {
          id: 'work',
          type: 'loop',
          condition: 'counter < 25',
          max_iterations: 25,
          steps: [
            { id: 'unit', type: 'skill', skill: 'echo', inputs: { n: '${iteration}' } },
            { id: 'acc', type: 'set', values: { counter: '${counter + 1}' } },
            {
              id: 'gate',
              type: 'conditional',
              condition: 'iteration % 10 == 9',
              then: [{ id: 'check', type: 'approval', approvers: { groups: ['finance'] }, summary: 'Batch ${iteration} checked?' }],
            },
          ],
        },
        { id: 'final', type: 'approval', approvers: { groups: ['finance'] }, quorum: 2, summary: 'Close after ${counter} units' },
        { id: 'after', type: 'skill', skill: 'echo', inputs: { counter: '${counter}', final: '${steps.final.output.deciders}' } },
      ],
    };
    assert.equal((await platform.api('/v1/definitions', { method: 'POST', json: definition })).status, 201);
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'long-approvals' } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const runId = started.body.runId as string;
    const decide = (key: string, step: string, comment?: string) =>
      platform.api(`/v1/runs/${runId}/approvals/${step}`, { method: 'POST', key, json: { decision: 'approve', ...(comment ? { comment } : {}) } });

    /** Polls until the run waits on an approval of `stepId`; returns the view and that record. */
    const pending = async (stepId: string) => {
      for (let i = 0; i < 600; i += 1) {
        const view = (await platform.api(`/v1/runs/${runId}`)).body;
        const record = (view.approvals ?? []).find((a: any) => a.stepId === stepId && a.status === 'pending');
        if (record) return { view, record };
        if (view.status !== 'running') throw new Error(`the run ended while waiting for "${stepId}": ${JSON.stringify(view)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no pending approval "${stepId}" in ${runId}`);
    };

    // The loop's approvals, by step id: each time the one pending iteration is decided.
    const runOfChain: Record<string, number> = {};
    for (const expected of ['work[9]/check', 'work[19]/check']) {
      const { view, record } = await pending('check');
      assert.equal(record.stepPath, expected);
      runOfChain[expected] = view.continuedAsNew ?? 0;
      const answer = await decide(KEYS.bob, 'check', `batch ${expected}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.deepEqual([answer.body.stepPath, answer.body.status, answer.body.duplicate], [expected, 'approved', false]);
    }

    const { view, record } = await pending('final');
    runOfChain.final = view.continuedAsNew ?? 0;
    t.diagnostic(`continue-as-new count when each approval was pending: ${JSON.stringify(runOfChain)}`);
    assert.ok(view.continuedAsNew >= 1, `the run continued as new ${view.continuedAsNew} times before the final approval`);
    assert.ok(view.continuedAsNew > (runOfChain['work[9]/check'] ?? 0), 'the first approval was decided in an earlier run of the chain');
    assert.equal(record.summary, 'Close after 25 units');
    // The records decided in earlier runs of the chain are still in the state.
    assert.deepEqual(
      view.approvals.map((a: any) => [a.stepPath, a.status]),
      [
        ['work[9]/check', 'approved'],
        ['work[19]/check', 'approved'],
        ['final', 'pending'],
      ],
    );
    // The latest run of the chain set PendingApprovers, so bob's inbox finds it.
    let inbox: any[] = [];
    for (let i = 0; i < 50 && inbox.length === 0; i += 1) {
      inbox = (await platform.api('/v1/approvals', { key: KEYS.bob })).body.approvals.filter((a: any) => a.runId === runId);
      if (inbox.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(inbox.map((a) => [a.step, a.stepPath, a.quorum, a.approvals]), [['final', 'final', 2, 0]]);
    assert.deepEqual((await client.workflow.getHandle(runId).describe()).searchAttributes.PendingApprovers, ['group:finance']);

    // A refusal, then the quorum of two.
    assert.equal((await decide(KEYS.dave, 'final')).status, 403);
    const first = await decide(KEYS.bob, 'final', 'first key');
    assert.deepEqual([first.status, first.body.status, first.body.approvals, first.body.quorum], [200, 'pending', 1, 2]);
    const again = await decide(KEYS.bob, 'final');
    assert.deepEqual([again.status, again.body.duplicate], [200, true]);
    const second = await decide(KEYS.carol, 'final', 'second key');
    assert.deepEqual([second.status, second.body.status], [200, 'approved']);

    const done = await platform.waitForRun(runId, 60_000);
    assert.equal(done.status, 'completed', JSON.stringify(done.error));
    assert.deepEqual(done.output, { counter: 25, final: ['bob', 'carol'] });
    assert.ok(done.continuedAsNew >= 1);
    assert.deepEqual(
      done.approvals.map((a: any) => [a.stepPath, a.stepId, a.summary, a.status, a.decisions.map((d: any) => [d.principal, d.decision, d.via, d.comment])]),
      [
        ['work[9]/check', 'check', 'Batch 9 checked?', 'approved', [['bob', 'approve', 'api', 'batch work[9]/check']]],
        ['work[19]/check', 'check', 'Batch 19 checked?', 'approved', [['bob', 'approve', 'api', 'batch work[19]/check']]],
        ['final', 'final', 'Close after 25 units', 'approved', [['bob', 'approve', 'api', 'first key'], ['carol', 'approve', 'api', 'second key']]],
      ],
    );
    assert.deepEqual((await client.workflow.getHandle(runId).describe()).searchAttributes.PendingApprovers ?? [], []);

    // The audit trail: every accepted decision once (numbered across the whole chain), and the refusal.
    const audit = (await platform.api(`/v1/runs/${runId}/audit`)).body.entries as any[];
    const accepted = audit.filter((e) => e.outcome === 'accepted');
    assert.deepEqual(
      accepted.map((e) => [e.principal, e.stepId, e.stepPath, e.decision, e.via, e.comment]),
      [
        ['bob', 'check', 'work[9]/check', 'approve', 'api', 'batch work[9]/check'],
        ['bob', 'check', 'work[19]/check', 'approve', 'api', 'batch work[19]/check'],
        ['bob', 'final', 'final', 'approve', 'api', 'first key'],
        ['carol', 'final', 'final', 'approve', 'api', 'second key'],
      ],
    );
    assert.deepEqual(accepted.map((e) => e.id), [1, 2, 3, 4].map((n) => `${runId}/approval/${n}`));
    assert.deepEqual(
      audit.filter((e) => e.outcome === 'refused').map((e) => [e.principal, e.stepId, e.code]),
      [['dave', 'final', 'forbidden']],
    );
    assert.equal(audit.length, 5);
  });
});
