import { defineRoute, errors, json, problem } from '../contract.ts';
import { z } from './zod-openapi.ts';

/** The catalog, health checks, the definition language's JSON Schema and the codec server (api/app.ts, api/routes/catalog.ts, api/routes/codec.ts). */

const activityView = z.object({
  name: z.string(),
  description: z.string(),
  sideEffects: z.boolean(),
  input: z.record(z.string(), z.unknown()).describe('JSON Schema of the step\'s `inputs`'),
  output: z.record(z.string(), z.unknown()).describe('JSON Schema of the output'),
  secretInputs: z.array(z.string()).optional(),
  defaults: z.record(z.string(), z.unknown()).optional(),
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
const codec = <D extends 'encode' | 'decode'>(direction: D) =>
  defineRoute({
    method: 'post',
    path: `/codec/${direction}`,
    servedBy: 'api/routes/codec.ts: its own key check (`sensitive-reader`), CORS, rate limit and body limit, and the UI-token path',
    summary: direction === 'encode' ? 'Encrypt payloads with the platform\'s payload codec (Temporal codec-server protocol)' : 'Decrypt payloads of Temporal\'s history for a `sensitive-reader` (Temporal Web, `temporal --codec-endpoint`)',
    description:
      'Needs a key with the role `sensitive-reader`. Temporal Web calls `/codec/ui/{CODEC_UI_TOKEN}/' + direction + '` instead (no credentials; browsers from CODEC_CORS_ORIGINS only). docs/sensitive-data.md.',
    tags: ['codec'],
    edge: false,
    body: { schema: CodecPayloads },
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

export const platformContracts = {
  catalog: defineRoute({
    method: 'get',
    path: '/v1/catalog',
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
  }),
  healthz: defineRoute({
    method: 'get',
    path: '/healthz',
    summary: 'Liveness: the process is up',
    tags: ['health'],
    security: false,
    responses: { 200: json('Alive', z.object({ status: z.literal('ok') })) },
  }),
  readyz: defineRoute({
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: PostgreSQL and Temporal answer',
    tags: ['health'],
    security: false,
    responses: {
      200: json('Ready', z.object({ status: z.literal('ready'), checks: z.record(z.string(), z.string()) })),
      503: json('Not ready', z.object({ status: z.literal('unavailable'), checks: z.record(z.string(), z.string()) })),
    },
  }),
  encode: codec('encode'),
  decode: codec('decode'),
  definitionSchema: defineRoute({
    method: 'get',
    path: '/v1/schemas/definition.json',
    summary: 'JSON Schema of the definition language (for editors)',
    tags: ['definitions'],
    security: false,
    responses: { 200: { description: 'JSON Schema (draft 2020-12)', schema: z.object({}), type: 'application/schema+json' } },
  }),
};
