import type { Client } from '@temporalio/client';
import { failureMessageOf } from '../common/temporal.ts';

/** An activity Temporal is running or retrying for a run (describe's pending activities). */
export interface PendingActivity {
  activityId: string;
  activity: string;
  /** The step's id (the last segment of its path), as the run's step views name it. */
  stepId?: string;
  /** Where in the run: `loop[2]/flaky` inside a loop or for_each iteration, else the step id. */
  stepPath?: string;
  attempt: number;
  maximumAttempts?: number;
  lastFailure?: string;
  nextAttemptAt?: string;
}

/** The run's pending activities with their steps; caches each run's activity → step map, read once from its history. */
export class PendingActivities {
  constructor(private readonly client: Client) {}

  /** Step of each activity id, read once from the run's history (the activity summary `step <id>`). */
  private readonly activitySteps = new Map<string, Map<string, string>>();

  /**
   * The run's activities Temporal is running or retrying, with the step each belongs to: the only
   * place a retry shows while it happens (a retried attempt writes nothing to the history).
   */
  async of(runId: string): Promise<PendingActivity[]> {
    const handle = this.client.workflow.getHandle(runId);
    const desc = await handle.describe();
    const pending = (desc.raw.pendingActivities ?? []) as Array<Record<string, any>>;
    if (pending.length === 0) {
      this.activitySteps.delete(runId);
      return [];
    }
    let steps = this.activitySteps.get(runId);
    if (!steps || pending.some((p) => !steps?.has(String(p.activityId)))) {
      steps = new Map();
      const history = await handle.fetchHistory();
      for (const event of history.events ?? []) {
        const scheduled = event.activityTaskScheduledEventAttributes;
        const summary = event.userMetadata?.summary;
        if (!scheduled?.activityId || !summary) continue;
        try {
          const text = this.client.options.loadedDataConverter.payloadConverter.fromPayload<string>(summary as never);
          if (typeof text === 'string' && text.startsWith('step ')) steps.set(scheduled.activityId, text.slice(5));
        } catch {
          // A summary the converter cannot read (another codec): the activity stays unattributed.
        }
      }
      // Bounded: one entry per run being followed right now.
      if (this.activitySteps.size > 1000) this.activitySteps.clear();
      this.activitySteps.set(runId, steps);
    }
    const converter = this.client.options.loadedDataConverter;
    return Promise.all(pending.map(async (p) => {
      const lastFailure = await failureMessageOf(converter, p.lastFailure);
      const stepPath = steps?.get(String(p.activityId));
      // The summary holds the step's path (`each[3]/inner`); the views name steps by id.
      const stepId = stepPath?.slice(stepPath.lastIndexOf('/') + 1);
      const seconds = (t: any) => (t?.seconds === undefined ? undefined : new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString());
      return {
        activityId: String(p.activityId),
        activity: String(p.activityType?.name ?? ''),
        ...(stepId === undefined ? {} : { stepId, stepPath }),
        attempt: Number(p.attempt ?? 1),
        ...(p.maximumAttempts ? { maximumAttempts: Number(p.maximumAttempts) } : {}),
        ...(lastFailure ? { lastFailure } : {}),
        ...(seconds(p.nextAttemptScheduleTime) ? { nextAttemptAt: seconds(p.nextAttemptScheduleTime) } : {}),
      };
    }));
  }
}
