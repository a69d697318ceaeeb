import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * The REST API end to end: real HTTP, a real Temporal dev server, real workers, and the given
 * database (a fresh PostgreSQL database or PGlite). Only the third-party HTTP API that http-fetch
 * calls is a loopback double.
 */
export function apiSuite(database: 'postgres' | 'pglite'): void {
  describe(`REST API end to end on ${database}`, () => {
    let platform: TestPlatform;
    let remote: LoopbackHttp;
    let flakyCalls = 0;
    let slowAborted = false;

    const sequential = (name: string, version = '1.0.0') => ({
      name,
      version,
      description: 'seed-002 style: fetch, then hand the data to the next step',
      triggers: [{ type: 'manual', description: 'User-initiated' }],
      context: { readonly: { environment: 'test' }, mutable: { counter: 0 } },
      steps: [
        {
          id: 'fetch-data',
          type: 'skill',
          skill: 'http-fetch',
          inputs: { url: '${input.url}' },
          outputs: ['data'],
          async: false,
          timeout: 30,
        },
        { id: 'analyze', type: 'skill', skill: 'echo', inputs: { data: 'fetch-data.data', env: '${context.readonly.environment}' } },
      ],
    });

    before(async () => {
      remote = await startLoopbackHttp({
        '/data': (_req, res) => json(res, 200, { items: [1, 2, 3] }),
        '/flaky': (_req, res) => {
          flakyCalls += 1;
          if (flakyCalls <= 2) json(res, 503, { error: 'busy' });
          else json(res, 200, { ok: true, calls: flakyCalls });
        },
        '/slow': (req) => {
          // Never answers: the run waits until it is cancelled, and the cancelled activity hangs up.
          req.socket.once('close', () => (slowAborted = true));
        },
      });
      platform = await startTestPlatform({ database, env: { HTTP_FETCH_ALLOWED_HOSTS: remote.host } });
    });

    after(async () => {
      await platform?.stop();
      await remote?.close();
    });

    test('health, readiness, OpenAPI and docs answer without a key', async () => {
      assert.equal((await platform.api('/healthz', { key: '' })).status, 200);
      const ready = await platform.api('/readyz', { key: '' });
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.body.checks, { database: 'ok', temporal: 'ok' });
      const spec = await platform.api('/openapi.json', { key: '' });
      assert.ok(spec.body.paths['/v1/runs/{runId}']);
      const docs = await fetch(`${platform.url}/docs/`);
      assert.equal(docs.status, 200);
      assert.match(await docs.text(), /swagger-ui/i);
      const schema = await platform.api('/v1/schemas/definition.json', { key: '' });
      assert.equal(schema.status, 200);
      assert.ok(schema.body.properties.steps);
    });

    test('every /v1 route needs a valid key and the right role', async () => {
      const none = await platform.api('/v1/definitions', { key: '' });
      assert.equal(none.status, 401);
      assert.match(none.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal((await platform.api('/v1/definitions', { key: 'not-a-real-key-at-all' })).status, 401);
      const forbidden = await platform.api('/v1/definitions', { method: 'POST', key: KEYS.approver, json: sequential('forbidden') });
      assert.equal(forbidden.status, 403);
      assert.match(forbidden.body.detail, /submit/);
    });

    test('registering is validated, immutable per name@version and idempotent', async () => {
      const created = await platform.api('/v1/definitions', { method: 'POST', json: sequential('fetch-and-analyze') });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.lane, platform.lanes[0]);
      assert.match(created.body.hash, /^[0-9a-f]{64}$/);
      assert.equal(created.headers.get('location'), '/v1/definitions/fetch-and-analyze/versions/1.0.0');

      const again = await platform.api('/v1/definitions', { method: 'POST', json: sequential('fetch-and-analyze') });
      assert.equal(again.status, 200);
      assert.equal(again.body.hash, created.body.hash);

      const changed = { ...sequential('fetch-and-analyze'), description: 'different' };
      const conflict = await platform.api('/v1/definitions', { method: 'POST', json: changed });
      assert.equal(conflict.status, 409);
      assert.deepEqual(conflict.body.errors, [{ path: '/version', message: 'already registered with different content' }]);

      const bad = {
        name: 'broken',
        version: '1.0',
        steps: [
          { id: 'a', type: 'skill', skill: 'no-such-skill' },
          { id: 'a', type: 'skill', skill: 'echo', inputs: { x: '${steps.later.output}' } },
          { id: 'later', type: 'skil', skill: 'echo' },
        ],
      };
      const invalid = await platform.api('/v1/definitions', { method: 'POST', json: bad });
      assert.equal(invalid.status, 400);
      assert.match(invalid.headers.get('content-type') ?? '', /application\/problem\+json/);
      const paths = invalid.body.errors.map((e: { path: string }) => e.path);
      assert.ok(paths.includes('/version'), JSON.stringify(invalid.body.errors));
      assert.ok(paths.includes('/steps/2/type'), JSON.stringify(invalid.body.errors));

      const semantic = {
        name: 'broken',
        version: '1.0.0',
        steps: [
          { id: 'a', type: 'skill', skill: 'no-such-skill' },
          { id: 'a', type: 'skill', skill: 'echo', inputs: { x: '${steps.later.output}' } },
          { id: 'later', type: 'skill', skill: 'echo' },
        ],
      };
      const listed = await platform.api('/v1/definitions/validate', { method: 'POST', json: semantic });
      assert.equal(listed.status, 200);
      assert.equal(listed.body.valid, false);
      assert.deepEqual(
        listed.body.errors.map((e: { path: string }) => e.path).sort(),
        ['/steps/0/skill', '/steps/1/id', '/steps/1/inputs/x'],
      );

      const malformed = await fetch(`${platform.url}/v1/definitions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.submitter}`, 'content-type': 'application/json' },
        body: '{"name": ',
      });
      assert.equal(malformed.status, 400);

      const list = await platform.api('/v1/definitions');
      assert.ok(list.body.definitions.some((d: { name: string }) => d.name === 'fetch-and-analyze'));
      const latest = await platform.api('/v1/definitions/fetch-and-analyze');
      assert.deepEqual(latest.body.versions, ['1.0.0']);
      assert.equal((await platform.api('/v1/definitions/fetch-and-analyze/versions/9.9.9')).status, 404);
      assert.equal((await platform.api('/v1/definitions/fetch-and-analyze', { key: KEYS.otherTenant })).status, 404);
    });

    test('a run executes every step, keeps each output and is pinned to its version', async () => {
      await platform.api('/v1/definitions', { method: 'POST', json: sequential('pinned', '1.0.0') });
      const started = await platform.api('/v1/runs', {
        method: 'POST',
        json: { definition: 'pinned', input: { url: `${remote.url}/data` } },
        headers: { 'x-correlation-id': 'corr-e2e-1' },
      });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      assert.equal(started.body.created, true);
      // A newer version registered while the run exists does not change it.
      await platform.api('/v1/definitions', { method: 'POST', json: { ...sequential('pinned', '2.0.0'), steps: [{ id: 'only', type: 'skill', skill: 'echo' }] } });

      const run = await platform.waitForRun(started.body.runId);
      assert.equal(run.status, 'completed', JSON.stringify(run));
      assert.deepEqual(run.definition, { name: 'pinned', version: '1.0.0' });
      assert.equal(run.correlationId, 'corr-e2e-1');
      assert.deepEqual(run.steps.map((s: { id: string; status: string }) => [s.id, s.status]), [
        ['fetch-data', 'completed'],
        ['analyze', 'completed'],
      ]);
      assert.deepEqual(run.steps[0].output.data, { items: [1, 2, 3] });
      assert.equal(run.steps[0].output.status, 200);
      assert.deepEqual(run.output, { data: { items: [1, 2, 3] }, env: 'test' });
      assert.match(run.links.temporalUi, /\/namespaces\/default\/workflows\//);
      const call = remote.requests.find((r) => r.url === '/data');
      assert.equal(call?.headers['x-correlation-id'], 'corr-e2e-1');

      const latestRun = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'pinned', input: {} } });
      const second = await platform.waitForRun(latestRun.body.runId);
      assert.equal(second.definition.version, '2.0.0');
    });

    test('the same idempotency key returns the same run; reusing it for another request is a 409', async () => {
      await platform.api('/v1/definitions', { method: 'POST', json: sequential('idem') });
      const body = { definition: 'idem', input: { url: `${remote.url}/data` }, idempotencyKey: 'order-42' };
      const first = await platform.api('/v1/runs', { method: 'POST', json: body });
      assert.equal(first.status, 201);
      const second = await platform.api('/v1/runs', { method: 'POST', json: body });
      assert.equal(second.status, 200);
      assert.equal(second.body.runId, first.body.runId);
      assert.equal(second.body.created, false);
      await platform.waitForRun(first.body.runId);
      const viaHeader = await platform.api('/v1/runs', {
        method: 'POST',
        json: { definition: 'idem', input: body.input },
        headers: { 'idempotency-key': 'order-42' },
      });
      assert.equal(viaHeader.status, 200, 'a completed run still owns its key');
      assert.equal(viaHeader.body.runId, first.body.runId);
      // A retry of the same request still gets its run after a newer version is registered.
      await platform.api('/v1/definitions', { method: 'POST', json: sequential('idem', '1.1.0') });
      const retried = await platform.api('/v1/runs', { method: 'POST', json: body });
      assert.equal(retried.status, 200);
      assert.equal(retried.body.runId, first.body.runId);
      const reused = await platform.api('/v1/runs', { method: 'POST', json: { ...body, input: { url: `${remote.url}/other` } } });
      assert.equal(reused.status, 409);
      const otherTenant = await platform.api('/v1/runs', { method: 'POST', key: KEYS.otherTenant, json: body });
      assert.equal(otherTenant.status, 404, 'definitions are per tenant');
      assert.equal((await platform.api(`/v1/runs/${first.body.runId}`, { key: KEYS.otherTenant })).status, 404);
    });

    test('a failing step fails the run visibly with the step, cause and attempt count', async () => {
      await platform.api('/v1/definitions', { method: 'POST', json: sequential('blocked-host') });
      const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'blocked-host', input: { url: 'http://example.invalid/x' } } });
      const run = await platform.waitForRun(started.body.runId);
      assert.equal(run.status, 'failed');
      assert.equal(run.error.step, 'fetch-data');
      assert.equal(run.error.type, 'HostNotAllowed');
      assert.equal(run.error.attempts, 1);
      assert.equal(run.steps[1].status, 'pending');
    });

    test('transient upstream errors are retried within the bound', async () => {
      await platform.api('/v1/definitions', {
        method: 'POST',
        json: {
          name: 'flaky',
          version: '1.0.0',
          steps: [{ id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/flaky` }, retry: { max_attempts: 4, initial_interval: 0.1, backoff: 'fixed' } }],
        },
      });
      const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'flaky' } });
      const run = await platform.waitForRun(started.body.runId);
      assert.equal(run.status, 'completed', JSON.stringify(run));
      assert.deepEqual(run.output.data, { ok: true, calls: 3 });
    });

    test('a running run can be cancelled once', async () => {
      await platform.api('/v1/definitions', {
        method: 'POST',
        json: { name: 'slow', version: '1.0.0', steps: [{ id: 'wait-upstream', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/slow`, timeout: 120 }, timeout: 120 }] },
      });
      const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'slow' } });
      const deadline = Date.now() + 10_000;
      while (!remote.requests.some((r) => r.url === '/slow') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const running = await platform.api(`/v1/runs/${started.body.runId}`);
      assert.equal(running.body.status, 'running');
      assert.equal(running.body.currentStep, 'wait-upstream');
      const cancel = await platform.api(`/v1/runs/${started.body.runId}/cancel`, { method: 'POST' });
      assert.equal(cancel.status, 202);
      const run = await platform.waitForRun(started.body.runId);
      assert.equal(run.status, 'cancelled');
      assert.equal((await platform.api(`/v1/runs/${started.body.runId}/cancel`, { method: 'POST' })).status, 409);
      const hangUp = Date.now() + 15_000;
      while (!slowAborted && Date.now() < hangUp) await new Promise((r) => setTimeout(r, 100));
      assert.ok(slowAborted, 'the cancellation reached the running activity (heartbeat), which aborted its request');
    });

    test('runs are listed per tenant and filtered by definition and status', async () => {
      const deadline = Date.now() + 15_000;
      let runs: Array<{ definition: { name: string }; status: string }> = [];
      while (Date.now() < deadline) {
        const listed = await platform.api('/v1/runs?definition=idem&status=completed');
        assert.equal(listed.status, 200);
        runs = listed.body.runs;
        if (runs.length > 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(runs.length >= 1, 'visibility lists the completed run');
      assert.ok(runs.every((r) => r.definition.name === 'idem' && r.status === 'completed'));
      const other = await platform.api('/v1/runs', { key: KEYS.otherTenant });
      assert.deepEqual(other.body.runs, []);
      const bad = await platform.api('/v1/runs?status=weird');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.errors[0].path, 'status');
    });

    test('a 10-step echo definition costs 6 history events per step, like a hand-written workflow', async (t) => {
      const steps = Array.from({ length: 10 }, (_, i) => ({
        id: `step-${i + 1}`,
        type: 'skill',
        skill: 'echo',
        inputs: i === 0 ? { n: 1 } : { n: `step-${i}.n`, prev: `\${steps.step-${i}.output}` },
      }));
      await platform.api('/v1/definitions', { method: 'POST', json: { name: 'ten-echo', version: '1.0.0', steps } });
      const started = Date.now();
      const response = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'ten-echo' } });
      const run = await platform.waitForRun(response.body.runId);
      const wallMs = Date.now() - started;
      assert.equal(run.status, 'completed');
      assert.equal(run.steps.length, 10);
      // 4 events to start, 6 per activity step (scheduled, started, completed + a workflow task), 1 to
      // complete; plus writing the run's lifecycle events: one batch at the end (6 events) when the
      // run takes under 2 s, a batch every 2 s of a slower one (a loaded machine), each 3 to 6 events.
      const steps65 = 4 + 6 * 10 + 1;
      // The number of batches follows the wall time (the run's own, at most the observed one).
      const batches = Math.max(4, Math.ceil(wallMs / 2000) + 1);
      assert.ok(run.historyLength >= steps65 + 3 && run.historyLength <= steps65 + 6 * batches, `history length ${run.historyLength} after ${wallMs} ms`);
      t.diagnostic(`10-step echo on ${database}: ${wallMs} ms wall (HTTP start to observed completion), ${run.historyLength} history events`);
    });
  });
}
