import { bounded, runMetrics } from './metrics-platform.ts';

/** A newly stored lifecycle event, as `RunEventStore.record` returns it (activities/platform/events.ts). */
export interface EventForMetrics {
  type: string;
  tenant: string;
  definition: string;
  time: string;
  data: Record<string, unknown>;
  requestedAt?: string;
}

/** The lane a platform activity runs for, from its task queue (`<lane>.platform`). */
export function laneOfTaskQueue(taskQueue: string): string {
  const dot = taskQueue.lastIndexOf('.');
  return dot > 0 ? taskQueue.slice(0, dot) : taskQueue;
}

/**
 * Counts runs, steps and approval decisions from the lifecycle events `recordRunEvents` has just
 * stored (each event once: a re-sent batch stores nothing and so counts nothing).
 */
export function recordRunMetrics(events: readonly EventForMetrics[], lane: string): void {
  const m = runMetrics();
  for (const e of events) {
    const runLabels = { definition: bounded('definition', e.definition), lane, tenant: bounded('tenant', e.tenant) };
    switch (e.type) {
      case 'workflow.run.started':
        m.started.add(1, runLabels);
        break;
      case 'workflow.run.completed':
        m.completed.add(1, runLabels);
        break;
      case 'workflow.run.failed':
        m.failed.add(1, runLabels);
        break;
      case 'workflow.run.cancelled':
        m.cancelled.add(1, runLabels);
        break;
      case 'workflow.step.completed':
      case 'workflow.step.failed':
        m.steps.add(1, { lane, kind: String(e.data.stepType ?? 'unknown'), status: e.type === 'workflow.step.completed' ? 'completed' : 'failed' });
        break;
      case 'workflow.approval.decided':
        if (e.requestedAt) {
          const seconds = Math.max(0, (Date.parse(e.time) - Date.parse(e.requestedAt)) / 1000);
          m.approvalsDecided.record(seconds, { lane, decision: String(e.data.decision ?? 'none'), timed_out: String(e.data.timedOut === true) });
        }
        break;
      default:
        break;
    }
  }
}
