import { recordModelRequest } from '../../common/slo-samples.ts';
import { ApplicationFailure } from '@temporalio/common';
import { Ajv, type ValidateFunction } from 'ajv';
import OpenAI from 'openai';
import { canonicalJson } from '../../common/canonical-json.ts';
import { configSchema } from '../../common/config.ts';
import { modelMetrics } from '../../common/metrics.ts';
import { defineSkill, type SkillContext, type SkillSpec } from '../skills/skill.ts';
import { MalformedToolCall, PROVIDERS, ProviderHttpError, type ProviderReply } from './providers.ts';
import { loadModelRoutes, routeChain, routeRefusal, readApiKey, UnknownModelRoute, type ModelRoute, type ModelRoutingTable } from './router.ts';
import { MODEL_ACTIVITY, modelRequestSchema, modelResultSchema, type ChatMessage, type ModelRequest, type ModelResult } from './types.ts';

/**
 * `model.generate`: one model call for a `model` step or an agent's turn, on the lane's models
 * queue. The requested route is tried first, then its fallbacks in order; what happens on failure:
 *
 * | failure on a route                                         | then                               |
 * |------------------------------------------------------------|------------------------------------|
 * | connection refused/reset, DNS                              | next route (`connection`)          |
 * | no first token within `firstTokenMs`, whole call > `totalMs`| next route (`timeout`)            |
 * | stream silent for `idleMs`, stream cut off                 | next route (`stalled`, `stream`)   |
 * | HTTP 5xx, 408                                              | next route (`http_5xx`, `http_408`)|
 * | HTTP 429                                                   | next route (`rate_limited`); its Retry-After becomes the activity's next retry delay if every route fails |
 * | HTTP 404 (model not pulled / not served)                   | next route (`model_not_found`)     |
 * | reply not valid against `response_schema`, malformed tool call | asked once more on the same route, then next route (`invalid_output`) |
 * | cloud route not allowed for the lane / its key missing     | skipped (`lane_not_allowed`, `not_configured`) |
 * | HTTP 401, 403                                              | stop: non-retryable `ModelAuthFailed` |
 * | any other HTTP 4xx                                         | stop: non-retryable `ModelRequestRejected` |
 *
 * When no route answers: every route skipped → non-retryable `ModelRouteNotAllowed` /
 * `ModelRouteNotConfigured`; every route that was called gave invalid output → non-retryable
 * `InvalidModelOutput`; otherwise retryable `ModelUnavailable` (Temporal retries the whole chain
 * per the step's retry policy). Every failure message lists each route's reason.
 */

export interface ModelGenerateOptions {
  table: ModelRoutingTable;
  /** Where apiKeyEnv references are read (process.env by default). */
  env?: NodeJS.ProcessEnv;
}

type FailureKind = 'unavailable' | 'invalid_output' | 'skipped' | 'rejected';

/** Why one route did not answer. */
class RouteFailure extends Error {
  override name = 'RouteFailure';
  constructor(
    readonly kind: FailureKind,
    readonly code: string,
    message: string,
    readonly extra: { retryAfterMs?: number; status?: number; type?: string } = {},
  ) {
    super(message);
  }
}

type AbortReason = 'first_token' | 'idle' | 'total';

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? error.cause : undefined;
  const code = (cause as { code?: string } | undefined)?.code ?? (error as { code?: string }).code;
  return code ? `${error.message} (${code})` : cause ? `${error.message}: ${cause.message}` : error.message;
}

/** Maps whatever a provider call threw onto a failure kind (see the table above). */
function classify(error: unknown, route: ModelRoute, timedOut: AbortReason | undefined): RouteFailure {
  if (error instanceof RouteFailure) return error;
  if (timedOut === 'first_token') return new RouteFailure('unavailable', 'timeout', `no reply within ${route.timeouts.firstTokenMs} ms`);
  if (timedOut === 'idle') return new RouteFailure('unavailable', 'stalled', `stream stalled: no chunk for ${route.timeouts.idleMs} ms`);
  if (timedOut === 'total') return new RouteFailure('unavailable', 'timeout', `call exceeded ${route.timeouts.totalMs} ms`);
  if (error instanceof MalformedToolCall) return new RouteFailure('invalid_output', 'invalid_output', error.message);
  if (error instanceof ProviderHttpError) {
    const { status } = error;
    // The openai client prefixes its messages with the status; say it once.
    const detail = `HTTP ${status}: ${error.message.replace(/^\d{3}\s+/, '').slice(0, 300)}`;
    if (status === 429) return new RouteFailure('unavailable', 'rate_limited', detail, { status, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) });
    if (status >= 500) return new RouteFailure('unavailable', 'http_5xx', detail, { status });
    if (status === 408) return new RouteFailure('unavailable', 'http_408', detail, { status });
    if (status === 404) return new RouteFailure('unavailable', 'model_not_found', detail, { status });
    if (status === 401 || status === 403) return new RouteFailure('rejected', 'auth', detail, { status, type: 'ModelAuthFailed' });
    return new RouteFailure('rejected', 'bad_request', detail, { status, type: 'ModelRequestRejected' });
  }
  if (error instanceof OpenAI.APIConnectionTimeoutError) return new RouteFailure('unavailable', 'timeout', `call exceeded ${route.timeouts.totalMs} ms`);
  if (error instanceof OpenAI.APIConnectionError) return new RouteFailure('unavailable', 'connection', `connection failed: ${describeNetworkError(error)}`);
  if (error instanceof OpenAI.APIError) return new RouteFailure('unavailable', 'stream', `stream error: ${error.message}`);
  if (error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message)) {
    return new RouteFailure('unavailable', 'connection', `connection failed: ${describeNetworkError(error)}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/did not receive done|terminated|socket|ECONNRESET|aborted/i.test(message)) {
    return new RouteFailure('unavailable', 'stream', `stream broke off: ${describeNetworkError(error)}`);
  }
  return new RouteFailure('unavailable', 'error', message.slice(0, 300));
}

/** The conversation sent: system prompt, then the messages, then the user prompt. */
export function buildMessages(input: ModelRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (input.system_prompt) messages.push({ role: 'system', content: input.system_prompt });
  messages.push(...(input.messages ?? []));
  if (input.user_prompt !== undefined) messages.push({ role: 'user', content: input.user_prompt });
  return messages;
}

/** The JSON in a reply: reasoning (`<think>`) and a surrounding code fence are dropped. */
export function extractJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  let body = text.replace(/<think>[\s\S]*?<\/think>/g, '').trim();
  const fenced = /^```(?:json)?\s*([\s\S]*?)\s*```$/i.exec(body);
  if (fenced) body = fenced[1] ?? '';
  try {
    return { ok: true, value: JSON.parse(body) as unknown };
  } catch (error) {
    return { ok: false, error: `not JSON (${(error as Error).message})` };
  }
}

const ajv = new Ajv({ allErrors: true, strict: false });

/** Distinct response schemas kept compiled; the least recently used one goes first. */
export const RESPONSE_SCHEMA_CACHE_SIZE = 256;
const compiled = new Map<string, ValidateFunction>();

/**
 * The validator of a response schema, compiled once per distinct content (canonical JSON: key
 * order does not matter). Ajv itself would keep every schema object it ever compiled and refuse a
 * second schema with the same `$id`, so each schema leaves Ajv's registry as soon as it is
 * compiled and only this bounded cache holds the result.
 */
export function responseSchemaValidator(schema: Record<string, unknown>): ValidateFunction {
  const key = canonicalJson(schema);
  const hit = compiled.get(key);
  if (hit) {
    compiled.delete(key);
    compiled.set(key, hit);
    return hit;
  }
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (error) {
    throw ApplicationFailure.nonRetryable(`response_schema is not a valid JSON Schema: ${(error as Error).message}`, 'InvalidModelRequest');
  } finally {
    ajv.removeSchema(schema);
  }
  compiled.set(key, validate);
  if (compiled.size > RESPONSE_SCHEMA_CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  return validate;
}

function schemaErrors(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
    .join('; ');
}

interface Answer {
  reply: ProviderReply;
  json: unknown;
  generationMs: number;
}

/** One call on one route with first-token, idle and total timers; throws RouteFailure. */
async function callRoute(
  route: ModelRoute,
  input: ModelRequest,
  messages: ChatMessage[],
  apiKey: string | undefined,
  ctx: SkillContext,
): Promise<{ reply: ProviderReply; generationMs: number }> {
  const controller = new AbortController();
  let timedOut: AbortReason | undefined;
  const expire = (reason: AbortReason) => () => {
    timedOut = reason;
    controller.abort(new Error(`model call ${reason} timeout`));
  };
  let waitTimer = setTimeout(expire('first_token'), route.timeouts.firstTokenMs);
  const totalTimer = setTimeout(expire('total'), route.timeouts.totalMs);
  let firstChunkAt: number | undefined;
  let chunks = 0;
  const signal = AbortSignal.any([ctx.signal, controller.signal]);
  try {
    const reply = await PROVIDERS[route.provider]({
      route,
      apiKey,
      messages,
      tools: input.tools,
      maxTokens: input.max_tokens,
      temperature: input.temperature,
      responseSchema: input.response_schema,
      signal,
      correlationId: ctx.meta.correlationId,
      onChunk() {
        firstChunkAt ??= Date.now();
        chunks++;
        clearTimeout(waitTimer);
        waitTimer = setTimeout(expire('idle'), route.timeouts.idleMs);
        // Progress shows in Temporal Web; the SDK throttles heartbeats.
        if (chunks % 16 === 1) ctx.heartbeat({ route: route.name, chunks });
      },
    });
    return { reply, generationMs: reply.generationMs ?? Math.max(1, Date.now() - (firstChunkAt ?? Date.now())) };
  } catch (error) {
    // A cancelled activity is not a failed route: let the cancellation through untouched.
    if (ctx.signal.aborted) throw error;
    throw classify(error, route, timedOut);
  } finally {
    clearTimeout(waitTimer);
    clearTimeout(totalTimer);
  }
}

/** Calls a route and checks structured output, asking once more on the same route when it is invalid. */
async function answerOnRoute(
  route: ModelRoute,
  input: ModelRequest,
  validate: ValidateFunction | undefined,
  apiKey: string | undefined,
  ctx: SkillContext,
): Promise<Answer> {
  let messages = buildMessages(input);
  for (let ask = 1; ; ask++) {
    const { reply, generationMs } = await callRoute(route, input, messages, apiKey, ctx);
    if (!validate || reply.toolCalls.length > 0) return { reply, json: undefined, generationMs };
    const parsed = extractJson(reply.text);
    const problem = !parsed.ok ? parsed.error : validate(parsed.value) ? undefined : `does not match response_schema: ${schemaErrors(validate)}`;
    if (problem === undefined && parsed.ok) return { reply, json: parsed.value, generationMs };
    if (ask >= 2) throw new RouteFailure('invalid_output', 'invalid_output', `reply ${problem} (asked twice)`);
    ctx.logger.info({ route: route.name, problem }, 'model reply invalid against response_schema; asking again');
    messages = [
      ...messages,
      { role: 'assistant', content: reply.text },
      { role: 'user', content: `That reply ${problem}. Answer again with only the JSON value, valid against the schema.` },
    ];
  }
}

export async function generate(input: ModelRequest, ctx: SkillContext, options: ModelGenerateOptions): Promise<ModelResult> {
  const started = Date.now();
  const { table } = options;
  const env = options.env ?? process.env;
  const metrics = modelMetrics();
  if (input.user_prompt === undefined && (input.messages ?? []).length === 0) {
    throw ApplicationFailure.nonRetryable('a model call needs user_prompt or messages', 'InvalidModelRequest');
  }
  let chain: ModelRoute[];
  try {
    chain = routeChain(table, input.model);
  } catch (error) {
    if (error instanceof UnknownModelRoute) throw ApplicationFailure.nonRetryable(error.message, 'UnknownModelRoute');
    throw error;
  }
  const validate = input.response_schema ? responseSchemaValidator(input.response_schema) : undefined;
  const lane = ctx.meta.lane;
  const failures: Array<{ route: ModelRoute; failure: RouteFailure }> = [];
  // The SLO report's sample of this request (fallback rate local → cloud, latency, tokens/s).
  const sample = (outcome: string, route: ModelRoute | undefined, fellBack: boolean, tokensPerSecond?: number) =>
    recordModelRequest({
      at: new Date(started),
      lane,
      requested: input.model,
      ...(route ? { route: route.name, provider: route.provider } : {}),
      firstCloud: chain[0]?.cloud === true,
      cloud: route?.cloud === true,
      fellBack,
      outcome,
      latencyMs: Date.now() - started,
      ...(tokensPerSecond ? { tokensPerSecond } : {}),
    });
  const log = ctx.logger.child({
    requested: input.model,
    ...(input.agent_id ? { agentId: input.agent_id } : {}),
    ...(input.calling_skill ? { callingSkill: input.calling_skill } : {}),
    ...(input.priority ? { priority: input.priority } : {}),
    ...(input.callback ? { callback: input.callback } : {}),
  });

  const passOver = (route: ModelRoute, failure: RouteFailure, index: number) => {
    failures.push({ route, failure });
    const next = chain[index + 1];
    metrics.calls.add(1, { route: route.name, outcome: failure.kind === 'skipped' ? 'skipped' : failure.kind });
    if (next) {
      metrics.fallbacks.add(1, { from: route.name, to: next.name, reason: failure.code });
      log.warn({ from: route.name, to: next.name, reason: failure.code, detail: failure.message }, 'model fallback');
    } else {
      log.warn({ route: route.name, reason: failure.code, detail: failure.message }, 'model route failed; no fallback left');
    }
  };

  for (const [index, route] of chain.entries()) {
    const refusal = routeRefusal(route, lane, env);
    if (refusal) {
      passOver(route, new RouteFailure('skipped', refusal.code === 'LaneNotAllowed' ? 'lane_not_allowed' : 'not_configured', refusal.reason), index);
      continue;
    }
    if (route.cloud) {
      // Seed 003 §3: every cloud use is logged with its task class and reason.
      log.info(
        { route: route.name, taskClass: input.calling_skill ?? input.agent_id ?? 'unspecified', reason: index > 0 ? `fallback after ${failures.map((f) => `${f.route.name}: ${f.failure.code}`).join(', ')}` : (route.reason ?? 'requested') },
        'cloud model call',
      );
    }
    if (route.legacy) log.info({ route: route.name }, 'legacy model route used');
    const attemptStarted = Date.now();
    try {
      const answer = await answerOnRoute(route, input, validate, readApiKey(route, env), ctx);
      const seconds = (Date.now() - attemptStarted) / 1000;
      const usage = answer.reply.usage ?? { inputTokens: 0, outputTokens: 0 };
      const tokensPerSecond = usage.outputTokens > 0 ? Math.round((usage.outputTokens / (answer.generationMs / 1000)) * 100) / 100 : 0;
      metrics.callDuration.record(seconds, { route: route.name, provider: route.provider, outcome: 'ok' });
      if (tokensPerSecond > 0) metrics.tokensPerSecond.record(tokensPerSecond, { route: route.name, provider: route.provider });
      metrics.calls.add(1, { route: route.name, outcome: 'ok' });
      metrics.requests.add(1, { requested: input.model, outcome: 'ok', fell_back: String(failures.length > 0) });
      sample('ok', route, failures.length > 0, tokensPerSecond);
      const result: ModelResult = {
        text: answer.reply.text,
        ...(answer.json === undefined ? {} : { json: answer.json }),
        toolCalls: answer.reply.toolCalls,
        requested: input.model,
        route: route.name,
        provider: route.provider,
        providerModel: route.providerModel,
        fallbacks: failures.map(({ route: r, failure }) => ({ route: r.name, reason: `${failure.code}: ${failure.message}`, code: failure.code })),
        usage,
        latencyMs: Date.now() - started,
        tokensPerSecond,
        finishReason: answer.reply.finishReason,
        ...(input.callback === undefined ? {} : { callback: input.callback }),
      };
      log.info(
        { route: route.name, provider: route.provider, ms: result.latencyMs, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, tokensPerSecond, fallbacks: failures.length, toolCalls: result.toolCalls.length },
        'model answered',
      );
      return result;
    } catch (error) {
      if (!(error instanceof RouteFailure)) throw error;
      metrics.callDuration.record((Date.now() - attemptStarted) / 1000, { route: route.name, provider: route.provider, outcome: error.kind });
      if (error.kind === 'rejected') {
        failures.push({ route, failure: error });
        metrics.calls.add(1, { route: route.name, outcome: 'rejected' });
        metrics.requests.add(1, { requested: input.model, outcome: 'rejected', fell_back: String(failures.length > 1) });
        sample('rejected', route, failures.length > 1);
        log.warn({ route: route.name, reason: error.code, detail: error.message }, 'model request rejected; not falling back');
        throw ApplicationFailure.create({
          message: `model "${input.model}" rejected the request on route ${route.name}: ${error.message}${describeEarlier(failures.slice(0, -1))}`,
          type: error.extra.type ?? 'ModelRequestRejected',
          nonRetryable: true,
          details: [{ status: error.extra.status, route: route.name, fallbacks: reasons(failures) }],
        });
      }
      passOver(route, error, index);
    }
  }

  const called = failures.filter((f) => f.failure.kind !== 'skipped');
  const summary = `model "${input.model}": no route answered (${reasons(failures).map((r) => `${r.route}: ${r.code}: ${r.reason}`).join('; ')})`;
  const details = [{ fallbacks: reasons(failures) }];
  if (called.length === 0) {
    const first = failures[0]!.failure;
    metrics.requests.add(1, { requested: input.model, outcome: 'refused', fell_back: 'false' });
    sample('refused', undefined, false);
    throw ApplicationFailure.create({
      message: summary,
      type: first.code === 'lane_not_allowed' ? 'ModelRouteNotAllowed' : 'ModelRouteNotConfigured',
      nonRetryable: true,
      details,
    });
  }
  if (called.every((f) => f.failure.kind === 'invalid_output')) {
    metrics.requests.add(1, { requested: input.model, outcome: 'invalid_output', fell_back: String(failures.length > 1) });
    sample('invalid_output', called.at(-1)?.route, failures.length > 1);
    throw ApplicationFailure.create({ message: summary, type: 'InvalidModelOutput', nonRetryable: true, details });
  }
  metrics.requests.add(1, { requested: input.model, outcome: 'unavailable', fell_back: String(failures.length > 1) });
  sample('unavailable', called.at(-1)?.route, failures.length > 1);
  const retryAfter = Math.max(0, ...called.map((f) => f.failure.extra.retryAfterMs ?? 0));
  throw ApplicationFailure.create({
    message: summary,
    type: 'ModelUnavailable',
    nonRetryable: false,
    ...(retryAfter > 0 ? { nextRetryDelay: retryAfter } : {}),
    details,
  });
}

function reasons(failures: Array<{ route: ModelRoute; failure: RouteFailure }>): Array<{ route: string; code: string; reason: string }> {
  return failures.map(({ route, failure }) => ({ route: route.name, code: failure.code, reason: failure.message }));
}

function describeEarlier(failures: Array<{ route: ModelRoute; failure: RouteFailure }>): string {
  return failures.length === 0 ? '' : ` (after ${failures.map((f) => `${f.route.name}: ${f.failure.code}`).join(', ')})`;
}

/** The models family: `model.generate` over the installation's routing table. */
export function createModelSkills(config: object, options: Omit<ModelGenerateOptions, 'table'> & { table?: ModelRoutingTable } = {}): SkillSpec[] {
  const table =
    options.table ??
    loadModelRoutes(configSchema.pick({ MODEL_ROUTES: true, MODEL_ROUTES_FILE: true, OLLAMA_BASE_URL: true, OPENAI_BASE_URL: true }).parse(config));
  return [createModelGenerateSkill({ ...options, table })];
}

const routeNamesBySkill = new WeakMap<SkillSpec, string[]>();

/**
 * The route names and aliases a models-family skill answers to (what a `model` step may name), or
 * undefined for a skill this module did not build. catalogNames() uses it for registration checks.
 */
export function modelNamesOf(skill: SkillSpec): string[] | undefined {
  return routeNamesBySkill.get(skill);
}

export function createModelGenerateSkill(options: ModelGenerateOptions): SkillSpec<typeof modelRequestSchema, typeof modelResultSchema> {
  const skill = defineSkill({
    name: MODEL_ACTIVITY,
    description:
      'Calls a language model through the routing table (route or alias), falling back along the route\'s chain; ' +
      'optional JSON output checked against response_schema; tool calling for agents.',
    input: modelRequestSchema,
    output: modelResultSchema,
    sideEffects: false,
    // A step's call covers the whole fallback chain (each route: 120 s to the first token, 600 s in
    // all by default); a chain that found no route is retried a few times, spaced out.
    defaults: { timeoutSeconds: 900, retry: { maxAttempts: 3, initialIntervalSeconds: 5, backoffCoefficient: 2, maxIntervalSeconds: 120 } },
    handler: (input, ctx) => generate(input, ctx, options),
  });
  routeNamesBySkill.set(skill as SkillSpec, [...Object.keys(options.table.routes), ...Object.keys(options.table.aliases)].sort());
  return skill;
}
