import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { stepMetrics } from './metrics-platform.ts';

/** One activity attempt as the interceptor saw it (also what the SLO report's samples store). */
export interface AttemptSample {
  at: Date;
  lane: string;
  kind: string;
  taskQueue: string;
  activity: string;
  /** Temporal priority key of the run (1 urgent … 4 low; 3 when unset). */
  priority: number;
  waitMs: number;
  durationMs: number;
  outcome: 'ok' | 'failed' | 'cancelled';
}

/** Temporal priority keys as the definition language names them (common/constants.ts PRIORITY_KEYS). */
const PRIORITY_NAMES: Record<number, string> = { 1: 'urgent', 2: 'high', 3: 'normal', 4: 'low' };

function outcomeOf(error: unknown): AttemptSample['outcome'] {
  if (error instanceof CancelledFailure || (error instanceof Error && error.name === 'CancelledFailure')) return 'cancelled';
  return 'failed';
}

/**
 * The activity interceptor of a lane's activity workers: for every attempt, the time it waited in
 * its task queue (schedule-to-start: `currentAttemptScheduledTimestampMs` to the start on this
 * worker) and how long it ran, by lane and kind (`workflow_queue_wait_seconds`,
 * `workflow_step_duration_seconds`). `onAttempt` also gets each attempt (the worker's sample writer
 * for the SLO report). Nothing here touches the workflow, so no history changes.
 */
export function metricsInterceptor(lane: string, kind: string, onAttempt?: (sample: AttemptSample) => void): ActivityInterceptorsFactory {
  return (ctx) => ({
    inbound: {
    async execute(input, next) {
      const started = Date.now();
      const { info } = ctx;
      const waitMs = Math.max(0, started - info.currentAttemptScheduledTimestampMs);
      const activity = info.activityType;
      const priority = info.priority?.priorityKey ?? 3;
      stepMetrics().queueWait.record(waitMs / 1000, { lane, task_queue: info.taskQueue, kind, priority: PRIORITY_NAMES[priority] ?? String(priority) });
      let outcome: AttemptSample['outcome'] = 'ok';
      try {
        return await next(input);
      } catch (error) {
        outcome = error instanceof ApplicationFailure ? 'failed' : outcomeOf(error);
        throw error;
      } finally {
        const durationMs = Date.now() - started;
        stepMetrics().duration.record(durationMs / 1000, { lane, kind, activity, outcome });
        onAttempt?.({ at: new Date(started), lane, kind, taskQueue: info.taskQueue, activity, priority, waitMs, durationMs, outcome });
      }
    },
    },
  });
}
