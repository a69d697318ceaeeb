import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DecisionKeys, signDecisionToken } from '../../activities/platform/decision-tokens.ts';
import { createPool, type Pool } from '../../common/db.ts';
import { resolveTemporalCli } from '../../embedded/temporal-cli.ts';
import { KEYS, startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

const run = promisify(execFile);

/**
 * Human approvals end to end: the run blocks on an approval step (a condition, no activity, no
 * polling) until approvers decide through the API (an update with a validator) or the Temporal UI
 * path (a signal, sent here with the real `temporal` CLI exactly as the UI's form sends it).
 * Approvers: bob, carol and lena are in `finance`; abby and dave are in no group; sam submits.
 */
describe('human approvals end to end', () => {
  let platform: TestPlatform;
  let client: Client;
  let pool: Pool;
  /** Decision → next step start, in ms, for every API approval that let a run go on. */
  const latencies: number[] = [];

  before(async () => {
    platform = await startTestPlatform({ database: 'postgres' });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    pool = createPool(platform.config.DATABASE_URL!, 1);
  });

  after(async () => {
    await pool?.end();
    await client?.connection.close();
    await platform?.stop();
  });

  const approval = (extra: Record<string, unknown> = {}) => ({
    id: 'sign-off',
    type: 'approval',
    approvers: { groups: ['finance'] },
    summary: 'Pay ${input.amount} EUR to ${input.vendor}',
    ...extra,
  });

  async function startRun(name: string, steps: unknown[], key: string = KEYS.submitter, extra: Record<string, unknown> = {}): Promise<string> {
    const registered = await platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', steps, ...extra } });
    assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', key, json: { definition: name, input: { amount: 120, vendor: 'ACME' } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    return started.body.runId as string;
  }

  /** Waits until the run shows a pending approval for the step (the step has been reached). */
  async function pendingApproval(runId: string, step = 'sign-off'): Promise<any> {
    for (let i = 0; i < 200; i += 1) {
      const view = (await platform.api(`/v1/runs/${runId}`)).body;
      const found = (view.approvals ?? []).find((a: any) => a.stepId === step && a.status === 'pending');
      if (found) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no pending approval "${step}" in ${runId}`);
  }

  const decide = (runId: string, key: string, decision: string, comment?: string, step = 'sign-off') =>
    platform.api(`/v1/runs/${runId}/approvals/${step}`, { method: 'POST', key, json: { decision, ...(comment ? { comment } : {}) } });

  async function historyOf(runId: string) {
    return (await client.workflow.getHandle(runId).fetchHistory()).events ?? [];
  }

  /** The history once the run is quiet: every activity it scheduled (e.g. its lifecycle-event write) has closed. */
  async function quietHistory(runId: string) {
    for (let i = 0; ; i += 1) {
      const events = await historyOf(runId);
      const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes).length;
      const closed = events.filter((e) => e.activityTaskCompletedEventAttributes || e.activityTaskFailedEventAttributes).length;
      const last = events[events.length - 1];
      if ((scheduled === closed && last?.workflowTaskCompletedEventAttributes) || i > 100) return events;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** From the history: the accepted decision (update) to the start of the next step's `echo` activity. */
  async function recordLatency(runId: string): Promise<number> {
    const events = await historyOf(runId);
    const accepted = [...events].reverse().find((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    const scheduled = events.find(
      (e) => Number(e.eventId) > Number(accepted?.eventId) && e.activityTaskScheduledEventAttributes?.activityType?.name === 'echo',
    );
    const started = events.find((e) => Number(e.activityTaskStartedEventAttributes?.scheduledEventId ?? -1) === Number(scheduled?.eventId));
    assert.ok(accepted?.eventTime && started?.eventTime, 'the history holds the accepted decision and the next step start');
    const ms = (t: { seconds?: unknown; nanos?: number | null }) => Number(t.seconds) * 1000 + (t.nanos ?? 0) / 1e6;
    const latency = ms(started.eventTime as never) - ms(accepted.eventTime as never);
    latencies.push(latency);
    return latency;
  }

  test('registration and validate warn about approval steps nobody can answer today, and still register', async () => {
    const definition = {
      name: 'nobody-can-approve',
      version: '1.0.0',
      steps: [
        { id: 'known', type: 'approval', approvers: { groups: ['finance'] } },
        { id: 'ghost', type: 'approval', approvers: { groups: ['finance', 'auditors'] } },
        {
          id: 'big',
          type: 'approval',
          approvers: { principals: ['abby'], groups: ['auditors'] },
          quorum: 2,
          on_timeout: 'escalate',
          timeout: 60,
          escalation: { approvers: { groups: ['board'] }, timeout: 60 },
        },
      ],
    };
    const validated = await platform.api('/v1/definitions/validate', { method: 'POST', json: definition });
    assert.equal(validated.status, 200, JSON.stringify(validated.body));
    assert.equal(validated.body.valid, true, JSON.stringify(validated.body.errors));
    const expected = [
      ['/steps/1/approvers/groups/1', 'ghost', /group "auditors" has no members in tenant "acme-[0-9a-f]+"'s key configuration/],
      ['/steps/2/approvers/groups/0', 'big', /group "auditors" has no members/],
      ['/steps/2/approvers', 'big', /quorum 2 needs 2 distinct approvers but 1 can decide today \(abby\)/],
      ['/steps/2/escalation/approvers/groups/0', 'big', /group "board" has no members/],
      ['/steps/2/escalation/approvers', 'big', /quorum 1 needs 1 distinct approver but 0 can decide today \(nobody\)/],
    ] as const;
    for (const body of [validated.body, (await platform.api('/v1/definitions', { method: 'POST', json: definition })).body]) {
      assert.deepEqual(
        body.warnings.map((w: any) => [w.path, w.stepId]),
        expected.map(([path, stepId]) => [path, stepId]),
      );
      body.warnings.forEach((w: any, i: number) => assert.match(w.message, expected[i]![2]));
    }
    assert.equal((await platform.api('/v1/definitions/nobody-can-approve/versions/1.0.0')).status, 200, 'registered despite the warnings');
  });

  test('one approval lets the run go on; the inbox, the run view and the audit trail show it', async () => {
    const runId = await startRun('pay-once', [approval(), { id: 'pay', type: 'skill', skill: 'echo', inputs: { decision: '${steps.sign-off.output.decision}' } }]);
    const pending = await pendingApproval(runId);
    assert.equal(pending.summary, 'Pay 120 EUR to ACME');
    assert.deepEqual(pending.approvers, { principals: [], groups: ['finance'] });

    // bob's inbox lists it (through the PendingApprovers search attribute); dave's does not.
    let inbox: any[] = [];
    for (let i = 0; i < 50 && inbox.length === 0; i += 1) {
      inbox = (await platform.api('/v1/approvals', { key: KEYS.bob })).body.approvals.filter((a: any) => a.runId === runId);
      if (inbox.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      inbox.map((a) => [a.step, a.summary, a.quorum, a.approvals, a.startedBy]),
      [['sign-off', 'Pay 120 EUR to ACME', 1, 0, 'sam']],
    );
    // With bob's decision token, as a ready-to-paste signal and as a CLI command.
    assert.match(inbox[0].token, /^dt1\.[\w-]+\.[\w-]+$/);
    assert.deepEqual(inbox[0].signal, { name: 'approval', input: { step: 'sign-off', approver: 'bob', decision: 'approve', token: inbox[0].token } });
    assert.ok(Date.parse(inbox[0].tokenExpiresAt) > Date.now());
    assert.match(inbox[0].cli, /^temporal workflow signal --workflow-id '.+' --name approval --input '\{"step":"sign-off"/);
    assert.equal((await platform.api('/v1/approvals', { key: KEYS.dave })).body.approvals.filter((a: any) => a.runId === runId).length, 0);
    const desc = await client.workflow.getHandle(runId).describe();
    assert.deepEqual(desc.searchAttributes.PendingApprovers, ['group:finance']);

    const answer = await decide(runId, KEYS.bob, 'approve', 'invoice checked');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { runId, step: 'sign-off', stepPath: 'sign-off', status: 'approved', duplicate: false, approvals: 1, quorum: 1 });

    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { decision: 'approve' });
    const record = view.approvals[0];
    assert.equal(record.status, 'approved');
    assert.deepEqual(record.decisions.map((d: any) => [d.principal, d.decision, d.comment, d.via]), [['bob', 'approve', 'invoice checked', 'api']]);
    await recordLatency(runId);

    const audit = (await platform.api(`/v1/runs/${runId}/audit`)).body.entries;
    assert.deepEqual(audit.map((e: any) => [e.principal, e.decision, e.outcome, e.via, e.comment]), [['bob', 'approve', 'accepted', 'api', 'invoice checked']]);
    // The run blocked without any activity of its own: only the echo after it, the writes of its
    const activities = (await historyOf(runId)).filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
    // lifecycle events (which carry the audit entries), and the check of the API's decision proof.
    assert.deepEqual([...new Set(activities)].sort(), ['echo', 'recordRunEvents', 'verifyDecisionToken']);
    const cleared = await client.workflow.getHandle(runId).describe();
    assert.deepEqual(cleared.searchAttributes.PendingApprovers ?? [], []);
  });

  test('refusals answer at once and add nothing to history: non-approver 403, self-approval 403, unknown step 404, then 409 once decided; a repeat is idempotent', async () => {
    const runId = await startRun('pay-refusals', [approval(), { id: 'after', type: 'skill', skill: 'echo' }], KEYS.lena);
    await pendingApproval(runId);
    const before = (await quietHistory(runId)).length;

    const notApprover = await decide(runId, KEYS.dave, 'approve');
    assert.equal(notApprover.status, 403);
    assert.match(notApprover.body.detail, /dave is not an approver of step "sign-off"/);
    const self = await decide(runId, KEYS.lena, 'approve');
    assert.equal(self.status, 403);
    assert.match(self.body.detail, /lena started this run and may not approve it/);
    const unknown = await decide(runId, KEYS.bob, 'approve', undefined, 'nope');
    assert.equal(unknown.status, 404);
    const noRole = await decide(runId, KEYS.submitter, 'approve');
    assert.equal(noRole.status, 403);
    const badBody = await platform.api(`/v1/runs/${runId}/approvals/sign-off`, { method: 'POST', key: KEYS.bob, json: { decision: 'maybe', approver: 'carol' } });
    assert.equal(badBody.status, 400);
    assert.equal((await historyOf(runId)).length, before, 'refused attempts add no history events');

    assert.equal((await decide(runId, KEYS.carol, 'approve')).status, 200);
    const again = await decide(runId, KEYS.carol, 'approve');
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    await platform.waitForRun(runId);
    const late = await decide(runId, KEYS.bob, 'reject');
    assert.equal(late.status, 409);

    const audit = (await platform.api(`/v1/runs/${runId}/audit`)).body.entries;
    assert.deepEqual(
      audit.map((e: any) => [e.principal, e.outcome, e.code ?? null]),
      [
        ['dave', 'refused', 'forbidden'],
        ['lena', 'refused', 'self_approval'],
        ['bob', 'refused', 'not_found'],
        ['carol', 'accepted', null],
        ['bob', 'refused', 'conflict'],
      ],
    );
  });

  test('quorum 2 of 3: the first approval waits for a second', async () => {
    const runId = await startRun('pay-quorum', [approval({ quorum: 2, approvers: { principals: ['abby', 'bob', 'carol'] } }), { id: 'after', type: 'skill', skill: 'echo' }]);
    await pendingApproval(runId);
    const first = await decide(runId, KEYS.approver, 'approve');
    assert.deepEqual([first.status, first.body.status, first.body.approvals, first.body.quorum], [200, 'pending', 1, 2]);
    assert.equal((await platform.api(`/v1/runs/${runId}`)).body.status, 'running');
    const second = await decide(runId, KEYS.carol, 'approve', 'ok by me');
    assert.deepEqual([second.status, second.body.status], [200, 'approved']);
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed');
    assert.deepEqual(view.steps.find((s: any) => s.id === 'sign-off').output.deciders, ['abby', 'carol']);
    await recordLatency(runId);
  });

  test('a rejection fails the run by default; with on_reject continue a later step branches on the decision', async () => {
    const failing = await startRun('pay-reject', [approval(), { id: 'after', type: 'skill', skill: 'echo' }]);
    await pendingApproval(failing);
    assert.equal((await decide(failing, KEYS.bob, 'reject', 'wrong vendor')).status, 200);
    const failed = await platform.waitForRun(failing);
    assert.equal(failed.status, 'failed');
    assert.deepEqual([failed.error.type, failed.error.step], ['ApprovalRejected', 'sign-off']);
    assert.match(failed.error.message, /rejected by bob: wrong vendor/);
    // Temporal Web shows the step's own error type as the run's failure, not a generic RunFailed.
    await assert.rejects(client.workflow.getHandle(failing).result(), (error: any) => {
      assert.equal(error.cause?.type, 'ApprovalRejected', String(error));
      return true;
    });

    const continuing = await startRun('pay-reject-continue', [
      approval({ on_reject: 'continue' }),
      {
        id: 'route',
        type: 'conditional',
        condition: "steps.sign-off.output.decision == 'approve'",
        then: [{ id: 'pay', type: 'skill', skill: 'echo', inputs: { paid: true } }],
        else: [{ id: 'notify', type: 'skill', skill: 'echo', inputs: { rejectedBy: '${steps.sign-off.output.deciders[0]}' } }],
      },
    ]);
    await pendingApproval(continuing);
    assert.equal((await decide(continuing, KEYS.carol, 'reject')).status, 200);
    const done = await platform.waitForRun(continuing);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.output, { rejectedBy: 'carol' });
  });

  test('timeouts: reject, approve and fail, and an escalation to another approver set', async () => {
    const outcome = async (name: string, onTimeout: string) => {
      const runId = await startRun(name, [approval({ timeout: 1, on_timeout: onTimeout, on_reject: 'continue' }), { id: 'after', type: 'set', values: { d: '${steps.sign-off.output.decision}' } }]);
      return platform.waitForRun(runId);
    };
    const rejected = await outcome('timeout-reject', 'reject');
    assert.deepEqual([rejected.status, rejected.output.d, rejected.approvals[0].timedOut], ['completed', 'reject', true]);
    const approved = await outcome('timeout-approve', 'approve');
    assert.deepEqual([approved.status, approved.output.d], ['completed', 'approve']);
    const failed = await outcome('timeout-fail', 'fail');
    assert.deepEqual([failed.status, failed.error.type, failed.error.step], ['failed', 'ApprovalTimeout', 'sign-off']);
    // A decision after the timeout is refused clearly.
    const late = await decide(failed.runId, KEYS.bob, 'approve');
    assert.equal(late.status, 409);

    const escalating = await startRun('timeout-escalate', [
      approval({ timeout: 1, on_timeout: 'escalate', escalation: { approvers: { principals: ['abby'] }, timeout: 60 } }),
      { id: 'after', type: 'skill', skill: 'echo' },
    ]);
    for (let i = 0; i < 100; i += 1) {
      const view = (await platform.api(`/v1/runs/${escalating}`)).body;
      if (view.approvals?.[0]?.escalated) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // After the escalation the finance group may no longer decide; abby may.
    assert.equal((await decide(escalating, KEYS.bob, 'approve')).status, 403);
    assert.equal((await decide(escalating, KEYS.approver, 'approve', 'escalated and approved')).status, 200);
    const view = await platform.waitForRun(escalating);
    assert.equal(view.status, 'completed');
    assert.deepEqual([view.approvals[0].escalated, view.approvals[0].stage, view.approvals[0].decisions[0].principal], [true, 1, 'abby']);
  });

  /** Sends the `approval` signal with the real temporal CLI, as Temporal Web's form does. */
  const signalCli = (runId: string, payload: unknown) =>
    run(resolveTemporalCli(), ['workflow', 'signal', '--address', temporalAddress(), '--workflow-id', runId, '--name', 'approval', '--input', JSON.stringify(payload)]);

  async function inboxItem(runId: string, key: string): Promise<any> {
    for (let i = 0; i < 100; i += 1) {
      const found = (await platform.api('/v1/approvals', { key })).body.approvals.find((a: any) => a.runId === runId);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no inbox entry for ${runId}`);
  }

  async function auditOf(runId: string, count: number): Promise<any[]> {
    let audit: any[] = [];
    for (let i = 0; i < 100 && audit.length < count; i += 1) {
      audit = (await platform.api(`/v1/runs/${runId}/audit`)).body.entries;
      if (audit.length < count) await new Promise((r) => setTimeout(r, 100));
    }
    return audit;
  }

  test('the Temporal UI path: the signal the inbox offers decides; one without a token is refused and recorded', async () => {
    const runId = await startRun('pay-signal', [approval(), { id: 'after', type: 'skill', skill: 'echo' }]);
    await pendingApproval(runId);
    await signalCli(runId, { step: 'sign-off', approver: 'dave', decision: 'approve' });
    const offered = await inboxItem(runId, KEYS.carol);
    await signalCli(runId, { ...offered.signal.input, comment: 'approved from the UI' });
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.approvals[0].decisions.map((d: any) => [d.principal, d.via, d.comment]), [['carol', 'signal', 'approved from the UI']]);
    const audit = await auditOf(runId, 2);
    assert.deepEqual(
      audit.map((e: any) => [e.principal, e.outcome, e.via, e.code ?? null]),
      [
        ['dave', 'refused', 'signal', 'unproven'],
        ['carol', 'accepted', 'signal', null],
      ],
    );
    assert.match(audit[0].reason, /^no decision token: paste the signal payload your inbox \(GET \/v1\/approvals\) offers$/);
  });

  test('Temporal Web explains itself: handler descriptions, current details with approvers, count, deadline and the last refusal, activity summaries with the step path, timers that say what they wait for', async () => {
    const runId = await startRun('pay-explained', [
      approval({ quorum: 2, timeout: 3600, on_timeout: 'reject', approvers: { groups: ['finance'], principals: ['abby'] } }),
      { id: 'after', type: 'skill', skill: 'echo' },
    ]);
    await pendingApproval(runId);
    await signalCli(runId, { step: 'sign-off', approver: 'dave', decision: 'approve' });
    assert.equal((await decide(runId, KEYS.bob, 'approve')).status, 200);
    const handle = client.workflow.getHandle(runId);
    let meta: any;
    for (let i = 0; i < 100; i += 1) {
      meta = await handle.query('__temporal_workflow_metadata');
      if (/last refused/.test(meta.currentDetails ?? '') && /1 of 2/.test(meta.currentDetails ?? '')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const described = (list: any[]) => Object.fromEntries(list.map((d: any) => [d.name, d.description ?? '']));
    const signals = described(meta.definition.signalDefinitions);
    const updates = described(meta.definition.updateDefinitions);
    const queries = described(meta.definition.queryDefinitions);
    assert.match(signals.approval, /"decision": "approve" \| "reject"/);
    assert.match(signals.approval, /"token"/);
    assert.match(updates.decideApproval, /^API only/);
    assert.match(queries.pendingApprovals, /approvers, quorum/);
    assert.match(queries.runState, /live state/);
    const details: string = meta.currentDetails;
    assert.match(details, /▶ sign-off/);
    assert.match(details, /⏳ approval sign-off: 1 of 2 approval\(s\), approvers user abby, group finance, deadline \d{4}-\d\d-\d\dT/);
    assert.match(details, /last refused: dave \(signal\) on sign-off at .+: unproven: no decision token/);
    // The approval's deadline timer says what it waits for.
    const events = await historyOf(runId);
    const text = (p: any) => (p?.data ? JSON.parse(Buffer.from(p.data).toString('utf8')) : undefined);
    const timer = events.find((e) => e.timerStartedEventAttributes);
    assert.equal(text(timer?.userMetadata?.summary), 'deadline of approval sign-off');
    assert.equal((await decide(runId, KEYS.carol, 'approve')).status, 200);
    assert.equal((await platform.waitForRun(runId)).status, 'completed');
    // The step's activity is summarised with its step path.
    const after = (await historyOf(runId)).find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'echo');
    assert.equal(text(after?.userMetadata?.summary), 'step after');
  });

  test('every decision proves its sender: forged updates and signals are refused and audited as refused with their true channel', async () => {
    const runId = await startRun('pay-forged', [approval({ quorum: 2 }), { id: 'after', type: 'skill', skill: 'echo', inputs: { by: '${steps.sign-off.output.deciders}' } }]);
    const otherRun = await startRun('pay-forged-other', [approval()]);
    await pendingApproval(runId);
    await pendingApproval(otherRun);
    const handle = client.workflow.getHandle(runId);
    // A decideApproval update from Temporal Web or the CLI: mallory claims finance, bob is claimed
    // with a made-up proof. Both fail, and the audit says they came as an update, not from the API.
    for (const forged of [
      { step: 'sign-off', decision: 'approve', principal: 'mallory', groups: ['finance'] },
      { step: 'sign-off', decision: 'approve', principal: 'bob', groups: ['finance'], proof: 'dt1.e30.AAAA' },
    ]) {
      await assert.rejects(handle.executeUpdate('decideApproval', { args: [forged] }), (error: any) => {
        assert.equal(error.cause?.type, 'unproven', String(error));
        return true;
      });
    }
    const bob = await inboxItem(runId, KEYS.bob);
    const bobElsewhere = await inboxItem(otherRun, KEYS.bob);
    // Tokens signed with the platform's own key but bound elsewhere: another step, expired.
    const keys = new DecisionKeys(pool);
    const claims = { run: runId, step: 'sign-off', stage: 0, principal: 'carol', groups: ['finance'], channel: 'signal' as const, exp: Date.now() + 60_000 };
    const otherStep = await signDecisionToken(keys, { ...claims, step: 'pay' });
    const expired = await signDecisionToken(keys, { ...claims, exp: Date.now() - 1000 });
    const signals: Array<[unknown, RegExp]> = [
      [{ step: 'sign-off', approver: 'carol', decision: 'approve' }, /^no decision token/],
      [{ ...bob.signal.input, approver: 'carol' }, /^the decision token is bob's, not carol's$/],
      [{ ...bobElsewhere.signal.input, step: 'sign-off' }, /^the decision token is for run ".+", not this run$/],
      [{ step: 'sign-off', decision: 'approve', token: otherStep }, /^the decision token is for step "pay", not "sign-off"$/],
      [{ step: 'sign-off', decision: 'approve', token: expired }, /^the decision token expired at /],
      [{ ...bob.signal.input, token: `${bob.token.slice(0, -4)}AAAA` }, /^the decision token's signature is not valid/],
    ];
    for (const [payload] of signals) await signalCli(runId, payload);
    // Nothing counted: the step still waits with no decision.
    const still = await pendingApproval(runId);
    assert.deepEqual(still.decisions, []);
    const audit = await auditOf(runId, 2 + signals.length);
    assert.deepEqual(
      audit.map((e: any) => [e.principal, e.outcome, e.via, e.code]),
      [
        ['mallory', 'refused', 'update', 'unproven'],
        ['bob', 'refused', 'update', 'unproven'],
        ['carol', 'refused', 'signal', 'unproven'],
        ['carol', 'refused', 'signal', 'unproven'],
        ['bob', 'refused', 'signal', 'unproven'],
        ['carol', 'refused', 'signal', 'unproven'],
        ['carol', 'refused', 'signal', 'unproven'],
        ['bob', 'refused', 'signal', 'unproven'],
      ],
    );
    for (const [i, [, reason]] of signals.entries()) assert.match(audit[2 + i].reason, reason);
    // The real paths still work, mixed: bob through the API, carol by her inbox's signal.
    assert.equal((await decide(runId, KEYS.bob, 'approve')).status, 200);
    await signalCli(runId, (await inboxItem(runId, KEYS.carol)).signal.input);
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { by: ['bob', 'carol'] });
    assert.deepEqual(view.approvals[0].decisions.map((d: any) => [d.principal, d.via]), [['bob', 'api'], ['carol', 'signal']]);
    await platform.api(`/v1/runs/${otherRun}/cancel`, { method: 'POST' });
  });

  test('decision to next step: the history orders them, over repeated runs (p50 in the diagnostics)', async (t) => {
    for (let i = 0; i < 10; i += 1) {
      const runId = await startRun('pay-latency', [approval(), { id: 'next', type: 'skill', skill: 'echo' }]);
      await pendingApproval(runId);
      assert.equal((await decide(runId, KEYS.bob, 'approve')).status, 200);
      assert.equal((await platform.waitForRun(runId)).status, 'completed');
      assert.ok((await recordLatency(runId)) > 0);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)] ?? NaN;
    t.diagnostic(`approval decision → next step start: p50 ${p50.toFixed(1)} ms, min ${sorted[0]?.toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms over ${sorted.length} decisions`);
  });

  test('a pending approval survives a worker restart', async () => {
    const runId = await startRun('pay-restart', [approval(), { id: 'after', type: 'skill', skill: 'echo', inputs: { by: '${steps.sign-off.output.deciders[0]}' } }]);
    await pendingApproval(runId);
    // Restart once the run is idle in its approval (its lifecycle-event write done): a task the
    // server hands to a worker that is stopping is only retried after its timeout.
    await quietHistory(runId);
    await platform.restartWorkers();
    assert.equal((await decide(runId, KEYS.bob, 'approve')).status, 200);
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed');
    assert.deepEqual(view.output, { by: 'bob' });
    await recordLatency(runId);
  });
});
