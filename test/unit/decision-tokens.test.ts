import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditStore, createPlatformActivities } from '../../activities/platform/audit.ts';
import { DecisionKeys, signDecisionToken, verifyDecisionToken } from '../../activities/platform/decision-tokens.ts';
import { checkProof, type ApprovalRecord, type DecisionClaims } from '../../interpreter/approvals.ts';

/**
 * Decision tokens: the signature (checked in the verifyDecisionToken activity) and what a token is
 * bound to (checked by the workflow with checkProof against the run, the step and workflow time).
 */

const KEY = 'k'.repeat(32);
const NOW = Date.parse('2030-01-01T00:00:00.000Z');
const claims: DecisionClaims = { run: 'r1', step: 'each[1]/sign-off', stage: 0, principal: 'bob', groups: ['finance'], channel: 'signal', exp: NOW + 60_000 };

const record = (extra: Partial<ApprovalRecord> = {}): ApprovalRecord => ({
  stepId: 'sign-off',
  stepPath: 'each[1]/sign-off',
  summary: '',
  status: 'pending',
  stage: 0,
  approvers: { principals: ['bob'], groups: [] },
  quorum: 1,
  allowSelfApproval: false,
  startedBy: 'sam',
  requestedAt: '2030-01-01T00:00:00.000Z',
  decisions: [],
  ...extra,
});

describe('decision tokens: signature', () => {
  test('a token verifies with the key that signed it, and with no other', async () => {
    const token = await signDecisionToken(new DecisionKeys(undefined, KEY), claims);
    assert.deepEqual(await verifyDecisionToken(new DecisionKeys(undefined, KEY), token), { valid: true, claims });
    assert.deepEqual(await verifyDecisionToken(new DecisionKeys(undefined, 'x'.repeat(32)), token), { valid: false, reason: 'the decision token\'s signature is not valid' });
  });

  test('changed claims, a missing or malformed token are refused with a reason', async () => {
    const keys = new DecisionKeys(undefined, KEY);
    const [prefix, , mac] = (await signDecisionToken(keys, claims)).split('.');
    const forged = `${prefix}.${Buffer.from(JSON.stringify({ ...claims, principal: 'mallory' })).toString('base64url')}.${mac}`;
    assert.match((await verifyDecisionToken(keys, forged) as { reason: string }).reason, /signature is not valid/);
    assert.deepEqual(await verifyDecisionToken(keys, undefined), { valid: false, reason: 'no decision token' });
    assert.deepEqual(await verifyDecisionToken(keys, 42), { valid: false, reason: 'no decision token' });
    assert.deepEqual(await verifyDecisionToken(keys, 'dt2.a.b'), { valid: false, reason: 'the decision token is malformed' });
    const wrongShape = await signDecisionToken(keys, { ...claims, groups: 'finance' } as never);
    assert.deepEqual(await verifyDecisionToken(keys, wrongShape), { valid: false, reason: 'the decision token is malformed' });
  });

  test('the activity trusts a token-less attempt only with trustTemporal, never a bad token', async () => {
    const keys = new DecisionKeys(undefined, KEY);
    const store = new AuditStore(undefined as never);
    const strict = createPlatformActivities(store, undefined as never, { keys });
    const trusting = createPlatformActivities(store, undefined as never, { keys, trustTemporal: true });
    assert.deepEqual(await strict.verifyDecisionToken(undefined), { valid: false, reason: 'no decision token' });
    assert.deepEqual(await trusting.verifyDecisionToken(undefined), { valid: false, reason: 'no decision token', trustTemporal: true });
    assert.equal((await trusting.verifyDecisionToken('dt1.x.y')).valid, false);
    assert.equal('trustTemporal' in (await trusting.verifyDecisionToken('dt1.x.y')), false);
  });

  test('without a configured key and without a database, signing fails clearly', async () => {
    await assert.rejects(signDecisionToken(new DecisionKeys(undefined), claims), /no APPROVAL_SIGNING_KEY and no database/);
  });
});

describe('decision tokens: checkProof binds a token to the run, the step, the approver set, the approver and the time', () => {
  const approvals = { 'each[1]/sign-off': record() };
  const attempt = { runId: 'r1', step: 'each[1]/sign-off', principal: 'bob', decision: 'approve', channel: 'signal' as const, nowMs: NOW };

  test('a matching token proves the attempt, by step path or by the id of the one pending record', () => {
    assert.equal(checkProof(claims, attempt, approvals), undefined);
    assert.equal(checkProof(claims, { ...attempt, step: 'sign-off' }, approvals), undefined);
    assert.equal(checkProof({ ...claims, decision: 'approve' }, attempt, approvals), undefined);
  });

  test('every mismatch is refused, saying what it is bound to', () => {
    const cases: Array<[Partial<DecisionClaims>, Partial<typeof attempt>, RegExp]> = [
      [{ channel: 'api' }, {}, /^the decision token is for the api path, not the signal path$/],
      [{ run: 'r2' }, {}, /^the decision token is for run "r2", not this run$/],
      [{}, { principal: 'carol' }, /^the decision token is bob's, not carol's$/],
      [{ step: 'pay' }, {}, /^the decision token is for step "pay", not "each\[1\]\/sign-off"$/],
      [{ stage: 1 }, {}, /^the decision token is for approver set 1 of step "sign-off", which has moved to set 0$/],
      [{ decision: 'reject' }, {}, /^the decision token is for "reject", not "approve"$/],
      [{ exp: NOW }, {}, /^the decision token expired at 2030-01-01T00:00:00.000Z$/],
    ];
    for (const [c, a, reason] of cases) assert.match(checkProof({ ...claims, ...c }, { ...attempt, ...a }, approvals) ?? 'proved', reason);
  });

  test('after an escalation a token of the first approver set no longer proves anything', () => {
    assert.match(checkProof(claims, attempt, { 'each[1]/sign-off': record({ stage: 1 }) }) ?? '', /moved to set 1/);
  });
});
