import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { APPROVAL_SIGNAL, APPROVAL_UPDATE, PENDING_APPROVALS_QUERY, RUN_STATE_QUERY } from '../common/constants.ts';
import type { ApprovalRecord, Decision } from '../interpreter/approvals.ts';
import type { RunState } from '../interpreter/engine.ts';

/** Returns the live state of a run: per-step status and outputs. */
export const runStateQuery = defineQuery<RunState>(RUN_STATE_QUERY);

/** Returns the approvals the run is waiting on. */
export const pendingApprovalsQuery = defineQuery<ApprovalRecord[]>(PENDING_APPROVALS_QUERY);

/** What an approver types in the Temporal UI's signal form (the approver is named, not proven). */
export interface ApprovalSignalPayload {
  step: string;
  approver: string;
  decision: Decision;
  comment?: string;
}
export const approvalSignal = defineSignal<[ApprovalSignalPayload]>(APPROVAL_SIGNAL);

/** What the API sends: the principal and groups come from the caller's credential. */
export interface ApprovalUpdateArgs {
  step: string;
  decision: Decision;
  comment?: string;
  principal: string;
  groups: string[];
}
export interface ApprovalUpdateResult {
  step: string;
  stepPath: string;
  status: ApprovalRecord['status'];
  /** True when this principal had already made the same decision (nothing new was recorded). */
  duplicate: boolean;
  approvals: number;
  quorum: number;
}
export const approvalUpdate = defineUpdate<ApprovalUpdateResult, [ApprovalUpdateArgs]>(APPROVAL_UPDATE);
