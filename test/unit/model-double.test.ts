import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { hang, httpError, json, reply, stall, startLlmDouble, toolCalls, type LlmDouble } from '../support/llm-double.ts';

/**
 * The LLM double answers the official clients the way the real servers do: if these clients parse
 * it, the providers built on them see what they would see in production.
 */

let llm: LlmDouble;
before(async () => {
  llm = await startLlmDouble({ models: ['qwen3:14b', 'gpt-4o-mini'] });
});
after(() => llm.close());
beforeEach(() => llm.reset());

describe('Ollama protocol through ollama-js', () => {
  test('streams a reply as NDJSON and ends with done + counts', async () => {
    llm.script('qwen3:14b', reply('one two three'));
    const ollama = new Ollama({ host: llm.url });
    const stream = await ollama.chat({ model: 'qwen3:14b', messages: [{ role: 'user', content: 'count please' }], stream: true });
    const parts: string[] = [];
    let last: { done: boolean; eval_count?: number; prompt_eval_count?: number; done_reason?: string } | undefined;
    for await (const part of stream) {
      parts.push(part.message.content);
      last = part;
    }
    assert.equal(parts.join(''), 'one two three');
    assert.equal(last?.done, true);
    assert.equal(last?.done_reason, 'stop');
    assert.equal(last?.eval_count, 3);
    assert.equal(last?.prompt_eval_count, 2);
    assert.equal(llm.requests[0]?.protocol, 'ollama');
    assert.deepEqual(llm.requests[0]?.messages, [{ role: 'user', content: 'count please' }]);
  });

  test('non-streaming reply, tool calls with object arguments, tags, error bodies', async () => {
    const ollama = new Ollama({ host: llm.url });
    llm.script('qwen3:14b', json({ a: 1 }), toolCalls([{ name: 'lookup', arguments: { q: 'x' } }]), httpError(404, { message: "model 'nope' not found" }));
    const plain = await ollama.chat({ model: 'qwen3:14b', messages: [{ role: 'user', content: 'hi' }], stream: false });
    assert.equal(plain.message.content, '{"a":1}');
    const tools = await ollama.chat({
      model: 'qwen3:14b',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [{ type: 'function', function: { name: 'lookup', description: 'd', parameters: { type: 'object', properties: {} } } }],
    });
    assert.deepEqual(tools.message.tool_calls?.map((c) => c.function), [{ index: 0, name: 'lookup', arguments: { q: 'x' } }]);
    assert.equal(llm.requests[1]?.tools?.length, 1);
    await assert.rejects(ollama.chat({ model: 'qwen3:14b', messages: [] }), (e: Error & { status_code?: number }) => {
      assert.equal(e.name, 'ResponseError');
      assert.equal(e.status_code, 404);
      assert.equal(e.message, "model 'nope' not found");
      return true;
    });
    const tags = await ollama.list();
    assert.deepEqual(tags.models.map((m) => m.name), ['qwen3:14b', 'gpt-4o-mini']);
  });

  test('a stalled stream sends its first chunks, then nothing until the client aborts', async () => {
    llm.script('qwen3:14b', stall('a b c', 1));
    const ollama = new Ollama({ host: llm.url });
    const stream = await ollama.chat({ model: 'qwen3:14b', messages: [{ role: 'user', content: 'x' }], stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.message.content, 'a ');
    const pending = iterator.next();
    const outcome = await Promise.race([pending.then(() => 'chunk'), new Promise((r) => setTimeout(() => r('silent'), 150))]);
    assert.equal(outcome, 'silent');
    stream.abort();
    await assert.rejects(pending);
  });
});

describe('OpenAI protocol through the openai client', () => {
  const client = () => new OpenAI({ apiKey: 'sk-test', baseURL: llm.openaiUrl, maxRetries: 0 });

  test('streams SSE chunks with usage and [DONE]', async () => {
    llm.script('gpt-4o-mini', reply('hello there world'));
    const stream = await client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'greet me' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, 'hello there world');
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
    assert.equal(llm.requests[0]?.headers.authorization, 'Bearer sk-test');
  });

  test('tool calls carry JSON-string arguments, streamed in fragments and whole', async () => {
    llm.script('gpt-4o-mini', toolCalls([{ name: 'lookup', arguments: { q: 'x', n: 2 }, id: 'call_1' }]));
    llm.script('gpt-4o-mini', toolCalls([{ name: 'lookup', arguments: { q: 'y' } }]));
    const whole = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(whole.choices[0]?.finish_reason, 'tool_calls');
    const call = whole.choices[0]?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function');
    assert.equal(call.id, 'call_1');
    assert.deepEqual(JSON.parse(call.function.arguments), { q: 'x', n: 2 });
    const stream = await client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: true });
    let args = '';
    for await (const chunk of stream) args += chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
    assert.deepEqual(JSON.parse(args), { q: 'y' });
  });

  test('errors: 429 with Retry-After, 401 without the key, 500', async () => {
    llm.script('gpt-4o-mini', httpError(429, { retryAfterSeconds: 3 }), httpError(500));
    await assert.rejects(client().chat.completions.create({ model: 'gpt-4o-mini', messages: [] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.headers?.get('retry-after'), '3');
      return true;
    });
    await assert.rejects(client().chat.completions.create({ model: 'gpt-4o-mini', messages: [] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.InternalServerError);
      return true;
    });
    llm.requireApiKey('sk-right');
    await assert.rejects(client().chat.completions.create({ model: 'gpt-4o-mini', messages: [] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.AuthenticationError);
      assert.equal(e.code, 'invalid_api_key');
      return true;
    });
  });

  test('a hanging server is cut by the client timeout', async () => {
    llm.script('gpt-4o-mini', hang());
    const started = Date.now();
    await assert.rejects(
      new OpenAI({ apiKey: 'k', baseURL: llm.openaiUrl, maxRetries: 0, timeout: 200 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [] }),
      (e: unknown) => e instanceof OpenAI.APIConnectionTimeoutError,
    );
    assert.ok(Date.now() - started < 2000);
  });
});
