/**
 * A loopback stand-in for LLM servers that speaks their real wire protocols, so the official
 * clients (ollama-js, openai) run unmodified against it:
 *
 * - Ollama native API at `url`: `POST /api/chat` (NDJSON stream by default, one JSON object with
 *   `"stream": false`), `GET /api/tags`, `GET /api/version`; tool calls as
 *   `message.tool_calls[].function.{name, arguments(object)}`; errors as `{"error": "..."}` with
 *   the HTTP status (and as a final `{"error"}` line when a stream breaks).
 * - OpenAI-compatible API at `openaiUrl` (= `url + '/v1'`): `POST /v1/chat/completions`
 *   (`text/event-stream` chunks ending with `data: [DONE]` when `stream: true`, usage chunk when
 *   `stream_options.include_usage`), `GET /v1/models`; tool calls with JSON-string arguments
 *   (streamed as `delta.tool_calls[]` fragments); errors as
 *   `{"error": {"message", "type", "param", "code"}}` with the status, `Retry-After` on 429.
 *
 * Scripting: behaviours are queued per model name (the provider's model name, e.g. `qwen3:14b`);
 * each request takes the next one, and when a model's queue is empty its default (or the global
 * default: a short reply naming the model) answers.
 *
 *   const llm = await startLlmDouble();
 *   llm.script('qwen3:14b', httpError(500), reply('hi', { chunkDelayMs: 20 }));
 *   llm.script('mistral-small', stall('never finishes', 2));      // two chunks, then silence
 *   llm.script('gpt-4o', toolCalls([{ name: 'lookup', arguments: { q: 'x' } }]));
 *   llm.script('gpt-4o', httpError(429, { retryAfterSeconds: 2 }));
 *   llm.requireApiKey('sk-test');                                   // /v1 answers 401 without it
 *   ... point OLLAMA_BASE_URL at llm.url, OPENAI_BASE_URL at llm.openaiUrl ...
 *   llm.requests        // every request: protocol, model, messages, tools, stream, headers, body
 *   await llm.close();
 *
 * Behaviours: `reply(text, {chunkDelayMs, chunks, usage, finishReason, delayMs})`, `json(value)`,
 * `toolCalls(calls, text?)`, `httpError(status, {message, retryAfterSeconds, type, code})`,
 * `hang()` (headers never sent), `stall(text, afterChunks)` (stream starts, then goes silent; a
 * non-streaming request hangs), `disconnect()` (socket destroyed mid-stream).
 * Hanging responses are released when the client aborts or the double closes.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ScriptedToolCall {
  name: string;
  arguments: Record<string, unknown>;
  /** OpenAI call id; generated when absent. */
  id?: string;
}

export type LlmBehaviour =
  | {
      kind: 'reply';
      text: string;
      /** How the text is cut for streaming; by default one word (with its space) per chunk. */
      chunks?: string[];
      /** Pause before each streamed chunk (a slow stream). */
      chunkDelayMs?: number;
      /** Pause before the response headers. */
      delayMs?: number;
      /** Stream `afterChunks` chunks, then send nothing more (stalled stream). */
      stallAfterChunks?: number;
      /** Destroy the socket after this many chunks. */
      disconnectAfterChunks?: number;
      usage?: { inputTokens: number; outputTokens: number };
      finishReason?: string;
    }
  | { kind: 'toolCalls'; calls: ScriptedToolCall[]; text?: string }
  | { kind: 'error'; status: number; message?: string; retryAfterSeconds?: number; type?: string; code?: string }
  | { kind: 'hang' };

export const reply = (text: string, options: Omit<Extract<LlmBehaviour, { kind: 'reply' }>, 'kind' | 'text'> = {}): LlmBehaviour => ({
  kind: 'reply',
  text,
  ...options,
});
/** A reply whose text is `JSON.stringify(value)` (structured output). */
export const json = (value: unknown): LlmBehaviour => ({ kind: 'reply', text: JSON.stringify(value) });
export const toolCalls = (calls: ScriptedToolCall[], text = ''): LlmBehaviour => ({ kind: 'toolCalls', calls, text });
export const httpError = (
  status: number,
  options: { message?: string; retryAfterSeconds?: number; type?: string; code?: string } = {},
): LlmBehaviour => ({ kind: 'error', status, ...options });
export const hang = (): LlmBehaviour => ({ kind: 'hang' });
export const stall = (text: string, afterChunks = 1): LlmBehaviour => ({ kind: 'reply', text, stallAfterChunks: afterChunks });
export const disconnect = (text: string, afterChunks = 1): LlmBehaviour => ({ kind: 'reply', text, disconnectAfterChunks: afterChunks });

export interface LlmRequestRecord {
  protocol: 'ollama' | 'openai';
  method: string;
  path: string;
  model: string;
  messages: unknown[];
  tools: unknown[] | undefined;
  stream: boolean;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body as sent. */
  body: Record<string, unknown>;
  /** The behaviour that answered. */
  behaviour: LlmBehaviour['kind'];
}

export interface LlmDouble {
  /** Base URL of the Ollama API (what OLLAMA_BASE_URL takes). */
  url: string;
  /** Base URL of the OpenAI-compatible API, `url + '/v1'` (what OPENAI_BASE_URL takes). */
  openaiUrl: string;
  /** host:port */
  host: string;
  requests: LlmRequestRecord[];
  /** Chat requests for one model name. */
  requestsFor(model: string): LlmRequestRecord[];
  /** Queues behaviours for a model, answered in order. */
  script(model: string, ...behaviours: LlmBehaviour[]): void;
  /** What a model answers once its queue is empty (all models when `model` is `*`). */
  setDefault(model: string, behaviour: LlmBehaviour): void;
  /** Behaviours still queued for a model. */
  pending(model: string): number;
  /** /v1 requests must carry `Authorization: Bearer <key>` (401 otherwise); undefined turns it off. */
  requireApiKey(key: string | undefined): void;
  /** Forgets scripts, defaults, the API key rule and recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

export interface LlmDoubleOptions {
  /** Models listed by /api/tags and /v1/models. */
  models?: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const wordCount = (s: string) => (s.match(/\S+/g) ?? []).length;

function chunksOf(b: Extract<LlmBehaviour, { kind: 'reply' }>): string[] {
  if (b.chunks) return b.chunks;
  const parts = b.text.match(/\S+\s*|\s+/g) ?? [];
  return parts.length > 0 ? parts : [''];
}

function inputTokens(messages: unknown[]): number {
  return messages.reduce<number>((n, m) => {
    const content = (m as { content?: unknown }).content;
    return n + (typeof content === 'string' ? wordCount(content) : 0);
  }, 0);
}

export async function startLlmDouble(options: LlmDoubleOptions = {}): Promise<LlmDouble> {
  const requests: LlmRequestRecord[] = [];
  const queues = new Map<string, LlmBehaviour[]>();
  const defaults = new Map<string, LlmBehaviour>();
  let apiKey: string | undefined;
  let callSeq = 0;

  const next = (model: string): LlmBehaviour => {
    const queued = queues.get(model)?.shift();
    return queued ?? defaults.get(model) ?? defaults.get('*') ?? { kind: 'reply', text: `Hello from ${model}.` };
  };

  /** Resolves when the client goes away (abort) so a hanging handler can stop waiting. */
  const gone = (res: ServerResponse) =>
    new Promise<void>((resolve) => {
      if (res.destroyed || res.writableEnded) resolve();
      res.once('close', () => resolve());
    });

  // ---------------------------------------------------------------- Ollama

  async function ollamaChat(body: Record<string, unknown>, res: ServerResponse, b: LlmBehaviour): Promise<void> {
    const model = String(body.model ?? '');
    const stream = body.stream !== false;
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const base = () => ({ model, created_at: new Date().toISOString() });
    if (b.kind === 'hang') return gone(res);
    if (b.kind === 'error') {
      const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
      if (b.retryAfterSeconds !== undefined) headers['retry-after'] = String(b.retryAfterSeconds);
      res.writeHead(b.status, headers).end(JSON.stringify({ error: b.message ?? `scripted error ${b.status}` }));
      return;
    }
    const done = (outputTokens: number, reason: string, usage?: { inputTokens: number; outputTokens: number }) => ({
      ...base(),
      done: true,
      done_reason: reason,
      total_duration: 1_000_000,
      load_duration: 1000,
      prompt_eval_count: usage?.inputTokens ?? inputTokens(messages),
      prompt_eval_duration: 1000,
      eval_count: usage?.outputTokens ?? outputTokens,
      eval_duration: 1_000_000,
    });
    if (b.kind === 'toolCalls') {
      const message = {
        role: 'assistant',
        content: b.text ?? '',
        tool_calls: b.calls.map((c, index) => ({ function: { index, name: c.name, arguments: c.arguments } })),
      };
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ ...done(b.calls.length, 'stop'), message }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(`${JSON.stringify({ ...base(), message, done: false })}\n`);
      res.end(`${JSON.stringify({ ...done(b.calls.length, 'stop'), message: { role: 'assistant', content: '' } })}\n`);
      return;
    }
    if (b.delayMs) await sleep(b.delayMs);
    const chunks = chunksOf(b);
    const reason = b.finishReason ?? 'stop';
    if (!stream) {
      if (b.stallAfterChunks !== undefined) return gone(res);
      if (b.chunkDelayMs) await sleep(b.chunkDelayMs * chunks.length);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ ...done(chunks.length, reason, b.usage), message: { role: 'assistant', content: b.text } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const [i, chunk] of chunks.entries()) {
      if (b.stallAfterChunks !== undefined && i >= b.stallAfterChunks) return gone(res);
      if (b.disconnectAfterChunks !== undefined && i >= b.disconnectAfterChunks) {
        res.destroy();
        return;
      }
      if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
      if (res.destroyed) return;
      res.write(`${JSON.stringify({ ...base(), message: { role: 'assistant', content: chunk }, done: false })}\n`);
    }
    res.end(`${JSON.stringify({ ...done(chunks.length, reason, b.usage), message: { role: 'assistant', content: '' } })}\n`);
  }

  // ---------------------------------------------------------------- OpenAI

  function openaiError(res: ServerResponse, status: number, message: string, type: string, code: string | null, retryAfter?: number): void {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
    res.writeHead(status, headers).end(JSON.stringify({ error: { message, type, param: null, code } }));
  }

  const defaultType = (status: number) =>
    status === 429 ? 'rate_limit_exceeded' : status === 401 ? 'invalid_request_error' : status >= 500 ? 'server_error' : 'invalid_request_error';

  async function openaiChat(body: Record<string, unknown>, res: ServerResponse, b: LlmBehaviour): Promise<void> {
    const model = String(body.model ?? '');
    const stream = body.stream === true;
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const id = `chatcmpl-double${++callSeq}`;
    const created = Math.floor(Date.now() / 1000);
    if (b.kind === 'hang') return gone(res);
    if (b.kind === 'error') {
      openaiError(res, b.status, b.message ?? `scripted error ${b.status}`, b.type ?? defaultType(b.status), b.code ?? null, b.retryAfterSeconds);
      return;
    }
    const usageOf = (outputTokens: number, u?: { inputTokens: number; outputTokens: number }) => {
      const prompt = u?.inputTokens ?? inputTokens(messages);
      const completion = u?.outputTokens ?? outputTokens;
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    };
    const sse = (value: unknown) => res.write(`data: ${JSON.stringify(value)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      system_fingerprint: 'fp_double',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const finishStream = (outputTokens: number, finish: string, u?: { inputTokens: number; outputTokens: number }) => {
      sse(chunk({}, finish));
      if (includeUsage) sse({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: usageOf(outputTokens, u) });
      res.end('data: [DONE]\n\n');
    };
    const completion = (message: Record<string, unknown>, finish: string, outputTokens: number, u?: { inputTokens: number; outputTokens: number }) => ({
      id,
      object: 'chat.completion',
      created,
      model,
      system_fingerprint: 'fp_double',
      choices: [{ index: 0, message: { refusal: null, ...message }, logprobs: null, finish_reason: finish }],
      usage: usageOf(outputTokens, u),
    });

    if (b.kind === 'toolCalls') {
      const calls = b.calls.map((c) => ({
        id: c.id ?? `call_double${++callSeq}`,
        type: 'function',
        function: { name: c.name, arguments: JSON.stringify(c.arguments) },
      }));
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completion({ role: 'assistant', content: b.text || null, tool_calls: calls }, 'tool_calls', calls.length)));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      sse(chunk({ role: 'assistant', content: b.text || null }, null));
      for (const [index, call] of calls.entries()) {
        // Real servers send the id and name first, then the arguments in fragments.
        sse(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }, null));
        const args = call.function.arguments;
        const half = Math.ceil(args.length / 2);
        for (const part of [args.slice(0, half), args.slice(half)]) {
          if (part) sse(chunk({ tool_calls: [{ index, function: { arguments: part } }] }, null));
        }
      }
      finishStream(calls.length, 'tool_calls');
      return;
    }

    if (b.delayMs) await sleep(b.delayMs);
    const chunks = chunksOf(b);
    const finish = b.finishReason ?? 'stop';
    if (!stream) {
      if (b.stallAfterChunks !== undefined) return gone(res);
      if (b.chunkDelayMs) await sleep(b.chunkDelayMs * chunks.length);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion({ role: 'assistant', content: b.text }, finish, chunks.length, b.usage)));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    sse(chunk({ role: 'assistant', content: '' }, null));
    for (const [i, part] of chunks.entries()) {
      if (b.stallAfterChunks !== undefined && i >= b.stallAfterChunks) return gone(res);
      if (b.disconnectAfterChunks !== undefined && i >= b.disconnectAfterChunks) {
        res.destroy();
        return;
      }
      if (b.chunkDelayMs) await sleep(b.chunkDelayMs);
      if (res.destroyed) return;
      sse(chunk({ content: part }, null));
    }
    finishStream(chunks.length, finish, b.usage);
  }

  // ---------------------------------------------------------------- server

  const modelList = () => options.models ?? [...new Set([...queues.keys(), ...defaults.keys()].filter((m) => m !== '*'))];

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://double').pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/api/tags') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({
          models: modelList().map((name) => ({
            name,
            model: name,
            modified_at: '2026-01-01T00:00:00Z',
            size: 1,
            digest: 'sha256:double',
            details: { format: 'gguf', family: 'double', parameter_size: '0B', quantization_level: 'Q4_0' },
          })),
        }),
      );
      return;
    }
    if (method === 'GET' && path === '/api/version') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: '0.12.0' }));
      return;
    }
    if (path.startsWith('/v1/') && apiKey !== undefined && req.headers.authorization !== `Bearer ${apiKey}`) {
      openaiError(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
      return;
    }
    if (method === 'GET' && path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: modelList().map((id) => ({ id, object: 'model', created: 0, owned_by: 'double' })) }));
      return;
    }
    const isOllama = method === 'POST' && path === '/api/chat';
    const isOpenai = method === 'POST' && path === '/v1/chat/completions';
    if (!isOllama && !isOpenai) {
      if (path.startsWith('/v1/')) openaiError(res, 404, `Unknown request URL: ${method} ${path}`, 'invalid_request_error', 'unknown_url');
      else res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found');
      return;
    }
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      if (isOllama) res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid JSON body' }));
      else openaiError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
      return;
    }
    const model = typeof body.model === 'string' ? body.model : '';
    const behaviour = next(model);
    requests.push({
      protocol: isOllama ? 'ollama' : 'openai',
      method,
      path,
      model,
      messages: Array.isArray(body.messages) ? body.messages : [],
      tools: Array.isArray(body.tools) ? body.tools : undefined,
      stream: isOllama ? body.stream !== false : body.stream === true,
      headers: req.headers,
      body,
      behaviour: behaviour.kind,
    });
    if (isOllama) await ollamaChat(body, res, behaviour);
    else await openaiChat(body, res, behaviour);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(error) }));
        else res.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    openaiUrl: `${url}/v1`,
    host: `127.0.0.1:${port}`,
    requests,
    requestsFor: (model) => requests.filter((r) => r.model === model),
    script(model, ...behaviours) {
      const queue = queues.get(model) ?? [];
      queue.push(...behaviours);
      queues.set(model, queue);
    },
    setDefault(model, behaviour) {
      defaults.set(model, behaviour);
    },
    pending: (model) => queues.get(model)?.length ?? 0,
    requireApiKey(key) {
      apiKey = key;
    },
    reset() {
      queues.clear();
      defaults.clear();
      apiKey = undefined;
      requests.splice(0);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
