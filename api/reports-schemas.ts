import { z } from 'zod';

/** `GET /v1/reports/slo` (api/reports.ts): the query and the answer; the OpenAPI document is generated from them. */

const WINDOW = /^([1-9][0-9]{0,4})(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The longest window: run_events and the samples are kept RETENTION_EVENTS_DAYS (30 by default). */
export const MAX_WINDOW_MS = 31 * UNIT_MS.d;

export const sloQuerySchema = z.strictObject({
  window: z
    .string()
    .default('24h')
    .refine((w) => WINDOW.test(w), 'a window is a number and m, h or d, e.g. 24h, 90m, 7d')
    .refine((w) => windowMs(w) <= MAX_WINDOW_MS, 'at most 31d (what retention keeps)')
    .describe('how far back the report looks, e.g. `24h` (default), `90m`, `7d`; at most `31d`'),
});

/** The window's length in milliseconds (`24h` → 86400000); NaN when it does not parse. */
export function windowMs(window: string): number {
  const match = WINDOW.exec(window);
  return match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : Number.NaN;
}

const verdict = z.enum(['pass', 'fail', 'no data']).describe('`no data` when the window holds nothing to judge: never a pass by default');
const waitSchema = z.object({
  samples: z.number().int().describe('activity attempts started in the window (step_attempts)'),
  p50Seconds: z.number().nullable(),
  p95Seconds: z.number().nullable(),
});

export const sloReportSchema = z.object({
  window: z.object({ spec: z.string(), from: z.string(), to: z.string() }),
  tenant: z.string().describe('run figures are this tenant’s; queue, model and lane figures are the platform’s'),
  prodLanes: z.array(z.string()).describe('the lanes the prod SLOs judge: every lane not in ADMISSION_DEFERRABLE_LANES'),
  queues: z.array(
    z.object({
      lane: z.string(),
      paused: z.boolean(),
      depth: z.number().int().describe('tasks waiting now across the lane’s queues (DescribeTaskQueue)'),
      oldestWaitSeconds: z.number(),
      wait: waitSchema.describe('schedule-to-start of the lane’s step attempts in the window (platform activities excluded)'),
      byQueue: z.array(z.object({ taskQueue: z.string(), depth: z.number().int(), oldestWaitSeconds: z.number() })),
    }),
  ),
  runs: z.object({
    total: z.object({ completed: z.number().int(), failed: z.number().int(), cancelled: z.number().int() }),
    byDefinition: z.array(
      z.object({
        definition: z.string(),
        lane: z.string(),
        completed: z.number().int(),
        failed: z.number().int(),
        cancelled: z.number().int(),
        successRate: z.number().nullable().describe('completed / (completed + failed); cancelled runs are not judged'),
      }),
    ),
  }),
  models: z.object({
    requests: z.number().int(),
    fellBack: z.number().int().describe('requests answered (or failed) after an earlier route failed'),
    localFirst: z.number().int().describe('requests whose first route is local'),
    localToCloud: z.number().int().describe('of those, answered by a cloud route'),
    fallbackRateLocalToCloud: z.number().nullable(),
    latencyMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }).describe('answered requests, whole request (all routes tried)'),
    tokensPerSecond: z.object({ p50: z.number().nullable(), mean: z.number().nullable() }),
    byRoute: z.array(
      z.object({
        route: z.string(),
        provider: z.string(),
        answered: z.number().int(),
        latencyP50Ms: z.number().nullable(),
        latencyP95Ms: z.number().nullable(),
        tokensPerSecondP50: z.number().nullable(),
      }),
    ),
  }),
  cron: z.object({
    schedules: z.array(
      z.object({
        scheduleId: z.string(),
        definition: z.string(),
        paused: z.boolean(),
        firesInWindow: z.number().int().describe('runs the schedule started in the window (visibility)'),
        failedInWindow: z.number().int(),
        missedCatchupWindow: z.number().int().describe('fires missed since the schedule was created (Temporal’s counter)'),
        skippedOverlap: z.number().int(),
        nextRun: z.string().optional(),
        healthy: z.boolean().describe('not paused, nothing missed, and no run it started in the window failed'),
      }),
    ),
    missedExecutions: z.number().int(),
    healthy: z.boolean().nullable().describe('null when there are no schedules'),
  }),
  slos: z.array(
    z.object({
      id: z.enum(['prod-success', 'prod-queue-wait-p95', 'urgent-start']),
      objective: z.string(),
      target: z.number(),
      value: z.number().nullable(),
      unit: z.enum(['ratio', 'seconds']),
      verdict,
      numbers: z.record(z.string(), z.unknown()).describe('what the value is computed from'),
    }),
  ),
});

export type SloReport = z.infer<typeof sloReportSchema>;
