// Over 400 lines: one concept, the admission stage (its settings, the token bucket and rate window it measures with, and the class that admits, defers and dispatches).
import { apiMetrics } from '../common/metrics-platform.ts';
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import type { Config } from '../common/config.ts';
import { ACTIVITY_KINDS, INTERPRETER_WORKFLOW_TYPE, MEMO_KEYS, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import type { Logger } from '../common/logger.ts';
import { withTraceparent } from '../common/trace-context.ts';
import type { AdmissionStore, DeferRequest, DeferredRun, StartSpec } from './admission-store.ts';
import { HttpProblem } from './problem.ts';

/**
 * The admission stage every API start passes (POST /v1/runs, POST /v1/events): seed 003's
 * "experimental must never block Lane A; under congestion experimental tasks are deferred first".
 *
 * A start of a protected lane (every lane not in ADMISSION_DEFERRABLE_LANES) always goes straight
 * to Temporal. A start of a deferrable lane goes to Temporal only when nothing of its lane is
 * queued, no protected lane is congested, its own lane has room, and its start-rate budget allows;
 * otherwise it is deferred: accepted (202), written to PostgreSQL (admission_queue), and started
 * later, in priority then arrival order, by the dispatcher of some API process as capacity frees.
 * A full queue answers 429 with Retry-After. Congestion is measured, not guessed: task-queue
 * backlog and the age of the oldest waiting task (DescribeTaskQueue) and the rate of starts.
 */

export interface AdmissionSettings {
  deferrableLanes: readonly string[];
  protectedLanes: readonly string[];
  queueMax: number;
  startRate: number;
  startBurst: number;
  protectedBacklogMax: number;
  protectedBacklogAgeMs: number;
  protectedStartRate: number;
  laneBacklogMax: number;
  probeMs: number;
  namespace: string;
  /** While a protected lane is busy (tasks added, 30-s average, above busyAddRate), deferrable lanes start at most busyStartRate runs a second. */
  busyAddRate: number;
  busyStartRate: number;
}

export function admissionSettings(config: Config): AdmissionSettings {
  const deferrable = config.ADMISSION_DEFERRABLE_LANES.filter((l) => config.LANES.includes(l));
  return {
    deferrableLanes: deferrable,
    protectedLanes: config.LANES.filter((l) => !deferrable.includes(l)),
    queueMax: config.ADMISSION_QUEUE_MAX,
    startRate: config.ADMISSION_START_RATE,
    startBurst: config.ADMISSION_START_BURST,
    protectedBacklogMax: config.ADMISSION_PROTECTED_BACKLOG_MAX,
    protectedBacklogAgeMs: config.ADMISSION_PROTECTED_BACKLOG_AGE_MS,
    protectedStartRate: config.ADMISSION_PROTECTED_START_RATE,
    laneBacklogMax: config.ADMISSION_LANE_BACKLOG_MAX,
    probeMs: config.ADMISSION_PROBE_MS,
    namespace: config.TEMPORAL_NAMESPACE,
    // The same notion of "busy" as the workers' yield (workers/lane-yield.ts); LANE_YIELD_RATE 0 turns both off.
    busyAddRate: config.LANE_YIELD_RATE === 0 ? Number.POSITIVE_INFINITY : config.LANE_YIELD_BUSY_RATE,
    busyStartRate: config.LANE_YIELD_RATE === 0 ? config.ADMISSION_START_RATE : Math.min(config.LANE_YIELD_RATE, config.ADMISSION_START_RATE),
  };
}

/** Starts one run in Temporal from its spec; a run that already holds the id is not an error. */
export async function startFromSpec(client: Client, spec: StartSpec): Promise<void> {
  try {
    await client.workflow.start(INTERPRETER_WORKFLOW_TYPE, {
      workflowId: spec.workflowId,
      taskQueue: spec.taskQueue,
      args: spec.args,
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowExecutionTimeout: spec.executionTimeoutMs,
      staticSummary: spec.staticSummary,
      staticDetails: spec.staticDetails,
      memo: spec.memo,
      typedSearchAttributes: spec.searchAttributes,
      ...(spec.priorityKey === undefined ? {} : { priority: { priorityKey: spec.priorityKey } }),
    });
  } catch (error) {
    // A closed run already holds this id (REJECT_DUPLICATE): the key was used before.
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}

/** A token bucket: `rate` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Takes up to `n` whole tokens; returns how many it took. */
  take(n = 1): number {
    this.refill();
    const taken = Math.min(n, Math.floor(this.tokens));
    this.tokens -= taken;
    return taken;
  }

  /** Milliseconds until one token is there. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}

/** Events in the last second. */
export class RateWindow {
  private readonly times: number[] = [];
  constructor(private readonly now: () => number = () => performance.now()) {}
  add(): void {
    this.times.push(this.now());
  }
  perSecond(): number {
    const cutoff = this.now() - 1000;
    while (this.times.length > 0 && this.times[0]! < cutoff) this.times.shift();
    return this.times.length;
  }
}

/** One queue's measured state. */
export interface QueueStats {
  taskQueue: string;
  backlog: number;
  backlogAgeMs: number;
  /** Tasks added a second, the server's 30-s average. */
  addRate: number;
}

/** One measurement of every lane's task queues. */
export interface Measurement {
  at: number;
  /** Per lane: the queue with the largest backlog and the largest backlog age. */
  lanes: Record<string, { backlog: number; backlogAgeMs: number; queues: QueueStats[] }>;
  /** Set when DescribeTaskQueue failed: treated as congested (Temporal may be down). */
  error?: string;
  /** Why a protected lane counts as busy (not congested: its work flows, but it is working), if it does. */
  protectedBusy?: string;
}

const durationMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  d ? Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6 : 0;

/** The admission verdict: start now, or why not. */
export type Verdict = { admit: true } | { admit: false; reason: string };

export class Admission {
  private readonly buckets = new Map<string, TokenBucket>();
  /** Per deferrable lane, the slower budget that applies while a protected lane is busy. */
  private readonly busyBuckets = new Map<string, TokenBucket>();
  private readonly protectedStarts = new RateWindow();
  private measurement: Measurement | undefined;
  private measuring: Promise<Measurement> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private draining: Promise<void> | undefined;
  private deferredTotal = 0;
  private dispatchedTotal = 0;

  constructor(
    private readonly client: Client,
    readonly store: AdmissionStore,
    readonly settings: AdmissionSettings,
    private readonly logger: Logger,
  ) {
    for (const lane of settings.deferrableLanes) {
      this.buckets.set(lane, new TokenBucket(settings.startRate, settings.startBurst));
      this.busyBuckets.set(lane, new TokenBucket(settings.busyStartRate, 1));
    }
  }

  isDeferrable(lane: string): boolean {
    return this.settings.deferrableLanes.includes(lane);
  }

  /** The task queues a lane's workers poll: its workflow queue and every activity queue. */
  private queuesOf(lane: string): Array<{ name: string; type: 1 | 2 }> {
    return [
      { name: workflowTaskQueue(lane), type: 1 },
      ...ACTIVITY_KINDS.map((k) => ({ name: activityTaskQueue(lane, k), type: 2 as const })),
      { name: platformTaskQueue(lane), type: 2 },
    ];
  }

  /** The latest measurement, taken again when older than ADMISSION_PROBE_MS (one at a time). */
  async measure(): Promise<Measurement> {
    if (this.measurement && performance.now() - this.measurement.at < this.settings.probeMs) return this.measurement;
    this.measuring ??= this.probe().finally(() => {
      this.measuring = undefined;
    });
    return this.measuring;
  }

  private async probe(): Promise<Measurement> {
    const lanes = [...this.settings.protectedLanes, ...this.settings.deferrableLanes];
    const measurement: Measurement = { at: performance.now(), lanes: {} };
    try {
      await Promise.all(
        lanes.map(async (lane) => {
          const queues = await Promise.all(
            this.queuesOf(lane).map(async ({ name, type }): Promise<QueueStats> => {
              const response = await this.client.workflowService.describeTaskQueue({
                namespace: this.settings.namespace,
                taskQueue: { name, kind: 1 },
                taskQueueType: type,
                reportStats: true,
              });
              return {
                taskQueue: name,
                backlog: Number(response.stats?.approximateBacklogCount ?? 0),
                backlogAgeMs: durationMs(response.stats?.approximateBacklogAge),
                addRate: response.stats?.tasksAddRate ?? 0,
              };
            }),
          );
          measurement.lanes[lane] = {
            backlog: Math.max(0, ...queues.map((q) => q.backlog)),
            backlogAgeMs: Math.max(0, ...queues.map((q) => q.backlogAgeMs)),
            queues,
          };
        }),
      );
      const busy = this.settings.protectedLanes.flatMap((l) => measurement.lanes[l]?.queues ?? []).find((q) => q.addRate > this.settings.busyAddRate);
      if (busy) measurement.protectedBusy = `${busy.taskQueue} takes ${busy.addRate.toFixed(2)} tasks/s`;
    } catch (error) {
      measurement.error = (error as Error).message;
    }
    measurement.at = performance.now();
    this.measurement = measurement;
    return measurement;
  }

  /** Whether a start of a deferrable lane may go to Temporal now (without taking a token). */
  async capacity(lane: string): Promise<Verdict> {
    const s = this.settings;
    const rate = this.protectedStarts.perSecond();
    if (rate > s.protectedStartRate) return { admit: false, reason: `protected lanes started ${rate} runs in the last second (ADMISSION_PROTECTED_START_RATE ${s.protectedStartRate})` };
    const m = await this.measure();
    if (m.error) return { admit: false, reason: `task queues could not be measured: ${m.error}` };
    for (const p of s.protectedLanes) {
      const stats = m.lanes[p];
      if (!stats) continue;
      if (stats.backlog > s.protectedBacklogMax) {
        const q = stats.queues.find((x) => x.backlog === stats.backlog);
        return { admit: false, reason: `${q?.taskQueue ?? p} holds ${stats.backlog} waiting tasks (ADMISSION_PROTECTED_BACKLOG_MAX ${s.protectedBacklogMax})` };
      }
      if (stats.backlogAgeMs > s.protectedBacklogAgeMs) {
        const q = stats.queues.find((x) => x.backlogAgeMs === stats.backlogAgeMs);
        return { admit: false, reason: `${q?.taskQueue ?? p}'s oldest task waited ${Math.round(stats.backlogAgeMs)} ms (ADMISSION_PROTECTED_BACKLOG_AGE_MS ${s.protectedBacklogAgeMs})` };
      }
    }
    const own = m.lanes[lane];
    if (own && own.backlog > s.laneBacklogMax) {
      const q = own.queues.find((x) => x.backlog === own.backlog);
      return { admit: false, reason: `${q?.taskQueue ?? lane} holds ${own.backlog} waiting tasks (ADMISSION_LANE_BACKLOG_MAX ${s.laneBacklogMax})` };
    }
    return { admit: true };
  }

  /** The lane's start budget now: the slower one while a protected lane is busy. */
  private async bucketFor(lane: string): Promise<{ bucket: TokenBucket; busy?: string }> {
    const busy = (await this.measure()).protectedBusy;
    return busy ? { bucket: this.busyBuckets.get(lane)!, busy } : { bucket: this.buckets.get(lane)! };
  }

  /**
   * Decides one start. Protected lanes: admitted, and counted. Deferrable lanes: admitted when
   * nothing of the lane waits in the queue (nothing jumps it), there is capacity and a token;
   * otherwise deferred into the queue. A start whose run already exists in Temporal (the same
   * idempotency key) is admitted: starting it again starts nothing.
   */
  async admit(request: DeferRequest & { keyed: boolean }): Promise<{ deferred: false } | { deferred: true; created: boolean; existing?: DeferredRun }> {
    if (!this.isDeferrable(request.lane)) {
      this.protectedStarts.add();
      return { deferred: false };
    }
    if (request.keyed && (await this.existsInTemporal(request.spec.workflowId))) return { deferred: false };
    let reason: string | undefined;
    const depth = await this.store.depth(request.lane);
    if (depth > 0) reason = `${depth} earlier deferred start(s) of lane ${request.lane} go first`;
    if (reason === undefined) {
      const verdict = await this.capacity(request.lane);
      if (!verdict.admit) reason = verdict.reason;
    }
    if (reason === undefined) {
      const { bucket, busy } = await this.bucketFor(request.lane);
      if (bucket.take() === 0) {
        reason = busy
          ? `lane ${request.lane} starts ${this.settings.busyStartRate} run(s)/s while a protected lane is busy (${busy})`
          : `lane ${request.lane} is at its start rate (ADMISSION_START_RATE ${this.settings.startRate}/s)`;
      }
    }
    if (reason === undefined) return { deferred: false };
    const result = await this.store.enqueue({ ...request, reason }, this.settings.queueMax);
    if (result.outcome === 'exists') return { deferred: true, created: false, existing: result.existing };
    if (result.outcome === 'full') {
      const retryAfter = Math.max(1, Math.ceil(Math.min(result.depth, 1000) / this.settings.startRate));
      throw new AdmissionQueueFull(request.lane, result.depth, retryAfter);
    }
    this.deferredTotal += 1;
    apiMetrics().admissionDeferrals.add(1, { lane: request.lane });
    this.logger.info({ runId: request.spec.workflowId, lane: request.lane, reason }, 'run start deferred');
    this.kick();
    return { deferred: true, created: true };
  }

  private async existsInTemporal(workflowId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowId).describe();
      return true;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  }

  /** Starts the dispatcher: it drains every deferrable lane's queue as capacity frees. */
  start(): void {
    if (this.settings.deferrableLanes.length === 0) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.draining;
  }

  /** Counters since the process started (for logs and tests). */
  stats(): { deferred: number; dispatched: number } {
    return { deferred: this.deferredTotal, dispatched: this.dispatchedTotal };
  }

  private kick(): void {
    if (!this.stopped && !this.draining) this.schedule(0);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.draining = this.tick()
        .then(
          (next) => next,
          (error: unknown) => {
            this.logger.warn({ err: error }, 'admission dispatcher: draining failed; retrying');
            return 1000;
          },
        )
        .then((next) => {
          this.draining = undefined;
          this.schedule(next);
        });
    }, ms);
    this.timer.unref();
  }

  /** One round over the deferrable lanes; returns how long to wait before the next. */
  private async tick(): Promise<number> {
    const depths = await this.store.depths();
    let next = 500;
    for (const lane of this.settings.deferrableLanes) {
      if (!depths[lane]) continue;
      const verdict = await this.capacity(lane);
      if (!verdict.admit) {
        next = Math.min(next, this.settings.probeMs);
        continue;
      }
      const { bucket } = await this.bucketFor(lane);
      const tokens = bucket.take(Math.min(depths[lane], 20));
      if (tokens === 0) {
        next = Math.min(next, Math.max(20, bucket.waitMs()));
        continue;
      }
      const result = await this.store.drain(lane, tokens, async (spec) => {
        // The start joins the trace of the request that deferred it (its memo's traceparent).
        await withTraceparent(spec.memo[MEMO_KEYS.traceparent], () => startFromSpec(this.client, spec));
      });
      this.dispatchedTotal += result.started;
      if (result.started > 0) apiMetrics().admissionDispatched.add(result.started, { lane });
      if (result.started > 0) this.logger.info({ lane, started: result.started, queued: depths[lane] - result.started }, 'deferred runs started');
      if (result.error) {
        this.logger.warn({ err: result.error, lane }, 'admission dispatcher: a deferred start failed; it stays first in line');
        next = Math.min(next, 1000);
        continue;
      }
      next = Math.min(next, Math.max(20, bucket.waitMs()));
    }
    return next;
  }
}

/** 429: the lane's queue of deferred starts is full. */
export class AdmissionQueueFull extends HttpProblem {
  constructor(
    lane: string,
    depth: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      429,
      'Too Many Requests',
      `lane ${lane} is congested and its queue of deferred starts is full (${depth}, ADMISSION_QUEUE_MAX); retry after ${retryAfterSeconds} s`,
      [{ path: '/definition', message: `lane ${lane}: admission queue full` }],
      { lane, retryAfterSeconds },
    );
  }
}
