import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { approvalsCounted, currentDeciders, type ApprovalRecord } from '../../interpreter/approvals.ts';
import { pendingApprovalsQuery, runStateQuery } from '../../workflows/definitions.ts';
import { KEYS, startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * The escalation case, pinned (issue 14): a decision made to the first approver set and others
 * made after an escalation are counted the same way by the workflow (its runState and
 * pendingApprovals queries, the update's answer, the step output, the decided event) and by the
 * API (GET /v1/runs/{id}, the inbox). bob is in `finance` (the first set) and named in the second
 * set with abby; carol is in `finance` only; sam starts the run.
 */
describe('approval escalation: one count in the workflow and the API', () => {
  let platform: TestPlatform;
  let client: Client;

  before(async () => {
    platform = await startTestPlatform({ database: 'pglite' });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    await client?.connection.close();
    await platform?.stop();
  });

  const decide = (runId: string, key: string, decision: string) =>
    platform.api(`/v1/runs/${runId}/approvals/sign-off`, { method: 'POST', key, json: { decision } });

  const inboxOf = async (runId: string, key: string): Promise<any[]> =>
    (await platform.api('/v1/approvals', { key })).body.approvals.filter((a: any) => a.runId === runId);

  async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
    for (let i = 0; i < 200; i += 1) {
      const value = await read();
      if (ok(value)) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** What each reader says of the approval now: [approvals counted, current deciders, stage]. */
  async function counts(runId: string) {
    const handle = client.workflow.getHandle(runId);
    const state = await handle.query(runStateQuery);
    const [pending] = (await handle.query(pendingApprovalsQuery)) as ApprovalRecord[];
    const view = (await platform.api(`/v1/runs/${runId}`)).body;
    const fromApi = view.approvals[0] as ApprovalRecord;
    const fromState = state.approvals['sign-off'] as ApprovalRecord;
    const of = (r: ApprovalRecord) => [approvalsCounted(r), currentDeciders(r), r.stage];
    return { state: of(fromState), query: pending ? of(pending) : undefined, api: of(fromApi), decisions: fromApi.decisions.map((d) => [d.principal, d.stage]) };
  }

  test('a decision before and two after an escalation: every reader counts only the current set', async () => {
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      json: {
        name: 'escalation-count',
        version: '1.0.0',
        steps: [
          {
            id: 'sign-off',
            type: 'approval',
            approvers: { groups: ['finance'] },
            quorum: 2,
            timeout: 3,
            on_timeout: 'escalate',
            escalation: { approvers: { principals: ['abby', 'bob'] }, quorum: 2, timeout: 120 },
          },
          { id: 'after', type: 'set', values: { done: true } },
        ],
      },
    });
    assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'escalation-count', input: {} } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const runId = started.body.runId as string;

    // Stage 0: bob approves, one of two.
    await until('the approval request', () => inboxOf(runId, KEYS.bob), (items) => items.length === 1);
    const first = await decide(runId, KEYS.bob, 'approve');
    assert.deepEqual([first.status, first.body.status, first.body.approvals, first.body.quorum], [200, 'pending', 1, 2], JSON.stringify(first.body));
    const before = await counts(runId);
    assert.deepEqual(before, { state: [1, ['bob'], 0], query: [1, ['bob'], 0], api: [1, ['bob'], 0], decisions: [['bob', 0]] });

    // The timeout escalates: bob's stage-0 decision stays on record and counts nowhere.
    await until('the escalation', () => platform.api(`/v1/runs/${runId}`), (r) => r.body.approvals?.[0]?.stage === 1);
    const escalated = await counts(runId);
    assert.deepEqual(escalated, { state: [0, [], 1], query: [0, [], 1], api: [0, [], 1], decisions: [['bob', 0]] });
    // The inbox agrees: bob and abby are asked (bob afresh), carol no longer.
    const bobAsked = await until('bob asked again', () => inboxOf(runId, KEYS.bob), (items) => items.length === 1);
    assert.deepEqual(bobAsked.map((a) => [a.approvals, a.quorum]), [[0, 2]]);
    assert.deepEqual((await inboxOf(runId, KEYS.approver)).map((a) => [a.approvals, a.quorum]), [[0, 2]]);
    assert.deepEqual(await inboxOf(runId, KEYS.carol), []);
    assert.equal((await decide(runId, KEYS.carol, 'approve')).status, 403);

    // Stage 1: abby approves, one of two in every reader; bob's inbox shows the same count.
    const second = await decide(runId, KEYS.approver, 'approve');
    assert.deepEqual([second.status, second.body.status, second.body.approvals, second.body.duplicate], [200, 'pending', 1, false], JSON.stringify(second.body));
    const after = await counts(runId);
    assert.deepEqual(after, { state: [1, ['abby'], 1], query: [1, ['abby'], 1], api: [1, ['abby'], 1], decisions: [['bob', 0], ['abby', 1]] });
    assert.deepEqual((await inboxOf(runId, KEYS.bob)).map((a) => a.approvals), [1]);
    assert.deepEqual(await inboxOf(runId, KEYS.approver), [], 'abby decided this stage');

    // bob's second decision is a new one (his first was to the other set) and settles the quorum.
    const third = await decide(runId, KEYS.bob, 'approve');
    assert.deepEqual([third.status, third.body.status, third.body.approvals, third.body.duplicate], [200, 'approved', 2, false], JSON.stringify(third.body));
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    const output = view.steps.find((s: any) => s.id === 'sign-off').output;
    assert.deepEqual(output.deciders, ['abby', 'bob']);
    assert.deepEqual(currentDeciders(view.approvals[0]), output.deciders);
    assert.deepEqual(view.approvals[0].decisions.map((d: any) => [d.principal, d.stage]), [['bob', 0], ['abby', 1], ['bob', 1]]);

    // The decided lifecycle event names the same deciders.
    const events = await until(
      'the decided event',
      async () => (await platform.api(`/v1/runs/${runId}/events`)).body.events as any[],
      (list) => list.some((e) => e.type === 'workflow.approval.decided'),
    );
    const decided = events.find((e) => e.type === 'workflow.approval.decided');
    assert.deepEqual([decided.data.status, decided.data.deciders, decided.data.escalated], ['approved', ['abby', 'bob'], true]);
  });
});
