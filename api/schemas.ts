import { z } from 'zod';
import { definitionSchema } from '../interpreter/schema.ts';
import { RUN_STATUSES } from './runs-service.ts';
import { RUN_LOG_LEVELS } from '../activities/platform/run-logs.ts';
import { eventPatternProblem } from '../activities/platform/event-patterns.ts';
import { LIFECYCLE_EVENT_TYPES } from '../workflows/types.ts';

/**
 * Request and response shapes of REST v1. Handlers parse requests with these schemas and the
 * OpenAPI document is generated from the same objects, so the two cannot drift.
 */

export const problemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  correlationId: z.string().optional(),
  errors: z
    .array(z.object({ path: z.string().describe('JSON Pointer into the request body, or a parameter name'), message: z.string(), stepId: z.string().optional() }))
    .optional(),
});

export const definitionRecordSchema = z.object({
  name: z.string(),
  version: z.string(),
  hash: z.string().describe('sha256 of the canonical JSON; runs are pinned to it'),
  lane: z.string(),
  description: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  definition: definitionSchema,
});

export const definitionSummarySchema = z.object({
  name: z.string(),
  latestVersion: z.string(),
  versions: z.array(z.string()),
  lane: z.string(),
  description: z.string().nullable(),
});

const caseEstimateSchema = z.object({
  events: z.number().describe('history events of the whole run, every continue-as-new segment together'),
  eventsPerRun: z.number().describe('the largest single run after continue-as-new'),
  runs: z.number().describe('how many runs continue-as-new splits it into'),
  payloadBytes: z.number(),
  historyBytesPerRun: z.number(),
  carriedStateBytes: z.number().describe('what continue-as-new carries (every step output), one payload'),
});
export const estimateNoteSchema = z.object({ path: z.string(), stepId: z.string().optional(), message: z.string() });

/** Submit-time history estimate (interpreter/estimate.ts). */
export const historyEstimateSchema = z.object({
  typical: caseEstimateSchema,
  worst: caseEstimateSchema,
  limits: z.object({
    maxEvents: z.number(),
    maxHistoryBytes: z.number(),
    maxPayloadBytes: z.number(),
    warnEvents: z.number(),
    continueAsNewAfterEvents: z.number(),
  }),
  steps: z.array(z.object({ stepId: z.string(), path: z.string(), typical: z.number(), worst: z.number() })).describe('events per top-level step'),
  warnings: z.array(estimateNoteSchema),
  problems: z.array(estimateNoteSchema),
  assumptions: z.array(z.string()),
});

export const validationResultSchema = z.object({
  valid: z.boolean(),
  errors: z.array(z.object({ path: z.string(), message: z.string(), stepId: z.string().optional() })),
  warnings: z
    .array(estimateNoteSchema)
    .optional()
    .describe('present when valid: approval steps nobody can answer today (a group with no members in the key configuration, a quorum larger than the possible approvers)'),
  estimate: historyEstimateSchema.optional().describe('predicted history events and bytes (typical and worst case) against Temporal limits; present when valid'),
});

export const importRequestSchema = z.strictObject({
  format: z
    .enum(['asl', 'serverless-workflow'])
    .describe('asl: Amazon States Language (Step Functions), JSONPath states; serverless-workflow: Serverless Workflow 1.0 (Open Workflow Specification)'),
  source: z
    .union([z.string().max(256 * 1024), z.record(z.string(), z.unknown())])
    .describe('the document: JSON, JSON5 or YAML text, or the parsed object'),
  name: z.string().max(100).optional().describe('the native definition name (default: from the Comment, else "imported")'),
  version: z.string().max(100).optional().describe('its version (default 1.0.0)'),
  resources: z
    .record(z.string().max(2048), z.string().max(200))
    .optional()
    .describe('Task Resource (exact, or a prefix ending in *) → the skill that runs it'),
  baseUrls: z
    .record(z.string().max(2048), z.url({ protocol: /^https?$/ }))
    .optional()
    .describe('serverless-workflow: base URL overrides for call: http endpoints ({"https://api.example.com": "http://staging:8080"})'),
  openapi: z
    .record(z.string().max(2048), z.record(z.string(), z.unknown()))
    .optional()
    .describe('serverless-workflow: the OpenAPI (or Swagger 2.0) documents call: openapi names, by their document endpoint URL; the importer resolves each operationId in them (it fetches nothing)'),
  maxTransitions: z.number().int().min(1).max(100_000).optional().describe('bound on state (or task) transitions per machine (default 10,000)'),
  register: z.boolean().optional().describe('register the converted definition (as POST /v1/definitions would)'),
});

const importEntrySchema = z.object({ path: z.string(), construct: z.string(), detail: z.string() });
export const importResultSchema = z.object({
  definition: z.record(z.string(), z.unknown()).describe('the native definition'),
  report: z.object({ mapped: z.array(importEntrySchema), refused: z.array(importEntrySchema) }),
  registered: z.boolean(),
});

/** Text that identifies something (a name, an id, a filter): no control characters, since it can reach a query. */
const identifier = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f-\u009f]*$/, 'control characters are not allowed');

/** PostgreSQL's `integer`: cursors over `seq` columns stay inside it. */
const INT32_MAX = 2_147_483_647;

export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

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

/**
 * A CloudEvents-shaped event (https://cloudevents.io): `id` + `source` identify it. Extension
 * attributes are kept (CloudEvents allows them) and travel with the event.
 */
export const cloudEventSchema = z.looseObject({
  id: identifier(200),
  type: identifier(200),
  source: identifier(500),
  subject: z.string().max(500).optional(),
  data: z.unknown().optional(),
  correlationId: identifier(200).optional().describe('delivers the event to running runs with this correlation id'),
  time: z.string().optional(),
  specversion: z.string().optional(),
  datacontenttype: z.string().optional(),
  dataschema: z.string().optional(),
});

export const diffQuerySchema = z.strictObject({ from: identifier(200), to: identifier(200) });
export const scheduleNoteSchema = z.strictObject({ note: z.string().max(500).optional() });
export const backfillSchema = z.strictObject({
  start: z.iso.datetime({ offset: true }),
  end: z.iso.datetime({ offset: true }),
  overlap: z.enum(['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all']).optional(),
});

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

export const nameParamSchema = z.object({ name: z.string() });
export const versionParamSchema = z.object({ name: z.string(), version: z.string() });
export const runIdParamSchema = z.object({ runId: z.string() });

/** Lifecycle events and webhook subscriptions (docs/lifecycle-events.md). */
const eventPatternSchema = z
  .string()
  .min(1)
  .max(100)
  .superRefine((pattern, ctx) => {
    const problem = eventPatternProblem(pattern);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe(`an event type (${LIFECYCLE_EVENT_TYPES.join(', ')}), a prefix pattern such as \`workflow.step.*\` or \`workflow.*\`, or \`*\``);

const webhookUrlSchema = z
  .string()
  .max(2000)
  .superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not an absolute URL' });
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: 'must be http: or https:' });
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials; verify the signature instead' });
  })
  .meta({ format: 'uri' })
  .describe('where events are POSTed; its host must be in WEBHOOK_ALLOWED_HOSTS');

export const createWebhookSchema = z.strictObject({
  url: webhookUrlSchema,
  events: z.array(eventPatternSchema).min(1).max(20).default(['workflow.*']).describe('default `["workflow.*"]`: every lifecycle event'),
  definitions: z.array(identifier(200)).min(1).max(100).optional().describe('only events of runs of these definitions (names); default every definition'),
  description: z.string().max(500).optional(),
  enabled: z.boolean().optional().describe('default true'),
});

export const updateWebhookSchema = z
  .strictObject({
    url: webhookUrlSchema.optional(),
    events: z.array(eventPatternSchema).min(1).max(20).optional(),
    definitions: z.array(identifier(200)).min(1).max(100).nullable().optional().describe('null: every definition'),
    description: z.string().max(500).nullable().optional(),
    enabled: z.boolean().optional().describe('true re-enables a subscription its receiver disabled with 410 Gone; its waiting deliveries then go out'),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'give at least one field to change');

export const webhookSubscriptionSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  definitions: z.array(z.string()).optional(),
  enabled: z.boolean(),
  disabledReason: z.string().optional().describe('why the subscription is disabled (410 Gone from the receiver, or the API)'),
  description: z.string().optional(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  secretRotatedAt: z.string().optional().describe('when the signing secret was last rotated'),
  previousSecretExpiresAt: z.string().optional().describe('during a rotation\'s overlap: until when deliveries are also signed with the previous secret'),
});

export const rotateWebhookSecretSchema = z.strictObject({
  overlapSeconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3600)
    .default(86_400)
    .describe('how long the previous secret keeps signing deliveries next to the new one (default 86400 = 24 h, at most 7 days; 0 = it stops at once)'),
});

export const webhookDeliverySchema = z.object({
  id: z.string(),
  subscriptionId: z.string(),
  eventId: z.string().describe('also the `webhook-id` header and the CloudEvent `id`'),
  eventType: z.string(),
  runId: z.string(),
  seq: z.number().int(),
  status: z.enum(['pending', 'delivering', 'delivered', 'dead']),
  attempts: z.number().int(),
  nextAttemptAt: z.string().optional(),
  lastStatus: z.number().int().optional().describe('HTTP status of the last attempt'),
  lastError: z.string().optional(),
  deliveredAt: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const webhookIdParamSchema = z.object({ webhookId: z.string() });
export const webhookDeliveryParamSchema = z.object({ webhookId: z.string(), deliveryId: z.string() });

export const listDeliveriesQuerySchema = z.strictObject({
  status: z.enum(['pending', 'delivering', 'delivered', 'dead']).optional().describe('`dead`: the dead letters'),
  after: z.string().regex(/^\d{1,18}$/, 'a delivery id').optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

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

export const listRunEventsQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).max(INT32_MAX).optional().describe('a seq: only events after it (the `next` of the previous page)'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
