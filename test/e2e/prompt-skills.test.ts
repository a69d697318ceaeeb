import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { httpError, reply, startLlmDouble, type LlmDouble } from '../support/llm-double.ts';

/**
 * Seed 002's `prompt_inline` and `conversation` skills through the real API, workers, Temporal
 * and PostgreSQL, on the model routing an operator configures (MODEL_ROUTES, OLLAMA_BASE_URL);
 * only the LLM server is the double (Ollama's protocol on a loopback port).
 */

let platform: TestPlatform;
let llm: LlmDouble;

before(async () => {
  llm = await startLlmDouble();
  const timeouts = { firstTokenMs: 2000, idleMs: 400, totalMs: 10_000 };
  platform = await startTestPlatform({
    database: 'postgres',
    env: {
      OLLAMA_BASE_URL: llm.url,
      MODEL_ROUTES: JSON.stringify({
        routes: {
          'local/qwen-14b': { provider: 'ollama', providerModel: 'qwen3:14b', fallbacks: ['local/mistral-small'], timeouts },
          'local/mistral-small': { provider: 'ollama', providerModel: 'mistral-small', timeouts },
        },
        aliases: { default: 'local/qwen-14b' },
      }),
    },
  });
});
beforeEach(() => llm.reset());
after(async () => {
  await platform?.stop();
  await llm?.close();
});

async function register(name: string, steps: unknown[]) {
  return platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', steps } });
}

async function runDefinition(name: string, steps: unknown[], input: unknown): Promise<any> {
  const registered = await register(name, steps);
  assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
  const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input } });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  return platform.waitForRun(started.body.runId ?? started.body.id, 60_000);
}

const stepOf = (view: any, id: string) => (view.steps as any[]).find((s) => s.id === id);
const contents = (messages: unknown[]) => (messages as Array<{ role: string; content: string }>).map((m) => `${m.role}: ${m.content}`);

describe('prompt_inline and conversation end to end', () => {
  test('prompt_inline fills its template from vars and runs on the routing table, falling back like a model step', async () => {
    llm.script('qwen3:14b', httpError(500, { message: 'out of memory' }));
    llm.script('mistral-small', reply('Donors rose 9% in Q3.'));
    const view = await runDefinition(
      'prompt-inline',
      [
        {
          id: 'summary',
          type: 'skill',
          skill: 'prompt_inline',
          inputs: {
            system: 'You write for {{audience}}.',
            prompt: 'Summarise {{topic}} in one line. Figures: {{figures}}',
            vars: { audience: 'the board', topic: '${input.topic}', figures: '${input.figures}' },
          },
        },
      ],
      { topic: 'Q3 donors', figures: { q2: 100, q3: 109 } },
    );
    assert.equal(view.status, 'completed', JSON.stringify(view));
    const output = stepOf(view, 'summary').output;
    assert.equal(output.text, 'Donors rose 9% in Q3.');
    assert.equal(output.requested, 'default');
    assert.equal(output.route, 'local/mistral-small');
    assert.equal(output.fallbacks[0].route, 'local/qwen-14b');
    const sent = llm.requestsFor('mistral-small').at(-1)!;
    assert.deepEqual(contents(sent.messages), ['system: You write for the board.', 'user: Summarise Q3 donors in one line. Figures: {"q2":100,"q3":109}']);
  });

  test('conversation keeps its history in the run: the second turn sends the first, and returns all four messages', async () => {
    llm.script('qwen3:14b', reply('Hello Ada. What shall we plan?'), reply('Your name is Ada.'));
    const view = await runDefinition(
      'conversation-two-turns',
      [
        { id: 'hello', type: 'skill', skill: 'conversation', inputs: { system: 'Be brief.', message: 'Hi, I am ${input.name}.' } },
        { id: 'recall', type: 'skill', skill: 'conversation', inputs: { system: 'Be brief.', message: 'What is my name?', history: '${steps.hello.output.history}' } },
      ],
      { name: 'Ada' },
    );
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.equal(stepOf(view, 'hello').output.reply, 'Hello Ada. What shall we plan?');
    assert.deepEqual(stepOf(view, 'recall').output.history, [
      { role: 'user', content: 'Hi, I am Ada.' },
      { role: 'assistant', content: 'Hello Ada. What shall we plan?' },
      { role: 'user', content: 'What is my name?' },
      { role: 'assistant', content: 'Your name is Ada.' },
    ]);
    assert.equal(stepOf(view, 'recall').output.dropped, 0);
    const second = llm.requestsFor('qwen3:14b').at(-1)!;
    assert.deepEqual(contents(second.messages), ['system: Be brief.', 'user: Hi, I am Ada.', 'assistant: Hello Ada. What shall we plan?', 'user: What is my name?']);
  });

  test('registration refuses a placeholder without a var and an unknown model, with the JSON path', async () => {
    const placeholder = await register('prompt-bad-var', [{ id: 'p', type: 'skill', skill: 'prompt_inline', inputs: { prompt: 'Hi {{who}}', vars: { whom: 'x' } } }]);
    assert.equal(placeholder.status, 400, JSON.stringify(placeholder.body));
    assert.match(JSON.stringify(placeholder.body), /\/steps\/0\/inputs\/prompt/);
    assert.match(JSON.stringify(placeholder.body), /\{\{who\}\} has no value/);
    const model = await register('conversation-bad-model', [{ id: 'c', type: 'skill', skill: 'conversation', inputs: { message: 'hi', model: 'local/gpt-9' } }]);
    assert.equal(model.status, 400, JSON.stringify(model.body));
    assert.match(JSON.stringify(model.body), /\/steps\/0\/inputs\/model/);
    assert.match(JSON.stringify(model.body), /unknown model \\"local\/gpt-9\\"/);
  });
});
