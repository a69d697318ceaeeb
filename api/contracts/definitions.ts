import { DEFINITION_STATUSES } from '../definitions-store.ts';
import { defineRoute, errors, json, problem } from '../contract.ts';
import {
  definitionRecordSchema,
  definitionSummarySchema,
  diffQuerySchema,
  estimateNoteSchema,
  historyEstimateSchema,
  importRequestSchema,
  importResultSchema,
  nameParamSchema,
  validationResultSchema,
  versionParamSchema,
} from '../schemas.ts';
import { named, z } from './zod-openapi.ts';

/** Registering, validating, reading, diffing definitions and changing a version's status (api/routes/definitions.ts, api/routes/triggers.ts). */

// A stand-in the generator renders as a $ref; the real component is zod's JSON Schema (api/openapi.ts definitionComponents).
export const Definition = named('Definition', z.unknown());
export const DefinitionRecord = named(
  'DefinitionRecord',
  definitionRecordSchema.extend({
    status: z.enum(DEFINITION_STATUSES).describe('active: runs may start; deprecated: no new runs (running ones finish); retired: like deprecated, and final'),
    statusChangedAt: z.string().optional().describe('set once the status was changed'),
    statusChangedBy: z.string().optional().describe('the principal that changed it'),
    definition: Definition,
  }),
);
// Registration and lifecycle changes also answer with the schedule ids the definition has now.
export const DefinitionRecordWithSchedules = named(
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
const DefinitionSummary = named('DefinitionSummary', definitionSummarySchema);
const ValidationResult = named('ValidationResult', validationResultSchema);
const ImportRequest = named('ImportRequest', importRequestSchema);
const ImportResult = named('ImportResult', importResultSchema);
export const Graph = named(
  'DefinitionGraph',
  z.object({
    name: z.string(),
    version: z.string(),
    format: z.literal('mermaid'),
    mermaid: z.string().describe('A Mermaid flowchart (`flowchart TD`): every step kind, branches, loops, parallel, approvals, error paths and the rollback path'),
    nodes: z.record(z.string(), z.string()).describe('The Mermaid node id of every step, by step id'),
  }),
);

const statusChange = <A extends string>(action: A, status: string, summary: string) =>
  defineRoute({
    method: 'post',
    roles: ['submit'],
    path: `/v1/definitions/{name}/versions/{version}/${action}`,
    summary,
    description: `Sets the status to \`${status}\` (the same status again is a 200 that changes nothing), then reconciles the definition's schedules. A retired version cannot change status again (409).`,
    tags: ['definitions'],
    params: versionParamSchema,
    responses: {
      200: json(`The version, now ${status}, with the definition's schedule ids`, DefinitionRecordWithSchedules),
      401: errors[401],
      403: errors[403],
      404: problem('No such version'),
      409: problem('The version is retired; retirement is final'),
    },
  });
const statusChanges = {
  deprecate: statusChange('deprecate', 'deprecated', 'Deprecate a version: no new runs start on it (running ones finish); schedules move to the production alias or the newest active version'),
  retire: statusChange('retire', 'retired', 'Retire a version: like deprecate, and final'),
  activate: statusChange('activate', 'active', 'Re-activate a deprecated version'),
};

export const definitionContracts = {
  register: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/definitions',
    summary: 'Register a definition version',
    description:
      '`name@version` is immutable: a different body is a 409, an identical re-post returns the stored version (200). Either way the tenant\'s Temporal Schedules for the definition are then reconciled with the schedule triggers of its starting version (the `production` alias when a promotion set one, else the newest active version).',
    tags: ['definitions'],
    body: { schema: Definition },
    responses: {
      201: json('Registered', DefinitionRecordWithSchedules),
      200: json('Identical version already registered (its schedules are reconciled again)', DefinitionRecordWithSchedules),
      ...errors,
      409: problem('name@version exists with other content'),
    },
  }),
  import: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/definitions/import',
    summary: "Convert another engine's definition (Amazon States Language, Serverless Workflow 1.0) to a native one, and register it when asked",
    description:
      'Answers the native definition and a report of every construct mapped. A source with any construct that has no exact equivalent is a 422 listing each one (its JSON path in the source and why); nothing is half-converted. With `register: true` the result is registered as `POST /v1/definitions` would (201 created, 200 identical, 409 other content). See docs/importers.md.',
    tags: ['definitions'],
    body: { schema: ImportRequest },
    responses: {
      200: json('Converted (and, with register, already registered identically)', ImportResult),
      201: json('Converted and registered', ImportResult),
      ...errors,
      409: problem('register: name@version exists with other content'),
      422: problem('The source has constructs without an exact equivalent, or the result is not a valid definition'),
    },
  }),
  validate: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/definitions/validate',
    summary: 'Validate a definition without registering it',
    tags: ['definitions'],
    body: { schema: Definition },
    responses: { 200: json('Validation result', ValidationResult), 401: errors[401], 403: errors[403] },
  }),
  list: defineRoute({
    method: 'get',
    path: '/v1/definitions',
    summary: 'List definitions (latest version of each)',
    tags: ['definitions'],
    responses: { 200: json('Definitions', z.object({ definitions: z.array(DefinitionSummary) })), 401: errors[401] },
  }),
  get: defineRoute({
    method: 'get',
    path: '/v1/definitions/{name}',
    summary: 'Read the highest version of a definition (whatever its status) and the list of its versions',
    tags: ['definitions'],
    params: nameParamSchema,
    responses: { 200: json('Latest version', DefinitionRecord.extend({ versions: z.array(z.string()) })), 401: errors[401], 404: problem('No such definition') },
  }),
  version: defineRoute({
    method: 'get',
    path: '/v1/definitions/{name}/versions/{version}',
    summary: 'Read one version of a definition',
    tags: ['definitions'],
    params: versionParamSchema,
    responses: { 200: json('The version', DefinitionRecord), 401: errors[401], 404: problem('No such version') },
  }),
  graph: defineRoute({
    method: 'get',
    path: '/v1/definitions/{name}/versions/{version}/graph',
    summary: 'The definition as a Mermaid flowchart',
    description: 'Paste `mermaid` into any Mermaid renderer (GitHub Markdown, mermaid.live, the Mermaid CLI). See docs/authoring.md for the shapes and edges.',
    tags: ['definitions'],
    params: versionParamSchema,
    responses: { 200: json('The diagram', Graph), 401: errors[401], 404: problem('No such version') },
  }),
  operatorDoc: defineRoute({
    method: 'get',
    path: '/v1/definitions/{name}/versions/{version}/operator-doc',
    summary: 'The version’s operator doc (seed 001’s template, sections 0–13) as Markdown',
    description:
      'Filled from what the platform knows for certain (steps and actors, triggers and the input fields read, systems touched by skills and integrations, retries, timeouts and error strategies, idempotency keys, lanes and queues, logs and metrics to watch, approvers, the rollback path, the diagram and the history estimate); each `TODO:` is a question for the owner. `npm run docs:operator` writes the same from a file. See docs/authoring.md.',
    tags: ['definitions'],
    params: versionParamSchema,
    responses: {
      200: { description: 'The operator doc', schema: z.string(), type: 'text/markdown' },
      401: errors[401],
      404: problem('No such version'),
      422: problem('The version no longer validates against the current catalog'),
    },
  }),
  ...statusChanges,
  diff: defineRoute({
    method: 'get',
    path: '/v1/definitions/{name}/diff',
    summary: 'What changed between two versions, as an RFC 6902 JSON Patch',
    description: 'The patch turns the body of `from` into the body of `to` (either order, any status).',
    tags: ['definitions'],
    params: nameParamSchema,
    query: diffQuerySchema,
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
  }),
};
