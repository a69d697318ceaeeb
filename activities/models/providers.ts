import { randomBytes } from 'node:crypto';
import { Ollama, type Message as OllamaMessage, type Tool as OllamaTool } from 'ollama';
import OpenAI from 'openai';
import type { ModelRoute } from './router.ts';
import type { ChatMessage, ToolSpec } from './types.ts';

/**
 * The two provider protocols, each through its official client: Ollama's native `/api/chat`
 * (ollama-js) and OpenAI-compatible `/v1/chat/completions` (openai). Both always stream, so the
 * caller sees every chunk (`onChunk`) and can tell a slow model from a stalled one. Errors are
 * thrown as the clients raise them; generate.ts classifies them.
 */

export interface ProviderCall {
  route: ModelRoute;
  apiKey: string | undefined;
  messages: ChatMessage[];
  tools: ToolSpec[] | undefined;
  maxTokens: number | undefined;
  temperature: number | undefined;
  /** A JSON Schema the reply must satisfy (asked for per the route's `structuredOutput`). */
  responseSchema: Record<string, unknown> | undefined;
  /** Aborting it cancels the HTTP request, also mid-stream. */
  signal: AbortSignal;
  /** Called for every chunk received (tokens or tool-call fragments). */
  onChunk(): void;
  /** Sent as `x-correlation-id`, so provider-side logs can be matched with ours. */
  correlationId: string;
}

export interface ProviderReply {
  text: string;
  toolCalls: Array<{ id: string; name: string; arguments: Record<string, unknown> }>;
  usage: { inputTokens: number; outputTokens: number } | undefined;
  finishReason: string;
  /** Generation time reported by the provider (Ollama's eval_duration), ms. */
  generationMs: number | undefined;
}

/** The provider answered, but a tool call's arguments are not a JSON object. */
export class MalformedToolCall extends Error {
  override name = 'MalformedToolCall';
}

/** An HTTP failure with the status and Retry-After the clients do not always expose. */
export class ProviderHttpError extends Error {
  override name = 'ProviderHttpError';
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
  }
}

/** `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, in ms. */
export function retryAfterMs(headers: Headers | undefined | null): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

const callId = () => `call_${randomBytes(6).toString('hex')}`;

function jsonInstruction(schema: Record<string, unknown>): string {
  return `Reply with one JSON value only, no prose and no code fences, valid against this JSON Schema:\n${JSON.stringify(schema)}`;
}

/** The route's way of asking for JSON when it cannot take the schema itself. */
function withJsonInstruction(call: ProviderCall): ChatMessage[] {
  if (!call.responseSchema || call.route.structuredOutput === 'schema') return call.messages;
  return [{ role: 'system', content: jsonInstruction(call.responseSchema) }, ...call.messages];
}

// ------------------------------------------------------------------------------------ Ollama

function toOllamaMessage(m: ChatMessage): OllamaMessage {
  const message: OllamaMessage = { role: m.role, content: m.content };
  if (m.tool_calls) message.tool_calls = m.tool_calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
  if (m.role === 'tool' && m.name) message.tool_name = m.name;
  return message;
}

export async function callOllama(call: ProviderCall): Promise<ProviderReply> {
  let lastRetryAfter: number | undefined;
  const client = new Ollama({
    host: call.route.baseUrl,
    headers: {
      'x-correlation-id': call.correlationId,
      ...(call.apiKey ? { authorization: `Bearer ${call.apiKey}` } : {}),
    },
    // ollama-js takes no signal for its requests; this fetch gives every request ours and keeps
    // the Retry-After header its ResponseError drops.
    fetch: async (input, init) => {
      const response = await fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, call.signal]) : call.signal });
      if (!response.ok) lastRetryAfter = retryAfterMs(response.headers);
      return response;
    },
  });
  const tools: OllamaTool[] | undefined = call.tools?.map((t) => ({
    type: 'function',
    function: { name: t.name, description: t.description, parameters: t.parameters as OllamaTool['function']['parameters'] },
  }));
  let stream;
  try {
    stream = await client.chat({
      model: call.route.providerModel,
      messages: withJsonInstruction(call).map(toOllamaMessage),
      stream: true,
      ...(tools && tools.length > 0 ? { tools } : {}),
      ...(call.responseSchema && call.route.structuredOutput !== 'none'
        ? { format: call.route.structuredOutput === 'schema' ? call.responseSchema : 'json' }
        : {}),
      ...(call.route.think === undefined ? {} : { think: call.route.think }),
      options: {
        ...(call.maxTokens === undefined ? {} : { num_predict: call.maxTokens }),
        ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
      },
    });
  } catch (error) {
    const status = (error as { status_code?: unknown }).status_code;
    if (typeof status === 'number') throw new ProviderHttpError((error as Error).message, status, lastRetryAfter);
    throw error;
  }
  const abort = () => stream.abort();
  call.signal.addEventListener('abort', abort, { once: true });
  let text = '';
  const toolCalls: ProviderReply['toolCalls'] = [];
  let finishReason = 'stop';
  let usage: ProviderReply['usage'];
  let generationMs: number | undefined;
  try {
    for await (const part of stream) {
      call.onChunk();
      text += part.message?.content ?? '';
      for (const c of part.message?.tool_calls ?? []) {
        const args: unknown = typeof c.function.arguments === 'string' ? safeJson(c.function.arguments) : c.function.arguments;
        if (!isRecord(args)) throw new MalformedToolCall(`tool call "${c.function.name}" has arguments that are not a JSON object`);
        toolCalls.push({ id: callId(), name: c.function.name, arguments: args });
      }
      if (part.done) {
        finishReason = part.done_reason || 'stop';
        usage = { inputTokens: part.prompt_eval_count ?? 0, outputTokens: part.eval_count ?? 0 };
        generationMs = part.eval_duration ? part.eval_duration / 1e6 : undefined;
      }
    }
  } finally {
    call.signal.removeEventListener('abort', abort);
  }
  return { text, toolCalls, usage, finishReason: toolCalls.length > 0 && finishReason === 'stop' ? 'tool_calls' : finishReason, generationMs };
}

// ------------------------------------------------------------------------------------ OpenAI

function toOpenaiMessage(m: ChatMessage): OpenAI.ChatCompletionMessageParam {
  switch (m.role) {
    case 'system':
      return { role: 'system', content: m.content };
    case 'user':
      return { role: 'user', content: m.content };
    case 'tool':
      return { role: 'tool', content: m.content, tool_call_id: m.tool_call_id ?? '' };
    case 'assistant':
      return {
        role: 'assistant',
        content: m.content || null,
        ...(m.tool_calls && m.tool_calls.length > 0
          ? { tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: JSON.stringify(c.arguments) } })) }
          : {}),
      };
  }
}

export async function callOpenai(call: ProviderCall): Promise<ProviderReply> {
  const client = new OpenAI({
    apiKey: call.apiKey ?? 'unused',
    baseURL: call.route.baseUrl,
    // Retries and fallbacks are ours (and Temporal's); the client must not hide a 429 or a 5xx.
    maxRetries: 0,
    timeout: call.route.timeouts.totalMs,
    defaultHeaders: { 'x-correlation-id': call.correlationId },
  });
  const schema = call.responseSchema;
  const responseFormat: OpenAI.ChatCompletionCreateParams['response_format'] | undefined =
    !schema || call.route.structuredOutput === 'none'
      ? undefined
      : call.route.structuredOutput === 'schema'
        ? { type: 'json_schema', json_schema: { name: 'response', schema, strict: false } }
        : { type: 'json_object' };
  let stream;
  try {
    stream = await client.chat.completions.create(
      {
        model: call.route.providerModel,
        messages: withJsonInstruction(call).map(toOpenaiMessage),
        stream: true,
        stream_options: { include_usage: true },
        ...(call.tools && call.tools.length > 0
          ? { tools: call.tools.map((t) => ({ type: 'function' as const, function: { name: t.name, description: t.description, parameters: t.parameters } })) }
          : {}),
        ...(call.maxTokens === undefined ? {} : { max_tokens: call.maxTokens }),
        ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
        ...(responseFormat ? { response_format: responseFormat } : {}),
      },
      { signal: call.signal },
    );
  } catch (error) {
    if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
      throw new ProviderHttpError(error.message, error.status, retryAfterMs(error.headers));
    }
    throw error;
  }
  let text = '';
  let finishReason = 'stop';
  let usage: ProviderReply['usage'];
  const calls = new Map<number, { id: string; name: string; args: string }>();
  for await (const chunk of stream) {
    call.onChunk();
    if (chunk.usage) usage = { inputTokens: chunk.usage.prompt_tokens, outputTokens: chunk.usage.completion_tokens };
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += choice.delta.content ?? '';
    for (const fragment of choice.delta.tool_calls ?? []) {
      const entry = calls.get(fragment.index) ?? { id: '', name: '', args: '' };
      if (fragment.id) entry.id = fragment.id;
      if (fragment.function?.name) entry.name = fragment.function.name;
      entry.args += fragment.function?.arguments ?? '';
      calls.set(fragment.index, entry);
    }
    if (choice.finish_reason) finishReason = choice.finish_reason;
  }
  const toolCalls = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, c]) => {
      const args = c.args.trim() === '' ? {} : safeJson(c.args);
      if (!isRecord(args)) throw new MalformedToolCall(`tool call "${c.name}" has arguments that are not a JSON object`);
      return { id: c.id || callId(), name: c.name, arguments: args };
    });
  return { text, toolCalls, usage, finishReason, generationMs: undefined };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export const PROVIDERS = { ollama: callOllama, openai: callOpenai } as const;
