import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { pino } from 'pino';
import { createModelGenerateSkill, RESPONSE_SCHEMA_CACHE_SIZE, responseSchemaValidator } from '../../activities/models/generate.ts';
import { parseRoutingTable } from '../../activities/models/router.ts';
import type { ModelRequest, ModelResult } from '../../activities/models/types.ts';
import { createSkillActivities } from '../../activities/skills/activities.ts';
import type { SkillRequest } from '../../activities/skills/types.ts';
import { InMemoryMetricReader, installMetrics } from '../../common/metrics.ts';
import { freePort } from '../../embedded/ports.ts';
import { disconnect, hang, httpError, json, reply, stall, startLlmDouble, toolCalls, type LlmDouble } from '../support/llm-double.ts';

/**
 * model.generate as Temporal runs it (the skill wrapper inside a mock activity context) against
 * the LLM double speaking Ollama's and OpenAI's real protocols through the official clients.
 */

const SECRET_KEY = 'sk-test-very-secret-0042';
const PROMPT = 'Summarise the donor report for Q3';
let llm: LlmDouble;
const reader = new InMemoryMetricReader();
const logLines: string[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  }),
);
let run: (input: Omit<ModelRequest, 'model'> & { model: string }, lane?: string) => Promise<{ result?: ModelResult; error?: ApplicationFailure; heartbeats: unknown[] }>;

const fast = { firstTokenMs: 1500, idleMs: 300, totalMs: 5000 };

before(async () => {
  await installMetrics({ readers: [reader] });
  llm = await startLlmDouble();
  const closedPort = await freePort();
  const table = parseRoutingTable(
    {
      routes: {
        'local/qwen-14b': { provider: 'ollama', providerModel: 'qwen3:14b', fallbacks: ['local/mistral-small', 'cloud/gpt'], timeouts: fast },
        'local/mistral-small': { provider: 'ollama', providerModel: 'mistral-small', timeouts: fast },
        'cloud/gpt': {
          provider: 'openai',
          providerModel: 'gpt-4o-mini',
          baseUrl: llm.openaiUrl,
          cloud: true,
          apiKeyEnv: 'TEST_CLOUD_KEY',
          lanes: ['prod-critical'],
          reason: 'premium lane quality',
          timeouts: fast,
        },
        'oa/local': { provider: 'openai', providerModel: 'local-oa', baseUrl: llm.openaiUrl, fallbacks: ['local/mistral-small'], timeouts: fast },
        'local/solo': { provider: 'ollama', providerModel: 'solo', timeouts: fast },
        'oa/solo': { provider: 'openai', providerModel: 'oa-solo', baseUrl: llm.openaiUrl, timeouts: fast },
        'local/down': { provider: 'ollama', providerModel: 'down', baseUrl: `http://127.0.0.1:${closedPort}`, fallbacks: ['oa/solo'], timeouts: fast },
        'cloud/only': { provider: 'openai', providerModel: 'gpt-4o', baseUrl: llm.openaiUrl, cloud: true, apiKeyEnv: 'TEST_CLOUD_KEY', lanes: ['prod-critical'] },
      },
      aliases: { default: 'local/qwen-14b' },
    },
    { OLLAMA_BASE_URL: llm.url, OPENAI_BASE_URL: llm.openaiUrl },
    'test table',
  );
  const skill = createModelGenerateSkill({ table, env: { TEST_CLOUD_KEY: SECRET_KEY } });
  const activity = createSkillActivities([skill], logger)['model.generate']!;
  run = async (input, lane = 'prod-critical') => {
    const env = new MockActivityEnvironment({ activityType: 'model.generate' });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const request: SkillRequest = {
      input,
      meta: { stepId: 'ask', definition: 'd', version: '1', lane, tenant: 't', correlationId: 'corr-1', idempotencyKey: 'wf/ask' },
    };
    try {
      const output: unknown = await env.run(activity, request);
      return { result: output as ModelResult, heartbeats };
    } catch (error) {
      assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
      return { error, heartbeats };
    }
  };
});
after(() => llm.close());
beforeEach(() => llm.reset());

async function counter(name: string): Promise<Array<{ attributes: Record<string, unknown>; value: unknown }>> {
  const metric = (await reader.metrics()).find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []).map((p) => ({ attributes: p.attributes as Record<string, unknown>, value: p.value }));
}

describe('plain replies', () => {
  test('Ollama: text, usage, route, tokens/s, callback; the prompt and options go over the wire', async () => {
    llm.script('qwen3:14b', reply('Donations rose nine percent.', { usage: { inputTokens: 12, outputTokens: 6 } }));
    const { result, error } = await run({ model: 'default', system_prompt: 'Be brief.', user_prompt: PROMPT, max_tokens: 64, temperature: 0.2, callback: 'grants/summary', agent_id: 'a1', calling_skill: 'grant-writer' });
    assert.equal(error, undefined);
    assert.equal(result?.text, 'Donations rose nine percent.');
    assert.equal(result?.route, 'local/qwen-14b');
    assert.equal(result?.requested, 'default');
    assert.equal(result?.provider, 'ollama');
    assert.equal(result?.providerModel, 'qwen3:14b');
    assert.deepEqual(result?.fallbacks, []);
    assert.deepEqual(result?.usage, { inputTokens: 12, outputTokens: 6 });
    assert.ok((result?.tokensPerSecond ?? 0) > 0);
    assert.ok((result?.latencyMs ?? -1) >= 0);
    assert.equal(result?.finishReason, 'stop');
    assert.equal(result?.callback, 'grants/summary');
    const sent = llm.requests[0]!;
    assert.equal(sent.protocol, 'ollama');
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: PROMPT },
    ]);
    assert.deepEqual(sent.body.options, { num_predict: 64, temperature: 0.2 });
    assert.equal(sent.headers['x-correlation-id'], 'corr-1');
    // Prompts never reach info-level logs.
    assert.ok(logLines.some((l) => l.includes('model answered')));
    assert.ok(!logLines.some((l) => l.includes(PROMPT)));
  });

  test('OpenAI-compatible: streamed reply with usage', async () => {
    llm.script('local-oa', reply('Hello from vLLM', { chunkDelayMs: 5 }));
    const { result } = await run({ model: 'oa/local', user_prompt: 'hi' });
    assert.equal(result?.text, 'Hello from vLLM');
    assert.equal(result?.provider, 'openai');
    assert.deepEqual(result?.usage, { inputTokens: 1, outputTokens: 3 });
    const sent = llm.requestsFor('local-oa')[0]!;
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.body.stream_options, { include_usage: true });
    assert.equal(sent.headers.authorization, 'Bearer unused');
  });

  test('unknown model and missing prompt are non-retryable', async () => {
    const unknown = await run({ model: 'local/nope', user_prompt: 'x' });
    assert.equal(unknown.error?.type, 'UnknownModelRoute');
    assert.equal(unknown.error?.nonRetryable, true);
    const empty = await run({ model: 'default' });
    assert.equal(empty.error?.type, 'InvalidModelRequest');
    assert.equal(llm.requests.length, 0);
  });
});

describe('fallback chain', () => {
  test('primary 500 → second stalls mid-stream → third (cloud, OpenAI) answers; reasons, logs and metrics', async () => {
    llm.script('qwen3:14b', httpError(500, { message: 'CUDA out of memory' }));
    llm.script('mistral-small', stall('partial answer that never ends', 2));
    llm.script('gpt-4o-mini', reply('The cloud answer.', { chunkDelayMs: 10 }));
    const before = logLines.length;
    const { result, error, heartbeats } = await run({ model: 'local/qwen-14b', user_prompt: PROMPT, calling_skill: 'grant-writer' });
    assert.equal(error, undefined, error?.message);
    assert.equal(result?.text, 'The cloud answer.');
    assert.equal(result?.route, 'cloud/gpt');
    assert.equal(result?.provider, 'openai');
    assert.deepEqual(result?.fallbacks.map((f) => [f.route, f.code]), [
      ['local/qwen-14b', 'http_5xx'],
      ['local/mistral-small', 'stalled'],
    ]);
    assert.match(result?.fallbacks[0]?.reason ?? '', /HTTP 500: CUDA out of memory/);
    assert.match(result?.fallbacks[1]?.reason ?? '', /no chunk for 300 ms/);
    assert.deepEqual(llm.requests.map((r) => r.model), ['qwen3:14b', 'mistral-small', 'gpt-4o-mini']);
    // The cloud key went to the provider by reference resolution, and nowhere else.
    assert.equal(llm.requestsFor('gpt-4o-mini')[0]?.headers.authorization, `Bearer ${SECRET_KEY}`);
    const lines = logLines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.filter((l) => l.msg === 'model fallback').map((l) => [l.from, l.to, l.reason, l.correlationId]),
      [
        ['local/qwen-14b', 'local/mistral-small', 'http_5xx', 'corr-1'],
        ['local/mistral-small', 'cloud/gpt', 'stalled', 'corr-1'],
      ],
    );
    const cloudLine = lines.find((l) => l.msg === 'cloud model call');
    assert.equal(cloudLine?.taskClass, 'grant-writer');
    assert.match(String(cloudLine?.reason), /fallback after local\/qwen-14b: http_5xx, local\/mistral-small: stalled/);
    assert.ok(!logLines.join('').includes(SECRET_KEY));
    assert.ok(heartbeats.length > 0, 'heartbeats while streaming');

    const fallbacks = await counter('model.fallbacks');
    assert.ok(fallbacks.some((p) => p.attributes.from === 'local/qwen-14b' && p.attributes.to === 'local/mistral-small' && p.attributes.reason === 'http_5xx'));
    assert.ok(fallbacks.some((p) => p.attributes.from === 'local/mistral-small' && p.attributes.to === 'cloud/gpt' && p.attributes.reason === 'stalled'));
    const requests = await counter('model.requests');
    assert.ok(requests.some((p) => p.attributes.requested === 'local/qwen-14b' && p.attributes.fell_back === 'true' && p.attributes.outcome === 'ok'));
    const calls = await counter('model.calls');
    assert.ok(calls.some((p) => p.attributes.route === 'cloud/gpt' && p.attributes.outcome === 'ok'));
    assert.ok(calls.some((p) => p.attributes.route === 'local/qwen-14b' && p.attributes.outcome === 'unavailable'));
    const metrics = await reader.metrics();
    const duration = metrics.find((m) => m.descriptor.name === 'model.call.duration');
    assert.equal(duration?.descriptor.unit, 's');
    assert.ok(duration?.dataPoints.some((p) => p.attributes.route === 'cloud/gpt'));
    assert.ok(metrics.find((m) => m.descriptor.name === 'model.tokens_per_second')?.dataPoints.some((p) => p.attributes.route === 'cloud/gpt'));
  });

  test('a slow stream that keeps sending is not a stall', async () => {
    llm.script('solo', reply('one two three four five six', { chunkDelayMs: 150 }));
    const { result, error } = await run({ model: 'local/solo', user_prompt: 'x' });
    assert.equal(error, undefined);
    assert.equal(result?.text, 'one two three four five six');
  });

  test('a stream cut off mid-way falls back, on both protocols', async () => {
    llm.script('local-oa', disconnect('a b c d', 2));
    llm.script('mistral-small', disconnect('a b c d', 2));
    llm.script('gpt-4o-mini', reply('whole answer'));
    const { result, error } = await run({ model: 'oa/local', user_prompt: 'x' });
    assert.equal(error?.type, 'ModelUnavailable', 'oa/local → mistral-small, both cut off; nothing else in that chain');
    assert.equal(result, undefined);
    assert.match(error?.message ?? '', /oa\/local: (stream|connection): .*local\/mistral-small: (stream|connection): /);
    assert.equal(error?.nonRetryable, false);
  });

  test('connection refused falls back', async () => {
    llm.script('oa-solo', reply('still here'));
    const { result } = await run({ model: 'local/down', user_prompt: 'x' });
    assert.equal(result?.route, 'oa/solo');
    assert.equal(result?.fallbacks[0]?.code, 'connection');
    assert.match(result?.fallbacks[0]?.reason ?? '', /ECONNREFUSED/);
  });

  test('a server that never answers times out and falls back; every route hanging → retryable ModelUnavailable', async () => {
    llm.script('local-oa', hang());
    llm.script('mistral-small', reply('fallback reply'));
    const first = await run({ model: 'oa/local', user_prompt: 'x' });
    assert.equal(first.result?.route, 'local/mistral-small');
    assert.equal(first.result?.fallbacks[0]?.code, 'timeout');

    llm.script('local-oa', hang());
    llm.script('mistral-small', hang());
    const started = Date.now();
    const all = await run({ model: 'oa/local', user_prompt: 'x' });
    assert.equal(all.error?.type, 'ModelUnavailable');
    assert.equal(all.error?.nonRetryable, false);
    assert.match(all.error?.message ?? '', /oa\/local: timeout: no reply within 1500 ms; local\/mistral-small: timeout: no reply within 1500 ms/);
    assert.ok(Date.now() - started < 4500);
  });
});

describe('HTTP errors', () => {
  test('429 with Retry-After: falls back when it can; otherwise the retry waits as told', async () => {
    llm.script('qwen3:14b', httpError(429, { retryAfterSeconds: 7 }));
    llm.script('mistral-small', reply('ok'));
    const fell = await run({ model: 'default', user_prompt: 'x' });
    assert.equal(fell.result?.fallbacks[0]?.code, 'rate_limited');

    llm.script('oa-solo', httpError(429, { retryAfterSeconds: 7, message: 'Rate limit reached for requests' }));
    const solo = await run({ model: 'oa/solo', user_prompt: 'x' });
    assert.equal(solo.error?.type, 'ModelUnavailable');
    assert.equal(solo.error?.nonRetryable, false);
    assert.equal(solo.error?.nextRetryDelay, 7000);
    assert.match(solo.error?.message ?? '', /rate_limited: HTTP 429/);

    llm.script('solo', httpError(429, { retryAfterSeconds: 3 }));
    const ollama = await run({ model: 'local/solo', user_prompt: 'x' });
    assert.equal(ollama.error?.nextRetryDelay, 3000);
  });

  test('a 4xx is non-retryable with a type and does not fall back', async () => {
    llm.script('qwen3:14b', httpError(400, { message: 'invalid options: num_ctx' }));
    const bad = await run({ model: 'default', user_prompt: 'x' });
    assert.equal(bad.error?.type, 'ModelRequestRejected');
    assert.equal(bad.error?.nonRetryable, true);
    assert.match(bad.error?.message ?? '', /HTTP 400: invalid options/);
    assert.deepEqual(llm.requests.map((r) => r.model), ['qwen3:14b']);

    llm.requireApiKey('sk-other');
    const auth = await run({ model: 'cloud/only', user_prompt: 'x' });
    assert.equal(auth.error?.type, 'ModelAuthFailed');
    assert.equal(auth.error?.nonRetryable, true);
    assert.ok(!auth.error?.message.includes(SECRET_KEY));
  });

  test('404 (model not pulled) falls back', async () => {
    llm.script('qwen3:14b', httpError(404, { message: "model 'qwen3:14b' not found, try pulling it first" }));
    const { result } = await run({ model: 'default', user_prompt: 'x' });
    assert.equal(result?.route, 'local/mistral-small');
    assert.equal(result?.fallbacks[0]?.code, 'model_not_found');
  });
});

describe('structured output', () => {
  const schema = { type: 'object', properties: { score: { type: 'integer', minimum: 0, maximum: 10 } }, required: ['score'], additionalProperties: false };

  test('valid JSON is parsed; the schema goes to Ollama as `format` and to OpenAI as json_schema', async () => {
    llm.script('qwen3:14b', json({ score: 7 }));
    const ollama = await run({ model: 'default', user_prompt: 'rate it', response_schema: schema });
    assert.deepEqual(ollama.result?.json, { score: 7 });
    assert.deepEqual(llm.requestsFor('qwen3:14b')[0]?.body.format, schema);

    llm.script('oa-solo', reply('```json\n{"score": 3}\n```'));
    const openai = await run({ model: 'oa/solo', user_prompt: 'rate it', response_schema: schema });
    assert.deepEqual(openai.result?.json, { score: 3 });
    assert.deepEqual(llm.requestsFor('oa-solo')[0]?.body.response_format, { type: 'json_schema', json_schema: { name: 'response', schema, strict: false } });
  });

  test('invalid output is asked again on the same route, then falls back, then fails non-retryable', async () => {
    llm.script('qwen3:14b', json({ score: 'high' }), json({ score: 8 }));
    const again = await run({ model: 'default', user_prompt: 'rate it', response_schema: schema });
    assert.deepEqual(again.result?.json, { score: 8 });
    assert.equal(again.result?.route, 'local/qwen-14b');
    const retry = llm.requestsFor('qwen3:14b')[1]!;
    assert.match(JSON.stringify(retry.messages.at(-1)), /does not match response_schema/);

    llm.reset();
    llm.script('qwen3:14b', reply('I think 8'), reply('eight'));
    llm.script('mistral-small', json({ score: 4 }));
    const fell = await run({ model: 'default', user_prompt: 'rate it', response_schema: schema });
    assert.deepEqual(fell.result?.json, { score: 4 });
    assert.equal(fell.result?.fallbacks[0]?.code, 'invalid_output');

    llm.reset();
    llm.setDefault('*', json({ score: 11 }));
    const invalid = await run({ model: 'oa/local', user_prompt: 'rate it', response_schema: schema });
    assert.equal(invalid.error?.type, 'InvalidModelOutput');
    assert.equal(invalid.error?.nonRetryable, true);
    assert.match(invalid.error?.message ?? '', /must be <= 10/);
    assert.equal(llm.requests.length, 4);
  });

  test('a schema with $id works on every call, not only the first', async () => {
    const withId = { $id: 'https://schemas.example.com/score.json', ...schema };
    for (const score of [1, 2, 3]) {
      llm.script('qwen3:14b', json({ score }));
      const answer = await run({ model: 'default', user_prompt: 'rate it', response_schema: structuredClone(withId) });
      assert.equal(answer.error, undefined, answer.error?.message);
      assert.deepEqual(answer.result?.json, { score });
    }
  });

  test('a schema is compiled once per distinct content; the cache is bounded', () => {
    const first = responseSchemaValidator({ type: 'object', required: ['a'], properties: { a: { type: 'string' } } });
    // Equal content with other key order and another object: the same compiled function.
    assert.equal(responseSchemaValidator({ properties: { a: { type: 'string' } }, required: ['a'], type: 'object' }), first);
    assert.equal(first({ a: 'x' }), true);
    assert.equal(first({ a: 1 }), false);
    for (let i = 0; i < RESPONSE_SCHEMA_CACHE_SIZE; i += 1) responseSchemaValidator({ type: 'object', properties: { [`p${i}`]: { type: 'integer' } } });
    assert.notEqual(responseSchemaValidator({ type: 'object', required: ['a'], properties: { a: { type: 'string' } } }), first, 'the oldest entry was evicted');
  });

  test('a schema that is not a JSON Schema is refused before any call', async () => {
    const { error } = await run({ model: 'default', user_prompt: 'x', response_schema: { type: 'no-such-type' } });
    assert.equal(error?.type, 'InvalidModelRequest');
    assert.equal(llm.requests.length, 0);
  });
});

describe('tool calls (agents)', () => {
  const tools = [{ name: 'lookup_donor', description: 'Find a donor', parameters: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } }];
  const conversation: ModelRequest['messages'] = [
    { role: 'user', content: 'Who gave most?' },
    { role: 'assistant', content: '', tool_calls: [{ id: 'call_a', name: 'lookup_donor', arguments: { name: 'ACME' } }] },
    { role: 'tool', content: '{"total": 1200}', tool_call_id: 'call_a', name: 'lookup_donor' },
  ];

  test('Ollama: tools and the conversation in native form; toolCalls out', async () => {
    llm.script('solo', toolCalls([{ name: 'lookup_donor', arguments: { name: 'Globex' } }]));
    const { result } = await run({ model: 'local/solo', messages: conversation, tools });
    assert.equal(result?.toolCalls.length, 1);
    assert.equal(result?.toolCalls[0]?.name, 'lookup_donor');
    assert.deepEqual(result?.toolCalls[0]?.arguments, { name: 'Globex' });
    assert.match(result?.toolCalls[0]?.id ?? '', /^call_/);
    assert.equal(result?.finishReason, 'tool_calls');
    const sent = llm.requestsFor('solo')[0]!;
    assert.deepEqual(sent.tools, [{ type: 'function', function: tools[0] }]);
    assert.deepEqual(sent.messages[1], { role: 'assistant', content: '', tool_calls: [{ function: { name: 'lookup_donor', arguments: { name: 'ACME' } } }] });
    assert.deepEqual(sent.messages[2], { role: 'tool', content: '{"total": 1200}', tool_name: 'lookup_donor' });
  });

  test('OpenAI: JSON-string arguments both ways, ids kept', async () => {
    llm.script('oa-solo', toolCalls([{ name: 'lookup_donor', arguments: { name: 'Initech' }, id: 'call_xyz' }]));
    const { result } = await run({ model: 'oa/solo', messages: conversation, tools });
    assert.deepEqual(result?.toolCalls, [{ id: 'call_xyz', name: 'lookup_donor', arguments: { name: 'Initech' } }]);
    assert.equal(result?.finishReason, 'tool_calls');
    const sent = llm.requestsFor('oa-solo')[0]!;
    assert.deepEqual(sent.tools, [{ type: 'function', function: tools[0] }]);
    assert.deepEqual(sent.messages[1], {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'lookup_donor', arguments: '{"name":"ACME"}' } }],
    });
    assert.deepEqual(sent.messages[2], { role: 'tool', content: '{"total": 1200}', tool_call_id: 'call_a' });
  });
});

describe('cloud routes', () => {
  test('refused for a lane that is not allowed: skipped in a chain, an error alone; no request made', async () => {
    llm.script('qwen3:14b', httpError(503));
    llm.script('mistral-small', httpError(503));
    const chain = await run({ model: 'default', user_prompt: 'x' }, 'experimental');
    assert.equal(chain.error?.type, 'ModelUnavailable');
    assert.match(chain.error?.message ?? '', /cloud\/gpt: lane_not_allowed: route "cloud\/gpt" is not allowed for lane "experimental"/);
    assert.equal(llm.requestsFor('gpt-4o-mini').length, 0);

    const alone = await run({ model: 'cloud/only', user_prompt: 'x' }, 'experimental');
    assert.equal(alone.error?.type, 'ModelRouteNotAllowed');
    assert.equal(alone.error?.nonRetryable, true);
    assert.equal(llm.requests.length, 2);
  });

  test('refused without its key', async () => {
    const table = parseRoutingTable(
      { routes: { c: { provider: 'openai', providerModel: 'gpt-4o', baseUrl: llm.openaiUrl, cloud: true, apiKeyEnv: 'UNSET_KEY', lanes: ['*'] } } },
      { OLLAMA_BASE_URL: llm.url, OPENAI_BASE_URL: llm.openaiUrl },
    );
    const activity = createSkillActivities([createModelGenerateSkill({ table, env: {} })], logger)['model.generate']!;
    const env = new MockActivityEnvironment();
    await assert.rejects(
      env.run(activity, { input: { model: 'c', user_prompt: 'x' }, meta: { stepId: 's', definition: 'd', version: '1', lane: 'any', tenant: 't', correlationId: 'c', idempotencyKey: 'k' } }),
      (e: unknown) => e instanceof ApplicationFailure && e.type === 'ModelRouteNotConfigured' && e.nonRetryable === true && /UNSET_KEY/.test(e.message),
    );
    assert.equal(llm.requests.length, 0);
  });
});
