import { z } from 'zod';
import { definitionSchema } from '../interpreter/schema.ts';
import { identifier } from './text-schemas.ts';

/**
 * Request and response shapes of REST v1 shared across areas, and those of definitions. Each area
 * has its own file beside this one (run-schemas.ts, trigger-schemas.ts, webhook-schemas.ts,
 * operate-schemas.ts, reports-schemas.ts); the route contracts (api/contracts/) name them, so the
 * handlers parse with the same objects the OpenAPI document is generated from.
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

export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export const diffQuerySchema = z.strictObject({ from: identifier(200), to: identifier(200) });
export const nameParamSchema = z.object({ name: z.string() });
export const versionParamSchema = z.object({ name: z.string(), version: z.string() });


// webhook-schemas.ts holds these now; they stay importable from here.
export { createWebhookSchema, updateWebhookSchema } from './webhook-schemas.ts';
