import type { CompiledStep } from './compile.ts';
import { PATCHES } from './port.ts';
import type { CompiledApprovalStep } from './steps/approval.ts';

/**
 * What each thing a run does costs in history events (docs/definition-language.md, "History cost
 * per step kind"), read off the recorded replay fixtures; interpreter/estimate.ts adds them up.
 */

/** Events a run has whatever its steps: started + first workflow task (4), completed (1). */
export const RUN_FIXED_EVENTS = 5;
/** A run continued as new starts again: started + its first workflow task. */
export const RUN_START_EVENTS = 4;
/** An activity: scheduled, started, completed, and the workflow task that resumes the run. */
export const ACTIVITY_EVENTS = 6;
/** A timer that fires: started, fired, and the workflow task it wakes. */
export const TIMER_EVENTS = 5;
/** A timer cancelled by the step finishing first: started, cancelled. */
export const TIMER_CANCELLED_EVENTS = 2;
/** A child workflow: initiated, started, completed, and two workflow tasks. */
export const CHILD_EVENTS = 8;
/** A signal and the workflow task it wakes. */
export const SIGNAL_EVENTS = 4;
/** A lifecycle-events write (recordRunEvents) or an audit write (recordAudit): one activity. */
export const WRITE_EVENTS = ACTIVITY_EVENTS;
/** A patch taken for the first time in a run: MarkerRecorded and the TemporalChangeVersion upsert. */
export const PATCH_EVENTS = 2;
/** One `PendingApprovers` search-attribute upsert. */
const UPSERT_EVENTS = 1;
/** An API decision: a workflow task, WorkflowExecutionUpdateAccepted and …Completed. */
const UPDATE_EVENTS = 5;

/** The patches a run started today takes when its path reaches them (interpreter/port.ts PATCHES). */
export const CURRENT_PATCHES: readonly string[] = Object.values(PATCHES);

/**
 * How one approval step went. Without one, the typical case is its first stage decided by its
 * quorum of API decisions before any timeout; the worst case, every stage walked, every stage
 * timer fired, each stage decided by its quorum.
 */
export interface ApprovalPath {
  /** Decisions through the API (decideApproval updates past the validator), all stages together. */
  updates?: number;
  /** `approval` signals received (Temporal Web, the CLI): accepted, repeated or refused alike. */
  signals?: number;
  /** Audit-trail entries: accepted decisions and refused signals (default: updates + signals). */
  audited?: number;
  /** Approver sets the step went through: 2 once escalated (default 1). */
  stages?: number;
  /** Stage timers that fired (an escalation, or the last stage settled by `on_timeout`; default 0). */
  timersFired?: number;
}

/**
 * An approval's own events: the PendingApprovers upserts (on reaching it, on each escalation, at
 * the end), each decision attempt (with decision proofs, each one runs the verifyDecisionToken
 * activity), the stage timers, and one write per audited entry (recordAudit, or recordRunEvents
 * when the run records lifecycle events and the audit travels with them; entries close together
 * share a write, so this leans high).
 */
export function approvalEvents(
  s: CompiledApprovalStep,
  mode: 'typical' | 'worst',
  given: ApprovalPath | undefined,
  options: { proofs: boolean; firstStageDecisions?: number | undefined },
): number {
  const worst = mode === 'worst';
  const stages = Math.min(s.stages.length, given?.stages ?? (worst ? s.stages.length : 1));
  const quorums = s.stages.slice(0, stages).map((stage) => stage.quorum);
  const updates = given?.updates ?? (worst ? quorums.reduce((a, b) => a + b, 0) : (options.firstStageDecisions ?? quorums[0] ?? 1));
  const signals = given?.signals ?? 0;
  const audited = given?.audited ?? updates + signals;
  const timed = s.stages.slice(0, stages).filter((stage) => stage.timeoutMs !== undefined).length;
  const fired = Math.min(timed, given?.timersFired ?? (worst ? timed : 0));
  const verify = options.proofs ? ACTIVITY_EVENTS : 0;
  return (
    UPSERT_EVENTS * (stages + 1) +
    updates * (UPDATE_EVENTS + verify) +
    signals * (SIGNAL_EVENTS + verify) +
    fired * TIMER_EVENTS +
    (timed - fired) * TIMER_CANCELLED_EVENTS +
    audited * WRITE_EVENTS
  );
}

/**
 * What a branch cancelled by a parallel any/N costs: its first effect was started, then
 * cancelled (an activity: scheduled, cancel requested, and its end; a timer: started, cancelled).
 */
export function startedCost(s: CompiledStep): number {
  switch (s.kind) {
    case 'activity':
    case 'sub_workflow':
      return 4;
    case 'wait':
    case 'wait_for_event':
      return TIMER_CANCELLED_EVENTS;
    case 'conditional':
      return Math.max(s.then[0] ? startedCost(s.then[0]) : 0, s.else[0] ? startedCost(s.else[0]) : 0);
    case 'parallel':
      return s.branches.reduce((n, b) => n + startedCost(b), 0);
    case 'loop':
    case 'for_each':
    case 'block':
      return s.steps[0] ? startedCost(s.steps[0]) : 0;
    default:
      return 0;
  }
}
