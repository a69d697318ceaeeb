import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * External integrations end to end (seed 000 §3): definitions registered through the REST API,
 * run by real workers on the real dev server; the external API is a loopback HTTP server. Checks
 * the classification at the boundary (4xx, 429 + Retry-After, 5xx), idempotency keys across
 * retries, secrets by reference (never in the history or the run view) and the host allow-list.
 */
describe('integrations end to end', () => {
  let platform: TestPlatform;
  let remote: LoopbackHttp;
  let outside: LoopbackHttp;
  let client: Client;
  /** Arrival times per path, taken by the loopback itself. */
  const arrivals: Record<string, number[]> = {};
  const SECRET = 'e2e-token-7f3a91c0d2';
  const seen = (path: string) => (arrivals[path] ??= []).push(Date.now());

  before(async () => {
    // The workers resolve {"secret": "E2E_API_TOKEN"} from the environment, inside the activity.
    process.env.SECRET_E2E_API_TOKEN = SECRET;
    outside = await startLoopbackHttp({ '/anything': (_req, res) => json(res, 200, { reached: true }) });
    remote = await startLoopbackHttp({
      '/missing': (_req, res) => {
        seen('/missing');
        json(res, 404, { error: 'no such customer' });
      },
      '/limited': (_req, res) => {
        seen('/limited');
        if (arrivals['/limited']!.length === 1) json(res, 429, { error: 'slow down' }, { 'retry-after': '2' });
        else json(res, 200, { ok: true, calls: arrivals['/limited']!.length });
      },
      '/orders': (_req, res) => {
        seen('/orders');
        if (arrivals['/orders']!.length <= 2) json(res, 500, { error: 'database busy' });
        else json(res, 201, { order: 'o-1' });
      },
      '/secure': (req, res) => {
        seen('/secure');
        if (req.headers.authorization !== `Bearer ${SECRET}`) json(res, 401, { error: 'unauthorized' });
        // A careless API that echoes the credential: the platform redacts it from the output.
        else json(res, 200, { ok: true, youSent: req.headers.authorization });
      },
    });
    platform = await startTestPlatform({ database: 'postgres', env: { HTTP_FETCH_ALLOWED_HOSTS: remote.host } });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    delete process.env.SECRET_E2E_API_TOKEN;
    await client?.connection.close();
    await platform?.stop();
    await remote?.close();
    await outside?.close();
  });

  async function run(definition: { name: string; [key: string]: unknown }, timeoutMs = 60_000): Promise<any> {
    const registered = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.ok(registered.status === 201 || registered.status === 200, `register: ${registered.status} ${JSON.stringify(registered.body)}`);
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: definition.name } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    return platform.waitForRun(started.body.runId, timeoutMs);
  }

  const retry = { max_attempts: 4, initial_interval: 0.1, backoff: 'fixed' };

  test('a wrong input is refused at registration with its JSON pointer', async () => {
    const { status, body } = await platform.api('/v1/definitions', {
      method: 'POST',
      json: { name: 'bad-input', version: '1.0.0', steps: [{ id: 'call', type: 'integration', integration: 'http.request', inputs: { url: `${remote.url}/x`, timeout: 'soon', retries: 3 } }] },
    });
    assert.equal(status, 400, JSON.stringify(body));
    const paths = body.errors.map((e: { path: string }) => e.path).sort();
    assert.deepEqual(paths, ['/steps/0/inputs/retries', '/steps/0/inputs/timeout'], JSON.stringify(body.errors));
  });

  test('a 4xx fails the step after one attempt with its type', async () => {
    const view = await run({ name: 'not-found', version: '1.0.0', steps: [{ id: 'lookup', type: 'integration', integration: 'http.request', inputs: { url: `${remote.url}/missing` }, retry }] });
    assert.equal(view.status, 'failed', JSON.stringify(view));
    assert.equal(view.error.type, 'HttpNotFound');
    assert.equal(view.error.step, 'lookup');
    assert.equal(view.error.attempts, 1);
    assert.match(view.error.message, /answered 404/);
    assert.equal(arrivals['/missing']?.length, 1, 'never retried');
  });

  test('a 429 is retried after its Retry-After, then succeeds', async () => {
    const view = await run({ name: 'rate-limited', version: '1.0.0', steps: [{ id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/limited` }, retry }] });
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.deepEqual(view.output.data, { ok: true, calls: 2 });
    const [first, second] = arrivals['/limited']!;
    assert.ok(second! - first! >= 2000, `the retry came ${second! - first!} ms after the 429, Retry-After said 2 s (the policy's own interval is 0.1 s)`);
  });

  test('a 5xx is retried with the same Idempotency-Key, then succeeds', async () => {
    const view = await run({
      name: 'create-order',
      version: '1.0.0',
      steps: [{ id: 'create', type: 'integration', integration: 'http.request', inputs: { method: 'POST', url: `${remote.url}/orders`, body: { sku: 'A-1' } }, retry }],
    });
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.deepEqual(view.output.data, { order: 'o-1' });
    const writes = remote.requests.filter((r) => r.url === '/orders');
    assert.equal(writes.length, 3);
    const keys = new Set(writes.map((r) => r.headers['idempotency-key']));
    assert.equal(keys.size, 1, `one key across retries: ${[...keys].join(', ')}`);
    assert.match(String([...keys][0]), new RegExp(`^${view.runId}/`));
    assert.ok(writes.every((r) => r.headers['x-correlation-id']), 'every call carries the correlation id');
  });

  test('a secret reference reaches the API as a header but never the history or the run view', async () => {
    const view = await run({
      name: 'with-secret',
      version: '1.0.0',
      steps: [{ id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/secure`, headers: { authorization: { secret: 'E2E_API_TOKEN', prefix: 'Bearer ' } } } }],
    });
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.equal(remote.requests.filter((r) => r.url === '/secure').at(-1)?.headers.authorization, `Bearer ${SECRET}`);
    assert.equal(view.output.data.youSent, 'Bearer [redacted]');
    assert.doesNotMatch(JSON.stringify(view), new RegExp(SECRET));
    const history = await client.workflow.getHandle(view.runId).fetchHistory();
    // Payload bytes come back base64-encoded (`data`) or as bytes: decode both before searching.
    const text = JSON.stringify(history, (k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
    );
    assert.match(text, /E2E_API_TOKEN/, 'payloads were decoded: the reference is there');
    assert.doesNotMatch(text, new RegExp(SECRET), 'the secret value is not');
  });

  test('a host outside the allow-list is refused with a clear error', async () => {
    const view = await run({ name: 'outside', version: '1.0.0', steps: [{ id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: `${outside.url}/anything` }, retry }] });
    assert.equal(view.status, 'failed');
    assert.equal(view.error.type, 'HostNotAllowed');
    assert.equal(view.error.attempts, 1);
    assert.match(view.error.message, new RegExp(`host "${outside.host}" is not on the .*allow-list \\(HTTP_FETCH_ALLOWED_HOSTS\\)`));
    assert.equal(outside.requests.length, 0, 'nothing was sent');
  });
});
