import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { definitionJsonSchema } from '../../api/app.ts';
import { buildOpenApiDocument } from '../../api/openapi.ts';
import { STEP_TYPES } from '../../interpreter/schema.ts';
import { SCHEMA_FILE, renderSchema } from '../../scripts/write-schema.ts';

type Obj = Record<string, unknown>;
const obj = (value: unknown, what: string): Obj => {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what} is an object`);
  return value as Obj;
};

const EXPECTED_PATHS: Record<string, string[]> = {
  '/v1/definitions': ['get', 'post'],
  '/v1/definitions/validate': ['post'],
  '/v1/definitions/{name}': ['get'],
  '/v1/definitions/{name}/versions/{version}': ['get'],
  '/v1/runs': ['get', 'post'],
  '/v1/runs/{runId}': ['get'],
  '/v1/runs/{runId}/cancel': ['post'],
  '/v1/runs/{runId}/approvals/{stepId}': ['post'],
  '/v1/runs/{runId}/audit': ['get'],
  '/v1/approvals': ['get'],
  '/v1/definitions/{name}/versions/{version}/deprecate': ['post'],
  '/v1/definitions/{name}/versions/{version}/retire': ['post'],
  '/v1/definitions/{name}/versions/{version}/activate': ['post'],
  '/v1/definitions/{name}/diff': ['get'],
  '/v1/events': ['post'],
  '/v1/schedules': ['get'],
  '/v1/schedules/{scheduleId}': ['get'],
  '/v1/schedules/{scheduleId}/pause': ['post'],
  '/v1/schedules/{scheduleId}/resume': ['post'],
  '/v1/schedules/{scheduleId}/trigger': ['post'],
  '/v1/schedules/{scheduleId}/backfill': ['post'],
  '/v1/lanes': ['get'],
  '/v1/lanes/{lane}': ['get'],
  '/v1/lanes/{lane}/pause': ['post'],
  '/v1/lanes/{lane}/resume': ['post'],
  '/v1/runs/{runId}/retry': ['post'],
  '/v1/runs/retry': ['post'],
  '/v1/operations': ['get'],
  '/healthz': ['get'],
  '/readyz': ['get'],
};

describe('buildOpenApiDocument', () => {
  const doc = buildOpenApiDocument();
  const paths = obj(doc.paths, 'paths');

  test('is OpenAPI 3.1 and serialises to JSON', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.title, 'string');
    const roundTrip = JSON.parse(JSON.stringify(doc)) as Obj;
    assert.deepEqual(Object.keys(obj(roundTrip.paths, 'paths')).sort(), Object.keys(paths).sort());
  });

  test('has every path with its methods', () => {
    for (const [path, methods] of Object.entries(EXPECTED_PATHS)) {
      const item = obj(paths[path], path);
      for (const method of methods) assert.ok(item[method], `${method.toUpperCase()} ${path}`);
    }
  });

  test('path parameters are declared', () => {
    const params = (path: string, method: string) =>
      ((obj(obj(paths[path], path)[method], `${method} ${path}`).parameters ?? []) as Array<{ name: string; in: string }>)
        .filter((p) => p.in === 'path')
        .map((p) => p.name)
        .sort();
    assert.deepEqual(params('/v1/definitions/{name}', 'get'), ['name']);
    assert.deepEqual(params('/v1/definitions/{name}/versions/{version}', 'get'), ['name', 'version']);
    assert.deepEqual(params('/v1/runs/{runId}', 'get'), ['runId']);
    assert.deepEqual(params('/v1/runs/{runId}/cancel', 'post'), ['runId']);
    assert.deepEqual(params('/v1/runs/{runId}/approvals/{stepId}', 'post'), ['runId', 'stepId']);
    assert.deepEqual(params('/v1/runs/{runId}/audit', 'get'), ['runId']);
    assert.deepEqual(params('/v1/approvals', 'get'), []);
    for (const action of ['deprecate', 'retire', 'activate']) {
      assert.deepEqual(params(`/v1/definitions/{name}/versions/{version}/${action}`, 'post'), ['name', 'version']);
    }
    assert.deepEqual(params('/v1/definitions/{name}/diff', 'get'), ['name']);
    assert.deepEqual(params('/v1/schedules/{scheduleId}', 'get'), ['scheduleId']);
    for (const action of ['pause', 'resume', 'trigger', 'backfill']) {
      assert.deepEqual(params(`/v1/schedules/{scheduleId}/${action}`, 'post'), ['scheduleId']);
    }
  });

  test('components Definition and Problem exist', () => {
    const schemas = obj(doc.components?.schemas, 'components.schemas');
    const definition = obj(schemas.Definition, 'Definition');
    const props = obj(definition.properties, 'Definition.properties');
    for (const key of ['name', 'version', 'steps', 'triggers', 'context', 'error_handling', 'resource_limits']) {
      assert.ok(key in props, `Definition.${key}`);
    }
    assert.deepEqual([...(definition.required as string[])].sort(), ['name', 'steps', 'version']);
    assert.ok(schemas.Problem, 'Problem');
    assert.ok(obj(obj(schemas.Problem, 'Problem').properties, 'Problem.properties'));
  });

  test('a bearer security scheme exists and guards the /v1 routes, not the health checks', () => {
    const scheme = obj(obj(doc.components?.securitySchemes, 'securitySchemes').bearer, 'bearer');
    assert.equal(scheme.type, 'http');
    assert.equal(scheme.scheme, 'bearer');
    for (const [path, methods] of Object.entries(EXPECTED_PATHS)) {
      for (const method of methods) {
        const op = obj(obj(paths[path], path)[method], `${method} ${path}`);
        const security = op.security as Array<Obj> | undefined;
        if (path.startsWith('/v1/')) {
          assert.ok(security?.some((s) => 'bearer' in s), `${method.toUpperCase()} ${path} needs bearer`);
        } else {
          assert.equal(security, undefined, `${path} is open`);
        }
      }
    }
  });

  test('error responses reference the Problem component as problem+json', () => {
    const post = obj(obj(paths['/v1/definitions'], '/v1/definitions').post, 'POST /v1/definitions');
    const responses = obj(post.responses, 'responses');
    for (const status of ['400', '401', '403', '409']) {
      const content = obj(obj(responses[status], status).content, `${status}.content`);
      const schema = obj(obj(content['application/problem+json'], 'problem+json').schema, 'schema');
      assert.equal(schema.$ref, '#/components/schemas/Problem', status);
    }
    const body = obj(obj(obj(post.requestBody, 'requestBody').content, 'content')['application/json'], 'json');
    assert.equal(obj(body.schema, 'schema').$ref, '#/components/schemas/Definition');
  });

  test('the approval routes carry their schemas and problem responses', () => {
    const post = obj(obj(paths['/v1/runs/{runId}/approvals/{stepId}'], 'approvals path').post, 'POST approvals');
    const body = obj(obj(obj(post.requestBody, 'requestBody').content, 'content')['application/json'], 'json');
    assert.equal(obj(body.schema, 'schema').$ref, '#/components/schemas/Decision');
    const responses = obj(post.responses, 'responses');
    const ok = obj(obj(obj(responses['200'], '200').content, '200.content')['application/json'], '200 json');
    assert.equal(obj(ok.schema, 'schema').$ref, '#/components/schemas/DecisionResult');
    for (const status of ['400', '401', '403', '404', '409']) {
      const content = obj(obj(responses[status], status).content, `${status}.content`);
      assert.equal(obj(obj(content['application/problem+json'], 'problem+json').schema, 'schema').$ref, '#/components/schemas/Problem', status);
    }
    const schemas = obj(doc.components?.schemas, 'components.schemas');
    for (const name of ['Decision', 'DecisionResult', 'InboxItem', 'AuditEntry']) assert.ok(schemas[name], name);
    assert.deepEqual(obj(obj(schemas.Decision, 'Decision').properties, 'Decision.properties').decision, { type: 'string', enum: ['approve', 'reject'] });
    const inbox = JSON.stringify(obj(obj(paths['/v1/approvals'], '/v1/approvals').get, 'GET /v1/approvals').responses);
    assert.match(inbox, /#\/components\/schemas\/InboxItem/);
    const audit = JSON.stringify(obj(obj(paths['/v1/runs/{runId}/audit'], 'audit').get, 'GET audit').responses);
    assert.match(audit, /#\/components\/schemas\/AuditEntry/);
  });

  test('the trigger, schedule and lifecycle routes carry their schemas', () => {
    const schemas = obj(doc.components?.schemas, 'components.schemas');
    for (const name of ['CloudEvent', 'EventResult', 'Schedule', 'ScheduleNote', 'Backfill', 'DefinitionRecordWithSchedules']) assert.ok(schemas[name], name);
    const op = (path: string, method: string) => obj(obj(paths[path], path)[method], `${method.toUpperCase()} ${path}`);
    const bodyRef = (path: string, method: string) =>
      obj(obj(obj(obj(op(path, method).requestBody, 'requestBody').content, 'content')['application/json'], 'json').schema, 'schema').$ref;
    const responses = (path: string, method: string) => JSON.stringify(op(path, method).responses);

    assert.equal(bodyRef('/v1/events', 'post'), '#/components/schemas/CloudEvent');
    assert.deepEqual([...(obj(schemas.CloudEvent, 'CloudEvent').required as string[])].sort(), ['id', 'source', 'type']);
    assert.match(responses('/v1/events', 'post'), /"201".*#\/components\/schemas\/EventResult/);
    assert.equal(bodyRef('/v1/schedules/{scheduleId}/backfill', 'post'), '#/components/schemas/Backfill');
    assert.deepEqual([...(obj(schemas.Backfill, 'Backfill').required as string[])].sort(), ['end', 'start']);
    for (const action of ['pause', 'resume']) {
      assert.equal(bodyRef(`/v1/schedules/{scheduleId}/${action}`, 'post'), '#/components/schemas/ScheduleNote');
      assert.match(responses(`/v1/schedules/{scheduleId}/${action}`, 'post'), /#\/components\/schemas\/Schedule"/);
    }
    assert.match(responses('/v1/schedules', 'get'), /#\/components\/schemas\/Schedule"/);
    for (const action of ['trigger', 'backfill']) assert.ok(obj(op(`/v1/schedules/{scheduleId}/${action}`, 'post').responses, 'responses')['202'], action);
    const schedule = obj(obj(schemas.Schedule, 'Schedule').properties, 'Schedule.properties');
    for (const key of ['nextRuns', 'recentRuns', 'missedCatchupWindow', 'skippedOverlap', 'paused', 'note', 'overlap', 'catchupWindowSeconds', 'pauseOnFailure', 'spec']) {
      assert.ok(key in schedule, `Schedule.${key}`);
    }

    assert.match(responses('/v1/definitions', 'post'), /#\/components\/schemas\/DefinitionRecordWithSchedules/);
    for (const action of ['deprecate', 'retire', 'activate']) {
      const path = `/v1/definitions/{name}/versions/{version}/${action}`;
      assert.match(responses(path, 'post'), /#\/components\/schemas\/DefinitionRecordWithSchedules/);
      assert.ok(obj(op(path, 'post').responses, 'responses')['409'], `${action} 409`);
    }
    const record = obj(obj(schemas.DefinitionRecord, 'DefinitionRecord').properties, 'DefinitionRecord.properties');
    assert.deepEqual(obj(record.status, 'DefinitionRecord.status').enum, ['active', 'deprecated', 'retired']);
    const query = ((op('/v1/definitions/{name}/diff', 'get').parameters ?? []) as Array<{ name: string; in: string; required?: boolean }>).filter((p) => p.in === 'query');
    assert.deepEqual(query.map((p) => [p.name, p.required]).sort(), [['from', true], ['to', true]]);
  });

  test('the server URL is configurable', () => {
    assert.deepEqual(buildOpenApiDocument('https://api.example.com').servers, [{ url: 'https://api.example.com' }]);
  });
});

describe('definitionJsonSchema', () => {
  const schema = obj(definitionJsonSchema(), 'schema');

  test('is a draft 2020-12 JSON Schema for an object', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.$id, '/v1/schemas/definition.json');
    assert.equal(schema.type, 'object');
  });

  test('its properties include name, version and steps, all required', () => {
    const props = obj(schema.properties, 'properties');
    for (const key of ['name', 'version', 'steps']) assert.ok(key in props, key);
    assert.deepEqual([...(schema.required as string[])].sort(), ['name', 'steps', 'version']);
  });

  test('objects are closed, as the validator is strict', () => {
    assert.equal(schema.additionalProperties, false);
  });

  test('steps are an array of at least one Step, a recursive definition covering every step kind', () => {
    const steps = obj(obj(schema.properties, 'properties').steps, 'steps');
    assert.equal(steps.type, 'array');
    assert.equal(steps.minItems, 1);
    assert.deepEqual(steps.items, { $ref: '#/$defs/Step' });
    const step = JSON.stringify(obj(obj(schema.$defs, '$defs').Step, '$defs.Step'));
    for (const kind of STEP_TYPES) assert.match(step, new RegExp(`"const":"${kind}"`), kind);
    // Nested step lists point back at the same definition.
    assert.match(step, /"\$ref":"#\/\$defs\/Step"/);
  });

  test('the OpenAPI document carries the same Step component, with references rewritten', () => {
    const schemas = obj(buildOpenApiDocument().components?.schemas, 'components.schemas');
    const step = JSON.stringify(obj(schemas['Definition.Step'], 'Definition.Step'));
    assert.match(step, /"\$ref":"#\/components\/schemas\/Definition.Step"/);
    assert.doesNotMatch(JSON.stringify(schemas), /#\/\$defs\//);
  });
});

describe('docs/schema/definition.json', () => {
  test('is the served JSON Schema, regenerated (`npm run schema`) whenever the zod schema changes', () => {
    assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), renderSchema());
  });
});
