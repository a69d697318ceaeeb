import { z } from 'zod';

/**
 * The contract of a model call (the `model` step and an agent's turns): the activity
 * `model.generate` on the lane's `<lane>.models` queue. Field names follow seed 003's queue payload
 * (agent_id, calling_skill, model, priority, system_prompt, user_prompt, max_tokens, callback).
 * Workflows import these types only; the activity side parses with the schemas.
 */
export { MODEL_ACTIVITY } from '../../common/constants.ts';

export const chatMessageSchema = z.strictObject({
  role: z.enum(['system', 'user', 'assistant', 'tool']),
  content: z.string(),
  /** assistant messages: the tool calls the model asked for. */
  tool_calls: z
    .array(z.strictObject({ id: z.string(), name: z.string(), arguments: z.record(z.string(), z.unknown()) }))
    .optional(),
  /** tool messages: which call this answers. */
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

/** A tool offered to the model (function calling); `parameters` is a JSON Schema object. */
export const toolSpecSchema = z.strictObject({
  name: z.string().min(1).max(128),
  description: z.string().max(4000).default(''),
  parameters: z.record(z.string(), z.unknown()).default({ type: 'object', properties: {} }),
});
export type ToolSpec = z.infer<typeof toolSpecSchema>;

export const modelRequestSchema = z.strictObject({
  /** A route name or alias from the routing table, e.g. `local/qwen-14b`. */
  model: z.string().min(1).max(200),
  agent_id: z.string().max(200).optional(),
  calling_skill: z.string().max(200).optional(),
  priority: z.enum(['urgent', 'high', 'normal', 'low']).optional(),
  system_prompt: z.string().max(200_000).optional(),
  /** Required unless `messages` carries the conversation (agents). */
  user_prompt: z.string().max(200_000).optional(),
  /** A whole conversation (agent turns); `system_prompt`/`user_prompt` are prepended/appended when set. */
  messages: z.array(chatMessageSchema).max(1000).optional(),
  tools: z.array(toolSpecSchema).max(128).optional(),
  max_tokens: z.number().int().min(1).max(200_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** When set, the reply must be JSON valid against this JSON Schema (else the call fails, type `InvalidModelOutput`). */
  response_schema: z.record(z.string(), z.unknown()).optional(),
  /** Seed 003's callback: an opaque label echoed in the result and logs (the workflow is the callback). */
  callback: z.string().max(2000).optional(),
});
export type ModelRequest = z.infer<typeof modelRequestSchema>;

export const modelResultSchema = z.object({
  text: z.string(),
  /** The parsed reply when `response_schema` was given. */
  json: z.unknown().optional(),
  toolCalls: z.array(z.object({ id: z.string(), name: z.string(), arguments: z.record(z.string(), z.unknown()) })).default([]),
  /** What was asked for, the route that answered, and its provider and model name. */
  requested: z.string(),
  route: z.string(),
  provider: z.enum(['ollama', 'openai']),
  providerModel: z.string(),
  /** Routes tried before the one that answered, each with why it was passed over. */
  fallbacks: z.array(
    z.object({
      route: z.string(),
      reason: z.string(),
      /** The reason's class: timeout, stalled, stream, connection, http_5xx, http_408, rate_limited, model_not_found, invalid_output, lane_not_allowed, not_configured. */
      code: z.string().optional(),
    }),
  ),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }),
  latencyMs: z.number(),
  tokensPerSecond: z.number(),
  finishReason: z.string(),
  callback: z.string().optional(),
});
export type ModelResult = z.infer<typeof modelResultSchema>;
