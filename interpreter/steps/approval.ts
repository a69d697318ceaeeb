import { z } from 'zod';
import { approvalsCounted, currentDeciders, escalateRecord, openApprovalRecord, type ApprovalRecord } from '../approvals.ts';
import { StepCallError } from '../port.ts';
import type { StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import type { StepRun } from '../runtime.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, MAX_WAIT_SECONDS, seconds, type Compensable } from './parts.ts';

export interface CompiledApprovalStage {
  approvers: { principals: string[]; groups: string[] };
  quorum: number;
  timeoutMs?: number;
  onTimeout: 'reject' | 'approve' | 'fail' | 'escalate';
}

export interface CompiledApprovalStep extends StepBase {
  kind: 'approval';
  summary?: CompiledValue;
  allowSelfApproval: boolean;
  /** The first approver set, then the escalation's when there is one. */
  stages: CompiledApprovalStage[];
  onReject: 'fail' | 'continue';
}

/** Who may decide: principals and/or groups from the API's key configuration. */
export const approverSetSchema = z
  .strictObject({
    principals: z.array(z.string().min(1).max(200)).max(100).optional(),
    groups: z.array(z.string().min(1).max(200)).max(50).optional(),
  })
  .refine((a) => (a.principals?.length ?? 0) + (a.groups?.length ?? 0) > 0, { message: 'name at least one principal or group' });
export type ApproverSet = z.infer<typeof approverSetSchema>;

const approvalOwn = z.strictObject({
  ...common,
  type: z.literal('approval'),
  approvers: approverSetSchema,
  /** How many distinct approvers must approve (default 1). */
  quorum: z.number().int().min(1).max(100).optional(),
  /** Whether the principal who started the run may approve it (default false). */
  allow_self_approval: z.boolean().optional(),
  /** Shown to approvers; templates allowed. */
  summary: z.string().min(1).max(2000).optional(),
  /** What the step's `timeout` leads to (default `fail`). */
  on_timeout: z.enum(['reject', 'approve', 'fail', 'escalate']).optional(),
  /** With `on_timeout: "escalate"`: the next approver set and its own timeout. */
  escalation: z
    .strictObject({
      approvers: approverSetSchema,
      quorum: z.number().int().min(1).max(100).optional(),
      timeout: seconds(MAX_WAIT_SECONDS),
      on_timeout: z.enum(['reject', 'approve', 'fail']).optional(),
    })
    .optional(),
  /** `fail` (default) fails the run on a rejection; `continue` lets a later step branch on the decision. */
  on_reject: z.enum(['fail', 'continue']).optional(),
});
export type ApprovalStep = z.infer<typeof approvalOwn> & Compensable;
export const approvalStepSchema = approvalOwn
  .extend(compensable)
  .refine((s) => (s.on_timeout === 'escalate') === (s.escalation !== undefined), {
    message: '"escalation" goes with "on_timeout": "escalate", and needs it',
    path: ['escalation'],
  })
  .refine((s) => s.on_timeout === undefined || s.timeout !== undefined, { message: '"on_timeout" needs a "timeout"', path: ['on_timeout'] });

function stagesOf(step: ApprovalStep): CompiledApprovalStage[] {
  const set = (a: { principals?: string[] | undefined; groups?: string[] | undefined }) => ({ principals: a.principals ?? [], groups: a.groups ?? [] });
  const stages: CompiledApprovalStage[] = [
    {
      approvers: set(step.approvers),
      quorum: step.quorum ?? 1,
      ...(step.timeout !== undefined ? { timeoutMs: Math.round(step.timeout * 1000) } : {}),
      onTimeout: step.on_timeout ?? 'fail',
    },
  ];
  if (step.escalation) {
    stages.push({
      approvers: set(step.escalation.approvers),
      quorum: step.escalation.quorum ?? 1,
      timeoutMs: Math.round(step.escalation.timeout * 1000),
      onTimeout: step.escalation.on_timeout ?? 'fail',
    });
  }
  return stages;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The pending record of a new request (stage 0), or the one carried across continue-as-new. */
function openRecord(step: CompiledApprovalStep, { frame, resuming, runner }: StepRun): ApprovalRecord {
  const path = frame.path + step.id;
  const existing = runner.state.approvals[path];
  if (existing && (resuming || existing.status === 'pending')) return existing;
  const first = step.stages[0] as CompiledApprovalStage;
  const summary =
    step.summary === undefined ? `Approve step "${step.id}" of ${String(runner.ctx.run.definition ?? 'this run')}` : resolveValue(step.summary, runner.data(frame));
  const now = runner.port.now();
  const record = openApprovalRecord({
    stepId: step.id,
    stepPath: path,
    summary: typeof summary === 'string' ? summary : JSON.stringify(summary),
    approvers: first.approvers,
    quorum: first.quorum,
    allowSelfApproval: step.allowSelfApproval,
    startedBy: String(runner.ctx.run.startedBy ?? ''),
    requestedAt: iso(now),
    ...(first.timeoutMs !== undefined ? { deadline: iso(now + first.timeoutMs) } : {}),
  });
  runner.state.approvals[path] = record;
  runner.port.onApproval?.('requested', record);
  return record;
}

/** Waits for a decision or the deadline; true when decided. A cancelled wait closes the request. */
async function decidedInTime(rec: ApprovalRecord, { runner }: StepRun): Promise<boolean> {
  const remaining = rec.deadline === undefined ? undefined : Date.parse(rec.deadline) - runner.port.now();
  if (remaining !== undefined && remaining <= 0) return rec.status !== 'pending';
  try {
    const purpose = `deadline of approval ${rec.stepPath}${rec.stage > 0 ? ' (escalation)' : ''}`;
    return await runner.waited(runner.port.waitUntil(() => rec.status !== 'pending', remaining, purpose));
  } catch (error) {
    // A cancelled run (or branch) closes its approval: nobody is asked any longer.
    if (runner.port.isCancellation(error) && rec.status === 'pending') {
      rec.status = 'cancelled';
      runner.port.onApprovalsChanged?.(runner.state);
    }
    throw error;
  }
}

/**
 * Blocks until enough approvers decide (through the workflow's update and signal handlers, which
 * change the record) or a timeout policy settles it. No activity and no polling: a condition.
 */
async function runApproval(step: CompiledApprovalStep, run: StepRun): Promise<unknown> {
  const { runner } = run;
  const rec = openRecord(step, run);
  runner.port.onApprovalsChanged?.(runner.state);
  for (;;) {
    if (await decidedInTime(rec, run)) break;
    const stage = step.stages[rec.stage] as CompiledApprovalStage;
    const next = step.stages[rec.stage + 1];
    if (stage.onTimeout === 'escalate' && next) {
      escalateRecord(rec, next, next.timeoutMs !== undefined ? iso(runner.port.now() + next.timeoutMs) : undefined);
      runner.port.onApprovalsChanged?.(runner.state);
      runner.port.onApproval?.('requested', rec);
      continue;
    }
    rec.timedOut = true;
    if (stage.onTimeout === 'approve') rec.status = 'approved';
    else if (stage.onTimeout === 'reject') rec.status = 'rejected';
    else {
      rec.status = 'failed';
      runner.port.onApprovalsChanged?.(runner.state);
      runner.port.onApproval?.('decided', rec);
      throw new StepCallError(`approval "${step.id}" timed out with ${approvalsCounted(rec)} of ${rec.quorum} approval(s)`, 'ApprovalTimeout');
    }
    break;
  }
  runner.port.onApprovalsChanged?.(runner.state);
  runner.port.onApproval?.('decided', rec);
  return approvalOutput(step, rec);
}

/** The step's output; a rejection fails the step unless `on_reject` is `continue`. */
function approvalOutput(step: CompiledApprovalStep, rec: ApprovalRecord): unknown {
  const output = {
    decision: rec.status === 'approved' ? 'approve' : 'reject',
    approved: rec.status === 'approved',
    // Who decided it: the current approver set's deciders (every decision stays in `decisions`).
    deciders: currentDeciders(rec),
    decisions: rec.decisions,
    comments: rec.decisions.filter((d) => d.comment).map((d) => ({ principal: d.principal, comment: d.comment })),
    timedOut: rec.timedOut === true,
    escalated: rec.escalated === true,
  };
  if (rec.status === 'rejected' && step.onReject === 'fail') {
    const by = rec.decisions.find((d) => d.decision === 'reject');
    const why = by ? ` by ${by.principal}${by.comment ? `: ${by.comment}` : ''}` : ' on timeout';
    throw new StepCallError(`approval "${step.id}" was rejected${why}`, 'ApprovalRejected');
  }
  return output;
}

export const approvalKind: StepKind<ApprovalStep, CompiledApprovalStep> = {
  type: 'approval',
  kind: 'approval',
  schema: approvalStepSchema,
  doc: 'Waits for `quorum` distinct `approvers` (principals or groups) to decide through the API; `timeout` with `on_timeout` approves, rejects, fails or escalates to `escalation`\'s set. The output holds the decision and who decided.',
  compile(step, base, { scope, pointer, problems }) {
    const stages = stagesOf(step);
    stages.forEach((stage, i) => {
      const at = i === 0 ? pointer : `${pointer}/escalation`;
      const named = new Set(stage.approvers.principals).size;
      if (stage.approvers.groups.length === 0 && stage.quorum > named) {
        problems.push({ pointer: `${at}/quorum`, message: `quorum ${stage.quorum} is more than the ${named} distinct approver(s) named` });
      }
    });
    return {
      ...base,
      kind: 'approval',
      ...(step.summary !== undefined ? { summary: compileValue(step.summary, scope, `${pointer}/summary`, problems) } : {}),
      allowSelfApproval: step.allow_self_approval ?? false,
      stages,
      onReject: step.on_reject ?? 'fail',
    };
  },
  executor: { reportsSettle: true, ownsTimeout: true, execute: runApproval },
};
