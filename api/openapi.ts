import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { RUN_LOG_LEVELS } from '../activities/platform/run-logs.ts';
import { definitionSchema } from '../interpreter/schema.ts';
import { dryRunReportSchema, dryRunRequestSchema } from './authoring/dry-run.ts';
import { promotionRequestSchema } from './authoring/promotion-gate.ts';
import { DEFINITION_STATUSES } from './definitions-store.ts';
import { registerOperateRoutes } from './operate-openapi.ts';
import { RUN_STATUSES } from './runs-service.ts';
import {
  auditEntrySchema,
  backfillSchema,
  cloudEventSchema,
  decisionResultSchema,
  decisionSchema,
  definitionRecordSchema,
  definitionSummarySchema,
  diffQuerySchema,
  estimateNoteSchema,
  historyEstimateSchema,
  idempotencyKeySchema,
  inboxItemSchema,
  listRunsQuerySchema,
  nameParamSchema,
  problemSchema,
  runIdParamSchema,
  runSummarySchema,
  runViewSchema,
  scheduleNoteSchema,
  startRunResponseSchema,
  startRunSchema,
  stepParamSchema,
  validationResultSchema,
  importRequestSchema,
  importResultSchema,
  versionParamSchema,
  createWebhookSchema,
  rotateWebhookSecretSchema,
  listDeliveriesQuerySchema,
  listRunEventsQuerySchema,
  listRunLogsQuerySchema,
  runEventSchema,
  updateWebhookSchema,
  webhookDeliveryParamSchema,
  webhookDeliverySchema,
  webhookIdParamSchema,
  webhookSubscriptionSchema,
} from './schemas.ts';

extendZodWithOpenApi(z);

/**
 * zod 4 copies prototype methods onto each schema when it is built, so schemas created before
 * `extendZodWithOpenApi` ran (the interpreter's, which must not depend on this library) lack
 * `.openapi()`. A clone is built now and has it.
 */
function withOpenApi<T extends z.ZodType>(schema: T): T {
  return schema.clone() as T;
}

type Method = 'get' | 'post' | 'patch' | 'delete';

type JsonSchema = Record<string, unknown>;

/**
 * The definition language's JSON Schema as OpenAPI components. The step schema is recursive
 * (`steps`, `then`, `compensate` hold steps), which zod's own JSON Schema generator handles and
 * zod-to-openapi's walker does not, so the document carries zod's output: the `$defs` become
 * components named `Definition.<def>` and their references are rewritten to match.
 */
export function definitionComponents(): Record<string, JsonSchema> {
  const generated = z.toJSONSchema(definitionSchema, { target: 'draft-2020-12', unrepresentable: 'any' }) as JsonSchema;
  const { $defs = {}, $schema: _schema, ...root } = generated as JsonSchema & { $defs?: Record<string, JsonSchema> };
  const rename = (name: string) => (name.startsWith('__schema') ? 'Step' + (name === '__schema0' ? '' : name.slice(8)) : name);
  const rewrite = (schema: JsonSchema): JsonSchema =>
    JSON.parse(JSON.stringify(schema).replace(/"#\/\$defs\/([^"]+)"/g, (_m, name: string) => JSON.stringify(`#/components/schemas/Definition.${rename(name)}`))) as JsonSchema;
  const components: Record<string, JsonSchema> = { Definition: rewrite(root) };
  for (const [name, schema] of Object.entries($defs)) components[`Definition.${rename(name)}`] = rewrite(schema);
  return components;
}

/** Builds the OpenAPI 3.1 document of REST v1 from the zod schemas the handlers use. */
export function buildOpenApiDocument(serverUrl = '/'): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key; each key maps to a principal, roles (submit, approve, admin, operator) and a tenant.',
  });
  const Problem = registry.register('Problem', withOpenApi(problemSchema));
  // A stand-in the generator renders as a $ref; the real component is zod's JSON Schema (below).
  const Definition = registry.register('Definition', z.unknown());
  const DefinitionRecord = registry.register(
    'DefinitionRecord',
    withOpenApi(definitionRecordSchema).extend({
      status: z.enum(DEFINITION_STATUSES).describe('active: runs may start; deprecated: no new runs (running ones finish); retired: like deprecated, and final'),
      statusChangedAt: z.string().optional().describe('set once the status was changed'),
      statusChangedBy: z.string().optional().describe('the principal that changed it'),
      definition: Definition,
    }),
  );
  // Registration and lifecycle changes also answer with the schedule ids the definition has now.
  const DefinitionRecordWithSchedules = registry.register(
    'DefinitionRecordWithSchedules',
    DefinitionRecord.extend({
      schedules: z
        .array(z.string())
        .describe('ids of the Temporal Schedules for the schedule triggers of the starting version (the `production` alias, else the newest active version; `sched:<tenant>:<name>:<trigger index>`), after reconciling'),
      warnings: z
        .array(estimateNoteSchema)
        .optional()
        .describe('on registration: approval steps nobody can answer today (a group with no members in the key configuration, a quorum larger than the possible approvers); registration still succeeds'),
      estimate: historyEstimateSchema.optional().describe('on registration: predicted history events and bytes, typical and worst case, against Temporal limits'),
    }),
  );
  const DefinitionSummary = registry.register('DefinitionSummary', withOpenApi(definitionSummarySchema));
  const ValidationResult = registry.register('ValidationResult', withOpenApi(validationResultSchema));
  const ImportRequest = registry.register('ImportRequest', withOpenApi(importRequestSchema));
  const ImportResult = registry.register('ImportResult', withOpenApi(importResultSchema));
  const StartRun = registry.register('StartRun', withOpenApi(startRunSchema));
  const StartRunResponse = registry.register('StartRunResponse', withOpenApi(startRunResponseSchema));
  const Run = registry.register('Run', withOpenApi(runViewSchema));
  const RunSummary = registry.register('RunSummary', withOpenApi(runSummarySchema));
  const Decision = registry.register('Decision', withOpenApi(decisionSchema));
  const DecisionResult = registry.register('DecisionResult', withOpenApi(decisionResultSchema));
  const InboxItem = registry.register('InboxItem', withOpenApi(inboxItemSchema));
  const AuditEntry = registry.register('AuditEntry', withOpenApi(auditEntrySchema));
  const CloudEvent = registry.register('CloudEvent', withOpenApi(cloudEventSchema));
  const EventResult = registry.register(
    'EventResult',
    z.object({
      event: z.object({ id: z.string(), type: z.string(), source: z.string() }),
      runs: z
        .array(
          z.object({
            definition: z.string(),
            version: z.string().describe('the starting version now (the production alias, else the newest active one; a run found again keeps the version it started with)'),
            runId: z.string(),
            created: z.boolean().describe('false when this event (same source and id) already started the run'),
            status: z.enum(RUN_STATUSES),
          }),
        )
        .describe('one entry per definition whose starting version (the production alias, else the newest active one) has a trigger for this event type that matches'),
      delivered: z
        .array(z.object({ runId: z.string() }))
        .describe('running runs of the tenant with CorrelationId = the event\'s correlationId that were signalled the event (not those it just started)'),
    }),
  );
  const ScheduleView = registry.register(
    'Schedule',
    z.object({
      scheduleId: z.string().describe('`sched:<tenant>:<definition>:<trigger index>`'),
      definition: z.object({ name: z.string(), version: z.string() }).describe('the version the schedule starts: the production alias, else the newest active one'),
      trigger: z.number().int().describe('index of the trigger in the definition\'s `triggers`'),
      spec: z.object({ cron: z.string().optional(), interval: z.number().int().optional(), timezone: z.string().optional(), jitter: z.number().int().optional() }),
      overlap: z.enum(['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all']),
      catchupWindowSeconds: z.number().int(),
      pauseOnFailure: z.boolean(),
      paused: z.boolean(),
      note: z
        .string()
        .optional()
        .describe('set at creation (`<name>@<version>, trigger <n>`), by pause and resume, or by Temporal after a pause on failure'),
      nextRuns: z.array(z.string()).describe('the next scheduled times (up to 10), also while paused'),
      recentRuns: z
        .array(
          z.object({
            scheduledAt: z.string().describe('the scheduled time, jitter included'),
            startedAt: z.string(),
            runId: z.string().describe('`<definition>-scheduled-<trigger index>-<scheduled time>`'),
            status: z.string().optional().describe('the run\'s Temporal status, lower-case (`running`, `completed`, `failed`, …); absent when it cannot be read'),
          }),
        )
        .describe('the last runs the schedule started (up to 10), oldest first'),
      missedCatchupWindow: z.number().int().describe('scheduled times skipped because they were later than the catch-up window'),
      skippedOverlap: z.number().int().describe('scheduled times skipped by the overlap policy'),
    }),
  );
  const ScheduleNote = registry.register('ScheduleNote', withOpenApi(scheduleNoteSchema));
  const Backfill = registry.register('Backfill', withOpenApi(backfillSchema));
  const scheduleParams = z.object({ scheduleId: z.string().describe('e.g. `sched:acme:nightly-report:0`') });

  const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: Problem } } });
  const json = (description: string, schema: z.ZodType) => ({ description, content: { 'application/json': { schema } } });
  const errors = {
    400: problem('Invalid request: `errors` lists every problem with its JSON path'),
    401: problem('Missing or invalid API key'),
    403: problem('The key lacks the required role'),
  };
  const retryAfter = { 'Retry-After': { description: 'seconds to wait before trying again', schema: { type: 'integer' as const, minimum: 1 } } };
  // What the edge answers on every authenticated operation, whatever the handler does (api/edge.ts, api/rate-limit.ts).
  const edgeResponses = (withBody: boolean) => ({
    400: problem('Invalid request: `errors` lists every problem with its JSON path (a malformed URL or query parameter, a body nested too deep, text PostgreSQL cannot store, a malformed body)'),
    401: errors[401],
    ...(withBody
      ? {
          413: problem('The body is larger than API_MAX_BODY_BYTES (after decompression)'),
          415: problem('The body is not UTF-8 application/json, or its Content-Encoding is not supported'),
        }
      : {}),
    429: { ...problem('This API key made more requests than API_RATE_LIMIT in the window; retry after `Retry-After` seconds'), headers: retryAfter },
    503: { ...problem('Temporal or PostgreSQL is not reachable right now; retry after `Retry-After` seconds'), headers: retryAfter },
  });
  type RouteSpec = Omit<Parameters<typeof registry.registerPath>[0], 'method' | 'path'>;
  const route = (method: Method, path: string, spec: RouteSpec) => {
    const body = spec.request?.body;
    registry.registerPath({
      method,
      path,
      security: [{ [bearer.name]: [] }],
      ...spec,
      // A body the handler parses is required unless the operation says otherwise.
      ...(body ? { request: { ...spec.request, body: { required: true, ...body } } } : {}),
      responses: { ...edgeResponses(Boolean(body)), ...spec.responses },
    });
  };

  route('post', '/v1/definitions', {
    summary: 'Register a definition version',
    description:
      '`name@version` is immutable: a different body is a 409, an identical re-post returns the stored version (200). Either way the tenant\'s Temporal Schedules for the definition are then reconciled with the schedule triggers of its starting version (the `production` alias when a promotion set one, else the newest active version).',
    tags: ['definitions'],
    request: { body: { content: { 'application/json': { schema: Definition } } } },
    responses: {
      201: json('Registered', DefinitionRecordWithSchedules),
      200: json('Identical version already registered (its schedules are reconciled again)', DefinitionRecordWithSchedules),
      ...errors,
      409: problem('name@version exists with other content'),
    },
  });
  route('post', '/v1/definitions/import', {
    summary: "Convert another engine's definition (Amazon States Language, Serverless Workflow 1.0) to a native one, and register it when asked",
    description:
      'Answers the native definition and a report of every construct mapped. A source with any construct that has no exact equivalent is a 422 listing each one (its JSON path in the source and why); nothing is half-converted. With `register: true` the result is registered as `POST /v1/definitions` would (201 created, 200 identical, 409 other content). See docs/importers.md.',
    tags: ['definitions'],
    request: { body: { content: { 'application/json': { schema: ImportRequest } } } },
    responses: {
      200: json('Converted (and, with register, already registered identically)', ImportResult),
      201: json('Converted and registered', ImportResult),
      ...errors,
      409: problem('register: name@version exists with other content'),
      422: problem('The source has constructs without an exact equivalent, or the result is not a valid definition'),
    },
  });
  route('post', '/v1/definitions/validate', {
    summary: 'Validate a definition without registering it',
    tags: ['definitions'],
    request: { body: { content: { 'application/json': { schema: Definition } } } },
    responses: { 200: json('Validation result', ValidationResult), 401: errors[401], 403: errors[403] },
  });
  route('get', '/v1/definitions', {
    summary: 'List definitions (latest version of each)',
    tags: ['definitions'],
    responses: { 200: json('Definitions', z.object({ definitions: z.array(DefinitionSummary) })), 401: errors[401] },
  });
  route('get', '/v1/definitions/{name}', {
    summary: 'Read the highest version of a definition (whatever its status) and the list of its versions',
    tags: ['definitions'],
    request: { params: nameParamSchema },
    responses: { 200: json('Latest version', DefinitionRecord.extend({ versions: z.array(z.string()) })), 401: errors[401], 404: problem('No such definition') },
  });
  route('get', '/v1/definitions/{name}/versions/{version}', {
    summary: 'Read one version of a definition',
    tags: ['definitions'],
    request: { params: versionParamSchema },
    responses: { 200: json('The version', DefinitionRecord), 401: errors[401], 404: problem('No such version') },
  });
  const Graph = z
    .object({
      name: z.string(),
      version: z.string(),
      format: z.literal('mermaid'),
      mermaid: z.string().describe('A Mermaid flowchart (`flowchart TD`): every step kind, branches, loops, parallel, approvals, error paths and the rollback path'),
      nodes: z.record(z.string(), z.string()).describe('The Mermaid node id of every step, by step id'),
    })
    .openapi('DefinitionGraph');
  route('get', '/v1/definitions/{name}/versions/{version}/graph', {
    summary: 'The definition as a Mermaid flowchart',
    description: 'Paste `mermaid` into any Mermaid renderer (GitHub Markdown, mermaid.live, the Mermaid CLI). See docs/authoring.md for the shapes and edges.',
    tags: ['definitions'],
    request: { params: versionParamSchema },
    responses: { 200: json('The diagram', Graph), 401: errors[401], 404: problem('No such version') },
  });
  route('get', '/v1/definitions/{name}/versions/{version}/operator-doc', {
    summary: 'The version’s operator doc (seed 001’s template, sections 0–13) as Markdown',
    description:
      'Filled from what the platform knows for certain (steps and actors, triggers and the input fields read, systems touched by skills and integrations, retries, timeouts and error strategies, idempotency keys, lanes and queues, logs and metrics to watch, approvers, the rollback path, the diagram and the history estimate); each `TODO:` is a question for the owner. `npm run docs:operator` writes the same from a file. See docs/authoring.md.',
    tags: ['definitions'],
    request: { params: versionParamSchema },
    responses: {
      200: { description: 'The operator doc', content: { 'text/markdown': { schema: z.string() } } },
      401: errors[401],
      404: problem('No such version'),
      422: problem('The version no longer validates against the current catalog'),
    },
  });
  const PromotionDecision = z
    .object({
      id: z.string(),
      name: z.string(),
      action: z.enum(['promoted', 'kept_experimental', 'rolled_back']),
      candidate: z.string().nullable(),
      previous: z.string().nullable().describe('production before the decision'),
      production: z.string().nullable().describe('production after it'),
      principal: z.string(),
      at: z.string(),
      report: z.record(z.string(), z.unknown()).describe('the verdict, the battery, each version’s measures and runs'),
    })
    .openapi('PromotionDecision');
  const criterion = z.object({ name: z.enum(['reliability', 'latency', 'quality', 'cost', 'rollback']), pass: z.boolean(), judged: z.boolean(), detail: z.string() });
  const measures = z.object({
    runs: z.number(),
    completed: z.number(),
    completionRate: z.number(),
    p50Ms: z.number().nullable(),
    p95Ms: z.number().nullable(),
    tokensPerRun: z.number(),
    quality: z.number().nullable(),
  });
  const side = z.object({ version: z.string(), measures, runs: z.array(z.record(z.string(), z.unknown())) });
  route('post', '/v1/definitions/{name}/promotions', {
    summary: 'The promotion gate (seed 003 §5): run candidate and production on a battery, promote or keep experimental',
    description:
      'Runs the candidate version and the current production version (the `production` alias) on every battery input as real runs, one task after another and side by side; measures completion rate, p50/p95 latency, model tokens per run and, with `judge`, the mean score of the judge step; applies seed 003 §5 (no completion regression; ≥ 20% faster or parity within 5% with a ≥ 15% judged quality gain; ≥ 15% quality gain where judged; within `budget`) and moves the alias to the candidate, or keeps it experimental with the reasons. Every decision is recorded (GET …/promotions). Runs started without a version use the production alias. Synchronous: answers when every battery run has ended. See docs/authoring.md.',
    tags: ['definitions'],
    request: { params: nameParamSchema, body: { content: { 'application/json': { schema: withOpenApi(promotionRequestSchema).openapi('PromotionRequest') } } } },
    responses: {
      200: json('The decision (promoted or kept experimental), the verdict per criterion, both versions’ measures and runs', z.object({ decision: PromotionDecision, verdict: z.object({ promote: z.boolean(), criteria: z.array(criterion), reasons: z.array(z.string()) }), candidate: side, production: side.optional() })),
      ...errors,
      404: problem('No such definition or candidate version'),
      409: problem('The candidate is not active, or already production'),
    },
  });
  route('post', '/v1/definitions/{name}/promotions/rollback', {
    summary: 'Move production back to the version the last promotion replaced, in one call (audited)',
    tags: ['definitions'],
    request: { params: nameParamSchema, body: { content: { 'application/json': { schema: z.object({ reason: z.string().max(2000).optional() }) } }, required: false } },
    responses: { 200: json('The rollback decision', PromotionDecision), ...errors, 409: problem('Nothing is in production') },
  });
  route('get', '/v1/definitions/{name}/promotions', {
    summary: 'The production version and every promotion decision, newest first (the audit trail)',
    tags: ['definitions'],
    request: { params: nameParamSchema },
    responses: { 200: json('Production and decisions', z.object({ name: z.string(), production: z.string().nullable(), decisions: z.array(PromotionDecision) })), 401: errors[401], 404: problem('No such definition') },
  });
  route('post', '/v1/definitions/dry-run', {
    summary: 'Dry-run a definition: the real interpreter with every effect mocked, in simulated time',
    description:
      'Runs a registered version (`name`, optional `version`: default the version runs without one start, the `production` alias or else the highest active one) or an inline `definition` through the interpreter the workers run, with activities and child runs answered from `mocks` (or a sample of the callee\'s registered output schema), Temporal\'s retry policy applied attempt by attempt, approvals decided as `approvals` scripts them (default: approved by their quorum), timers and deadlines passing in simulated time and `events` delivered at simulated times. Nothing real is touched: no Temporal run, no activity, no HTTP call. Answers the path taken, each step\'s input and output, each call, the approvals with refused attempts, the final output or failure (`blocked` when the run waits for something nothing scripted) and the predicted history events and payload bytes of that path. See docs/authoring.md.',
    tags: ['definitions'],
    request: { body: { content: { 'application/json': { schema: withOpenApi(dryRunRequestSchema).openapi('DryRunRequest') } } } },
    responses: {
      200: json('The dry run’s report', withOpenApi(dryRunReportSchema).openapi('DryRunReport')),
      ...errors,
      404: problem('No such registered definition or version'),
      422: problem('The registered version no longer validates against the current catalog'),
    },
  });
  route('get', '/v1/runs/{runId}/graph', {
    summary: 'The run’s definition as a Mermaid flowchart, each step coloured by its status',
    tags: ['runs'],
    request: { params: runIdParamSchema },
    responses: {
      200: json('The diagram with a class per step status (completed, failed, running, skipped, cancelled)', Graph.extend({ runId: z.string(), status: z.string(), steps: z.record(z.string(), z.string()) })),
      401: errors[401],
      404: problem('No such run'),
    },
  });
  route('post', '/v1/runs', {
    summary: 'Start a run',
    description:
      'Without `version`, the run uses the highest **active** version. With an idempotency key (body field or `Idempotency-Key` header) the same key returns the same run.',
    tags: ['runs'],
    request: {
      headers: z.object({
        'Idempotency-Key': idempotencyKeySchema.optional().describe('the same key returns the same run (also accepted as the `idempotencyKey` field)'),
        'X-Correlation-Id': z
          .string()
          .optional()
          .describe('1-128 of `A-Z a-z 0-9 . _ : -`: travels into the run; any other value (or none) gets a fresh id; echoed in the response'),
      }),
      body: { content: { 'application/json': { schema: StartRun } } },
    },
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
  });
  route('get', '/v1/runs', {
    summary: 'List runs of the caller’s tenant',
    tags: ['runs'],
    request: { query: listRunsQuerySchema },
    responses: { 200: json('Runs, newest first', z.object({ runs: z.array(RunSummary) })), 400: errors[400], 401: errors[401] },
  });
  route('get', '/v1/runs/{runId}', {
    summary: 'Read a run: status, every step’s status and output, the output or the error',
    tags: ['runs'],
    request: { params: runIdParamSchema },
    responses: { 200: json('The run', Run), 401: errors[401], 404: problem('No such run') },
  });
  route('post', '/v1/runs/{runId}/cancel', {
    summary: 'Request cancellation of a running run',
    tags: ['runs'],
    request: { params: runIdParamSchema },
    responses: {
      202: json('Cancellation requested', z.object({ runId: z.string(), status: z.literal('cancelling') })),
      200: json('A deferred run was taken out of its admission queue: it never starts', z.object({ runId: z.string(), status: z.literal('cancelled') })),
      401: errors[401],
      403: errors[403],
      404: problem('No such run'),
      409: problem('The run is not running'),
    },
  });
  route('post', '/v1/runs/{runId}/approvals/{stepId}', {
    summary: 'Approve or reject a pending approval step',
    description: [
      'The approver is the principal of the API key (role `approve`), never a body field; its groups come from the key too.',
      '`stepId` is the step id (it names the one pending approval of that id), or the step path inside loops and for_each (`each[2]/sign-off`, URL-encoded as `each%5B2%5D%2Fsign-off`).',
      'The run answers at once through an update validator: a refused attempt adds nothing to the run’s history and is written to the audit trail by the API.',
      'Repeating the same decision is idempotent (200, `duplicate: true`).',
    ].join(' '),
    tags: ['approvals'],
    request: { params: stepParamSchema, body: { content: { 'application/json': { schema: Decision } } } },
    responses: {
      200: json('Recorded (or already recorded: `duplicate: true`); `status` is `approved` or `rejected` once the decision settles the step, else `pending`', DecisionResult),
      400: errors[400],
      401: errors[401],
      403: problem('The key lacks the role `approve`, the principal is not an approver of the step (by name or group), or it started the run and self-approval is not allowed'),
      404: problem('No such run (or another tenant’s), or no approval step of that id has been reached in the run'),
      409: problem('The approval is already settled (approved, rejected or timed out), the principal already made the other decision, or the run is no longer running'),
    },
  });
  const activityView = z.object({
    name: z.string(),
    description: z.string(),
    sideEffects: z.boolean(),
    input: z.record(z.string(), z.unknown()).describe('JSON Schema of the step\'s `inputs`'),
    output: z.record(z.string(), z.unknown()).describe('JSON Schema of the output'),
    secretInputs: z.array(z.string()).optional(),
    defaults: z.record(z.string(), z.unknown()).optional(),
  });
  route('get', '/v1/catalog', {
    summary: 'What definitions can call here: skills and integrations with their schemas, agents, model routes, lanes',
    description: 'The catalog the validator checks names against (docs/cli.md#the-wizard uses it for suggestions).',
    tags: ['definitions'],
    responses: {
      200: json(
        'The catalog',
        z.object({
          skills: z.array(activityView),
          integrations: z.array(activityView),
          agents: z.array(z.object({ name: z.string(), description: z.string(), model: z.string().optional(), tools: z.array(z.string()).optional(), outputSchema: z.record(z.string(), z.unknown()).optional() })),
          models: z.array(z.string()),
          lanes: z.array(z.string()),
          defaultLane: z.string(),
        }),
      ),
      401: errors[401],
    },
  });
  route('get', '/v1/approvals', {
    summary: 'The caller’s inbox: pending approvals it may decide, across the tenant’s running runs',
    description:
      'Found through the `PendingApprovers` search attribute (`user:<principal>`, `group:<group>`), then confirmed with each run’s `pendingApprovals` query. Oldest request first. Visibility can lag a moment behind the run. Steps of runs the caller started are left out unless they allow self-approval; a step the caller already approved stays listed until its quorum is met.',
    tags: ['approvals'],
    responses: { 200: json('Pending approvals, oldest request first', z.object({ approvals: z.array(InboxItem) })), 401: errors[401] },
  });
  route('get', '/v1/runs/{runId}/audit', {
    summary: 'The run’s approval audit trail: every accepted decision and every refused attempt, oldest first',
    tags: ['approvals'],
    request: { params: runIdParamSchema },
    responses: { 200: json('The audit trail', z.object({ runId: z.string(), entries: z.array(AuditEntry) })), 401: errors[401], 404: problem('No such run') },
  });
  for (const [action, status, summary] of [
    ['deprecate', 'deprecated', 'Deprecate a version: no new runs start on it (running ones finish); schedules move to the production alias or the newest active version'],
    ['retire', 'retired', 'Retire a version: like deprecate, and final'],
    ['activate', 'active', 'Re-activate a deprecated version'],
  ] as const) {
    route('post', `/v1/definitions/{name}/versions/{version}/${action}`, {
      summary,
      description: `Sets the status to \`${status}\` (the same status again is a 200 that changes nothing), then reconciles the definition's schedules. A retired version cannot change status again (409).`,
      tags: ['definitions'],
      request: { params: versionParamSchema },
      responses: {
        200: json(`The version, now ${status}, with the definition's schedule ids`, DefinitionRecordWithSchedules),
        401: errors[401],
        403: errors[403],
        404: problem('No such version'),
        409: problem('The version is retired; retirement is final'),
      },
    });
  }
  route('get', '/v1/definitions/{name}/diff', {
    summary: 'What changed between two versions, as an RFC 6902 JSON Patch',
    description: 'The patch turns the body of `from` into the body of `to` (either order, any status).',
    tags: ['definitions'],
    request: { params: nameParamSchema, query: diffQuerySchema },
    responses: {
      200: json(
        'The patch',
        z.object({
          name: z.string(),
          from: z.string(),
          to: z.string(),
          patch: z.array(z.object({ op: z.enum(['add', 'remove', 'replace', 'move', 'copy', 'test']), path: z.string(), from: z.string().optional(), value: z.unknown().optional() })),
        }),
      ),
      400: errors[400],
      401: errors[401],
      404: problem('No such version (`errors[0].path` is `from` or `to`)'),
    },
  });
  route('post', '/v1/events', {
    summary: 'Receive an event: start the definitions it triggers, deliver it to runs waiting for it',
    description: [
      'Starts a run of every definition of the tenant whose starting version (the `production` alias, else the newest active one) has an `event` trigger (or seed 004 `trigger.signal`) for `type` whose `filter` is true.',
      'The run input is `data`; `signal` in expressions is the whole event. The run id derives from the event `source` and `id` and the definition, so a redelivered event returns the same runs with `created: false`.',
      'The correlation id is `correlationId`, else `id`; the causation id (memo, `CausationId` search attribute, activity logs) is `id`.',
      'With a `correlationId`, the event is also signalled (name = `type`, payload = the whole event) to every running run of the tenant with that correlation id, except those it just started; a run keeps an event with the same source and id only once.',
    ].join(' '),
    tags: ['events'],
    request: { body: { content: { 'application/json': { schema: CloudEvent } } } },
    responses: {
      201: json('At least one run was created and started', EventResult),
      202: json('Runs were created, every one deferred by the admission stage (`status: deferred`)', EventResult),
      200: json('No run was created (nothing matched, or a redelivery)', EventResult),
      ...errors,
      409: problem('An event with the same `source` and `id` but other `data` already started a run (`title: "Idempotency key reused"`, with `runId`)'),
    },
  });
  route('get', '/v1/schedules', {
    summary: 'The tenant\'s schedules: one per schedule trigger of each definition\'s newest active version',
    tags: ['schedules'],
    responses: { 200: json('Schedules, by id', z.object({ schedules: z.array(ScheduleView) })), 401: errors[401] },
  });
  route('get', '/v1/schedules/{scheduleId}', {
    summary: 'One schedule: spec, policies, paused state, next and recent runs',
    tags: ['schedules'],
    request: { params: scheduleParams },
    responses: { 200: json('The schedule', ScheduleView), 401: errors[401], 404: problem('No such schedule (or another tenant\'s)') },
  });
  for (const [action, summary, defaultNote] of [
    ['pause', 'Pause a schedule: no scheduled run starts until it is resumed', 'paused by <principal>'],
    ['resume', 'Resume a paused schedule', 'resumed by <principal>'],
  ] as const) {
    route('post', `/v1/schedules/{scheduleId}/${action}`, {
      summary,
      description: `The body is optional. \`note\` (default \`${defaultNote}\`) becomes the schedule's note. Later registrations and status changes update the schedule and keep its paused state, unless they delete it (no active version has the trigger any more).`,
      tags: ['schedules'],
      request: { params: scheduleParams, body: { content: { 'application/json': { schema: ScheduleNote } }, required: false } },
      responses: { 200: json('The schedule', ScheduleView), ...errors, 404: problem('No such schedule (or another tenant\'s)') },
    });
  }
  route('post', '/v1/schedules/{scheduleId}/trigger', {
    summary: 'Start one run now, also while paused (overlap policy allow_all for this run)',
    tags: ['schedules'],
    request: { params: scheduleParams },
    responses: {
      202: json('Requested; the run shows in `recentRuns` a moment later', z.object({ scheduleId: z.string(), triggered: z.literal(true) })),
      401: errors[401],
      403: errors[403],
      404: problem('No such schedule (or another tenant\'s)'),
    },
  });
  route('post', '/v1/schedules/{scheduleId}/backfill', {
    summary: 'Start the runs the schedule would have started between `start` and `end`',
    description:
      'For the schedule\'s times in the range, at once, whether or not they ran before, ignoring the catch-up window. `overlap` overrides the schedule\'s overlap policy for these runs (default: the schedule\'s).',
    tags: ['schedules'],
    request: { params: scheduleParams, body: { content: { 'application/json': { schema: Backfill } } } },
    responses: {
      202: json('Requested', z.object({ scheduleId: z.string(), backfill: z.object({ start: z.string(), end: z.string() }) })),
      ...errors,
      404: problem('No such schedule (or another tenant\'s)'),
    },
  });
  const RunEvent = registry.register('RunEvent', withOpenApi(runEventSchema));
  const CreateWebhook = registry.register('CreateWebhook', withOpenApi(createWebhookSchema));
  const UpdateWebhook = registry.register('UpdateWebhook', withOpenApi(updateWebhookSchema));
  const Webhook = registry.register('Webhook', withOpenApi(webhookSubscriptionSchema));
  const WebhookDelivery = registry.register('WebhookDelivery', withOpenApi(webhookDeliverySchema));
  const adminOnly = problem('The key lacks the role `admin`');
  route('get', '/v1/runs/{runId}/events', {
    summary: 'A run\'s lifecycle events, in the order the run emitted them',
    description:
      'Recorded durably by the run (`workflow.run.started`, `workflow.step.completed`/`failed`, `workflow.approval.requested`/`decided`, `workflow.run.completed`/`failed`/`cancelled`); the same events subscribed webhooks receive (docs/lifecycle-events.md). Page with `after` = the `next` of the previous page.',
    tags: ['events'],
    request: { params: runIdParamSchema, query: listRunEventsQuerySchema },
    responses: {
      200: {
        description:
          'Events by seq; `next` is set when the page is full. With `Accept: text/event-stream` the answer is a live progress stream instead (Server-Sent Events, docs/cli.md#the-progress-stream): `run` (the run as it is), `step` (`{stepId, status: started|retrying|waiting|completed|failed|skipped|cancelled, at, elapsedMs?, attempt?, error?, approval?, stepPath?}`; `stepPath` names the loop or for_each iteration a retry belongs to), `lifecycle` (a stored event, SSE id = its seq, so `Last-Event-ID` or `after` resumes), then `end` (`{runId, status, output?, error?}`) when the run has closed, after which the server ends the stream.',
        content: {
          'application/json': { schema: z.object({ runId: z.string(), events: z.array(RunEvent), next: z.number().int().optional() }) },
          'text/event-stream': { schema: z.string().describe('Server-Sent Events: `event: run|step|lifecycle|end`, `data: <JSON>`') },
        },
      },
      400: errors[400],
      401: errors[401],
      404: problem('No such run (or another tenant\'s)'),
    },
  });
  const RunLogLine = registry.register(
    'RunLogLine',
    z.object({
      id: z.number().int().describe('increasing in recording order: the `after` cursor'),
      time: z.string().describe('when the worker wrote it (ISO 8601)'),
      level: z.enum(RUN_LOG_LEVELS),
      lane: z.string().optional(),
      stepId: z.string().optional(),
      attempt: z.number().int().optional(),
      msg: z.string(),
      fields: z.record(z.string(), z.unknown()).describe('the line\'s other fields: skill, ms, errorType, traceId, correlationId, …'),
    }),
  );
  route('get', '/v1/runs/{runId}/logs', {
    summary: 'The workers\' log lines of a run (info and above), in the order they were recorded',
    description:
      'Every line an activity of the run wrote through its run\'s logger: skill started/completed/failed with durations and error types, model fallbacks, a skill\'s own lines. Kept by each worker process (RUN_LOGS_ENABLED, at most RUN_LOGS_MAX_PER_RUN lines per run, messages cut at 2,000 characters) and pruned with the run\'s events (RETENTION_EVENTS_DAYS). A run that declares sensitive values has them scrubbed for callers without `sensitive-reader`. Page with `after` = the `next` of the previous page.',
    tags: ['runs'],
    request: { params: runIdParamSchema, query: listRunLogsQuerySchema },
    responses: {
      200: json('Lines by id; `next` is set when the page is full', z.object({ runId: z.string(), lines: z.array(RunLogLine), next: z.number().int().optional() })),
      400: errors[400],
      401: errors[401],
      404: problem('No such run (or another tenant\'s)'),
    },
  });
  route('post', '/v1/webhooks', {
    summary: 'Subscribe a URL to lifecycle events',
    description:
      'Events are POSTed as CloudEvents 1.0 JSON, signed per Standard Webhooks with the returned `secret` (shown only here), retried with exponential backoff and jitter, then dead-lettered (docs/lifecycle-events.md). Only events recorded after the subscription are delivered. With tracing on, each event carries the run\'s trace in the CloudEvents `traceparent` extension (distributed tracing), and the request is sent inside that trace.',
    tags: ['webhooks'],
    request: { body: { content: { 'application/json': { schema: CreateWebhook } } } },
    responses: {
      201: json('Subscribed; `secret` (`whsec_…`) is not shown again', Webhook.extend({ secret: z.string().describe('the signing secret, shown once') })),
      400: problem('Invalid request (`errors` lists every problem with its JSON path), or the URL\'s host is not in WEBHOOK_ALLOWED_HOSTS'),
      401: errors[401],
      403: adminOnly,
    },
  });
  route('get', '/v1/webhooks', {
    summary: 'The tenant\'s webhook subscriptions (without secrets)',
    tags: ['webhooks'],
    responses: { 200: json('Subscriptions, oldest first', z.object({ webhooks: z.array(Webhook) })), 401: errors[401], 403: adminOnly },
  });
  route('get', '/v1/webhooks/{webhookId}', {
    summary: 'One webhook subscription',
    tags: ['webhooks'],
    request: { params: webhookIdParamSchema },
    responses: { 200: json('The subscription', Webhook), 401: errors[401], 403: adminOnly, 404: problem('No such webhook (or another tenant\'s)') },
  });
  route('patch', '/v1/webhooks/{webhookId}', {
    summary: 'Change a webhook subscription: URL, patterns, definition filter, description, enabled',
    tags: ['webhooks'],
    request: { params: webhookIdParamSchema, body: { content: { 'application/json': { schema: UpdateWebhook } } } },
    responses: { 200: json('The subscription', Webhook), ...errors, 403: adminOnly, 404: problem('No such webhook (or another tenant\'s)') },
  });
  route('post', '/v1/webhooks/{webhookId}/rotate-secret', {
    summary: 'Rotate the signing secret: a new one now, the old one still valid during an overlap',
    description:
      'Answers the new `secret` (shown only here). Until `previousSecretExpiresAt` (now + `overlapSeconds`, default 24 h) every delivery carries two signatures in `webhook-signature`, the new secret\'s and the old one\'s, so a receiver verifying with either accepts it: deploy the new secret to the receiver within the overlap. Secrets are stored encrypted (docs/lifecycle-events.md).',
    tags: ['webhooks'],
    request: { params: webhookIdParamSchema, body: { content: { 'application/json': { schema: registry.register('RotateWebhookSecret', withOpenApi(rotateWebhookSecretSchema)) } }, required: false } },
    responses: {
      200: json('Rotated; `secret` is not shown again', Webhook.extend({ secret: z.string().describe('the new signing secret, shown once') })),
      ...errors,
      403: adminOnly,
      404: problem('No such webhook (or another tenant\'s)'),
    },
  });
  route('delete', '/v1/webhooks/{webhookId}', {
    summary: 'Delete a webhook subscription and its deliveries',
    tags: ['webhooks'],
    request: { params: webhookIdParamSchema },
    responses: { 204: { description: 'Deleted' }, 401: errors[401], 403: adminOnly, 404: problem('No such webhook (or another tenant\'s)') },
  });
  route('get', '/v1/webhooks/{webhookId}/deliveries', {
    summary: 'A subscription\'s deliveries; `status=dead` lists the dead letters',
    description: 'Oldest first. Page with `after` = the `next` of the previous page.',
    tags: ['webhooks'],
    request: { params: webhookIdParamSchema, query: listDeliveriesQuerySchema },
    responses: {
      200: json('Deliveries; `next` is set when the page is full', z.object({ deliveries: z.array(WebhookDelivery), next: z.string().optional() })),
      400: errors[400],
      401: errors[401],
      403: adminOnly,
      404: problem('No such webhook (or another tenant\'s)'),
    },
  });
  route('post', '/v1/webhooks/{webhookId}/deliveries/{deliveryId}/retry', {
    summary: 'Re-queue a dead delivery with a fresh attempt budget',
    tags: ['webhooks'],
    request: { params: webhookDeliveryParamSchema },
    responses: {
      202: json('Queued: it goes out at once (`status: pending`, `attempts: 0`)', WebhookDelivery),
      401: errors[401],
      403: adminOnly,
      404: problem('No such webhook or delivery'),
      409: problem('The delivery is not dead'),
    },
  });
  registerOperateRoutes({ route, json, problem, errors });
  registry.registerPath({
    method: 'get',
    path: '/healthz',
    summary: 'Liveness: the process is up',
    tags: ['health'],
    responses: { 200: json('Alive', z.object({ status: z.literal('ok') })) },
  });
  registry.registerPath({
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: PostgreSQL and Temporal answer',
    tags: ['health'],
    responses: {
      200: json('Ready', z.object({ status: z.literal('ready'), checks: z.record(z.string(), z.string()) })),
      503: json('Not ready', z.object({ status: z.literal('unavailable'), checks: z.record(z.string(), z.string()) })),
    },
  });
  // The codec server (api/routes/codec.ts): Temporal's remote codec protocol, protobuf JSON.
  const CodecPayloads = z
    .object({
      payloads: z.array(
        z.object({
          metadata: z.record(z.string(), z.string()).optional().describe('metadata values, base64'),
          data: z.string().optional().describe('base64'),
        }),
      ),
    })
    .openapi('CodecPayloads');
  for (const direction of ['encode', 'decode'] as const) {
    registry.registerPath({
      method: 'post',
      path: `/codec/${direction}`,
      summary: direction === 'encode' ? 'Encrypt payloads with the platform\'s payload codec (Temporal codec-server protocol)' : 'Decrypt payloads of Temporal\'s history for a `sensitive-reader` (Temporal Web, `temporal --codec-endpoint`)',
      description:
        'Needs a key with the role `sensitive-reader`. Temporal Web calls `/codec/ui/{CODEC_UI_TOKEN}/' + direction + '` instead (no credentials; browsers from CODEC_CORS_ORIGINS only). docs/sensitive-data.md.',
      tags: ['codec'],
      security: [{ [bearer.name]: [] }],
      request: { body: { required: true, content: { 'application/json': { schema: CodecPayloads } } } },
      responses: {
        200: json(direction === 'encode' ? 'Encrypted' : 'Decrypted (payloads not encrypted pass through)', CodecPayloads),
        400: problem('Not the protocol\'s shape, or a payload no configured key opens'),
        401: errors[401],
        403: problem('The key lacks `sensitive-reader`, or the browser origin is not allowed'),
        413: problem('The body exceeds the codec\'s limit (8 MiB or API_MAX_BODY_BYTES)'),
        415: problem('The body is not application/json'),
        429: problem('This API key (or Temporal Web\'s path, counted as one) made more requests than API_RATE_LIMIT in the window'),
      },
    });
  }
  registry.registerPath({
    method: 'get',
    path: '/v1/schemas/definition.json',
    summary: 'JSON Schema of the definition language (for editors)',
    tags: ['definitions'],
    responses: { 200: { description: 'JSON Schema (draft 2020-12)', content: { 'application/schema+json': { schema: z.object({}) } } } },
  });

  const document = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Durable workflows API',
      version: '1.0.0',
      description: 'Register JSON workflow definitions and run them durably on Temporal.',
    },
    servers: [{ url: serverUrl }],
  });
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...definitionComponents() } };
  return document;
}
