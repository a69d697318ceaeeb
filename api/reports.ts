import type { Client } from '@temporalio/client';
import type { Pool } from '../common/db.ts';
import type { LanesService } from './lanes-service.ts';
import type { SchedulesService } from './schedules-service.ts';
import { windowMs, type SloReport } from './reports-schemas.ts';

/** Seed 003 §6 targets. */
export const SLO_TARGETS = { prodSuccess: 0.98, prodQueueP95Seconds: 30, urgentStartSeconds: 10 } as const;
/** Temporal's priority key of `urgent` (common/constants.ts PRIORITY_KEYS). */
const URGENT = 1;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);
const secs = (ms: unknown): number | null => (ms === null || ms === undefined ? null : Math.round(Number(ms)) / 1000);

interface Window {
  spec: string;
  from: Date;
  to: Date;
}

/**
 * The seed-003 daily report (`GET /v1/reports/slo`), from what the platform records: run outcomes
 * from the lifecycle events (`run_events`, the latest end event of each run in the window), queue
 * waits from the workers' attempt samples (`step_attempts`), model requests (`model_requests`),
 * current depth from DescribeTaskQueue (the lanes service), and schedules from Temporal (their
 * counters and a visibility count of the runs each started). An empty window answers zeros and
 * `no data` verdicts, never a pass.
 */
export class SloReports {
  constructor(
    private readonly pool: Pool,
    private readonly client: Client,
    private readonly lanes: LanesService,
    private readonly schedules: SchedulesService,
    private readonly options: { prodLanes: readonly string[] },
  ) {}

  async report(tenant: string, spec: string, now = new Date()): Promise<SloReport> {
    const window: Window = { spec, from: new Date(now.getTime() - windowMs(spec)), to: now };
    const [queues, runs, models, cron, urgent] = await Promise.all([
      this.queues(window),
      this.runs(tenant, window),
      this.models(window),
      this.cron(tenant, window),
      this.waits(window, { priority: URGENT }),
    ]);
    const prodWait = await this.waits(window, { lanes: this.options.prodLanes });
    const prodRuns = runs.byDefinition.filter((d) => this.options.prodLanes.includes(d.lane));
    const completed = prodRuns.reduce((n, d) => n + d.completed, 0);
    const failed = prodRuns.reduce((n, d) => n + d.failed, 0);
    const success = completed + failed === 0 ? null : completed / (completed + failed);
    const judge = (value: number | null, ok: (v: number) => boolean) => (value === null ? 'no data' : ok(value) ? 'pass' : 'fail') as 'pass' | 'fail' | 'no data';
    return {
      window: { spec, from: window.from.toISOString(), to: window.to.toISOString() },
      tenant,
      prodLanes: [...this.options.prodLanes],
      queues,
      runs,
      models,
      cron,
      slos: [
        {
          id: 'prod-success',
          objective: 'prod workflow success >= 98%',
          target: SLO_TARGETS.prodSuccess,
          value: num(success),
          unit: 'ratio',
          verdict: judge(success, (v) => v >= SLO_TARGETS.prodSuccess),
          numbers: { completed, failed, lanes: this.options.prodLanes },
        },
        {
          id: 'prod-queue-wait-p95',
          objective: 'prod queue p95 wait < 30 s',
          target: SLO_TARGETS.prodQueueP95Seconds,
          value: prodWait.p95Seconds,
          unit: 'seconds',
          verdict: judge(prodWait.p95Seconds, (v) => v < SLO_TARGETS.prodQueueP95Seconds),
          numbers: { ...prodWait, lanes: this.options.prodLanes },
        },
        {
          id: 'urgent-start',
          objective: 'urgent task start time < 10 s (p95 schedule-to-start of urgent runs’ steps)',
          target: SLO_TARGETS.urgentStartSeconds,
          value: urgent.p95Seconds,
          unit: 'seconds',
          verdict: judge(urgent.p95Seconds, (v) => v < SLO_TARGETS.urgentStartSeconds),
          numbers: { ...urgent, priority: 'urgent' },
        },
      ],
    };
  }

  /** p50/p95 schedule-to-start of step attempts (platform activities excluded) in the window. */
  private async waits(window: Window, filter: { lanes?: readonly string[]; priority?: number }): Promise<{ samples: number; p50Seconds: number | null; p95Seconds: number | null }> {
    const { rows } = await this.pool.query<{ n: string; p50: number | null; p95: number | null }>(
      `SELECT count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_ms) AS p95
       FROM step_attempts WHERE at >= $1 AND at <= $2 AND kind <> 'platform'
         AND ($3::text[] IS NULL OR lane = ANY($3::text[])) AND ($4::smallint IS NULL OR priority = $4)`,
      [window.from, window.to, filter.lanes ? [...filter.lanes] : null, filter.priority ?? null],
    );
    const r = rows[0]!;
    return { samples: Number(r.n), p50Seconds: secs(r.p50), p95Seconds: secs(r.p95) };
  }

  private async queues(window: Window): Promise<SloReport['queues']> {
    const [lanes, waits] = await Promise.all([
      this.lanes.list(),
      this.pool.query<{ lane: string; n: string; p50: number | null; p95: number | null }>(
        `SELECT lane, count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY wait_ms) AS p95
         FROM step_attempts WHERE at >= $1 AND at <= $2 AND kind <> 'platform' GROUP BY lane`,
        [window.from, window.to],
      ),
    ]);
    const byLane = new Map(waits.rows.map((r) => [r.lane, r]));
    return lanes.map((l) => {
      const w = byLane.get(l.lane);
      return {
        lane: l.lane,
        paused: l.paused,
        depth: l.backlog,
        oldestWaitSeconds: l.backlogAgeSeconds,
        wait: { samples: Number(w?.n ?? 0), p50Seconds: secs(w?.p50), p95Seconds: secs(w?.p95) },
        byQueue: l.queues.map((q) => ({ taskQueue: q.taskQueue, depth: q.backlog, oldestWaitSeconds: q.backlogAgeSeconds })),
      };
    });
  }

  /** Each run's latest end event in the window (a run reset after failing and then completed counts as completed). */
  private async runs(tenant: string, window: Window): Promise<SloReport['runs']> {
    const { rows } = await this.pool.query<{ definition: string; lane: string; completed: string; failed: string; cancelled: string }>(
      `WITH ends AS (
         SELECT DISTINCT ON (run_id) run_id, definition, type FROM run_events
         WHERE tenant = $1 AND type IN ('workflow.run.completed', 'workflow.run.failed', 'workflow.run.cancelled') AND time >= $2 AND time <= $3
         ORDER BY run_id, seq DESC)
       SELECT e.definition, COALESCE(s.lane, '') AS lane,
              count(*) FILTER (WHERE e.type = 'workflow.run.completed') AS completed,
              count(*) FILTER (WHERE e.type = 'workflow.run.failed') AS failed,
              count(*) FILTER (WHERE e.type = 'workflow.run.cancelled') AS cancelled
       FROM ends e
       LEFT JOIN LATERAL (SELECT data->>'lane' AS lane FROM run_events st WHERE st.run_id = e.run_id AND st.type = 'workflow.run.started' LIMIT 1) s ON true
       GROUP BY 1, 2 ORDER BY 1, 2`,
      [tenant, window.from, window.to],
    );
    const byDefinition = rows.map((r) => {
      const completed = Number(r.completed);
      const failed = Number(r.failed);
      return { definition: r.definition, lane: r.lane, completed, failed, cancelled: Number(r.cancelled), successRate: completed + failed === 0 ? null : num(completed / (completed + failed)) };
    });
    const sum = (k: 'completed' | 'failed' | 'cancelled') => byDefinition.reduce((n, d) => n + d[k], 0);
    return { total: { completed: sum('completed'), failed: sum('failed'), cancelled: sum('cancelled') }, byDefinition };
  }

  private async models(window: Window): Promise<SloReport['models']> {
    const args = [window.from, window.to];
    const [all, routes] = await Promise.all([
      this.pool.query<Record<string, string | number | null>>(
        `SELECT count(*) AS requests, count(*) FILTER (WHERE fell_back) AS fell_back,
                count(*) FILTER (WHERE NOT first_cloud) AS local_first,
                count(*) FILTER (WHERE NOT first_cloud AND cloud AND outcome = 'ok') AS to_cloud,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE outcome = 'ok') AS p50,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE outcome = 'ok') AS p95,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY tokens_per_second) AS tps50, avg(tokens_per_second) AS tps
         FROM model_requests WHERE at >= $1 AND at <= $2`,
        args,
      ),
      this.pool.query<Record<string, string | number | null>>(
        `SELECT route, provider, count(*) AS answered,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY tokens_per_second) AS tps50
         FROM model_requests WHERE at >= $1 AND at <= $2 AND outcome = 'ok' AND route IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2`,
        args,
      ),
    ]);
    const r = all.rows[0]!;
    const localFirst = Number(r.local_first);
    return {
      requests: Number(r.requests),
      fellBack: Number(r.fell_back),
      localFirst,
      localToCloud: Number(r.to_cloud),
      fallbackRateLocalToCloud: localFirst === 0 ? null : num(Number(r.to_cloud) / localFirst),
      latencyMs: { p50: num(r.p50), p95: num(r.p95) },
      tokensPerSecond: { p50: num(r.tps50), mean: num(r.tps) },
      byRoute: routes.rows.map((x) => ({
        route: String(x.route),
        provider: String(x.provider),
        answered: Number(x.answered),
        latencyP50Ms: num(x.p50),
        latencyP95Ms: num(x.p95),
        tokensPerSecondP50: num(x.tps50),
      })),
    };
  }

  private async cron(tenant: string, window: Window): Promise<SloReport['cron']> {
    const views = await this.schedules.list(tenant);
    const since = window.from.toISOString();
    const schedules = await Promise.all(
      views.map(async (v) => {
        const started = `TemporalScheduledById = '${v.scheduleId}' AND StartTime >= '${since}'`;
        const [fires, failed] = await Promise.all([this.client.workflow.count(started), this.client.workflow.count(`${started} AND ExecutionStatus = 'Failed'`)]);
        return {
          scheduleId: v.scheduleId,
          definition: v.definition.name,
          paused: v.paused,
          firesInWindow: fires.count,
          failedInWindow: failed.count,
          missedCatchupWindow: v.missedCatchupWindow,
          skippedOverlap: v.skippedOverlap,
          ...(v.nextRuns[0] ? { nextRun: v.nextRuns[0] } : {}),
          healthy: !v.paused && v.missedCatchupWindow === 0 && failed.count === 0,
        };
      }),
    );
    return {
      schedules,
      missedExecutions: schedules.reduce((n, s) => n + s.missedCatchupWindow, 0),
      healthy: schedules.length === 0 ? null : schedules.every((s) => s.healthy),
    };
  }
}
