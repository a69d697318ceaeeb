import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { AuditStore } from '../../activities/platform/audit.ts';
import { RunEventStore } from '../../activities/platform/events.ts';
import { RunLogStore } from '../../activities/platform/run-logs.ts';
import { createApp } from '../../api/app.ts';
import { loadApiKeys } from '../../api/auth.ts';
import { DefinitionsStore } from '../../api/definitions-store.ts';
import { RunsService } from '../../api/runs-service.ts';
import { scheduleOwnedBy, SchedulesService } from '../../api/schedules-service.ts';
import { SecretBox } from '../../api/webhooks/secret-box.ts';
import { WebhookStore } from '../../api/webhooks/store.ts';
import { createPool } from '../../common/db.ts';
import { createLogger } from '../../common/logger.ts';
import { freePort } from '../../embedded/ports.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * The repro list of issue 21 (a schemathesis pass plus ~720 hand-made requests), one test per
 * finding, against the real API (HTTP, Temporal dev server, PostgreSQL). Each of these answered
 * 500, leaked across tenants or parsed before authenticating; each must now be a clear 4xx
 * problem+json (or the documented 503), with the JSON path at fault.
 */

interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
  text: string;
}

let platform: TestPlatform;

/** A request written byte for byte (fetch would normalise the URL and the body). */
function raw(method: string, path: string, options: { key?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<RawAnswer> {
  const url = new URL(platform.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
          ...(options.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(options.body)) }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
        });
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

function assertProblem(answer: { status: number; headers: any; body: any }, status: number, detail?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body)?.slice(0, 500));
  const type = typeof answer.headers.get === 'function' ? answer.headers.get('content-type') : answer.headers['content-type'];
  assert.match(String(type), /application\/problem\+json/);
  assert.equal(answer.body.status, status);
  if (detail) assert.match(String(answer.body.detail), detail);
}

/** `[[...]]` nested `depth` levels, as text (JSON.stringify of such a value would itself overflow). */
const nestedArrays = (depth: number, inner = '1') => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;

const definition = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  version: '1.0.0',
  steps: [{ id: 'echo', type: 'skill', skill: 'echo', inputs: { value: '${input}' } }],
  ...extra,
});

/**
 * The API app over the test platform's database with its own keys, limits and Temporal
 * connection (by default one to a port nobody listens on), listening on a free port.
 */
async function edgeApp(options: { temporal?: Connection; rateLimit?: { limit: number; windowSeconds: number } } = {}) {
  const pool = createPool(platform.config.DATABASE_URL!, 2);
  const connection = options.temporal ?? Connection.lazy({ address: `127.0.0.1:${await freePort()}`, interceptors: [] });
  const client = new Client({ connection });
  const keys = loadApiKeys({
    API_KEYS: JSON.stringify([
      { key: KEYS.submitter, principal: 'sam', roles: ['submit'], tenant: 'edge' },
      { key: KEYS.admin, principal: 'ada', roles: ['admin'], tenant: 'edge' },
    ]),
  });
  const logger = createLogger('test', 'silent');
  const definitions = new DefinitionsStore(pool);
  const app = createApp({
    logger,
    keys,
    definitions,
    runs: new RunsService(client),
    schedules: new SchedulesService(client, definitions, keys, { executionTimeoutSeconds: 60, logger }),
    audit: new AuditStore(pool),
    events: new RunEventStore(pool),
    logs: new RunLogStore(pool),
    webhooks: new WebhookStore(pool, new SecretBox(randomBytes(32))),
    webhookAllowedHosts: [],
    validation: { skills: new Set(['echo']), integrations: new Set(), agents: new Set(), lanes: platform.lanes },
    defaultLane: platform.lanes[0]!,
    defaultExecutionTimeoutSeconds: 60,
    namespace: 'default',
    temporalUiUrl: 'http://127.0.0.1:8233',
    readiness: {},
    limits: { maxBodyBytes: 1024 * 1024, maxJsonDepth: 64 },
    rateLimit: options.rateLimit ?? { limit: 0, windowSeconds: 60 },
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await connection.close().catch(() => undefined);
      await pool.end();
    },
  };
}

before(async () => {
  platform = await startTestPlatform({ database: 'postgres' });
  const registered = await platform.api('/v1/definitions', { method: 'POST', json: definition('fuzz-target') });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
});

after(async () => {
  await platform?.stop();
});

describe('issue 21: from a fuzzing pass', () => {
  test('1. malformed percent-encoding answers 400 on every operation with path parameters; undecodable bodies keep their 4xx', async () => {
    const spec = (await platform.api('/openapi.json', { key: '' })).body;
    const operations = Object.entries(spec.paths as Record<string, Record<string, unknown>>)
      .filter(([path]) => path.includes('{'))
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })));
    assert.ok(operations.length >= 21, `only ${operations.length} operations with path parameters`);
    for (const bad of ['%E0%A4%A', '%C3', '%ZZ', '%', '%FF']) {
      for (const { method, path } of operations) {
        const target = path.replace(/\{[^}]+\}/g, bad);
        const answer = await raw(method, target, { key: KEYS.admin, headers: { 'content-type': 'application/json' }, body: '{}' });
        assertProblem(answer, 400);
        assert.match(answer.body.detail, /percent-encoding/, `${method} ${target}`);
      }
    }
    const gzipped = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
    assertProblem(await raw('POST', '/v1/runs', { headers: gzipped, body: '{}' }), 401);
    assertProblem(await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: gzipped, body: '{}' }), 400);
    // A well-formed gzip body is read as usual.
    const good = await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: gzipped, body: gzipSync(JSON.stringify({ definition: 'fuzz-target', input: 1 })) });
    assert.equal(good.status, 201, good.text);
    assertProblem(await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: { ...gzipped, 'content-encoding': 'compress' }, body: '{}' }), 415);
    assertProblem(await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: { 'content-type': 'application/json; charset=latin-9' }, body: '{}' }), 415);
    assertProblem(await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: { 'content-type': 'text/plain' }, body: '{}' }), 415);
  });

  test('2. deep nesting answers 400 with the limit instead of overflowing the stack', async () => {
    const json = { 'content-type': 'application/json' };
    const input = await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: json, body: `{"definition":"fuzz-target","input":${nestedArrays(4000)}}` });
    assertProblem(input, 400, /nests .* deep; the limit is \d+/);
    assert.match(input.body.errors[0].path, /^\/input(\/0)+$/);
    const deepDefinition = `{"name":"deep","version":"1.0.0","steps":[],"x":${nestedArrays(10_000)}}`;
    assertProblem(await raw('POST', '/v1/definitions', { key: KEYS.submitter, headers: json, body: deepDefinition }), 400, /limit is \d+/);
    assertProblem(await raw('POST', '/v1/definitions/validate', { key: KEYS.submitter, headers: json, body: deepDefinition }), 400, /limit is \d+/);
    let step = '{"id":"leaf","type":"skill","skill":"echo","inputs":{}}';
    for (let i = 0; i < 1000; i += 1) step = `{"id":"p${i}","type":"parallel","steps":[${step}]}`;
    const parallel = `{"name":"deep-parallel","version":"1.0.0","steps":[${step}]}`;
    assertProblem(await raw('POST', '/v1/definitions', { key: KEYS.submitter, headers: json, body: parallel }), 400, /limit is \d+/);
    const event = `{"id":"e1","type":"t","source":"s","data":${nestedArrays(5000)}}`;
    assertProblem(await raw('POST', '/v1/events', { key: KEYS.submitter, headers: json, body: event }), 400, /limit is \d+/);
  });

  test('3. NUL bytes answer 400 with their path before they reach PostgreSQL', async () => {
    const byName = await raw('GET', '/v1/definitions/a%00b', { key: KEYS.submitter });
    assertProblem(byName, 400, /control character/);
    assert.equal(byName.body.errors[0].path, 'name');
    const start = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'a\u0000b' } });
    assertProblem(start, 400);
    assert.equal(start.body.errors[0].path, '/definition');
    const described = await platform.api('/v1/definitions', { method: 'POST', json: definition('nul-description', { description: 'a\u0000b' }) });
    assertProblem(described, 400);
    assert.equal(described.body.errors[0].path, '/description');
    const hook = await platform.api('/v1/webhooks', { method: 'POST', key: KEYS.admin, json: { url: 'https://hooks.example.com/x', description: 'a\u0000b' } });
    assertProblem(hook, 400);
    assert.equal(hook.body.errors[0].path, '/description');
    // A lone surrogate is not valid Unicode either; PostgreSQL's jsonb refuses it.
    const surrogate = await platform.api('/v1/definitions', { method: 'POST', json: definition('lone-surrogate', { description: 'a\ud800b' }) });
    assertProblem(surrogate, 400);
    assert.equal(surrogate.body.errors[0].path, '/description');
    const key = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'fuzz-target', input: { 'k\u0000': 1 } } });
    assertProblem(key, 400);
    assert.equal(key.body.errors[0].path, '/input/k\\u0000', 'control characters are spelled out, not echoed');
  });

  test('4. control characters never reach the visibility query', async () => {
    const started = Date.now();
    const answer = await raw('GET', '/v1/runs?definition=a%00b', { key: KEYS.submitter });
    assertProblem(answer, 400, /control character/);
    assert.equal(answer.body.errors[0].path, 'definition');
    assertProblem(await raw('GET', '/v1/runs?definition=a%0Ab', { key: KEYS.submitter }), 400);
    const correlated = await platform.api('/v1/events', { method: 'POST', json: { id: 'e-ctl', type: 't', source: 's', correlationId: 'a\u0001b' } });
    assertProblem(correlated, 400);
    assert.equal(correlated.body.errors[0].path, '/correlationId');
    // Refused at the edge, not after the dev server's retries (~21 s before).
    assert.ok(Date.now() - started < 15_000);
  });

  test('4b. an unreachable Temporal answers the documented 503 with Retry-After', async () => {
    // Retries off, so the answer comes at once rather than after the SDK's ~21 s of retrying.
    const edge = await edgeApp({ temporal: Connection.lazy({ address: `127.0.0.1:${await freePort()}`, interceptors: [] }) });
    try {
      for (const path of ['/v1/runs', '/v1/runs/some-run', '/v1/schedules']) {
        const answer = await fetch(`${edge.url}${path}`, { headers: { authorization: `Bearer ${KEYS.submitter}` } });
        const body = (await answer.json()) as { status: number; detail: string };
        assert.equal(answer.status, 503, `${path}: ${JSON.stringify(body)}`);
        assert.match(answer.headers.get('content-type') ?? '', /application\/problem\+json/);
        assert.match(body.detail, /Temporal is not reachable/);
        assert.ok(Number(answer.headers.get('retry-after')) > 0);
      }
    } finally {
      await edge.close();
    }
  });

  test('5. cursors out of range answer 400', async () => {
    const run = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'fuzz-target', input: 2 } });
    assert.equal(run.status, 201);
    const runId = encodeURIComponent(run.body.runId);
    const answer = await platform.api(`/v1/runs/${runId}/events?after=2147483648`);
    assertProblem(answer, 400);
    assert.equal(answer.body.errors[0].path, 'after');
    assert.equal((await platform.api(`/v1/runs/${runId}/events?after=2147483647`)).status, 200);
    assertProblem(await platform.api(`/v1/runs/${runId}/events?after=-1`), 400);
    assertProblem(await platform.api(`/v1/runs/${runId}/events?after=1e400`), 400);
  });

  test('6. schedules: tenant names are restricted and ownership is compared exactly', () => {
    assert.throws(
      () => loadApiKeys({ API_KEYS: JSON.stringify([{ key: 'k'.repeat(20), principal: 'p', roles: ['admin'], tenant: 't1:x' }]) }),
      /tenant/,
    );
    assert.doesNotThrow(() => loadApiKeys({ API_KEYS: JSON.stringify([{ key: 'k'.repeat(20), principal: 'p', roles: ['admin'], tenant: 'acme-eu_1.prod' }]) }));
    assert.equal(scheduleOwnedBy('sched:t1:nightly:0', 't1'), true);
    assert.equal(scheduleOwnedBy('sched:t1:x:nightly:0', 't1'), false);
    assert.equal(scheduleOwnedBy('sched:t1:x:nightly:0', 't1:x'), false);
    assert.equal(scheduleOwnedBy('sched:t1:nightly:0:extra', 't1'), false);
    assert.equal(scheduleOwnedBy('sched:t10:nightly:0', 't1'), false);
  });

  test('7. the key is checked before the body is read', async () => {
    const json = { 'content-type': 'application/json' };
    assertProblem(await raw('POST', '/v1/runs', { headers: json, body: '{"definition":' }), 401);
    assertProblem(await raw('POST', '/v1/runs', { key: 'not-a-key-of-this-platform', headers: json, body: '{"definition":' }), 401);
    const malformed = await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: json, body: '{"definition":' });
    assertProblem(malformed, 400, /not valid JSON/);
    assertProblem(await raw('POST', '/v1/runs', { headers: json, body: nestedArrays(400_000) }), 401);
    assertProblem(await raw('POST', '/v1/runs', { headers: json, body: 'x'.repeat(2 * 1024 * 1024) }), 401);
    assertProblem(await raw('POST', '/v1/runs', { key: KEYS.submitter, headers: json, body: `{"definition":"${'x'.repeat(2 * 1024 * 1024)}"}` }), 413);
  });

  test('8. outbound webhooks are closed by default', async () => {
    for (const url of ['http://10.0.0.1/hook', 'http://127.0.0.1:9/hook', 'https://hooks.example.com/x']) {
      const answer = await platform.api('/v1/webhooks', { method: 'POST', key: KEYS.admin, json: { url } });
      assertProblem(answer, 400, /WEBHOOK_ALLOWED_HOSTS/);
      assert.equal(answer.body.errors[0].path, '/url');
    }
  });

  test('9. security headers, bounded and escaped echoes, 405 for known paths, a spec that says what is enforced', async () => {
    const health = await platform.api('/healthz', { key: '' });
    assert.equal(health.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(health.headers.get('content-security-policy'));
    assert.ok(health.headers.get('strict-transport-security') === null || health.headers.get('strict-transport-security'));
    assert.equal(health.headers.get('x-frame-options'), 'SAMEORIGIN');

    const long = await platform.api(`/v1/runs/${'r'.repeat(15_000)}`);
    assertProblem(long, 404);
    assert.ok(long.body.detail.length <= 300, `detail is ${long.body.detail.length} characters`);
    assert.ok(long.body.instance.length <= 300, `instance is ${long.body.instance.length} characters`);
    const script = await raw('GET', '/v1/runs/<script>alert(1)</script>', { key: KEYS.submitter });
    assertProblem(script, 404);
    assert.doesNotMatch(script.text, /<script>/);
    assert.doesNotMatch(script.body.instance, /</);
    const control = await platform.api('/v1/definitions/ok', { method: 'POST', json: {} });
    assert.ok(control.status === 404 || control.status === 405);

    for (const [method, path] of [['TRACE', '/v1/runs'], ['PUT', '/v1/runs/abc'], ['DELETE', '/healthz']] as const) {
      const answer = await raw(method, path, { key: KEYS.submitter });
      assertProblem(answer, 405);
      assert.ok(answer.headers.allow, `${method} ${path} has no Allow header`);
    }
    assert.match(String((await raw('TRACE', '/v1/runs', { key: KEYS.submitter })).headers.allow), /GET/);
    assertProblem(await raw('TRACE', '/nowhere', { key: KEYS.submitter }), 404);

    const spec = (await platform.api('/openapi.json', { key: '' })).body;
    assert.equal(spec.paths['/v1/runs'].post.requestBody.required, true);
    assert.equal(spec.paths['/v1/definitions'].post.requestBody.required, true);
    assert.equal(spec.components.schemas.CreateWebhook.properties.url.format, 'uri');
    const idempotency = spec.paths['/v1/runs'].post.parameters.find((p: any) => p.name === 'Idempotency-Key');
    assert.equal(idempotency.schema.maxLength, 200);
    assert.ok(idempotency.schema.pattern);
    for (const [path, methods] of Object.entries(spec.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(methods)) {
        if (!operation.security) continue;
        for (const status of ['401', '429']) assert.ok(operation.responses[status], `${method} ${path} documents no ${status}`);
        if (operation.requestBody) for (const status of ['413', '415']) assert.ok(operation.responses[status], `${method} ${path} documents no ${status}`);
      }
    }
  });
});

describe('issue 12: limits at the edge', () => {
  test('each API key has its own request budget; over it, 429 problem+json with Retry-After', async () => {
    const edge = await edgeApp({ rateLimit: { limit: 3, windowSeconds: 60 } });
    const get = (key?: string) => fetch(`${edge.url}/v1/definitions`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    try {
      for (let i = 0; i < 3; i += 1) assert.equal((await get(KEYS.submitter)).status, 200);
      const over = await get(KEYS.submitter);
      assert.equal(over.status, 429);
      assert.match(over.headers.get('content-type') ?? '', /application\/problem\+json/);
      const retryAfter = Number(over.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      assert.match(over.headers.get('ratelimit-policy') ?? '', /q=3/);
      const body = (await over.json()) as { status: number; detail: string; retryAfterSeconds: number };
      assert.equal(body.status, 429);
      assert.match(body.detail, /more than 3 requests in 60 s/);
      assert.equal(body.retryAfterSeconds, retryAfter);
      // Another key is counted on its own; callers without a valid key are refused before counting.
      assert.equal((await get(KEYS.admin)).status, 200);
      assert.equal((await get()).status, 401);
      assert.equal((await get('not-a-key-of-this-platform')).status, 401);
      assert.equal((await get(KEYS.admin)).status, 200);
    } finally {
      await edge.close();
    }
  });
});
