import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { definitionSchema } from '../interpreter/schema.ts';
import type { ResponseSpec, RouteContract } from './contract.ts';
import { CONTRACTS } from './contracts/index.ts';
import { withOpenApi, z } from './contracts/zod-openapi.ts';
import { problemSchema } from './schemas.ts';
import { errors, retryAfter } from './contract.ts';

const errors401 = errors[401];

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

/** Builds the OpenAPI 3.1 document of REST v1 from the route contracts (api/contracts/), the same the handlers are mounted with. */
export function buildOpenApiDocument(serverUrl = '/'): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key; each key maps to a principal, roles (submit, approve, admin, operator) and a tenant.',
  });
  const Problem = registry.register('Problem', withOpenApi(problemSchema));
  const response = (spec: ResponseSpec) => {
    const content = spec.problem
      ? { 'application/problem+json': { schema: Problem } }
      : spec.schema
        ? { [spec.type ?? 'application/json']: { schema: spec.schema }, ...Object.fromEntries(Object.entries(spec.alternatives ?? {}).map(([type, schema]) => [type, { schema }])) }
        : undefined;
    return { description: spec.description, ...(content ? { content } : {}), ...(spec.headers ? { headers: spec.headers as never } : {}) };
  };
  // What the edge answers on every authenticated operation, whatever the handler does (api/edge.ts, api/rate-limit.ts).
  const edgeResponses = (withBody: boolean): Record<number, ResponseSpec> => ({
    400: { description: 'Invalid request: `errors` lists every problem with its JSON path (a malformed URL or query parameter, a body nested too deep, text PostgreSQL cannot store, a malformed body)', problem: true },
    401: errors401,
    ...((withBody
      ? {
          413: { description: 'The body is larger than API_MAX_BODY_BYTES (after decompression)', problem: true },
          415: { description: 'The body is not UTF-8 application/json, or its Content-Encoding is not supported', problem: true },
        }
      : {}) as Record<number, ResponseSpec>),
    429: { description: 'This API key made more requests than API_RATE_LIMIT in the window; retry after `Retry-After` seconds', problem: true, headers: retryAfter },
    503: { description: 'Temporal or PostgreSQL is not reachable right now; retry after `Retry-After` seconds', problem: true, headers: retryAfter },
  });
  for (const contract of CONTRACTS) registry.registerPath(operation(contract, bearer.name, response, edgeResponses));

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

/** One contract as the generator's route: its request parts, its responses after the edge's, its security. */
function operation(
  contract: RouteContract,
  bearer: string,
  response: (spec: ResponseSpec) => RouteConfig['responses'][string],
  edgeResponses: (withBody: boolean) => Record<number, ResponseSpec>,
): RouteConfig {
  const secured = contract.security !== false;
  const responses = { ...(contract.edge ?? secured ? edgeResponses(Boolean(contract.body)) : {}), ...contract.responses };
  const request = {
    ...(contract.params ? { params: contract.params } : {}),
    ...(contract.query ? { query: contract.query } : {}),
    ...(contract.headers ? { headers: contract.headers } : {}),
    ...(contract.body ? { body: { required: contract.body.required ?? true, content: { 'application/json': { schema: contract.body.schema } } } } : {}),
  };
  return {
    method: contract.method,
    path: contract.path,
    summary: contract.summary,
    ...(contract.description ? { description: contract.description } : {}),
    tags: contract.tags,
    ...(secured ? { security: [{ [bearer]: [] }] } : {}),
    ...(Object.keys(request).length > 0 ? { request } : {}),
    responses: Object.fromEntries(Object.entries(responses).map(([status, spec]) => [status, response(spec)])),
  };
}
