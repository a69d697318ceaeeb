import { ApplicationFailure, setHandler } from '@temporalio/workflow';
import { applyDecision, approvalsCounted, judge, type ApprovalRecord, type DecisionAttempt, type Directory } from '../interpreter/approvals.ts';
import { approvalSignal, approvalUpdate, pendingApprovalsQuery } from './definitions.ts';
import type { AuditEntry } from './types.ts';

/** What an audit entry needs besides the attempt: the run's identity. */
export type AuditIdentity = Pick<AuditEntry, 'tenant' | 'definition' | 'version'>;

/**
 * The approval side of a workflow (interpreter runs and agent runs alike): the `decideApproval`
 * update (API; its validator refuses at once, so a refused attempt adds nothing to history), the
 * `approval` signal (Temporal UI; in history either way, a refused one is recorded), and the
 * `pendingApprovals` query. Every accepted decision and every refused signal is appended to
 * `audit`, numbered `<workflowId>/approval/<n>` from `auditSeq`; returns the next number's getter.
 */
export function installApprovalHandlers(options: {
  workflowId: string;
  identity: AuditIdentity;
  approvals: () => Record<string, ApprovalRecord>;
  directory: Directory;
  audit: AuditEntry[];
  auditSeq: number;
  /** Workflow time, ISO-8601. */
  nowIso: () => string;
}): { auditSeq(): number } {
  const { workflowId, identity, approvals, directory, audit, nowIso } = options;
  let auditSeq = options.auditSeq;
  const recordAudit = (attempt: DecisionAttempt, outcome: AuditEntry['outcome'], extra: Partial<AuditEntry>) => {
    auditSeq += 1;
    audit.push({
      id: `${workflowId}/approval/${auditSeq}`,
      runId: workflowId,
      ...identity,
      stepId: attempt.step,
      principal: attempt.principal,
      decision: attempt.decision,
      ...(attempt.comment ? { comment: attempt.comment } : {}),
      via: attempt.via,
      outcome,
      at: nowIso(),
      ...extra,
    });
  };
  const decide = (attempt: DecisionAttempt) => {
    const verdict = judge(approvals(), attempt, directory);
    if (!verdict.ok) {
      if (attempt.via === 'signal') {
        recordAudit(attempt, 'refused', { code: verdict.code, reason: verdict.reason, ...(verdict.record ? { stepId: verdict.record.stepId, stepPath: verdict.record.stepPath } : {}) });
      }
      return verdict;
    }
    if (!verdict.duplicate) {
      applyDecision(verdict.record, attempt, nowIso());
      recordAudit(attempt, 'accepted', { stepId: verdict.record.stepId, stepPath: verdict.record.stepPath });
    }
    return verdict;
  };
  setHandler(pendingApprovalsQuery, () => Object.values(approvals()).filter((a) => a.status === 'pending'));
  setHandler(
    approvalUpdate,
    (request) => {
      const verdict = decide({ ...request, via: 'api' });
      if (!verdict.ok) throw ApplicationFailure.create({ type: verdict.code, message: verdict.reason, nonRetryable: true });
      const { record } = verdict;
      return {
        step: record.stepId,
        stepPath: record.stepPath,
        status: record.status,
        duplicate: verdict.duplicate,
        approvals: approvalsCounted(record),
        quorum: record.quorum,
      };
    },
    {
      validator: (request) => {
        const verdict = judge(approvals(), { ...request, via: 'api' }, directory);
        if (!verdict.ok) throw ApplicationFailure.create({ type: verdict.code, message: verdict.reason, nonRetryable: true });
      },
    },
  );
  setHandler(approvalSignal, (payload) => {
    const p = (payload ?? {}) as Partial<{ step: unknown; approver: unknown; decision: unknown; comment: unknown }>;
    decide({
      step: typeof p.step === 'string' ? p.step : '',
      principal: typeof p.approver === 'string' ? p.approver : '',
      decision: typeof p.decision === 'string' ? p.decision : String(p.decision),
      ...(typeof p.comment === 'string' && p.comment ? { comment: p.comment } : {}),
      via: 'signal',
    });
  });
  return { auditSeq: () => auditSeq };
}
