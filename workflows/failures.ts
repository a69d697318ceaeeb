import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure, isCancellation } from '@temporalio/workflow';
import { StepCallError, type ActivityCall } from '../interpreter/engine.ts';

/**
 * The failure mapping of the Temporal binding, shared by the interpreter and agent workflows: what
 * an activity or child run's failure becomes for the engine (a StepCallError with type and
 * attempts) or for the agent loop (type and message). A cancellation is never mapped: it stays a
 * cancellation.
 */

/** An activity failure's type and message; `timeout` words a timeout for its caller. */
export function activityFailureOf(failure: ActivityFailure, timeout: (cause: TimeoutFailure) => string): { type: string; message: string } {
  const cause = failure.cause;
  if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
  if (cause instanceof TimeoutFailure) return { type: 'Timeout', message: timeout(cause) };
  return { type: 'ActivityFailure', message: cause ? cause.message : failure.message };
}

/** Any failure the agent loop meets, as type and message (activities as above). */
export function failureMessage(error: unknown): { type: string; message: string } {
  if (error instanceof ActivityFailure) return activityFailureOf(error, (cause) => `timed out (${String(cause.timeoutType)})`);
  return { type: 'Error', message: error instanceof Error ? error.message : String(error) };
}

/** Reads the attempt count our activity wrapper attaches to every failure it raises. */
function attemptsOf(failure: ActivityFailure, call: ActivityCall): number | undefined {
  const cause = failure.cause;
  if (cause instanceof ApplicationFailure) {
    const detail: unknown = cause.details?.[0];
    if (detail && typeof detail === 'object' && typeof (detail as { attempt?: unknown }).attempt === 'number') {
      return (detail as { attempt: number }).attempt;
    }
  }
  return failure.retryState === 'MAXIMUM_ATTEMPTS_REACHED' ? call.retry.maxAttempts : undefined;
}

/** An activity step's failure as the engine reads it: the implementation's error type, message and attempts. */
export function toStepCallError(failure: ActivityFailure, call: ActivityCall): StepCallError {
  const { type, message } = activityFailureOf(
    failure,
    (cause) => `${call.type} "${call.name}" timed out (${cause.timeoutType === undefined ? 'timeout' : String(cause.timeoutType)}; limit ${call.timeoutSeconds}s)`,
  );
  return new StepCallError(message, type, attemptsOf(failure, call));
}

/**
 * What to throw for an activity step's failure: a StepCallError, or the error itself when it is a
 * cancellation (a cancelled run surfaces as an ActivityFailure caused by CancelledFailure) or not
 * an activity's. Mapped in the caller's own catch, so the binding adds no await of its own.
 */
export function stepCallFailure(error: unknown, call: ActivityCall): unknown {
  return error instanceof ActivityFailure && !isCancellation(error) ? toStepCallError(error, call) : error;
}

/**
 * What to throw for a child workflow's failure: `mapped` of its cause and the message to show, or
 * the error itself when it is a cancellation or not a child's failure.
 */
export function childFailure(error: unknown, mapped: (cause: Error | undefined, message: string) => StepCallError): unknown {
  if (!(error instanceof ChildWorkflowFailure) || isCancellation(error)) return error;
  const cause = error.cause;
  return mapped(cause, cause ? cause.message : error.message);
}
