import { defineRoute, errors, json, problem, retryAfter } from '../contract.ts';
import {
  auditEntrySchema,
  decisionResultSchema,
  decisionSchema,
  inboxItemSchema,
  listRunEventsQuerySchema,
  listRunLogsQuerySchema,
  listRunsQuerySchema,
  runEventSchema,
  runIdParamSchema,
  runLogLineSchema,
  runSummarySchema,
  runViewSchema,
  startRunResponseSchema,
  startRunSchema,
  stepParamSchema,
} from '../run-schemas.ts';
import { idempotencyKeySchema } from '../schemas.ts';
import { named, z } from './zod-openapi.ts';

/** Starting, reading, listing and cancelling runs; approvals and the audit trail; lifecycle events (api/routes/runs.ts). */

const StartRun = named('StartRun', startRunSchema);
const StartRunResponse = named('StartRunResponse', startRunResponseSchema);
const Run = named('Run', runViewSchema);
const RunSummary = named('RunSummary', runSummarySchema);
const Decision = named('Decision', decisionSchema);
const DecisionResult = named('DecisionResult', decisionResultSchema);
const InboxItem = named('InboxItem', inboxItemSchema);
const AuditEntry = named('AuditEntry', auditEntrySchema);
const RunEvent = named('RunEvent', runEventSchema);
const RunLogLine = named('RunLogLine', runLogLineSchema);

export const runContracts = {
  start: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/runs',
    summary: 'Start a run',
    description:
      'Without `version`, the run uses the highest **active** version. With an idempotency key (body field or `Idempotency-Key` header) the same key returns the same run.',
    tags: ['runs'],
    headers: z.object({
        'Idempotency-Key': idempotencyKeySchema.optional().describe('the same key returns the same run (also accepted as the `idempotencyKey` field)'),
        'X-Correlation-Id': z
          .string()
          .optional()
          .describe('1-128 of `A-Z a-z 0-9 . _ : -`: travels into the run; any other value (or none) gets a fresh id; echoed in the response'),
      }),
    body: { schema: StartRun },
    responses: {
      201: json('Started', StartRunResponse),
      202: json('Accepted and deferred (`status: deferred`): its lane is deferrable and congestion was measured; it starts in order as capacity frees (docs/lanes.md "Admission")', StartRunResponse),
      200: json('An earlier request with this idempotency key started (or deferred) the run', StartRunResponse),
      ...errors,
      404: problem('No such definition or version'),
      429: {
        ...problem('The API key exceeded API_RATE_LIMIT, or the lane\'s queue of deferred starts is full (ADMISSION_QUEUE_MAX); retry after `Retry-After` seconds'),
        headers: retryAfter,
      },
      409: problem(
        'Idempotency key reused with a different request; or the version asked for is deprecated or retired, or no version is active (unless the idempotency key already started a run: then 200 with that run)',
      ),
    },
  }),
  list: defineRoute({
    method: 'get',
    path: '/v1/runs',
    summary: 'List runs of the caller’s tenant',
    tags: ['runs'],
    query: listRunsQuerySchema,
    responses: { 200: json('Runs, newest first', z.object({ runs: z.array(RunSummary) })), 400: errors[400], 401: errors[401] },
  }),
  get: defineRoute({
    method: 'get',
    path: '/v1/runs/{runId}',
    summary: 'Read a run: status, every step’s status and output, the output or the error',
    tags: ['runs'],
    params: runIdParamSchema,
    responses: { 200: json('The run', Run), 401: errors[401], 404: problem('No such run') },
  }),
  cancel: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/runs/{runId}/cancel',
    summary: 'Request cancellation of a running run',
    tags: ['runs'],
    params: runIdParamSchema,
    responses: {
      202: json('Cancellation requested', z.object({ runId: z.string(), status: z.literal('cancelling') })),
      200: json('A deferred run was taken out of its admission queue: it never starts', z.object({ runId: z.string(), status: z.literal('cancelled') })),
      401: errors[401],
      403: errors[403],
      404: problem('No such run'),
      409: problem('The run is not running'),
    },
  }),
  decide: defineRoute({
    method: 'post',
    roles: ['approve'],
    path: '/v1/runs/{runId}/approvals/{stepId}',
    summary: 'Approve or reject a pending approval step',
    description: [
      'The approver is the principal of the API key (role `approve`), never a body field; its groups come from the key too.',
      '`stepId` is the step id (it names the one pending approval of that id), or the step path inside loops and for_each (`each[2]/sign-off`, URL-encoded as `each%5B2%5D%2Fsign-off`).',
      'The run answers at once through an update validator: a refused attempt adds nothing to the run’s history and is written to the audit trail by the API.',
      'Repeating the same decision is idempotent (200, `duplicate: true`).',
    ].join(' '),
    tags: ['approvals'],
    params: stepParamSchema,
    body: { schema: Decision },
    responses: {
      200: json('Recorded (or already recorded: `duplicate: true`); `status` is `approved` or `rejected` once the decision settles the step, else `pending`', DecisionResult),
      400: errors[400],
      401: errors[401],
      403: problem('The key lacks the role `approve`, the principal is not an approver of the step (by name or group), or it started the run and self-approval is not allowed'),
      404: problem('No such run (or another tenant’s), or no approval step of that id has been reached in the run'),
      409: problem('The approval is already settled (approved, rejected or timed out), the principal already made the other decision, or the run is no longer running'),
    },
  }),
  inbox: defineRoute({
    method: 'get',
    path: '/v1/approvals',
    summary: 'The caller’s inbox: pending approvals it may decide, across the tenant’s running runs',
    description:
      'Found through the `PendingApprovers` search attribute (`user:<principal>`, `group:<group>`), then confirmed with each run’s `pendingApprovals` query. Oldest request first. Visibility can lag a moment behind the run. Steps of runs the caller started are left out unless they allow self-approval; a step the caller already approved stays listed until its quorum is met.',
    tags: ['approvals'],
    responses: { 200: json('Pending approvals, oldest request first', z.object({ approvals: z.array(InboxItem) })), 401: errors[401] },
  }),
  audit: defineRoute({
    method: 'get',
    path: '/v1/runs/{runId}/audit',
    summary: 'The run’s approval audit trail: every accepted decision and every refused attempt, oldest first',
    tags: ['approvals'],
    params: runIdParamSchema,
    responses: { 200: json('The audit trail', z.object({ runId: z.string(), entries: z.array(AuditEntry) })), 401: errors[401], 404: problem('No such run') },
  }),
  events: defineRoute({
    method: 'get',
    path: '/v1/runs/{runId}/events',
    summary: 'A run\'s lifecycle events, in the order the run emitted them',
    description:
      'Recorded durably by the run (`workflow.run.started`, `workflow.step.completed`/`failed`, `workflow.approval.requested`/`decided`, `workflow.run.completed`/`failed`/`cancelled`); the same events subscribed webhooks receive (docs/lifecycle-events.md). Page with `after` = the `next` of the previous page.',
    tags: ['events'],
    params: runIdParamSchema,
    query: listRunEventsQuerySchema,
    responses: {
      200: {
        description:
          'Events by seq; `next` is set when the page is full. With `Accept: text/event-stream` the answer is a live progress stream instead (Server-Sent Events, docs/cli.md#the-progress-stream): `run` (the run as it is), `step` (`{stepId, status: started|retrying|waiting|completed|failed|skipped|cancelled, at, elapsedMs?, attempt?, error?, approval?, stepPath?}`; `stepPath` names the loop or for_each iteration a retry belongs to), `lifecycle` (a stored event, SSE id = its seq, so `Last-Event-ID` or `after` resumes), then `end` (`{runId, status, output?, error?}`) when the run has closed, after which the server ends the stream.',
        schema: z.object({ runId: z.string(), events: z.array(RunEvent), next: z.number().int().optional() }),
        alternatives: { 'text/event-stream': z.string().describe('Server-Sent Events: `event: run|step|lifecycle|end`, `data: <JSON>`') },
      },
      400: errors[400],
      401: errors[401],
      404: problem('No such run (or another tenant\'s)'),
    },
  }),
  logs: defineRoute({
    method: 'get',
    path: '/v1/runs/{runId}/logs',
    summary: 'The workers\' log lines of a run (info and above), in the order they were recorded',
    description:
      'Every line an activity of the run wrote through its run\'s logger: skill started/completed/failed with durations and error types, model fallbacks, a skill\'s own lines. Kept by each worker process (RUN_LOGS_ENABLED, at most RUN_LOGS_MAX_PER_RUN lines per run, messages cut at 2,000 characters) and pruned with the run\'s events (RETENTION_EVENTS_DAYS). A run that declares sensitive values has them scrubbed for callers without `sensitive-reader`. Page with `after` = the `next` of the previous page.',
    tags: ['runs'],
    params: runIdParamSchema,
    query: listRunLogsQuerySchema,
    responses: {
      200: json('Lines by id; `next` is set when the page is full', z.object({ runId: z.string(), lines: z.array(RunLogLine), next: z.number().int().optional() })),
      400: errors[400],
      401: errors[401],
      404: problem('No such run (or another tenant\'s)'),
    },
  }),
};
