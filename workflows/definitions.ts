import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { APPROVAL_SIGNAL, APPROVAL_UPDATE, PENDING_APPROVALS_QUERY, RUN_STATE_QUERY } from '../common/constants.ts';
import type { ApprovalRecord, Decision } from '../interpreter/approvals.ts';
import type { RunState } from '../interpreter/engine.ts';

/** Returns the live state of a run: per-step status and outputs. */
export const runStateQuery = defineQuery<RunState>(RUN_STATE_QUERY);

/** Returns the approvals the run is waiting on. */
export const pendingApprovalsQuery = defineQuery<ApprovalRecord[]>(PENDING_APPROVALS_QUERY);

/**
 * What an approver pastes in the Temporal UI's signal form: the inbox offers it ready-made. The
 * `token` proves the approver (runs started before decision proofs trust `approver` instead).
 */
export interface ApprovalSignalPayload {
  step?: string;
  approver?: string;
  decision: Decision;
  comment?: string;
  token?: string;
}
export const approvalSignal = defineSignal<[ApprovalSignalPayload]>(APPROVAL_SIGNAL);

/** What the API sends: the principal and groups come from the caller's credential. */
export interface ApprovalUpdateArgs {
  step: string;
  decision: Decision;
  comment?: string;
  principal: string;
  groups: string[];
  /** The API's signed proof of principal and groups (activities/platform/decision-tokens.ts). */
  proof?: string;
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
