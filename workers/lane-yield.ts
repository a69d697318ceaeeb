import type { CustomSlotSupplier, SlotInfo, SlotPermit, SlotReleaseContext, SlotReserveContext, TunerHolder } from '@temporalio/worker';
import type { Config } from '../common/config.ts';
import { ACTIVITY_KINDS, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../common/constants.ts';
import type { Logger } from '../common/logger.ts';

/**
 * Seed 003: "experimental must never block Lane A; under congestion experimental tasks are deferred
 * first". The admission stage (api/admission.ts) defers the *starts* of a deferrable lane; this
 * is the same rule for the work a deferrable lane already has in Temporal (admitted runs, runs
 * fired by a schedule, child runs): while a protected lane is busy, a deferrable lane's activity
 * workers begin new tasks at a trickle (LANE_YIELD_RATE per second per worker) instead of as fast
 * as their slots allow, so the dev server, the database and the CPU go to the protected lane first.
 * Nothing is dropped or failed: tasks wait in the deferrable lane's own queues and are taken at
 * full speed again once the protected lanes are quiet.
 *
 * "Busy" is measured, not guessed: DescribeTaskQueue (reportStats) on every task queue of every
 * protected lane, every LANE_YIELD_PROBE_MS: a waiting task (backlog), or tasks added recently
 * (`tasksAddRate`, which the server averages over the last 30 s, above LANE_YIELD_BUSY_RATE).
 */

export interface LaneYieldSettings {
  namespace: string;
  /** The task queues of the protected lanes (workflow queues type 1, activity queues type 2). */
  protectedQueues: ReadonlyArray<{ name: string; type: 1 | 2 }>;
  probeMs: number;
  /** Tasks per second added to a protected queue (30-s average) from which it counts as busy. */
  busyAddRate: number;
  /** New tasks per second one worker of the deferrable lane takes while a protected lane is busy. */
  yieldRate: number;
}

/** The yield settings for `lane`, or undefined when it does not yield (a protected lane, or LANE_YIELD_RATE 0). */
export function laneYieldSettings(config: Config, lane: string): LaneYieldSettings | undefined {
  const deferrable = config.ADMISSION_DEFERRABLE_LANES.filter((l) => config.LANES.includes(l));
  const protectedLanes = config.LANES.filter((l) => !deferrable.includes(l));
  if (!deferrable.includes(lane) || protectedLanes.length === 0 || config.LANE_YIELD_RATE === 0) return undefined;
  return {
    namespace: config.TEMPORAL_NAMESPACE,
    protectedQueues: protectedLanes.flatMap((l) => [
      { name: workflowTaskQueue(l), type: 1 as const },
      ...ACTIVITY_KINDS.map((k) => ({ name: activityTaskQueue(l, k), type: 2 as const })),
      { name: platformTaskQueue(l), type: 2 as const },
    ]),
    probeMs: config.LANE_YIELD_PROBE_MS,
    busyAddRate: config.LANE_YIELD_BUSY_RATE,
    yieldRate: config.LANE_YIELD_RATE,
  };
}

/** What the watch needs of a connection: NativeConnection and Client both have it. */
export interface DescribesTaskQueues {
  workflowService: {
    describeTaskQueue(request: {
      namespace: string;
      taskQueue: { name: string; kind: number };
      taskQueueType: number;
      reportStats: boolean;
    }): Promise<{ stats?: { approximateBacklogCount?: unknown; tasksAddRate?: number | null } | null }>;
  };
}

/** Why the protected lanes count as busy, or undefined when they are quiet. */
export type BusyReason = string | undefined;

/** Watches the protected lanes' task queues; `busy` says whether deferrable work should yield. */
export class ProtectedLaneWatch {
  #busy: BusyReason;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #listeners = new Set<() => void>();

  constructor(
    private readonly connection: DescribesTaskQueues,
    private readonly settings: LaneYieldSettings,
    private readonly logger: Logger,
  ) {}

  /** Why the protected lanes are busy (a queue and its numbers), or undefined when quiet. */
  get busy(): BusyReason {
    return this.#busy;
  }

  /** Calls `listener` whenever `busy` may have changed. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Takes one measurement now (the first before the workers poll), then one every probeMs. */
  async start(): Promise<void> {
    await this.probe();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.probe().finally(() => this.#schedule()), this.settings.probeMs);
    this.#timer.unref();
  }

  /** One measurement of every protected queue. A failed one keeps the last verdict (Temporal may be restarting). */
  async probe(): Promise<BusyReason> {
    const { namespace, protectedQueues, busyAddRate } = this.settings;
    let reason: BusyReason;
    try {
      const stats = await Promise.all(
        protectedQueues.map(async (q) => {
          const response = await this.connection.workflowService.describeTaskQueue({
            namespace,
            taskQueue: { name: q.name, kind: 1 },
            taskQueueType: q.type,
            reportStats: true,
          });
          return { queue: q.name, backlog: Number(response.stats?.approximateBacklogCount ?? 0), addRate: response.stats?.tasksAddRate ?? 0 };
        }),
      );
      const waiting = stats.find((s) => s.backlog > 0);
      const active = stats.find((s) => s.addRate > busyAddRate);
      if (waiting) reason = `${waiting.queue} holds ${waiting.backlog} waiting task(s)`;
      else if (active) reason = `${active.queue} takes ${active.addRate.toFixed(2)} tasks/s (30-s average, LANE_YIELD_BUSY_RATE ${busyAddRate})`;
    } catch (error) {
      this.logger.debug({ err: error }, 'lane yield: the protected task queues could not be measured; keeping the last verdict');
      return this.#busy;
    }
    if ((reason === undefined) !== (this.#busy === undefined)) {
      this.logger.info({ reason: reason ?? 'quiet' }, reason ? 'protected lanes busy: this lane yields' : 'protected lanes quiet: this lane runs at full speed');
    }
    this.#busy = reason;
    for (const listener of this.#listeners) listener();
    return reason;
  }
}

/**
 * A slot supplier for one activity worker of a deferrable lane: at most `limit` tasks at once (as
 * the fixed-size supplier the worker would otherwise have). While the watch says the protected
 * lanes are busy, a new slot no sooner than 1/yieldRate seconds after the last task began, so the
 * lane begins at most `yieldRate` tasks a second. The SDK reserves a slot before each poll, so a
 * slot can sit reserved with no task yet; at most `idleMax` (2) such idle slots are out while
 * quiet and 1 while busy, so slots reserved in quiet times are no free pass for a burst later.
 */
export class YieldingSlotSupplier<SI extends SlotInfo> implements CustomSlotSupplier<SI> {
  readonly type = 'custom' as const;
  /** Slots out: reserved for a poll, or running a task. */
  #reserved = 0;
  /** Of those, running a task. */
  #inUse = 0;
  #lastStart = Number.NEGATIVE_INFINITY;
  readonly #waiters = new Set<() => void>();
  /** Slots granted while yielding (for logs and tests). */
  yieldedGrants = 0;

  constructor(
    private readonly limit: number,
    private readonly watch: Pick<ProtectedLaneWatch, 'busy' | 'onChange'>,
    private readonly yieldRate: number,
    private readonly now: () => number = () => performance.now(),
    private readonly idleMax = 2,
  ) {
    watch.onChange(() => this.#wake());
  }

  /** Milliseconds until a slot may be granted (0: now; Infinity: when one is used or released). */
  #waitMs(): number {
    const busy = this.watch.busy !== undefined;
    if (this.#reserved >= this.limit) return Number.POSITIVE_INFINITY;
    if (this.#reserved - this.#inUse >= (busy ? 1 : this.idleMax)) return Number.POSITIVE_INFINITY;
    if (!busy) return 0;
    return Math.max(0, this.#lastStart + 1000 / this.yieldRate - this.now());
  }

  #grant(): SlotPermit {
    if (this.watch.busy !== undefined) this.yieldedGrants += 1;
    this.#reserved += 1;
    return {};
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  async reserveSlot(_ctx: SlotReserveContext, abortSignal: AbortSignal): Promise<SlotPermit> {
    for (;;) {
      if (abortSignal.aborted) throw abortError();
      const wait = this.#waitMs();
      if (wait === 0) return this.#grant();
      await new Promise<void>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          abortSignal.removeEventListener('abort', aborted);
          resolve();
        };
        const aborted = () => {
          done();
          reject(abortError());
        };
        this.#waiters.add(done);
        abortSignal.addEventListener('abort', aborted, { once: true });
        if (Number.isFinite(wait)) timer = setTimeout(done, wait);
      });
    }
  }

  tryReserveSlot(): SlotPermit | null {
    return this.#waitMs() === 0 ? this.#grant() : null;
  }

  /** A task begins on a reserved slot: the next slot while yielding is counted from now. */
  markSlotUsed(): void {
    this.#inUse += 1;
    this.#lastStart = this.now();
    this.#wake();
  }

  releaseSlot(ctx?: SlotReleaseContext<SI>): void {
    this.#reserved = Math.max(0, this.#reserved - 1);
    if (ctx?.slotInfo) this.#inUse = Math.max(0, this.#inUse - 1);
    this.#wake();
  }
}

/**
 * An activity worker's tuner: the yielding supplier for its activity slots (`limit` at once, as
 * maxConcurrentActivityTaskExecutions would give) and the SDK's defaults (fixed, 100) for the
 * others. Workflow tasks do not yield: a workflow worker's sticky and normal pollers each need a
 * slot, and a run's workflow tasks follow its activities anyway (each activity that waits holds
 * back the workflow task after it), while admission paces the first ones (the starts).
 */
export function yieldingTuner(limit: number, watch: ProtectedLaneWatch, yieldRate: number): TunerHolder {
  const fixed = { type: 'fixed-size' as const, numSlots: 100 };
  return {
    workflowTaskSlotSupplier: fixed,
    activityTaskSlotSupplier: new YieldingSlotSupplier(limit, watch, yieldRate),
    localActivityTaskSlotSupplier: fixed,
    nexusTaskSlotSupplier: fixed,
  };
}

function abortError(): Error {
  const error = new Error('slot reservation aborted');
  error.name = 'AbortError';
  return error;
}
