import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

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
    for (const r of runs) assert.ok(r.historyLength < 100 + 20, `a run of the chain has ${r.historyLength} events`);
    let activities = 0;
    for (const r of runs) {
      const history = await client.workflow.getHandle(runId, r.runId).fetchHistory();
      activities += (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
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
});
