import type { Client } from '@temporalio/client';
import { ACTIVITY_KINDS, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { HttpProblem } from './problem.ts';

/** Temporal's TaskQueueType: 1 workflow, 2 activity. */
const WORKFLOW = 1;
const ACTIVITY = 2;

/** What a queue of a lane is for: the interpreter, an activity kind, or the platform's own activities. */
export type QueueRole = 'workflows' | (typeof ACTIVITY_KINDS)[number] | 'platform';

export interface QueueStatus {
  taskQueue: string;
  role: QueueRole;
  type: 'workflow' | 'activity';
  pollers: number;
  backlog: number;
  backlogAgeSeconds: number;
  /** Tasks added and dispatched per second, as the server measures them. */
  addRate: number;
  dispatchRate: number;
  /** The queue's rate limit set through the API or `temporal task-queue config set`, if any; 0 = paused. */
  rateLimit?: number;
}

export interface LaneStatus {
  lane: string;
  paused: boolean;
  /** Set while paused: who paused it, why and when (the server keeps it with the queue's config). */
  pause?: { reason: string; by: string; at?: string };
  /** Distinct worker identities polling any of the lane's queues, with the queues each polls. */
  workers: Array<{ identity: string; taskQueues: string[]; lastPollAt?: string }>;
  pollers: number;
  /** Tasks waiting across the lane's queues (the largest age of any). */
  backlog: number;
  backlogAgeSeconds: number;
  /** Runs of this lane that are running now (visibility). */
  runsInFlight: number;
  queues: QueueStatus[];
}

const seconds = (d: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  d ? Number(d.seconds ?? 0) + Number(d.nanos ?? 0) / 1e9 : 0;

const isoOf = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined =>
  t?.seconds === undefined || t.seconds === null ? undefined : new Date(Number(t.seconds) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6)).toISOString();

/** The queues pausing a lane holds: its steps' activity queues (skills, integrations, models, agents). */
export function pausedQueues(lane: string): string[] {
  return ACTIVITY_KINDS.map((kind) => activityTaskQueue(lane, kind));
}

/** Every queue of a lane with its role and type. */
export function laneQueues(lane: string): Array<{ taskQueue: string; role: QueueRole; type: typeof WORKFLOW | typeof ACTIVITY }> {
  return [
    { taskQueue: workflowTaskQueue(lane), role: 'workflows', type: WORKFLOW },
    ...ACTIVITY_KINDS.map((kind) => ({ taskQueue: activityTaskQueue(lane, kind), role: kind, type: ACTIVITY }) as const),
    { taskQueue: platformTaskQueue(lane), role: 'platform', type: ACTIVITY },
  ];
}

/**
 * Lanes as an operator sees them (seed 003 §8: pause, resume, status). Pausing a lane sets a queue
 * rate limit of 0 on each of its step queues through the server's UpdateTaskQueueConfig: the
 * server keeps it (a restart of workers, the API or the server does not lift it), dispatches no
 * task from those queues while it holds, and loses none: tasks wait in the backlog. The lane's
 * workflow queue and its platform queue stay open, so runs still start, timers fire, approvals
 * and signals land and lifecycle events are written; each run stops at its next step and goes on
 * from there when the lane is resumed (the limit removed).
 */
export class LanesService {
  constructor(
    private readonly client: Client,
    private readonly options: { namespace: string; lanes: readonly string[] },
  ) {}

  private assertLane(lane: string): void {
    if (!this.options.lanes.includes(lane)) {
      throw new HttpProblem(404, 'Not Found', `no lane "${lane}"; the lanes are ${this.options.lanes.join(', ')}`, [{ path: 'lane', message: 'not a configured lane (LANES)' }]);
    }
  }

  async list(): Promise<LaneStatus[]> {
    return Promise.all(this.options.lanes.map((lane) => this.status(lane)));
  }

  async status(lane: string): Promise<LaneStatus> {
    this.assertLane(lane);
    const namespace = this.options.namespace;
    const queues = await Promise.all(
      laneQueues(lane).map(async (q) => {
        const answer = await this.client.workflowService.describeTaskQueue({
          namespace,
          taskQueue: { name: q.taskQueue, kind: 1 },
          taskQueueType: q.type,
          reportStats: true,
          reportConfig: true,
        });
        const limit = answer.config?.queueRateLimit;
        const status: QueueStatus = {
          taskQueue: q.taskQueue,
          role: q.role,
          type: q.type === WORKFLOW ? 'workflow' : 'activity',
          pollers: (answer.pollers ?? []).length,
          backlog: Number(answer.stats?.approximateBacklogCount ?? 0),
          backlogAgeSeconds: seconds(answer.stats?.approximateBacklogAge),
          addRate: Number(answer.stats?.tasksAddRate ?? 0),
          dispatchRate: Number(answer.stats?.tasksDispatchRate ?? 0),
          ...(limit?.rateLimit ? { rateLimit: Number(limit.rateLimit.requestsPerSecond ?? 0) } : {}),
        };
        return { status, pollers: answer.pollers ?? [], metadata: limit?.metadata };
      }),
    );
    const workers = new Map<string, { identity: string; taskQueues: string[]; lastPollAt?: string }>();
    for (const q of queues) {
      for (const p of q.pollers) {
        const identity = p.identity ?? '';
        const entry = workers.get(identity) ?? { identity, taskQueues: [] };
        entry.taskQueues.push(q.status.taskQueue);
        const at = isoOf(p.lastAccessTime);
        if (at && (!entry.lastPollAt || at > entry.lastPollAt)) entry.lastPollAt = at;
        workers.set(identity, entry);
      }
    }
    const held = queues.filter((q) => pausedQueues(lane).includes(q.status.taskQueue));
    const paused = held.length > 0 && held.every((q) => q.status.rateLimit === 0);
    const pauseMeta = held.find((q) => q.status.rateLimit === 0)?.metadata;
    const running = await this.client.workflow.count(`${SA.lane.name} = '${lane}' AND ExecutionStatus = 'Running'`);
    return {
      lane,
      paused,
      ...(paused && pauseMeta
        ? { pause: { reason: pauseMeta.reason ?? '', by: pauseMeta.updateIdentity ?? '', ...(isoOf(pauseMeta.updateTime) ? { at: isoOf(pauseMeta.updateTime) } : {}) } }
        : {}),
      workers: [...workers.values()].sort((a, b) => a.identity.localeCompare(b.identity)),
      pollers: queues.reduce((n, q) => n + q.status.pollers, 0),
      backlog: queues.reduce((n, q) => n + q.status.backlog, 0),
      backlogAgeSeconds: Math.max(0, ...queues.map((q) => q.status.backlogAgeSeconds)),
      runsInFlight: running.count,
      queues: queues.map((q) => q.status),
    };
  }

  /** Holds every step queue of the lane (rate limit 0); idempotent. */
  async pause(lane: string, by: string, reason: string): Promise<LaneStatus> {
    this.assertLane(lane);
    await this.setLimit(lane, by, { rateLimit: { requestsPerSecond: 0 }, reason: reason || `paused by ${by}` });
    return this.status(lane);
  }

  /** Lifts the lane's limit: its queued steps are dispatched again, in order; idempotent. */
  async resume(lane: string, by: string, reason: string): Promise<LaneStatus> {
    this.assertLane(lane);
    // A RateLimitUpdate without `rateLimit` removes the queue's limit (workers' own limits apply again).
    await this.setLimit(lane, by, { reason: reason || `resumed by ${by}` });
    return this.status(lane);
  }

  private async setLimit(lane: string, by: string, update: { rateLimit?: { requestsPerSecond: number }; reason: string }): Promise<void> {
    await Promise.all(
      pausedQueues(lane).map((taskQueue) =>
        this.client.workflowService.updateTaskQueueConfig({
          namespace: this.options.namespace,
          identity: by,
          taskQueue,
          taskQueueType: ACTIVITY,
          updateQueueRateLimit: update,
        }),
      ),
    );
  }
}
