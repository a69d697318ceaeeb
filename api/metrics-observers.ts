import type { Client } from '@temporalio/client';
import { meter } from '../common/metrics.ts';
import { bounded } from '../common/metrics-platform.ts';
import { SA } from '../common/search-attributes.ts';
import type { Logger } from '../common/logger.ts';
import { laneQueues } from './lanes-service.ts';

/** What one measurement of the Temporal side found (DescribeTaskQueue, visibility, schedules). */
interface Snapshot {
  queues: Array<{ lane: string; taskQueue: string; role: string; backlog: number; backlogAgeSeconds: number; pollers: number }>;
  lanes: Array<{ lane: string; running: number; approvalsPending: number }>;
  schedules: Array<{ schedule: string; definition: string; taken: number; missed: number; skipped: number }>;
}

/** The series the API observes on Temporal (its gauges and observable counters), by instrument name. */
export const OBSERVED_SERIES = [
  'workflow_queue_backlog',
  'workflow_queue_backlog_age_seconds',
  'workflow_queue_pollers',
  'workflow_runs_in_flight',
  'workflow_approvals_pending',
  'workflow_schedule_fires',
  'workflow_schedule_missed_fires',
  'workflow_schedule_skipped_fires',
] as const;
type Observed = (typeof OBSERVED_SERIES)[number];
const named = (n: Observed): Observed => n;

const seconds = (d: { seconds?: unknown; nanos?: number | null } | null | undefined): number => (d ? Number(d.seconds ?? 0) + Number(d.nanos ?? 0) / 1e9 : 0);

/** One measurement: every lane's queues (DescribeTaskQueue with stats), its visibility counts and the schedules' counters. */
async function measureTemporal(client: Client, options: { namespace: string; lanes: readonly string[] }): Promise<Snapshot> {
  const queues = (
    await Promise.all(
      options.lanes.flatMap((lane) =>
        laneQueues(lane).map(async (q) => {
          const answer = await client.workflowService.describeTaskQueue({ namespace: options.namespace, taskQueue: { name: q.taskQueue, kind: 1 }, taskQueueType: q.type, reportStats: true });
          return {
            lane,
            taskQueue: q.taskQueue,
            role: q.role,
            backlog: Number(answer.stats?.approximateBacklogCount ?? 0),
            backlogAgeSeconds: seconds(answer.stats?.approximateBacklogAge),
            pollers: (answer.pollers ?? []).length,
          };
        }),
      ),
    )
  ).flat();
  const lanes = await Promise.all(
    options.lanes.map(async (lane) => {
      const running = `${SA.lane.name} = '${lane}' AND ExecutionStatus = 'Running'`;
      const [all, waiting] = await Promise.all([client.workflow.count(running), client.workflow.count(`${running} AND ${SA.pendingApprovers.name} IS NOT NULL`)]);
      return { lane, running: all.count, approvalsPending: waiting.count };
    }),
  );
  const schedules: Snapshot['schedules'] = [];
  for await (const s of client.schedule.list()) {
    const match = /^sched:[^:]+:([^:]+):\d+$/.exec(s.scheduleId);
    if (!match) continue;
    const info = (await client.schedule.getHandle(s.scheduleId).describe()).info;
    schedules.push({ schedule: s.scheduleId, definition: match[1]!, taken: info.numActionsTaken, missed: info.numActionsMissedCatchupWindow, skipped: info.numActionsSkippedOverlap });
  }
  return { queues, lanes, schedules };
}

/**
 * The API's gauges, measured on Temporal when Prometheus scrapes (at most once per `ttlMs`, shared
 * by all of them): backlog, its age and pollers of every queue of every lane (DescribeTaskQueue
 * with stats), runs in flight and approvals pending per lane (visibility counts), and each
 * schedule's fires, missed fires (catch-up window) and overlap skips (Temporal's own schedule
 * counters). Every API replica reports the same values: aggregate them with `max`, not `sum`.
 */
export function observeTemporal(client: Client, options: { namespace: string; lanes: readonly string[]; logger: Logger; ttlMs?: number }): void {
  const ttlMs = options.ttlMs ?? 10_000;
  let last: { at: number; snapshot: Snapshot } | undefined;
  let inFlight: Promise<Snapshot> | undefined;
  const measure = () => measureTemporal(client, options);
  const snapshot = async (): Promise<Snapshot | undefined> => {
    if (last && Date.now() - last.at < ttlMs) return last.snapshot;
    inFlight ??= measure().finally(() => (inFlight = undefined));
    try {
      const snap = await inFlight;
      last = { at: Date.now(), snapshot: snap };
      return snap;
    } catch (error) {
      options.logger.warn({ err: (error as Error).message }, 'metrics: could not measure Temporal (queues, visibility, schedules)');
      return last?.snapshot;
    }
  };

  const m = meter();
  const backlog = m.createObservableGauge(named('workflow_queue_backlog'), { description: 'Tasks waiting in a task queue (DescribeTaskQueue, approximate)' });
  const backlogAge = m.createObservableGauge(named('workflow_queue_backlog_age_seconds'), { unit: 's', description: 'How long the oldest waiting task of a task queue has waited' });
  const pollers = m.createObservableGauge(named('workflow_queue_pollers'), { description: 'Workers polling a task queue' });
  const running = m.createObservableGauge(named('workflow_runs_in_flight'), { description: 'Runs of a lane that are running now (visibility)' });
  const approvals = m.createObservableGauge(named('workflow_approvals_pending'), { description: 'Running runs of a lane waiting on an approval (PendingApprovers set)' });
  const fires = m.createObservableCounter(named('workflow_schedule_fires'), { description: 'Runs a schedule started (Temporal numActionsTaken)' });
  const missed = m.createObservableCounter(named('workflow_schedule_missed_fires'), { description: 'Fires a schedule missed: past its catch-up window (numActionsMissedCatchupWindow)' });
  const skipped = m.createObservableCounter(named('workflow_schedule_skipped_fires'), { description: 'Fires a schedule skipped by its overlap policy (numActionsSkippedOverlap)' });
  m.addBatchObservableCallback(
    async (result) => {
      const snap = await snapshot();
      if (!snap) return;
      for (const q of snap.queues) {
        const labels = { lane: q.lane, task_queue: q.taskQueue, role: q.role };
        result.observe(backlog, q.backlog, labels);
        result.observe(backlogAge, q.backlogAgeSeconds, labels);
        result.observe(pollers, q.pollers, labels);
      }
      for (const l of snap.lanes) {
        result.observe(running, l.running, { lane: l.lane });
        result.observe(approvals, l.approvalsPending, { lane: l.lane });
      }
      for (const s of snap.schedules) {
        const labels = { schedule: bounded('schedule', s.schedule), definition: bounded('definition', s.definition) };
        result.observe(fires, s.taken, labels);
        result.observe(missed, s.missed, labels);
        result.observe(skipped, s.skipped, labels);
      }
    },
    [backlog, backlogAge, pollers, running, approvals, fires, missed, skipped],
  );
}
