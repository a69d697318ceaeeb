import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import express, { Router } from 'express';
import { z } from 'zod';
import { createApp, type AppDeps } from '../../api/app.ts';
import { loadApiKeys } from '../../api/auth.ts';
import { defineRoute, errors, handle, json, problem, type Handler } from '../../api/contract.ts';
import { CONTRACTS } from '../../api/contracts/index.ts';
import { problemHandler } from '../../api/error-handler.ts';
import { buildOpenApiDocument } from '../../api/openapi.ts';
import { createLogger } from '../../common/logger.ts';

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every route express serves, as `METHOD /openapi/{template}`, walking mounted routers too. */
function expressRoutes(app: express.Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const path of [layer.route.path].flat()) {
          for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') found.push(`${method.toUpperCase()} ${path.replace(/:(\w+)/g, '{$1}')}`);
        }
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found;
}

/** Deps enough to build every router (nothing is called: no request is sent). */
function stubDeps(): AppDeps {
  const none = {} as never;
  return {
    logger: createLogger('test', 'silent'),
    keys: loadApiKeys({ API_KEYS: JSON.stringify([{ key: 'k'.repeat(24), principal: 'p', roles: ['admin'], tenant: 't' }]) }),
    definitions: none,
    runs: none,
    schedules: none,
    audit: { pool: none } as never,
    events: none,
    logs: none,
    webhooks: none,
    webhookAllowedHosts: [],
    validation: { skills: new Set(), integrations: new Set(), agents: new Set(), lanes: ['l'] },
    defaultLane: 'l',
    defaultExecutionTimeoutSeconds: 60,
    namespace: 'default',
    temporalUiUrl: 'http://127.0.0.1:8233',
    readiness: {},
    limits: { maxBodyBytes: 1024, maxJsonDepth: 8 },
    rateLimit: { limit: 0, windowSeconds: 60 },
    operate: { lanes: none, retries: none, operations: none },
    codec: { codecs: [], uiToken: 'ui-token', corsOrigins: [] },
  };
}

// Served by express, deliberately not operations of the document: the document itself, its UI,
// the diagram page's assets, Prometheus' scrape, and Temporal Web's credential-less codec path.
const UNDOCUMENTED = new Set(['GET /openapi.json', 'GET /mermaid.min.js', 'POST /codec/ui/{token}/encode', 'POST /codec/ui/{token}/decode', 'OPTIONS /codec/encode', 'OPTIONS /codec/decode', 'OPTIONS /codec/ui/{token}/encode', 'OPTIONS /codec/ui/{token}/decode']);

describe('route contracts', () => {
  const documented = Object.entries(buildOpenApiDocument().paths ?? {}).flatMap(([path, item]) => Object.keys(item as object).map((method) => `${method.toUpperCase()} ${path}`));

  test('the document lists every contract once, and nothing else', () => {
    const contracts = CONTRACTS.map((c) => `${c.method.toUpperCase()} ${c.path}`);
    assert.equal(new Set(contracts).size, contracts.length, 'no route is declared twice');
    assert.deepEqual([...documented].sort(), [...contracts].sort());
  });

  test('express serves every documented operation, and documents every route it serves', () => {
    const served = expressRoutes(createApp(stubDeps()));
    const missing = documented.filter((op) => !served.includes(op));
    assert.deepEqual(missing, [], 'documented but not served');
    const undocumented = served.filter((op) => !documented.includes(op) && !UNDOCUMENTED.has(op));
    assert.deepEqual(undocumented, [], 'served but not documented');
  });

  test('a contract with servedBy names the module that serves it; every other one is mounted with handle()', () => {
    for (const c of CONTRACTS.filter((c) => c.servedBy)) assert.match(c.servedBy!, /^api\/routes\/\w+\.ts: /, `${c.method} ${c.path}`);
  });

  test('handle() checks the roles first, then answers a bad input with 400 and JSON paths, and sends the typed reply', async () => {
    const contract = defineRoute({
      method: 'post',
      path: '/things/{id}',
      summary: 'test',
      tags: ['test'],
      roles: ['submit'],
      params: z.object({ id: z.string() }),
      body: { schema: z.strictObject({ n: z.number().int() }) },
      responses: { 201: json('Made', z.object({ id: z.string(), n: z.number() })), ...errors, 404: problem('No such thing') },
    });
    const router = Router();
    handle(router, contract, ({ params, body }) => ({ status: 201, location: `/things/${params.id}`, body: { id: params.id, n: body.n } }));
    const app = express();
    app.use(express.json());
    app.use((req, _res, next) => {
      req.principal = { principal: 'p', roles: req.get('x-role') === 'submit' ? ['submit'] : [], tenant: 't', groups: [] };
      next();
    });
    app.use(router);
    app.use(problemHandler(createLogger('test', 'silent')));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/things/a1`;
      const post = (body: unknown, role = 'submit') => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-role': role }, body: JSON.stringify(body) });
      const forbidden = await post({ n: 'x' }, 'none');
      assert.equal(forbidden.status, 403);
      const bad = await post({ n: 'x', extra: 1 });
      assert.equal(bad.status, 400);
      assert.equal(bad.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      const problems = ((await bad.json()) as { errors: Array<{ path: string }> }).errors.map((e) => e.path).sort();
      assert.deepEqual(problems, ['', '/n']);
      const made = await post({ n: 2 });
      assert.equal(made.status, 201);
      assert.equal(made.headers.get('location'), '/things/a1');
      assert.deepEqual(await made.json(), { id: 'a1', n: 2 });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a handler\'s reply is typed by the contract (checked by tsc)', () => {
    const _contract = defineRoute({ method: 'get', path: '/x', summary: 'x', tags: ['x'], responses: { 200: json('ok', z.object({ a: z.string() })), 404: problem('none') } });
    const good: Handler<typeof _contract> = () => ({ status: 200, body: { a: 'yes' } });
    // @ts-expect-error: the body does not satisfy the 200 schema
    const wrongBody: Handler<typeof _contract> = () => ({ status: 200, body: { a: 1 } });
    // @ts-expect-error: 404 is an error answer, thrown as an HttpProblem, never returned
    const errorStatus: Handler<typeof _contract> = () => ({ status: 404, body: { a: 'no' } });
    // @ts-expect-error: 201 is not a status of the contract
    const undeclared: Handler<typeof _contract> = () => ({ status: 201, body: { a: 'yes' } });
    assert.equal(typeof good, 'function');
    assert.ok([wrongBody, errorStatus, undeclared].every((h) => typeof h === 'function'));
  });
});
