import { z } from 'zod';
import { RUN_STATUSES } from './run-views.ts';
import { OPERATION_ACTIONS } from './operations-store.ts';

/**
 * Request and response shapes of the operator's routes (api/routes/operate.ts): lanes, retries,
 * the operations audit trail and the SLO report. The OpenAPI document is generated from them
 * (api/contracts/operate.ts).
 */

const text = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f]*$/, 'control characters are not allowed');

export const laneParamSchema = z.object({ lane: z.string().describe('a lane of LANES, e.g. `prod-critical`') });

export const laneActionSchema = z.strictObject({
  reason: text(500).optional().describe('kept with the queue config on the server and in the audit trail'),
});

const queueStatusSchema = z.object({
  taskQueue: z.string(),
  role: z.enum(['workflows', 'skills', 'integrations', 'models', 'agents', 'platform']),
  type: z.enum(['workflow', 'activity']),
  pollers: z.number().int(),
  backlog: z.number().int().describe('tasks waiting (approximate, as the server counts them)'),
  backlogAgeSeconds: z.number().describe('how long the oldest waiting task has waited'),
  addRate: z.number(),
  dispatchRate: z.number(),
  rateLimit: z.number().optional().describe('the queue rate limit set on the server (0 while the lane is paused)'),
});

export const laneStatusSchema = z.object({
  lane: z.string(),
  paused: z.boolean().describe('every step queue of the lane (skills, integrations, models, agents) is held at rate 0'),
  pause: z.object({ reason: z.string(), by: z.string(), at: z.string().optional() }).optional(),
  workers: z.array(z.object({ identity: z.string().describe('`<lane>@<pid>`'), taskQueues: z.array(z.string()), lastPollAt: z.string().optional() })),
  pollers: z.number().int(),
  backlog: z.number().int(),
  backlogAgeSeconds: z.number(),
  runsInFlight: z.number().int().describe('runs of the lane that are running now'),
  queues: z.array(queueStatusSchema),
});

export const retryRunSchema = z.strictObject({
  mode: z
    .enum(['reset', 'rerun'])
    .default('reset')
    .describe('reset: the run carries on from just before its failed step (same run id); rerun: a new run of the same version with the same input'),
  reason: text(500).optional(),
});

const isoDate = z.iso.datetime({ offset: true });

export const retryFilterSchema = z.strictObject({
  definition: text(200).optional(),
  lane: text(64).optional(),
  errorType: text(200).optional().describe('the run’s `error.type` (the failed step’s error type)'),
  since: isoDate.optional().describe('closed at or after (ISO-8601)'),
  until: isoDate.optional().describe('closed before (ISO-8601)'),
});

export const bulkRetrySchema = z.strictObject({
  filter: retryFilterSchema.default({}),
  mode: z.enum(['reset', 'rerun']).default('reset'),
  dryRun: z.boolean().default(false).describe('count and list the matching failed runs, retry none'),
  limit: z.number().int().min(1).max(500).default(100).describe('at most this many runs (newest closed first)'),
  reason: text(500).optional(),
});

export const retryResultSchema = z.object({
  runId: z.string(),
  mode: z.enum(['reset', 'rerun']),
  status: z.enum(RUN_STATUSES),
  step: z.string().optional().describe('reset: the step path taken back'),
  resetToEventId: z.number().int().optional().describe('reset: the WorkflowTaskCompleted event the run was reset to'),
  executionRunId: z.string().optional().describe("reset: Temporal's run id of the new execution"),
  newRunId: z.string().optional().describe('rerun: the new run'),
  previousStatus: z.enum(RUN_STATUSES),
});

export const retryCandidateSchema = z.object({
  runId: z.string(),
  definition: z.object({ name: z.string(), version: z.string() }),
  lane: z.string().optional(),
  closedAt: z.string().optional(),
  error: z.object({ type: z.string().optional(), message: z.string().optional(), step: z.string().optional() }).optional(),
});

export const bulkRetryResultSchema = z.object({
  dryRun: z.boolean(),
  count: z.number().int().describe('failed runs matching the filter (up to `limit`)'),
  runs: z.array(retryCandidateSchema),
  retried: z.array(retryResultSchema).optional(),
  failed: z.array(z.object({ runId: z.string(), status: z.number().int(), detail: z.string() })).optional(),
});

export const listOperationsQuerySchema = z.strictObject({
  action: z.enum(OPERATION_ACTIONS).optional(),
  target: text(500).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const operationRecordSchema = z.object({
  id: z.string(),
  at: z.string(),
  tenant: z.string(),
  principal: z.string(),
  action: z.enum(OPERATION_ACTIONS),
  target: z.string(),
  idempotencyKey: z.string().optional(),
  request: z.unknown(),
  result: z.unknown(),
  correlationId: z.string().optional(),
});
