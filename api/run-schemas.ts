import { z } from 'zod';
import { RUN_LOG_LEVELS } from '../activities/platform/run-logs.ts';
import { LIFECYCLE_EVENT_TYPES } from '../workflows/types.ts';
import { RUN_STATUSES } from './run-views.ts';
import { idempotencyKeySchema } from './schemas.ts';
import { identifier, INT32_MAX } from './text-schemas.ts';

/** Request and response shapes of runs, approvals, the audit trail and lifecycle events (api/contracts/runs.ts). */

export const startRunSchema = z.strictObject({
  definition: identifier(200).describe('name of a registered definition'),
  version: identifier(200).optional().describe('defaults to the `production` alias when a promotion set one (and it is active), else the highest active (not deprecated or retired) version'),
  input: z.unknown().optional(),
  idempotencyKey: idempotencyKeySchema.optional().describe('also accepted as the Idempotency-Key header'),
});

export const decisionSchema = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  comment: z.string().max(2000).optional(),
});

const approverSetViewSchema = z.object({ principals: z.array(z.string()), groups: z.array(z.string()) });

export const approvalRecordSchema = z.object({
  stepId: z.string(),
  stepPath: z.string().describe('unique in the run; differs from stepId inside loops and for_each'),
  summary: z.string(),
  status: z.enum(['pending', 'approved', 'rejected', 'failed', 'cancelled']),
  stage: z.number().int().describe('0, or 1 after an escalation'),
  approvers: approverSetViewSchema,
  quorum: z.number().int(),
  allowSelfApproval: z.boolean(),
  startedBy: z.string(),
  requestedAt: z.string(),
  deadline: z.string().optional(),
  decisions: z.array(
    z.object({
      principal: z.string(),
      decision: z.enum(['approve', 'reject']),
      comment: z.string().optional(),
      at: z.string(),
      via: z.enum(['api', 'signal', 'update']),
      stage: z.number().int().optional().describe('the approver set it was made to: 0, or 1 after an escalation'),
    }),
  ),
  timedOut: z.boolean().optional(),
  escalated: z.boolean().optional(),
});

export const decisionResultSchema = z.object({
  runId: z.string(),
  step: z.string(),
  stepPath: z.string(),
  status: z.enum(['pending', 'approved', 'rejected', 'failed', 'cancelled']),
  duplicate: z.boolean().describe('the same decision was already recorded for this principal; nothing new was recorded'),
  approvals: z.number().int(),
  quorum: z.number().int(),
});

export const inboxItemSchema = z.object({
  runId: z.string(),
  definition: z.object({ name: z.string(), version: z.string() }),
  step: z.string(),
  stepPath: z.string(),
  summary: z.string(),
  requestedAt: z.string(),
  deadline: z.string().optional(),
  quorum: z.number().int(),
  approvals: z.number().int(),
  startedBy: z.string(),
  token: z.string().optional().describe('the caller\'s decision token for this step: signed, bound to the run, the step, its approver set and the caller, valid until tokenExpiresAt'),
  tokenExpiresAt: z.string().optional(),
  signal: z
    .object({ name: z.literal('approval'), input: z.object({ step: z.string(), approver: z.string(), decision: z.enum(['approve', 'reject']), token: z.string() }) })
    .optional()
    .describe('ready to paste into Temporal Web\'s Send a Signal form (signal name and Data, json/plain); change decision to "reject" to reject'),
  cli: z.string().optional().describe('the same signal as a temporal CLI command'),
});

export const auditEntrySchema = z.object({
  id: z.string(),
  runId: z.string(),
  stepId: z.string(),
  stepPath: z.string().optional(),
  principal: z.string(),
  decision: z.string(),
  comment: z.string().optional(),
  via: z.enum(['api', 'signal', 'update']).describe('update: a decideApproval update that did not come from the API (Temporal Web, the CLI)'),
  outcome: z.enum(['accepted', 'refused']),
  code: z.string().optional(),
  reason: z.string().optional(),
  at: z.string(),
});

export const stepParamSchema = z.object({ runId: z.string(), stepId: z.string() });

export const runLinksSchema = z.object({
  self: z.string(),
  cancel: z.string(),
  temporalUi: z.string(),
});

export const startRunResponseSchema = z.object({
  runId: z.string(),
  status: z.enum(RUN_STATUSES),
  created: z.boolean().describe('false when an earlier request with the same idempotency key started the run'),
  links: runLinksSchema,
});

/** A structured error's problem details (a `fail` step's status, title, detail, instance). */
const problemFields = {
  status: z.number().int().optional(),
  title: z.string().optional(),
  detail: z.string().optional(),
  instance: z.string().optional(),
};

const stepErrorSchema = z.object({
  message: z.string(),
  type: z.string(),
  attempts: z.number().optional(),
  step: z.string().optional().describe('the innermost failing step, when it is nested inside this one'),
  ...problemFields,
});

export const stepViewSchema = z.object({
  id: z.string(),
  status: z.enum(['pending', 'running', 'completed', 'failed', 'skipped', 'cancelled']),
  output: z.unknown().optional(),
  error: stepErrorSchema.optional(),
  continued: z.boolean().optional().describe('failed, and the error policy let the run continue'),
  handled: z.boolean().optional().describe('failed, and a custom handler recovered; output is the handler\'s'),
  iteration: z.number().int().optional().describe('loop: iterations started'),
  branch: z.string().optional().describe('conditional/switch: the branch taken'),
  total: z.number().int().optional().describe('for_each: items'),
  done: z.number().int().optional().describe('for_each: iterations finished'),
});

export const runSummarySchema = z.object({
  runId: z.string(),
  status: z.enum(RUN_STATUSES),
  definition: z.object({ name: z.string(), version: z.string() }),
  lane: z.string().optional(),
  startedAt: z.string().optional(),
  closedAt: z.string().optional(),
});

export const runViewSchema = runSummarySchema.extend({
  startedBy: z.string().optional(),
  correlationId: z.string().optional(),
  traceId: z
    .string()
    .regex(/^[\da-f]{32}$/)
    .optional()
    .describe('the OpenTelemetry trace the run belongs to: that of the request that started it (its memo `traceId`), else, for a run a schedule or a parent run started, the trace its lifecycle events were recorded in; absent when tracing was off'),
  historyLength: z.number().int(),
  currentStep: z.string().optional(),
  steps: z.array(stepViewSchema).optional().describe('top-level steps in definition order, then nested ones as they ran'),
  variables: z.record(z.string(), z.unknown()).optional().describe('context.mutable as the run left it'),
  rollback: z
    .object({ status: z.enum(['completed', 'failed']), compensated: z.array(z.string()), errors: z.array(stepErrorSchema) })
    .optional(),
  continuedAsNew: z.number().int().optional().describe('how many times the run continued as new'),
  approvals: z.array(approvalRecordSchema).optional().describe('every approval the run reached: pending ones and the decisions made'),
  output: z.unknown().optional(),
  error: z
    .object({ message: z.string(), type: z.string().optional(), step: z.string().optional(), attempts: z.number().optional(), ...problemFields })
    .optional(),
  admission: z
    .object({
      reason: z.string().describe('why the admission stage deferred the start (the measurement that said congested)'),
      deferredAt: z.string(),
      position: z.number().int().optional().describe('how many deferred starts of the lane go before this one'),
      attempts: z.number().int().optional().describe('failed attempts to start it (Temporal unreachable); it keeps its place'),
      lastError: z.string().optional(),
    })
    .optional()
    .describe('status `deferred` only: accepted, waiting in its lane\'s admission queue (docs/lanes.md "Admission")'),
  links: runLinksSchema,
});

export const listRunsQuerySchema = z.strictObject({
  definition: identifier(200).optional(),
  status: z.enum(RUN_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});


export const runIdParamSchema = z.object({ runId: z.string() });

export const runEventSchema = z.object({
  id: z.string().describe('`<runId>/event/<seq>`'),
  type: z.enum(LIFECYCLE_EVENT_TYPES),
  runId: z.string(),
  seq: z.number().int(),
  definition: z.string(),
  version: z.string(),
  correlationId: z.string(),
  causationId: z.string().optional(),
  time: z.string().describe('when it happened in the run (workflow time)'),
  recordedAt: z.string(),
  data: z.record(z.string(), z.unknown()),
});

export const listRunLogsQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('a line id: only lines after it (the `next` of the previous page)'),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
  level: z.enum(RUN_LOG_LEVELS).optional().describe('only lines at this level or above (default `info`: all kept lines)'),
});

export const runLogLineSchema = z.object({
  id: z.number().int().describe('increasing in recording order: the `after` cursor'),
  time: z.string().describe('when the worker wrote it (ISO 8601)'),
  level: z.enum(RUN_LOG_LEVELS),
  lane: z.string().optional(),
  stepId: z.string().optional(),
  attempt: z.number().int().optional(),
  msg: z.string(),
  fields: z.record(z.string(), z.unknown()).describe('the line\'s other fields: skill, ms, errorType, traceId, correlationId, …'),
});

export const listRunEventsQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).max(INT32_MAX).optional().describe('a seq: only events after it (the `next` of the previous page)'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

