// Over 400 lines on purpose: the one home of every approval rule (issue 14), read whole by the workflow, the API and the dry run.
/**
 * Human approvals, in one home: the record a waiting approval step keeps in the run state, the
 * pure rules that decide whether an attempt counts (judge, decide), which decisions count for the
 * current stage, and the audit entry every attempt leaves. The workflow binding applies them in its
 * update validator (the API path, which answers at once) and its signal handler (the Temporal UI
 * path); the engine only waits for the record to be decided; the API reads the same rules for the
 * inbox, its refusals' audit lines and the dry run.
 */

export type Decision = 'approve' | 'reject';
/**
 * How a decision reached the run: `api` (the API's update, with its proof), `signal` (the
 * `approval` signal from Temporal Web or the CLI), or `update` (a `decideApproval` update that
 * carried no valid API proof: sent from Temporal Web or the CLI, not through the API).
 */
export type DecisionChannel = 'api' | 'signal' | 'update';

export interface ApproverSetSpec {
  principals: string[];
  groups: string[];
}

/** One accepted decision. */
export interface ApprovalDecision {
  principal: string;
  decision: Decision;
  comment?: string;
  /** ISO-8601, workflow time. */
  at: string;
  via: DecisionChannel;
  /** The approver set it was made to: 0, or 1 after an escalation. */
  stage?: number;
}

/** One refused attempt, kept for the audit trail. */
export interface RefusedAttempt {
  principal: string;
  decision: string;
  comment?: string;
  at: string;
  via: DecisionChannel;
  code: RefusalCode;
  reason: string;
}

export type RefusalCode = 'not_found' | 'forbidden' | 'self_approval' | 'conflict' | 'invalid' | 'unproven';

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'failed' | 'cancelled';

export interface ApprovalRecord {
  stepId: string;
  /** Unique within the run (differs from stepId inside loops and for_each). */
  stepPath: string;
  summary: string;
  status: ApprovalStatus;
  /** 0 for the first approver set, 1 after an escalation. */
  stage: number;
  approvers: ApproverSetSpec;
  quorum: number;
  allowSelfApproval: boolean;
  /** Who started the run (refused as approver unless self-approval is allowed). */
  startedBy: string;
  requestedAt: string;
  /** When the current stage times out, if it does. */
  deadline?: string;
  decisions: ApprovalDecision[];
  /** True when the timeout decided (on_timeout approve/reject/fail). */
  timedOut?: boolean;
  escalated?: boolean;
}

/** An attempt to decide, from the API (principal and groups from the credential) or a signal. */
export interface DecisionAttempt {
  /** The step id or the step path the approver names. */
  step: string;
  principal: string;
  decision: string;
  comment?: string;
  /** Groups the API vouches for; a signal carries none and membership comes from the directory. */
  groups?: string[];
  via: DecisionChannel;
}

/** Group membership captured when the run started, for attempts that carry no groups (signals). */
export type Directory = Record<string, string[]>;

export type Verdict =
  | { ok: true; record: ApprovalRecord; duplicate: boolean }
  | { ok: false; code: RefusalCode; reason: string; record?: ApprovalRecord };

/** What opening an approval request needs; the record starts pending, at stage 0, undecided. */
export type ApprovalRequest = Pick<ApprovalRecord, 'stepId' | 'stepPath' | 'summary' | 'approvers' | 'quorum' | 'allowSelfApproval' | 'startedBy' | 'requestedAt' | 'deadline'>;

/** The record of a new approval request (an approval step, or an agent's high-risk tool call). */
export function openApprovalRecord(request: ApprovalRequest): ApprovalRecord {
  const record: ApprovalRecord = {
    stepId: request.stepId,
    stepPath: request.stepPath,
    summary: request.summary,
    status: 'pending',
    stage: 0,
    approvers: { principals: [...request.approvers.principals], groups: [...request.approvers.groups] },
    quorum: request.quorum,
    allowSelfApproval: request.allowSelfApproval,
    startedBy: request.startedBy,
    requestedAt: request.requestedAt,
    decisions: [],
  };
  if (request.deadline !== undefined) record.deadline = request.deadline;
  return record;
}

/**
 * Moves a pending record to the next approver set (an escalation): the new set decides afresh,
 * so decisions made to the earlier set stay on record but no longer count (countsForCurrentStage).
 */
export function escalateRecord(record: ApprovalRecord, next: Pick<ApprovalRecord, 'approvers' | 'quorum'>, deadline: string | undefined): void {
  record.stage += 1;
  record.escalated = true;
  record.approvers = { principals: [...next.approvers.principals], groups: [...next.approvers.groups] };
  record.quorum = next.quorum;
  if (deadline !== undefined) record.deadline = deadline;
  else delete record.deadline;
}

/** Finds the approval an attempt names: by path, else by step id when exactly one matches. */
export function findApproval(approvals: Record<string, ApprovalRecord>, step: string): ApprovalRecord | undefined {
  const byPath = approvals[step];
  if (byPath) return byPath;
  const byId = Object.values(approvals).filter((a) => a.stepId === step);
  const pending = byId.filter((a) => a.status === 'pending');
  if (pending.length === 1) return pending[0];
  return byId.length > 0 ? byId[byId.length - 1] : undefined;
}

/**
 * THE rule of which decisions count for the current approval stage, used by the engine (output
 * `deciders`, quorum), the workflow (lifecycle events, update answers) and the API (inbox): a
 * decision belongs to the stage it was made to, and one recorded without a stage (before stages
 * existed) belongs to stage 0, never to every stage.
 */
export function countsForCurrentStage(record: Pick<ApprovalRecord, 'stage'>, decision: Pick<ApprovalDecision, 'stage'>): boolean {
  return (decision.stage ?? 0) === record.stage;
}

/** Decisions that count for the record's current approver set. */
export function currentDecisions(record: ApprovalRecord): ApprovalDecision[] {
  return record.decisions.filter((d) => countsForCurrentStage(record, d));
}

/** Who decided for the current approver set, in order, each once. */
export function currentDeciders(record: ApprovalRecord): string[] {
  return [...new Set(currentDecisions(record).map((d) => d.principal))];
}

/** Whether the principal already decided for the current approver set. */
export function hasDecidedCurrentStage(record: ApprovalRecord, principal: string): boolean {
  return currentDecisions(record).some((d) => d.principal === principal);
}

export function approvesAs(record: ApprovalRecord, attempt: Pick<DecisionAttempt, 'principal' | 'groups'>, directory: Directory): boolean {
  if (record.approvers.principals.includes(attempt.principal)) return true;
  return record.approvers.groups.some((g) => (attempt.groups ?? []).includes(g) || (directory[g] ?? []).includes(attempt.principal));
}

/** Decides whether an attempt counts, without changing anything. */
export function judge(approvals: Record<string, ApprovalRecord>, attempt: DecisionAttempt, directory: Directory): Verdict {
  if (attempt.decision !== 'approve' && attempt.decision !== 'reject') {
    return { ok: false, code: 'invalid', reason: `decision must be "approve" or "reject", not ${JSON.stringify(attempt.decision)}` };
  }
  if (!attempt.principal) return { ok: false, code: 'invalid', reason: 'the approver is missing' };
  const pendingById = Object.values(approvals).filter((a) => a.stepId === attempt.step && a.status === 'pending');
  if (!approvals[attempt.step] && pendingById.length > 1) {
    return {
      ok: false,
      code: 'invalid',
      reason: `${pendingById.length} approvals of step "${attempt.step}" are pending; name one by its path: ${pendingById.map((a) => a.stepPath).join(', ')}`,
    };
  }
  const record = findApproval(approvals, attempt.step);
  if (!record) return { ok: false, code: 'not_found', reason: `no approval step "${attempt.step}" has been reached in this run` };
  if (!approvesAs(record, attempt, directory)) {
    return { ok: false, code: 'forbidden', reason: `${attempt.principal} is not an approver of step "${record.stepId}"`, record };
  }
  if (!record.allowSelfApproval && attempt.principal === record.startedBy) {
    return { ok: false, code: 'self_approval', reason: `${attempt.principal} started this run and may not approve it`, record };
  }
  const previous = currentDecisions(record).find((d) => d.principal === attempt.principal);
  if (previous && previous.decision === attempt.decision) return { ok: true, record, duplicate: true };
  if (record.status !== 'pending') {
    const why = record.timedOut ? 'timed out' : `was already ${record.status}`;
    return { ok: false, code: 'conflict', reason: `approval "${record.stepId}" ${why}`, record };
  }
  if (previous) {
    return { ok: false, code: 'conflict', reason: `${attempt.principal} already decided "${previous.decision}" on step "${record.stepId}"`, record };
  }
  return { ok: true, record, duplicate: false };
}

/**
 * Judges an attempt and, when it counts and is not a repeat, records it (applyDecision) at `at`:
 * what the workflow's handlers and the dry run do with every attempt.
 */
export function decide(approvals: Record<string, ApprovalRecord>, attempt: DecisionAttempt, directory: Directory, at: string): Verdict {
  const verdict = judge(approvals, attempt, directory);
  if (verdict.ok && !verdict.duplicate) applyDecision(verdict.record, attempt, at);
  return verdict;
}

/**
 * Whether a pending record waits for this principal's decision (the inbox): they may decide it
 * (with the groups their credential vouches for) and have not yet decided its current stage.
 */
export function awaitsDecisionFrom(record: ApprovalRecord, principal: string, groups: string[]): boolean {
  const verdict = judge({ [record.stepPath]: record }, { step: record.stepPath, principal, decision: 'approve', groups, via: 'api' }, {});
  return verdict.ok && !verdict.duplicate && !hasDecidedCurrentStage(record, principal);
}

/** Records an accepted decision and settles the approval when it is decided. */
export function applyDecision(record: ApprovalRecord, attempt: DecisionAttempt, at: string): void {
  if (hasDecidedCurrentStage(record, attempt.principal)) return;
  const decision: ApprovalDecision = { principal: attempt.principal, decision: attempt.decision as Decision, at, via: attempt.via, stage: record.stage };
  if (attempt.comment) decision.comment = attempt.comment;
  record.decisions.push(decision);
  // One rejection settles it; approvals count towards the quorum of the current approver set only
  // (after an escalation, the new set decides afresh).
  if (decision.decision === 'reject') record.status = 'rejected';
  else if (approvalsCounted(record) >= record.quorum) record.status = 'approved';
}

/** Approvals that count towards the current quorum. */
export function approvalsCounted(record: ApprovalRecord): number {
  return currentDecisions(record).filter((d) => d.decision === 'approve').length;
}

/** One line of the approval audit trail, written to PostgreSQL by the platform activity. */
export interface AuditEntry {
  /** Unique and stable (`<runId>/approval/<n>`), so a retried write is not duplicated. */
  id: string;
  runId: string;
  tenant: string;
  definition: string;
  version: string;
  stepId: string;
  stepPath?: string;
  principal: string;
  decision: string;
  comment?: string;
  via: DecisionChannel;
  outcome: 'accepted' | 'refused';
  code?: RefusalCode;
  reason?: string;
  /** ISO-8601. */
  at: string;
}

/** What an audit entry needs besides the attempt: the run's identity. */
export type AuditIdentity = Pick<AuditEntry, 'tenant' | 'definition' | 'version'>;

/**
 * The audit entry of one attempt (the workflow's, numbered `<runId>/approval/<n>`, and the API's
 * own refusals): the attempt as sent, its outcome, and for a refusal the code and reason. The step
 * is the one the attempt named until a record is known; then the record's id and path.
 */
export function auditEntryOf(
  where: AuditIdentity & { id: string; runId: string },
  attempt: Pick<DecisionAttempt, 'step' | 'principal' | 'decision' | 'comment' | 'via'>,
  outcome: AuditEntry['outcome'],
  at: string,
  extra: { code?: RefusalCode; reason?: string; record?: Pick<ApprovalRecord, 'stepId' | 'stepPath'> } = {},
): AuditEntry {
  const { record, ...refusal } = extra;
  return {
    id: where.id,
    runId: where.runId,
    tenant: where.tenant,
    definition: where.definition,
    version: where.version,
    stepId: attempt.step,
    principal: attempt.principal,
    decision: attempt.decision,
    ...(attempt.comment ? { comment: attempt.comment } : {}),
    via: attempt.via,
    outcome,
    at,
    ...refusal,
    ...(record ? { stepId: record.stepId, stepPath: record.stepPath } : {}),
  };
}

/** The latest decision of the current stage that matches how the record settled (who approved or rejected it). */
export function settlingDecision(record: ApprovalRecord): ApprovalDecision | undefined {
  const outcome: Decision = record.status === 'approved' ? 'approve' : 'reject';
  return [...currentDecisions(record)].reverse().find((d) => d.decision === outcome);
}

/** Values for the PendingApprovers search attribute: `user:<principal>` and `group:<group>`. */
export function pendingApproverKeys(approvals: Record<string, ApprovalRecord>): string[] {
  const keys = new Set<string>();
  for (const a of Object.values(approvals)) {
    if (a.status !== 'pending') continue;
    for (const p of a.approvers.principals) keys.add(`user:${p}`);
    for (const g of a.approvers.groups) keys.add(`group:${g}`);
  }
  return [...keys].sort();
}

/** The payload of the `workflow.approval.requested` lifecycle event (also after an escalation). */
export function approvalRequestedEvent(record: ApprovalRecord): Record<string, unknown> {
  return {
    stepId: record.stepId,
    stepPath: record.stepPath,
    summary: record.summary,
    approvers: record.approvers,
    quorum: record.quorum,
    stage: record.stage,
    ...(record.deadline ? { deadline: record.deadline } : {}),
  };
}

/** The payload of the `workflow.approval.decided` lifecycle event: deciders of the current stage. */
export function approvalDecidedEvent(record: ApprovalRecord): Record<string, unknown> {
  return {
    stepId: record.stepId,
    stepPath: record.stepPath,
    status: record.status,
    decision: record.status === 'approved' ? 'approve' : record.status === 'rejected' ? 'reject' : 'none',
    deciders: currentDeciders(record),
    timedOut: record.timedOut === true,
    escalated: record.escalated === true,
  };
}

/**
 * What a decision token says (activities/platform/decision-tokens.ts signs and verifies it; the
 * workflow checks what it is bound to with checkProof). `exp` is epoch milliseconds.
 */
export interface DecisionClaims {
  /** The run (workflow id, stable across continue-as-new). */
  run: string;
  /** The step as the API was asked (id or path) for `api`, the step path for `signal`. */
  step: string;
  /** The approver set the token is for (signal tokens): 0, or 1 after an escalation. */
  stage?: number;
  principal: string;
  /** The groups the API key vouched for when the token was issued. */
  groups: string[];
  channel: 'api' | 'signal';
  /** The decision an API proof was issued for; signal tokens leave it to the approver. */
  decision?: Decision;
  exp: number;
}

/** The answer of the `verifyDecisionToken` activity. */
export type ProofCheck =
  | { valid: true; claims: DecisionClaims }
  | {
      valid: false;
      reason: string;
      /** The workers trust Temporal's own authorization (APPROVAL_TRUST_TEMPORAL) for attempts without a token. */
      trustTemporal?: boolean;
    };

/**
 * Whether verified claims prove this attempt: the same run, step (by the name sent or the path of
 * the record it names), approver set, principal, channel and decision, and not expired at `nowMs`
 * (workflow time). Returns the refusal reason, or undefined when they do.
 */
export function checkProof(
  claims: DecisionClaims,
  attempt: { runId: string; step: string; principal?: string; decision: string; channel: 'api' | 'signal'; nowMs: number },
  approvals: Record<string, ApprovalRecord>,
): string | undefined {
  if (claims.channel !== attempt.channel) return `the decision token is for the ${claims.channel} path, not the ${attempt.channel} path`;
  if (claims.run !== attempt.runId) return `the decision token is for run "${claims.run}", not this run`;
  if (attempt.principal !== undefined && attempt.principal !== claims.principal) {
    return `the decision token is ${claims.principal}'s, not ${attempt.principal}'s`;
  }
  const record = findApproval(approvals, attempt.step);
  if (claims.step !== attempt.step && claims.step !== record?.stepPath) return `the decision token is for step "${claims.step}", not "${attempt.step}"`;
  if (claims.stage !== undefined && record && claims.stage !== record.stage) {
    return `the decision token is for approver set ${claims.stage} of step "${record.stepId}", which has moved to set ${record.stage}`;
  }
  if (claims.decision !== undefined && claims.decision !== attempt.decision) return `the decision token is for "${claims.decision}", not "${attempt.decision}"`;
  if (claims.exp <= attempt.nowMs) return `the decision token expired at ${new Date(claims.exp).toISOString()}`;
  return undefined;
}

/** What a refused attempt leaves for the run's current details. */
export interface RefusalNote {
  principal: string;
  step: string;
  via: DecisionChannel;
  code: string;
  reason: string;
  at: string;
}

/**
 * Lines for the run's current details (Temporal Web, User Metadata tab): each pending approval
 * with its approvers, the approvals so far against the quorum and the deadline, then the last
 * refused attempt and why.
 */
export function describeApprovals(approvals: Record<string, ApprovalRecord>, lastRefusal?: RefusalNote): string[] {
  const lines: string[] = [];
  for (const a of Object.values(approvals)) {
    if (a.status !== 'pending') continue;
    const who = [...a.approvers.principals.map((p) => `user ${p}`), ...a.approvers.groups.map((g) => `group ${g}`)].join(', ');
    const when = a.deadline ? `deadline ${a.deadline}` : 'no deadline';
    lines.push(`⏳ approval ${a.stepPath}${a.stage > 0 ? ' (escalated)' : ''}: ${approvalsCounted(a)} of ${a.quorum} approval(s), approvers ${who}, ${when}`);
    lines.push(`   decide: the approval signal with the token from GET /v1/approvals, or POST /v1/runs/<runId>/approvals/${a.stepPath}`);
  }
  if (lastRefusal) {
    lines.push(`last refused: ${lastRefusal.principal || 'unknown'} (${lastRefusal.via}) on ${lastRefusal.step || '?'} at ${lastRefusal.at}: ${lastRefusal.code}: ${lastRefusal.reason}`);
  }
  return lines;
}
