import { ApplicationFailure, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import {
  approvalsCounted,
  auditEntryOf,
  checkProof,
  decide as decideAttempt,
  judge,
  type ApprovalRecord,
  type AuditEntry,
  type AuditIdentity,
  type DecisionAttempt,
  type Directory,
  type ProofCheck,
  type RefusalNote,
  type Verdict,
} from '../interpreter/approvals.ts';
import { PATCHES } from '../interpreter/port.ts';
import { PLAIN_FAILURE_MESSAGE } from '../common/constants.ts';
import { approvalSignal, approvalUpdate, pendingApprovalsQuery, type ApprovalUpdateArgs } from './definitions.ts';

/**
 * Runs started before decision proofs existed (and their replays) keep trusting the principal an
 * update or a signal names; every run started since checks a decision token (docs/approvals.md,
 * trust model).
 */
export const DECISION_PROOFS_PATCH = PATCHES.decisionProofs;

interface ProofActivities {
  verifyDecisionToken(token: unknown): Promise<ProofCheck>;
}

/**
 * An update's refusal, as its sender sees it (the API, Temporal Web's Send an Update): a message
 * about who may decide which step, no run data, so the failure converter leaves it readable.
 */
function refusal(verdict: Extract<Verdict, { ok: false }>): ApplicationFailure {
  return Object.assign(ApplicationFailure.create({ type: verdict.code, message: verdict.reason, nonRetryable: true }), { [PLAIN_FAILURE_MESSAGE]: true });
}

/** The last refused attempt, for the run's current details in Temporal Web. */
export type LastRefusal = RefusalNote;

export interface ApprovalHandlerOptions {
  workflowId: string;
  identity: AuditIdentity;
  approvals: () => Record<string, ApprovalRecord>;
  directory: Directory;
  audit: AuditEntry[];
  auditSeq: number;
  /** Workflow time, ISO-8601. */
  nowIso: () => string;
  /** The lane's platform queue, where `verifyDecisionToken` runs. */
  platformQueue: string;
  /** Called after every accepted decision or refusal (the run's current details). */
  onChange?: () => void;
}

/** The update's answer: the verdict's record as it stands, or the refusal thrown to the sender. */
function answer(verdict: Verdict) {
  if (!verdict.ok) throw refusal(verdict);
  const { record } = verdict;
  return {
    step: record.stepId,
    stepPath: record.stepPath,
    status: record.status,
    duplicate: verdict.duplicate,
    approvals: approvalsCounted(record),
    quorum: record.quorum,
  };
}

/** What the handlers share: the rules applied with their audit trail, the refusal note, the proof check. */
function approvalDesk(options: ApprovalHandlerOptions) {
  const { workflowId, identity, approvals, directory, audit, nowIso } = options;
  let auditSeq = options.auditSeq;
  let lastRefusal: LastRefusal | undefined;
  const verifier = proxyActivities<ProofActivities>({
    taskQueue: options.platformQueue,
    startToCloseTimeout: 10_000,
    // Bounded: with no platform worker the attempt is refused as unproven after a minute.
    scheduleToCloseTimeout: 60_000,
    retry: { maximumAttempts: 5, initialInterval: 1000, maximumInterval: 10_000, backoffCoefficient: 2 },
    summary: 'verify the decision token',
  });
  const recordAudit = (attempt: DecisionAttempt, outcome: AuditEntry['outcome'], extra: Parameters<typeof auditEntryOf>[4]) => {
    auditSeq += 1;
    audit.push(auditEntryOf({ id: `${workflowId}/approval/${auditSeq}`, runId: workflowId, ...identity }, attempt, outcome, nowIso(), extra));
  };
  const noteRefusal = (attempt: DecisionAttempt, code: string, reason: string) => {
    lastRefusal = { principal: attempt.principal, step: attempt.step, via: attempt.via, code, reason, at: nowIso() };
    options.onChange?.();
  };
  return {
    workflowId,
    approvals,
    directory,
    auditSeq: () => auditSeq,
    lastRefusal: () => lastRefusal,
    nowMs: () => Date.parse(nowIso()),
    async verify(token: unknown): Promise<ProofCheck> {
      try {
        return await verifier.verifyDecisionToken(token);
      } catch (error) {
        return { valid: false, reason: `the decision token could not be verified: ${(error as Error).message}` };
      }
    },
    /** Refuses an attempt that could not prove its sender: recorded with its true channel. */
    refuseUnproven(attempt: DecisionAttempt, reason: string): Verdict {
      const record = approvals()[attempt.step] ?? Object.values(approvals()).find((a) => a.stepId === attempt.step);
      recordAudit(attempt, 'refused', { code: 'unproven', reason, ...(record ? { record } : {}) });
      noteRefusal(attempt, 'unproven', reason);
      return { ok: false, code: 'unproven', reason };
    },
    /** The rules (decide), then the audit trail: an accepted decision always, a refusal when asked. */
    decide(attempt: DecisionAttempt, auditRefusal: boolean): Verdict {
      const verdict = decideAttempt(approvals(), attempt, directory, nowIso());
      if (!verdict.ok) {
        if (auditRefusal) recordAudit(attempt, 'refused', { code: verdict.code, reason: verdict.reason, ...(verdict.record ? { record: verdict.record } : {}) });
        noteRefusal(attempt, verdict.code, verdict.reason);
        return verdict;
      }
      if (!verdict.duplicate) {
        recordAudit(attempt, 'accepted', { record: verdict.record });
        options.onChange?.();
      }
      return verdict;
    },
  };
}

type ApprovalDesk = ReturnType<typeof approvalDesk>;

/** The update path with proofs: verify, bind, then the rules (state may have moved meanwhile). */
async function decideUpdate(desk: ApprovalDesk, request: ApprovalUpdateArgs) {
  const claimed: DecisionAttempt = {
    step: typeof request.step === 'string' ? request.step : '',
    principal: typeof request.principal === 'string' ? request.principal : '',
    decision: typeof request.decision === 'string' ? request.decision : String(request.decision),
    ...(typeof request.comment === 'string' && request.comment ? { comment: request.comment } : {}),
    ...(Array.isArray(request.groups) ? { groups: request.groups.filter((g): g is string => typeof g === 'string') } : {}),
    via: 'update',
  };
  const check = await desk.verify(request.proof);
  if (!check.valid) {
    if (check.trustTemporal && request.proof === undefined) return answer(desk.decide(claimed, true));
    return answer(desk.refuseUnproven(claimed, `${check.reason}: a decideApproval update is the API's own; decide through the API, or by the approval signal with a decision token`));
  }
  const unbound = checkProof(
    check.claims,
    { runId: desk.workflowId, step: claimed.step, principal: claimed.principal, decision: claimed.decision, channel: 'api', nowMs: desk.nowMs() },
    desk.approvals(),
  );
  if (unbound) return answer(desk.refuseUnproven(claimed, unbound));
  // Proven: the API's refusals it writes to the audit trail itself.
  return answer(desk.decide({ ...claimed, groups: check.claims.groups, via: 'api' }, false));
}

/** The signal path (Temporal UI): in history either way; a refused attempt is recorded. */
async function decideSignal(desk: ApprovalDesk, proofs: boolean, payload: unknown): Promise<void> {
  const p = (payload ?? {}) as Partial<{ step: unknown; approver: unknown; decision: unknown; comment: unknown; token: unknown }>;
  const named: DecisionAttempt = {
    step: typeof p.step === 'string' ? p.step : '',
    principal: typeof p.approver === 'string' ? p.approver : '',
    decision: typeof p.decision === 'string' ? p.decision : String(p.decision),
    ...(typeof p.comment === 'string' && p.comment ? { comment: p.comment } : {}),
    via: 'signal',
  };
  if (!proofs) {
    desk.decide(named, true);
    return;
  }
  const check = await desk.verify(p.token);
  if (!check.valid) {
    if (check.trustTemporal && p.token === undefined) desk.decide(named, true);
    else desk.refuseUnproven({ ...named, principal: named.principal || 'unknown' }, `${check.reason}: paste the signal payload your inbox (GET /v1/approvals) offers`);
    return;
  }
  const attempt: DecisionAttempt = { ...named, step: named.step || check.claims.step, principal: named.principal || check.claims.principal };
  const unbound = checkProof(
    check.claims,
    { runId: desk.workflowId, step: attempt.step, principal: attempt.principal, decision: attempt.decision, channel: 'signal', nowMs: desk.nowMs() },
    desk.approvals(),
  );
  if (unbound) desk.refuseUnproven(attempt, unbound);
  else desk.decide({ ...attempt, groups: check.claims.groups }, true);
}

/**
 * The approval side of a workflow (interpreter runs and agent runs alike): the `decideApproval`
 * update (API; its validator refuses at once, so a refused attempt adds nothing to history), the
 * `approval` signal (Temporal UI; in history either way, a refused one is recorded), and the
 * `pendingApprovals` query. Every accepted decision and every refused signal is appended to
 * `audit`, numbered `<workflowId>/approval/<n>` from `auditSeq`; returns the next number's getter.
 *
 * Since DECISION_PROOFS_PATCH every attempt must prove its sender: the update carries the API's
 * signed proof, the signal a decision token from the inbox. The platform activity
 * `verifyDecisionToken` checks the signature (the key never enters the workflow); checkProof binds
 * the claims to this run, step, approver set, principal and workflow time. An unproven attempt is
 * refused as `unproven` and recorded with its true channel (`update` for a `decideApproval` that
 * did not come from the API).
 */
export function installApprovalHandlers(options: ApprovalHandlerOptions): { auditSeq(): number; lastRefusal(): LastRefusal | undefined } {
  const proofs = patched(DECISION_PROOFS_PATCH);
  const desk = approvalDesk(options);
  setHandler(pendingApprovalsQuery, () => Object.values(options.approvals()).filter((a) => a.status === 'pending'), {
    description: 'The approvals this run waits for: step, path, summary, approvers, quorum, decisions so far and deadline.',
  });
  setHandler(
    approvalUpdate,
    (request) => {
      if (proofs) return decideUpdate(desk, request);
      return answer(desk.decide({ ...request, via: 'api' }, false));
    },
    {
      validator: (request) => {
        // With proofs, an update without one (Temporal Web, the CLI) goes on to be refused and recorded.
        if (proofs && (request === null || typeof request !== 'object' || request.proof === undefined)) return;
        const verdict = judge(options.approvals(), { ...request, via: 'api' }, options.directory);
        if (!verdict.ok) throw refusal(verdict);
      },
      description:
        'API only: POST /v1/runs/{runId}/approvals/{stepId} sends it with a signed proof of the caller. Sent from Temporal Web or the CLI it is refused and recorded as refused; use the approval signal with a decision token instead.',
    },
  );
  setHandler(approvalSignal, (payload) => decideSignal(desk, proofs, payload), {
    description:
      'Decide a pending approval. Input (json/plain), as GET /v1/approvals offers it: {"step": "<step id or path>", "decision": "approve" | "reject", "comment"?: "<text>", "token": "<your decision token>"}. Check the outcome in the pendingApprovals query or the audit trail.',
  });
  return { auditSeq: desk.auditSeq, lastRefusal: desk.lastRefusal };
}
