import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyDecision,
  approvalDecidedEvent,
  approvalsCounted,
  approvesAs,
  currentDeciders,
  describeApprovals,
  hasDecidedCurrentStage,
  findApproval,
  judge,
  pendingApproverKeys,
  type ApprovalRecord,
  type DecisionAttempt,
  type Verdict,
} from '../../interpreter/approvals.ts';

/**
 * The pure approval rules: which record an attempt names, whether it counts (judge), how an
 * accepted decision settles the record (applyDecision), and the PendingApprovers values.
 */

const AT = '2030-01-01T00:00:00.000Z';

function record(extra: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    stepId: 'sign-off',
    stepPath: 'sign-off',
    summary: 'Pay 120 EUR to ACME',
    status: 'pending',
    stage: 0,
    approvers: { principals: ['ann', 'ben', 'sam'], groups: ['finance'] },
    quorum: 1,
    allowSelfApproval: false,
    startedBy: 'sam',
    requestedAt: AT,
    decisions: [],
    ...extra,
  };
}

const attempt = (extra: Partial<DecisionAttempt> = {}): DecisionAttempt => ({
  step: 'sign-off',
  principal: 'ann',
  decision: 'approve',
  via: 'api',
  ...extra,
});

const byPath = (...records: ApprovalRecord[]): Record<string, ApprovalRecord> => Object.fromEntries(records.map((r) => [r.stepPath, r]));

/** Asserts a refusal with this code and a reason matching `reason`; returns it. */
function refused(verdict: Verdict, code: string, reason: RegExp): Extract<Verdict, { ok: false }> {
  assert.equal(verdict.ok, false, `expected a refusal, got ${JSON.stringify(verdict)}`);
  if (verdict.ok) throw new Error('unreachable');
  assert.equal(verdict.code, code);
  assert.match(verdict.reason, reason);
  return verdict;
}

/** Asserts an accepted verdict for `expected` (by identity); returns `duplicate`. */
function accepted(verdict: Verdict, expected: ApprovalRecord): boolean {
  assert.equal(verdict.ok, true, `expected acceptance, got ${JSON.stringify(verdict)}`);
  if (!verdict.ok) throw new Error('unreachable');
  assert.equal(verdict.record, expected, 'the verdict names the expected record');
  return verdict.duplicate;
}

describe('approvals: findApproval', () => {
  test('a step path names its record exactly; an unknown name finds nothing', () => {
    const first = record({ stepPath: 'loop[0]/sign-off', status: 'approved' });
    const second = record({ stepPath: 'loop[1]/sign-off' });
    const approvals = byPath(first, second);
    assert.equal(findApproval(approvals, 'loop[0]/sign-off'), first);
    assert.equal(findApproval(approvals, 'loop[1]/sign-off'), second);
    assert.equal(findApproval(approvals, 'nope'), undefined);
    assert.equal(findApproval({}, 'sign-off'), undefined);
  });

  test('by step id: the one pending record among settled ones, wherever it sits', () => {
    const pending = record({ stepPath: 'loop[1]/sign-off' });
    const approvals = byPath(
      record({ stepPath: 'loop[0]/sign-off', status: 'approved' }),
      pending,
      record({ stepPath: 'loop[2]/sign-off', status: 'rejected' }),
    );
    assert.equal(findApproval(approvals, 'sign-off'), pending);
  });

  test('by step id with nothing pending: the latest record (so a late decision meets a conflict, not a 404)', () => {
    const last = record({ stepPath: 'loop[2]/sign-off', status: 'rejected' });
    const approvals = byPath(record({ stepPath: 'loop[0]/sign-off', status: 'approved' }), record({ stepPath: 'loop[1]/sign-off', status: 'failed', timedOut: true }), last);
    assert.equal(findApproval(approvals, 'sign-off'), last);
    // Other step ids are never matched by id.
    assert.equal(findApproval(approvals, 'other'), undefined);
  });

  test('a path key wins over a step id that happens to be spelled the same', () => {
    const top = record({ stepPath: 'sign-off', status: 'approved' });
    const nested = record({ stepPath: 'each[0]/sign-off' });
    assert.equal(findApproval(byPath(top, nested), 'sign-off'), top);
  });
});

describe('approvals: judge', () => {
  test('an invalid decision is refused first, whatever else is wrong', () => {
    for (const decision of ['maybe', 'APPROVE', '', 'undefined']) {
      const v = refused(judge({}, attempt({ decision, principal: '' }), {}), 'invalid', /decision must be "approve" or "reject"/);
      assert.match(v.reason, new RegExp(JSON.stringify(decision).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assert.equal(v.record, undefined);
    }
  });

  test('a missing approver is invalid (before the step is looked up)', () => {
    const v = refused(judge({}, attempt({ principal: '' }), {}), 'invalid', /^the approver is missing$/);
    assert.equal(v.record, undefined);
  });

  test('an approval step that has not been reached is not_found, naming the step', () => {
    const v = refused(judge(byPath(record()), attempt({ step: 'pay' }), {}), 'not_found', /no approval step "pay" has been reached in this run/);
    assert.equal(v.record, undefined);
    refused(judge({}, attempt(), {}), 'not_found', /"sign-off"/);
  });

  test('by path and by id: the attempt decides the record it names', () => {
    const done = record({ stepPath: 'loop[0]/sign-off', status: 'approved', decisions: [{ principal: 'ben', decision: 'approve', at: AT, via: 'api' }] });
    const open = record({ stepPath: 'loop[1]/sign-off' });
    const approvals = byPath(done, open);
    assert.equal(accepted(judge(approvals, attempt(), {}), open), false, 'by id: the pending iteration');
    assert.equal(accepted(judge(approvals, attempt({ step: 'loop[1]/sign-off' }), {}), open), false, 'by path');
    const late = refused(judge(approvals, attempt({ step: 'loop[0]/sign-off' }), {}), 'conflict', /approval "sign-off" was already approved/);
    assert.equal(late.record, done);
  });

  test('several records with the same step id and none pending: the latest answers (a conflict)', () => {
    const approvals = byPath(
      record({ stepPath: 'loop[0]/sign-off', status: 'approved' }),
      record({ stepPath: 'loop[1]/sign-off', status: 'rejected' }),
    );
    const v = refused(judge(approvals, attempt(), {}), 'conflict', /was already rejected/);
    assert.equal(v.record?.stepPath, 'loop[1]/sign-off');
  });

  test('by step id with several records pending at once (a concurrent for_each): refused as ambiguous, listing the paths', () => {
    const a = record({ stepPath: 'each[0]/sign-off' });
    const b = record({ stepPath: 'each[1]/sign-off' });
    const approvals = byPath(a, b, record({ stepPath: 'each[2]/sign-off', status: 'approved' }));
    const v = refused(
      judge(approvals, attempt(), {}),
      'invalid',
      /^2 approvals of step "sign-off" are pending; name one by its path: each\[0\]\/sign-off, each\[1\]\/sign-off$/,
    );
    assert.equal(v.record, undefined);
    // Named by path, each one is decided as usual.
    assert.equal(accepted(judge(approvals, attempt({ step: 'each[1]/sign-off' }), {}), b), false);
    assert.equal(accepted(judge(approvals, attempt({ step: 'each[0]/sign-off' }), {}), a), false);
    // The ambiguity check comes after the attempt's own validity.
    refused(judge(approvals, attempt({ decision: 'maybe' }), {}), 'invalid', /decision must be/);
  });

  test('someone who is neither a named principal nor in a named group is forbidden', () => {
    const r = record();
    const v = refused(judge(byPath(r), attempt({ principal: 'zed' }), {}), 'forbidden', /zed is not an approver of step "sign-off"/);
    assert.equal(v.record, r);
    // Groups that are not the step's, from the credential or the directory, do not help.
    refused(judge(byPath(r), attempt({ principal: 'zed', groups: ['legal'] }), { legal: ['zed'] }), 'forbidden', /zed/);
    // The directory lists members by group: being listed under another group is not membership.
    refused(judge(byPath(r), attempt({ principal: 'zed', via: 'signal' }), { legal: ['zed'], finance: ['bob'] }), 'forbidden', /zed/);
  });

  test('a named principal may decide without any group', () => {
    const r = record({ approvers: { principals: ['ann'], groups: [] } });
    assert.equal(accepted(judge(byPath(r), attempt(), {}), r), false);
  });

  test('group membership: from the attempt\'s groups (the API\'s credential) or from the directory (signals)', () => {
    const r = record({ approvers: { principals: [], groups: ['finance'] } });
    const approvals = byPath(r);
    // The API vouches for the caller's groups.
    assert.equal(accepted(judge(approvals, attempt({ principal: 'bob', groups: ['finance'] }), {}), r), false);
    assert.equal(approvesAs(r, { principal: 'bob', groups: ['ops', 'finance'] }, {}), true);
    // A signal carries no groups: the directory captured at the start decides.
    assert.equal(accepted(judge(approvals, attempt({ principal: 'bob', via: 'signal' }), { finance: ['carol', 'bob'] }), r), false);
    refused(judge(approvals, attempt({ principal: 'bob', via: 'signal' }), {}), 'forbidden', /bob is not an approver/);
    refused(judge(approvals, attempt({ principal: 'bob', groups: [] }), { finance: ['carol'] }), 'forbidden', /bob/);
  });

  test('self-approval: the run\'s starter is refused unless the step allows it', () => {
    const strict = record();
    refused(judge(byPath(strict), attempt({ principal: 'sam' }), {}), 'self_approval', /sam started this run and may not approve it/);
    // Also when the starter qualifies through a group, and for a rejection.
    refused(judge(byPath(strict), attempt({ principal: 'sam', decision: 'reject', groups: ['finance'] }), {}), 'self_approval', /sam/);
    const lenient = record({ allowSelfApproval: true });
    assert.equal(accepted(judge(byPath(lenient), attempt({ principal: 'sam' }), {}), lenient), false);
    // A starter who is no approver at all is forbidden, not a self-approval.
    refused(judge(byPath(record({ startedBy: 'zed' })), attempt({ principal: 'zed' }), {}), 'forbidden', /zed is not an approver/);
  });

  test('the same decision again is accepted as a duplicate, also once the approval is settled or timed out', () => {
    const decided = { principal: 'ann', decision: 'approve' as const, at: AT, via: 'api' as const };
    const pending = record({ quorum: 2, decisions: [decided] });
    assert.equal(accepted(judge(byPath(pending), attempt(), {}), pending), true);
    const approved = record({ status: 'approved', decisions: [decided] });
    assert.equal(accepted(judge(byPath(approved), attempt({ via: 'signal' }), {}), approved), true, 'the channel does not matter');
    const timedOut = record({ status: 'approved', timedOut: true, quorum: 2, decisions: [decided] });
    assert.equal(accepted(judge(byPath(timedOut), attempt(), {}), timedOut), true);
    const rejected = record({ status: 'rejected', decisions: [{ ...decided, decision: 'reject' }] });
    assert.equal(accepted(judge(byPath(rejected), attempt({ decision: 'reject' }), {}), rejected), true);
  });

  test('a different second decision by the same approver is a conflict', () => {
    const r = record({ quorum: 2, decisions: [{ principal: 'ann', decision: 'approve', at: AT, via: 'api' }] });
    const v = refused(judge(byPath(r), attempt({ decision: 'reject' }), {}), 'conflict', /ann already decided "approve" on step "sign-off"/);
    assert.equal(v.record, r);
  });

  test('a settled approval refuses new decisions as a conflict, saying why', () => {
    const cases: Array<[Partial<ApprovalRecord>, RegExp]> = [
      [{ status: 'approved' }, /^approval "sign-off" was already approved$/],
      [{ status: 'rejected' }, /^approval "sign-off" was already rejected$/],
      [{ status: 'cancelled' }, /^approval "sign-off" was already cancelled$/],
      [{ status: 'approved', timedOut: true }, /^approval "sign-off" timed out$/],
      [{ status: 'rejected', timedOut: true }, /^approval "sign-off" timed out$/],
      [{ status: 'failed', timedOut: true }, /^approval "sign-off" timed out$/],
    ];
    for (const [extra, reason] of cases) {
      const r = record(extra);
      for (const decision of ['approve', 'reject']) {
        const v = refused(judge(byPath(r), attempt({ decision }), {}), 'conflict', reason);
        assert.equal(v.record, r);
      }
    }
    // A settled record where this approver decided differently: still the settled reason first.
    const other = record({ status: 'rejected', decisions: [{ principal: 'ann', decision: 'reject', at: AT, via: 'api' }] });
    refused(judge(byPath(other), attempt(), {}), 'conflict', /was already rejected/);
  });

  test('judge changes nothing', () => {
    const r = record({ quorum: 2 });
    const approvals = byPath(r);
    const before = structuredClone(approvals);
    judge(approvals, attempt(), {});
    judge(approvals, attempt({ principal: 'zed' }), {});
    assert.deepEqual(approvals, before);
  });
});

describe('approvals: applyDecision', () => {
  test('approvals count to the quorum; the record settles as approved when it is reached', () => {
    const r = record({ quorum: 2 });
    applyDecision(r, attempt({ comment: 'looks fine' }), '2030-01-01T00:00:01.000Z');
    assert.equal(r.status, 'pending');
    assert.deepEqual(r.decisions, [{ principal: 'ann', decision: 'approve', comment: 'looks fine', at: '2030-01-01T00:00:01.000Z', via: 'api', stage: 0 }]);
    assert.equal(approvalsCounted(r), 1);
    applyDecision(r, attempt({ principal: 'ben', via: 'signal' }), '2030-01-01T00:00:02.000Z');
    assert.equal(r.status, 'approved');
    // No empty comment is stored.
    assert.deepEqual(r.decisions[1], { principal: 'ben', decision: 'approve', at: '2030-01-01T00:00:02.000Z', via: 'signal', stage: 0 });
  });

  test('quorum 1: the first approval settles it', () => {
    const r = record();
    applyDecision(r, attempt(), AT);
    assert.equal(r.status, 'approved');
  });

  test('one rejection settles it as rejected, even after approvals and with quorum to go', () => {
    const r = record({ quorum: 3 });
    applyDecision(r, attempt(), AT);
    applyDecision(r, attempt({ principal: 'ben', decision: 'reject', comment: 'no' }), AT);
    assert.equal(r.status, 'rejected');
    assert.deepEqual(r.decisions.map((d) => [d.principal, d.decision]), [['ann', 'approve'], ['ben', 'reject']]);
  });

  test('applying the same principal again changes nothing (idempotent), whatever it says this time', () => {
    const r = record({ quorum: 2 });
    applyDecision(r, attempt(), AT);
    const once = structuredClone(r);
    applyDecision(r, attempt(), '2030-01-02T00:00:00.000Z');
    applyDecision(r, attempt({ decision: 'reject' }), '2030-01-02T00:00:00.000Z');
    assert.deepEqual(r, once);
    assert.equal(r.status, 'pending');
  });

  test('judge then apply, as the workflow does: a quorum of 2 over three attempts with a duplicate', () => {
    const r = record({ quorum: 2 });
    const approvals = byPath(r);
    const play = (a: DecisionAttempt) => {
      const v = judge(approvals, a, {});
      if (v.ok && !v.duplicate) applyDecision(v.record, a, AT);
      return v;
    };
    assert.equal(play(attempt()).ok, true);
    const dup = play(attempt());
    assert.ok(dup.ok && dup.duplicate);
    assert.equal(r.status, 'pending');
    assert.equal(play(attempt({ principal: 'bob', groups: ['finance'] })).ok, true);
    assert.equal(r.status, 'approved');
    assert.equal(r.decisions.length, 2);
    refused(play(attempt({ principal: 'ben' })), 'conflict', /already approved/);
  });
});

describe('approvals: after an escalation the new approver set decides afresh', () => {
  /** A record escalated to stage 1 after ann approved (and cat rejected nothing) in stage 0. */
  const escalated = (extra: Partial<ApprovalRecord> = {}) =>
    record({
      stage: 1,
      escalated: true,
      approvers: { principals: ['ann', 'dan'], groups: [] },
      quorum: 2,
      decisions: [{ principal: 'ann', decision: 'approve', at: AT, via: 'api', stage: 0 }],
      ...extra,
    });

  test('decisions made to the first set do not count towards the new quorum', () => {
    const r = escalated();
    assert.equal(approvalsCounted(r), 0);
    applyDecision(r, attempt({ principal: 'dan' }), AT);
    assert.equal(r.status, 'pending', 'ann\'s stage-0 approval does not make the quorum of 2');
    assert.equal(approvalsCounted(r), 1);
  });

  test('someone of both sets decides again: not a duplicate, and it counts', () => {
    const r = escalated();
    assert.equal(accepted(judge(byPath(r), attempt(), {}), r), false);
    applyDecision(r, attempt(), '2030-01-01T01:00:00.000Z');
    assert.deepEqual(r.decisions.map((d) => [d.principal, d.stage]), [['ann', 0], ['ann', 1]]);
    assert.equal(approvalsCounted(r), 1);
    // Now it is a duplicate within stage 1, and a different decision a conflict.
    assert.equal(accepted(judge(byPath(r), attempt(), {}), r), true);
    refused(judge(byPath(r), attempt({ decision: 'reject' }), {}), 'conflict', /ann already decided "approve"/);
    applyDecision(r, attempt({ principal: 'dan' }), AT);
    assert.equal(r.status, 'approved');
  });

  test('a first-set approver who is not in the new set is forbidden, even repeating the same decision', () => {
    const r = escalated({ approvers: { principals: ['dan'], groups: [] }, quorum: 1 });
    refused(judge(byPath(r), attempt(), {}), 'forbidden', /ann is not an approver/);
  });

  test('a decision without a stage (recorded before stages existed) belongs to stage 0', () => {
    const legacy = record({ quorum: 2, decisions: [{ principal: 'ann', decision: 'approve', at: AT, via: 'api' }] });
    assert.equal(approvalsCounted(legacy), 1);
    assert.equal(accepted(judge(byPath(legacy), attempt(), {}), legacy), true);
    applyDecision(legacy, attempt({ principal: 'ben' }), AT);
    assert.equal(legacy.status, 'approved');
    const moved = escalated({ decisions: [{ principal: 'ann', decision: 'approve', at: AT, via: 'api' }] });
    assert.equal(approvalsCounted(moved), 0);
  });

  test('one rule for every reader: the lifecycle event, the step output, the quorum count and the inbox agree after an escalation', () => {
    // ann decided before the escalation (one decision stageless, as recorded before stages
    // existed), dan after it. The workflow's lifecycle event used to count a stageless decision
    // for every stage (deciders [ann, dan]) while the quorum and the API counted it for stage 0.
    const r = escalated({
      approvers: { principals: ['ann', 'dan', 'eve'], groups: [] },
      quorum: 3,
      decisions: [
        { principal: 'ann', decision: 'approve', at: AT, via: 'api' },
        { principal: 'cat', decision: 'approve', at: AT, via: 'signal', stage: 0 },
      ],
    });
    applyDecision(r, attempt({ principal: 'dan' }), AT);
    assert.deepEqual(currentDeciders(r), ['dan'], 'the engine\'s output deciders');
    assert.deepEqual(approvalDecidedEvent(r).deciders, ['dan'], 'the workflow.approval.decided event');
    assert.equal(approvalsCounted(r), 1, 'the update answer and the inbox count');
    assert.equal(hasDecidedCurrentStage(r, 'ann'), false, 'the inbox still offers ann the new stage');
    assert.equal(hasDecidedCurrentStage(r, 'dan'), true);
    // ann may decide again in stage 1, and then every reader counts her once.
    assert.equal(accepted(judge(byPath(r), attempt(), {}), r), false);
    applyDecision(r, attempt(), AT);
    assert.deepEqual(approvalDecidedEvent(r).deciders, ['dan', 'ann']);
    assert.equal(approvalsCounted(r), 2);
  });
});

describe('approvals: pendingApproverKeys', () => {
  test('user: and group: keys of pending approvals only, deduplicated and sorted', () => {
    const approvals = byPath(
      record({ stepPath: 'a', approvers: { principals: ['zoe', 'ann'], groups: ['finance'] } }),
      record({ stepPath: 'b', approvers: { principals: ['ann'], groups: ['legal', 'finance'] } }),
      record({ stepPath: 'c', status: 'approved', approvers: { principals: ['carl'], groups: ['ops'] } }),
      record({ stepPath: 'd', status: 'failed', approvers: { principals: ['dora'], groups: [] } }),
      record({ stepPath: 'e', status: 'cancelled', approvers: { principals: ['eli'], groups: ['closed'] } }),
    );
    assert.deepEqual(pendingApproverKeys(approvals), ['group:finance', 'group:legal', 'user:ann', 'user:zoe']);
  });

  test('nothing pending: no keys', () => {
    assert.deepEqual(pendingApproverKeys({}), []);
    assert.deepEqual(pendingApproverKeys(byPath(record({ status: 'rejected' }))), []);
  });

  test('after an escalation the keys are the new approver set\'s', () => {
    const r = record({ approvers: { principals: ['ann'], groups: [] } });
    assert.deepEqual(pendingApproverKeys(byPath(r)), ['user:ann']);
    r.stage = 1;
    r.approvers = { principals: [], groups: ['leads'] };
    assert.deepEqual(pendingApproverKeys(byPath(r)), ['group:leads']);
  });
});

describe('approvals: describeApprovals (the run\'s current details in Temporal Web)', () => {
  test('each pending approval with its approvers, count against the quorum and deadline; then the last refusal', () => {
    const waiting = record({ quorum: 2, deadline: '2030-01-02T00:00:00.000Z', decisions: [{ principal: 'ann', decision: 'approve', at: AT, via: 'api', stage: 0 }] });
    const escalated = record({ stepPath: 'each[1]/sign-off', stage: 1, approvers: { principals: ['cfo'], groups: [] } });
    const done = record({ stepPath: 'done', status: 'approved' });
    const lines = describeApprovals(byPath(waiting, escalated, done), { principal: 'dave', step: 'sign-off', via: 'signal', code: 'unproven', reason: 'no decision token', at: AT });
    assert.deepEqual(lines, [
      '⏳ approval sign-off: 1 of 2 approval(s), approvers user ann, user ben, user sam, group finance, deadline 2030-01-02T00:00:00.000Z',
      '   decide: the approval signal with the token from GET /v1/approvals, or POST /v1/runs/<runId>/approvals/sign-off',
      '⏳ approval each[1]/sign-off (escalated): 0 of 1 approval(s), approvers user cfo, no deadline',
      '   decide: the approval signal with the token from GET /v1/approvals, or POST /v1/runs/<runId>/approvals/each[1]/sign-off',
      'last refused: dave (signal) on sign-off at 2030-01-01T00:00:00.000Z: unproven: no decision token',
    ]);
    assert.deepEqual(describeApprovals(byPath(done)), []);
  });
});
