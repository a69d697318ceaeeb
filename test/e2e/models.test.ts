import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { httpError, json, reply, stall, startLlmDouble, type LlmDouble } from '../support/llm-double.ts';

/**
 * The `model` step through the real API, workers, Temporal and PostgreSQL; only the LLM servers are
 * the double (Ollama's and OpenAI's protocols), reached through OLLAMA_BASE_URL / OPENAI_BASE_URL and
 * a routing table in MODEL_ROUTES, as an operator would configure them.
 */

let platform: TestPlatform;
let llm: LlmDouble;
const CLOUD_KEY = 'sk-e2e-cloud-key-7f3a';

before(async () => {
  llm = await startLlmDouble();
  const keyFile = join(mkdtempSync(join(tmpdir(), 'model-key-')), 'openai');
  writeFileSync(keyFile, `${CLOUD_KEY}\n`);
  const timeouts = { firstTokenMs: 2000, idleMs: 400, totalMs: 10_000 };
  platform = await startTestPlatform({
    database: 'postgres',
    env: {
      OLLAMA_BASE_URL: llm.url,
      OPENAI_BASE_URL: llm.openaiUrl,
      MODEL_ROUTES: JSON.stringify({
        routes: {
          'local/qwen-14b': { provider: 'ollama', providerModel: 'qwen3:14b', fallbacks: ['local/mistral-small'], timeouts },
          'local/mistral-small': { provider: 'ollama', providerModel: 'mistral-small', fallbacks: ['cloud/gpt'], timeouts },
          'local/qwen-coder-32b': { provider: 'ollama', providerModel: 'qwen2.5-coder:32b', fallbacks: ['local/qwen-14b'], timeouts },
          // Allowed for the prod-critical lane only (test lanes carry a suffix).
          'cloud/gpt': { provider: 'openai', providerModel: 'gpt-4o-mini', cloud: true, apiKeyFile: keyFile, lanes: ['prod-critical-*'], reason: 'premium lane', timeouts },
        },
        aliases: { default: 'local/qwen-14b', coding: 'local/qwen-coder-32b' },
      }),
    },
  });
});
beforeEach(() => llm.reset());
after(async () => {
  await platform?.stop();
  await llm?.close();
});

async function runDefinition(name: string, steps: unknown[], extra: Record<string, unknown> = {}): Promise<any> {
  const registered = await platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', steps, ...extra } });
  assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
  const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: { topic: 'Q3 donors' } } });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  return platform.waitForRun(started.body.runId ?? started.body.id, 60_000);
}

const stepOf = (view: any, id: string) => (view.steps as any[]).find((s) => s.id === id);

describe('model step end to end', () => {
  test('seed 003 fields; primary 500 → fallback stalls → cloud answers; output shows route and fallbacks', async () => {
    llm.script('qwen3:14b', httpError(500, { message: 'out of memory' }));
    llm.script('mistral-small', stall('half an answ', 1));
    llm.script('gpt-4o-mini', json({ summary: 'Donors up 9%', confidence: 0.8 }));
    const view = await runDefinition('model-fallback', [
      {
        id: 'summarise',
        type: 'model',
        model: 'local/qwen-14b',
        agent_id: 'grants-bot',
        calling_skill: 'grant-summary',
        priority: 'high',
        system_prompt: 'You write grant summaries.',
        user_prompt: 'Summarise ${input.topic}',
        max_tokens: 200,
        callback: 'grants/summary',
        response_schema: { type: 'object', properties: { summary: { type: 'string' }, confidence: { type: 'number' } }, required: ['summary'] },
      },
    ]);
    assert.equal(view.status, 'completed', JSON.stringify(view));
    const output = stepOf(view, 'summarise').output;
    assert.equal(output.route, 'cloud/gpt');
    assert.equal(output.requested, 'local/qwen-14b');
    assert.equal(output.provider, 'openai');
    assert.deepEqual(output.json, { summary: 'Donors up 9%', confidence: 0.8 });
    assert.deepEqual(output.fallbacks.map((f: any) => [f.route, f.code]), [
      ['local/qwen-14b', 'http_5xx'],
      ['local/mistral-small', 'stalled'],
    ]);
    assert.equal(output.callback, 'grants/summary');
    // The template was resolved, the cloud key was sent by the activity and is nowhere in the run.
    assert.deepEqual(llm.requestsFor('qwen3:14b').at(-1)?.messages, [
      { role: 'system', content: 'You write grant summaries.' },
      { role: 'user', content: 'Summarise Q3 donors' },
    ]);
    assert.equal(llm.requestsFor('gpt-4o-mini').at(-1)?.headers.authorization, `Bearer ${CLOUD_KEY}`);
    assert.ok(!JSON.stringify(view).includes(CLOUD_KEY));
  });

  test('an alias with a plain reply; the experimental lane never reaches the cloud route', async () => {
    llm.script('qwen2.5-coder:32b', reply('function add(a, b) { return a + b; }'));
    const coded = await runDefinition('model-coding', [{ id: 'code', type: 'model', model: 'coding', user_prompt: 'write add()' }]);
    assert.equal(coded.status, 'completed', JSON.stringify(coded));
    assert.equal(stepOf(coded, 'code').output.route, 'local/qwen-coder-32b');
    assert.match(stepOf(coded, 'code').output.text, /return a \+ b/);

    const before = llm.requestsFor('gpt-4o-mini').length;
    llm.script('mistral-small', httpError(503), httpError(503), httpError(503));
    llm.script('qwen3:14b', httpError(503), httpError(503), httpError(503));
    const view = await runDefinition(
      'model-experimental',
      [{ id: 'ask', type: 'model', model: 'local/qwen-14b', user_prompt: 'hi', retry: { max_attempts: 2, initial_interval: 1 } }],
      { lane: platform.lanes[1] },
    );
    assert.equal(view.status, 'failed', JSON.stringify(view));
    assert.match(JSON.stringify(view), /lane_not_allowed: route \\"cloud\/gpt\\" is not allowed for lane/);
    assert.equal(llm.requestsFor('gpt-4o-mini').length, before);
  });

  test('a non-retryable 4xx fails the step at once', async () => {
    llm.script('qwen3:14b', httpError(400, { message: 'invalid option' }));
    const view = await runDefinition('model-reject', [{ id: 'ask', type: 'model', model: 'default', user_prompt: 'hi' }]);
    assert.equal(view.status, 'failed', JSON.stringify(view));
    assert.match(JSON.stringify(view), /HTTP 400: invalid option/);
    assert.equal(llm.requestsFor('mistral-small').filter((r) => JSON.stringify(r.messages).includes('"hi"')).length, 0);
  });

  test('an unknown model is refused at registration with a pointer', async () => {
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      json: { name: 'model-unknown', version: '1.0.0', steps: [{ id: 'ask', type: 'model', model: 'local/gpt-9', user_prompt: 'hi' }] },
    });
    assert.equal(registered.status, 400, JSON.stringify(registered.body));
    assert.match(JSON.stringify(registered.body), /\/steps\/0\/model/);
  });
});
