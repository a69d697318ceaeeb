import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { classifyStatus, HttpClient, type HttpCall } from '../../activities/integrations/http-client.ts';
import { parseRetryAfter } from '../../activities/integrations/retry-after.ts';
import { REDACTED, SecretResolver, isSecretReference, redactValue, secretEnvName } from '../../activities/integrations/secrets.ts';
import { createLogger } from '../../common/logger.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';

const logger = createLogger('test', 'silent');

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  test('delay-seconds', () => {
    assert.equal(parseRetryAfter('2', 60_000, now), 2000);
    assert.equal(parseRetryAfter(' 120 ', 600_000, now), 120_000);
  });
  test('an HTTP-date in the future', () => {
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', 60_000, now), 30_000);
  });
  test('capped', () => {
    assert.equal(parseRetryAfter('86400', 300_000, now), 300_000);
    assert.equal(parseRetryAfter('Fri, 02 Jan 2026 00:00:00 GMT', 300_000, now), 300_000);
  });
  test('absent, zero, past, negative or garbage mean no advice', () => {
    for (const value of [null, undefined, '', '0', '-5', '1.5', 'soon', 'Wed, 31 Dec 2025 23:59:00 GMT', '2026-01-01T00:01:00Z']) {
      assert.equal(parseRetryAfter(value, 60_000, now), undefined, String(value));
    }
  });
});

describe('classifyStatus', () => {
  const opts = { maxRetryAfterMs: 60_000 };
  test('2xx and 3xx are results', () => {
    for (const s of [200, 201, 204, 304]) assert.deepEqual(classifyStatus(s, null, opts), { kind: 'result' });
  });
  test('4xx fail without retry, with a type per status', () => {
    const expected: Record<number, string> = { 400: 'HttpBadRequest', 401: 'HttpUnauthorized', 403: 'HttpForbidden', 404: 'HttpNotFound', 409: 'HttpConflict', 422: 'HttpUnprocessableEntity', 418: 'HttpClientError' };
    for (const [status, type] of Object.entries(expected)) assert.deepEqual(classifyStatus(Number(status), null, opts), { kind: 'fail', type });
  });
  test('429 and 503 retry after Retry-After; other 5xx and 408 retry', () => {
    assert.deepEqual(classifyStatus(429, '3', opts), { kind: 'retry', type: 'HttpTooManyRequests', delayMs: 3000 });
    assert.deepEqual(classifyStatus(429, null, opts), { kind: 'retry', type: 'HttpTooManyRequests' });
    assert.deepEqual(classifyStatus(503, '7', opts), { kind: 'retry', type: 'HttpServiceUnavailable', delayMs: 7000 });
    assert.deepEqual(classifyStatus(500, null, opts), { kind: 'retry', type: 'HttpServerError' });
    assert.deepEqual(classifyStatus(502, null, opts), { kind: 'retry', type: 'HttpServerError' });
    assert.deepEqual(classifyStatus(408, null, opts), { kind: 'retry', type: 'HttpRequestTimeout' });
  });
  test('accept_status returns; retry_on_status retries', () => {
    assert.deepEqual(classifyStatus(404, null, { ...opts, acceptStatus: [404] }), { kind: 'result' });
    assert.deepEqual(classifyStatus(409, null, { ...opts, retryOnStatus: [409] }), { kind: 'retry', type: 'HttpStatus409' });
  });
});

describe('secrets', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    writeFileSync(join(dir, 'file-token'), 'from-file-value\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('references are exactly {secret} or {secret, prefix}', () => {
    assert.equal(isSecretReference({ secret: 'A' }), true);
    assert.equal(isSecretReference({ secret: 'A', prefix: 'Bearer ' }), true);
    assert.equal(isSecretReference({ secret: 'A', other: 1 }), false);
    assert.equal(isSecretReference({ secret: 1 }), false);
    assert.equal(isSecretReference('A'), false);
  });

  test('env SECRET_<NAME> first, then <dir>/<name>; prefix prepended; values remembered', async () => {
    const resolver = new SecretResolver({ env: { [secretEnvName('crm-token')]: 'env-value-123' }, dir });
    assert.equal(secretEnvName('crm-token'), 'SECRET_CRM_TOKEN');
    const resolved = await resolver.resolve({ a: { secret: 'crm-token', prefix: 'Bearer ' }, b: [{ secret: 'file-token' }], c: 'plain', d: 3 });
    assert.deepEqual(resolved, { a: 'Bearer env-value-123', b: ['from-file-value'], c: 'plain', d: 3 });
    assert.deepEqual([...resolver.values].sort(), ['env-value-123', 'from-file-value']);
  });

  test('a missing secret is a non-retryable SecretNotFound naming where to put it, not a value', async () => {
    const resolver = new SecretResolver({ env: {} });
    await assert.rejects(resolver.resolve({ secret: 'MISSING' }), (e: unknown) => {
      assert.ok(e instanceof ApplicationFailure);
      assert.equal(e.type, 'SecretNotFound');
      assert.equal(e.nonRetryable, true);
      assert.match(e.message, /SECRET_MISSING/);
      return true;
    });
  });

  test('names that could leave the secrets folder are refused', async () => {
    const resolver = new SecretResolver({ env: {}, dir });
    for (const name of ['../etc/passwd', 'a/b', '..', '']) {
      await assert.rejects(resolver.read(name), (e: unknown) => e instanceof ApplicationFailure && e.type === 'InvalidSecretReference', name);
    }
  });

  test("the platform's own key files in the secrets folder are never handed to a definition", async () => {
    writeFileSync(join(dir, 'PAYLOAD_CODEC_KEYS'), '[{"id":"k1","key":"AAAA"}]');
    writeFileSync(join(dir, 'WEBHOOK_SECRET_KEY'), 'c2VjcmV0');
    const resolver = new SecretResolver({ env: {}, dir });
    for (const name of ['PAYLOAD_CODEC_KEYS', 'WEBHOOK_SECRET_KEY', 'payload_codec_keys']) {
      await assert.rejects(resolver.resolve({ secret: name }), (e: unknown) => {
        assert.ok(e instanceof ApplicationFailure);
        assert.equal(e.type, 'InvalidSecretReference');
        assert.equal(e.nonRetryable, true);
        assert.match(e.message, /platform's own key file/);
        return true;
      }, name);
    }
    assert.deepEqual(resolver.values, []);
  });

  test('redaction replaces values in strings and keys, deeply', () => {
    const out = redactValue({ msg: 'token=s3cr3t-value!', list: ['s3cr3t-value'], ['k-s3cr3t-value']: 1, n: 2 }, ['s3cr3t-value']);
    assert.deepEqual(out, { msg: `token=${REDACTED}!`, list: [REDACTED], [`k-${REDACTED}`]: 1, n: 2 });
  });
});

describe('HttpClient against a loopback API', () => {
  let remote: LoopbackHttp;
  let client: HttpClient;
  let other: LoopbackHttp;
  before(async () => {
    other = await startLoopbackHttp({ '/x': (_req, res) => json(res, 200, { other: true }) });
    remote = await startLoopbackHttp({
      '/ok': (_req, res) => json(res, 200, { ok: 1 }),
      '/missing': (_req, res) => json(res, 404, { error: 'no such thing' }),
      '/limited': (_req, res) => json(res, 429, { error: 'slow down' }, { 'retry-after': '2' }),
      '/broken': (_req, res) => json(res, 500, { error: 'oops' }),
      '/text': (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'),
      '/big': (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(2048)),
      '/hang': () => {},
      '/away': (_req, res) => res.writeHead(302, { location: `${other.url}/x` }).end(),
      '/home': (_req, res) => res.writeHead(302, { location: '/ok' }).end(),
    });
    client = new HttpClient({ allowedHosts: [remote.host], maxResponseBytes: 1024, name: 'test' });
  });
  after(async () => {
    await client.close();
    await remote.close();
    await other.close();
  });

  const call = (over: Partial<HttpCall>): HttpCall => ({
    method: 'GET',
    url: `${remote.url}/ok`,
    timeoutSeconds: 5,
    sideEffects: true,
    idempotencyKey: 'run-1/steps/0',
    correlationId: 'corr-1',
    signal: new AbortController().signal,
    logger,
    ...over,
  });
  const failure = async (promise: Promise<unknown>): Promise<ApplicationFailure> => {
    try {
      await promise;
    } catch (error) {
      assert.ok(error instanceof ApplicationFailure, String(error));
      return error;
    }
    assert.fail('expected a failure');
  };

  test('a 200 returns status, headers and parsed JSON; text stays text', async () => {
    const result = await client.call(call({}));
    assert.equal(result.status, 200);
    assert.equal(result.ok, true);
    assert.deepEqual(result.data, { ok: 1 });
    assert.equal(result.headers['content-type'], 'application/json');
    assert.equal((await client.call(call({ url: `${remote.url}/text` }))).data, 'hello');
  });

  test('writes carry Idempotency-Key and X-Correlation-Id; reads carry no key', async () => {
    const before = remote.requests.length;
    await client.call(call({ method: 'POST', body: { a: 1 } }));
    await client.call(call({}));
    const [post, get] = remote.requests.slice(before);
    assert.equal(post?.headers['idempotency-key'], 'run-1/steps/0');
    assert.equal(post?.headers['x-correlation-id'], 'corr-1');
    assert.equal(post?.headers['content-type'], 'application/json');
    assert.equal(post?.body, '{"a":1}');
    assert.equal(get?.headers['idempotency-key'], undefined);
    assert.equal(get?.headers['x-correlation-id'], 'corr-1');
  });

  test('404 → HttpNotFound, not retryable, with the answer in the message', async () => {
    const e = await failure(client.call(call({ url: `${remote.url}/missing?token=abc` })));
    assert.equal(e.type, 'HttpNotFound');
    assert.equal(e.nonRetryable, true);
    assert.match(e.message, /answered 404: \{"error":"no such thing"\}/);
    assert.doesNotMatch(e.message, /token=abc/, 'no query string in messages');
  });

  test('429 → retryable HttpTooManyRequests with nextRetryDelay from Retry-After', async () => {
    const e = await failure(client.call(call({ url: `${remote.url}/limited` })));
    assert.equal(e.type, 'HttpTooManyRequests');
    assert.equal(e.nonRetryable, false);
    assert.equal(e.nextRetryDelay, 2000);
  });

  test('500 → retryable HttpServerError', async () => {
    const e = await failure(client.call(call({ url: `${remote.url}/broken` })));
    assert.equal(e.type, 'HttpServerError');
    assert.equal(e.nonRetryable, false);
  });

  test('a refused connection → retryable NetworkError; a hang → retryable HttpTimeout', async () => {
    const closed = await startLoopbackHttp({});
    const url = `${closed.url}/gone`;
    await closed.close();
    const refusing = new HttpClient({ allowedHosts: [new URL(url).host] });
    const e = await failure(refusing.call(call({ url })));
    await refusing.close();
    assert.equal(e.type, 'NetworkError');
    assert.equal(e.nonRetryable, false);
    const t = await failure(client.call(call({ url: `${remote.url}/hang`, timeoutSeconds: 0.3 })));
    assert.equal(t.type, 'HttpTimeout');
    assert.equal(t.nonRetryable, false);
  });

  test('a host outside the allow-list is refused before connecting', async () => {
    const before = other.requests.length;
    const e = await failure(client.call(call({ url: `${other.url}/x` })));
    assert.equal(e.type, 'HostNotAllowed');
    assert.equal(e.nonRetryable, true);
    assert.match(e.message, /not on the test allow-list \(HTTP_FETCH_ALLOWED_HOSTS\)/);
    assert.equal(other.requests.length, before);
  });

  test('redirects are followed on the allow-list and refused off it', async () => {
    assert.deepEqual((await client.call(call({ url: `${remote.url}/home` }))).data, { ok: 1 });
    const before = other.requests.length;
    const e = await failure(client.call(call({ url: `${remote.url}/away` })));
    assert.equal(e.type, 'HostNotAllowed');
    assert.equal(other.requests.length, before, 'the redirect target was never contacted');
  });

  test('a body over the limit fails without retry', async () => {
    const e = await failure(client.call(call({ url: `${remote.url}/big` })));
    assert.equal(e.type, 'ResponseTooLarge');
    assert.equal(e.nonRetryable, true);
  });

  test('cancellation aborts the request', async () => {
    const controller = new AbortController();
    const pending = client.call(call({ url: `${remote.url}/hang`, signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(pending);
  });
});
