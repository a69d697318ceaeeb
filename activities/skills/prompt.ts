import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { modelNamesOf } from '../models/generate.ts';
import { modelResultSchema, type ChatMessage, type ModelResult } from '../models/types.ts';
import { defineSkill, type SkillContext, type SkillSpec } from './skill.ts';

/**
 * Seed 002's `prompt_inline` and `conversation`: model calls written as skills, on the model
 * routing that exists (the routing table, its fallbacks and lane rules). Each calls the installed
 * `model.generate` implementation in-process, so a test's model double or an operator's table
 * apply unchanged. They run on the lane's skills queue, so the models queue's concurrency limit
 * does not bound them (LANE_LIMITS `skills` does).
 */

/** `{{name}}` placeholders of a prompt template. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Fills `{{name}}` from vars; strings go in as they are, other values as JSON. */
export function renderTemplate(template: string, vars: Record<string, unknown>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    if (!Object.prototype.hasOwnProperty.call(vars, name)) {
      throw ApplicationFailure.nonRetryable(`the prompt template uses {{${name}}}, which "vars" does not define`, 'InvalidPromptTemplate');
    }
    const value = vars[name];
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** Conversation history kept in the run: at most this many messages and characters (the oldest go first). */
export const MAX_HISTORY_MESSAGES = 40;
export const MAX_HISTORY_CHARS = 64_000;

const historyMessage = z.strictObject({ role: z.enum(['user', 'assistant']), content: z.string().max(200_000) });
type HistoryMessage = z.infer<typeof historyMessage>;

/** The last messages that fit both bounds, starting with a user message. */
export function boundHistory(messages: HistoryMessage[], maxMessages = MAX_HISTORY_MESSAGES, maxChars = MAX_HISTORY_CHARS): { kept: HistoryMessage[]; dropped: number } {
  let kept = messages.slice(-maxMessages);
  let chars = kept.reduce((n, m) => n + m.content.length, 0);
  while (kept.length > 2 && (chars > maxChars || kept[0]!.role !== 'user')) {
    chars -= kept[0]!.content.length;
    kept = kept.slice(1);
  }
  return { kept, dropped: messages.length - kept.length };
}

const generation = {
  /** A route or alias of the routing table (docs/models.md). */
  model: z.string().min(1).max(200).default('default'),
  max_tokens: z.number().int().min(1).max(200_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
};

/** Refuses a model the routing table does not know, when the table is known (not a test's own double). */
function knownModel(names: readonly string[] | undefined) {
  return (value: { model: string }, ctx: z.RefinementCtx) => {
    if (names && !names.includes(value.model)) {
      ctx.addIssue({ code: 'custom', path: ['model'], message: `unknown model "${value.model}"; routes and aliases: ${names.join(', ')}` });
    }
  };
}

type Generate = (request: Record<string, unknown>, ctx: SkillContext) => Promise<ModelResult>;

function generatorOf(modelSkill: SkillSpec): Generate {
  return async (request, ctx) => modelSkill.handler(modelSkill.input.parse(request), ctx) as Promise<ModelResult>;
}

export function createPromptSkills(modelSkill: SkillSpec): SkillSpec[] {
  const generate = generatorOf(modelSkill);
  const names = modelNamesOf(modelSkill);

  const promptInline = defineSkill({
    name: 'prompt_inline',
    description:
      'A prompt template written in the definition, run on the model routing (route or alias in `model`, default "default", with its fallbacks): ' +
      '`{{name}}` placeholders in `prompt` (and `system`) are filled from `vars` (templates allowed there). Returns the model call\'s output ' +
      '(text, json with response_schema, route, fallbacks, usage). A placeholder without a var is refused at registration.',
    input: z
      .strictObject({
        prompt: z.string().min(1).max(200_000),
        system: z.string().max(200_000).optional(),
        vars: z.record(z.string(), z.unknown()).default({}),
        response_schema: z.record(z.string(), z.unknown()).optional(),
        ...generation,
      })
      .superRefine((input, ctx) => {
        for (const [field, text] of [['prompt', input.prompt], ['system', input.system ?? '']] as const) {
          for (const name of placeholders(text)) {
            if (typeof input.vars === 'object' && !(name in input.vars)) ctx.addIssue({ code: 'custom', path: [field], message: `{{${name}}} has no value in "vars"` });
          }
        }
      })
      .superRefine(knownModel(names)),
    output: modelResultSchema,
    sideEffects: false,
    defaults: { timeoutSeconds: 900, retry: { maxAttempts: 3, initialIntervalSeconds: 5, backoffCoefficient: 2, maxIntervalSeconds: 120 } },
    async handler(input, ctx) {
      return generate(
        {
          model: input.model,
          user_prompt: renderTemplate(input.prompt, input.vars),
          ...(input.system ? { system_prompt: renderTemplate(input.system, input.vars) } : {}),
          ...(input.max_tokens === undefined ? {} : { max_tokens: input.max_tokens }),
          ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
          ...(input.response_schema === undefined ? {} : { response_schema: input.response_schema }),
          calling_skill: 'prompt_inline',
        },
        ctx,
      );
    },
  });

  const conversation = defineSkill({
    name: 'conversation',
    description:
      'One turn of a multi-turn conversation on the model routing: sends `history` (earlier turns, user/assistant) plus `message` and returns {reply, history, dropped, route, usage}. ' +
      `The returned history (this turn included) is kept in the run: pass it to the next conversation step with "\${steps.<id>.output.history}". Bounded to the last ${MAX_HISTORY_MESSAGES} messages and ${MAX_HISTORY_CHARS} characters; \`dropped\` counts what fell off.`,
    input: z
      .strictObject({
        message: z.string().min(1).max(200_000),
        system: z.string().max(200_000).optional(),
        history: z.array(historyMessage).max(1000).default([]),
        ...generation,
      })
      .superRefine(knownModel(names)),
    output: z.strictObject({
      reply: z.string(),
      history: z.array(historyMessage),
      dropped: z.number(),
      route: z.string(),
      usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }),
    }),
    sideEffects: false,
    defaults: { timeoutSeconds: 900, retry: { maxAttempts: 3, initialIntervalSeconds: 5, backoffCoefficient: 2, maxIntervalSeconds: 120 } },
    async handler(input, ctx) {
      const earlier = boundHistory(input.history);
      const messages: ChatMessage[] = earlier.kept.map((m) => ({ role: m.role, content: m.content }));
      const result = await generate(
        {
          model: input.model,
          ...(input.system ? { system_prompt: input.system } : {}),
          messages,
          user_prompt: input.message,
          ...(input.max_tokens === undefined ? {} : { max_tokens: input.max_tokens }),
          ...(input.temperature === undefined ? {} : { temperature: input.temperature }),
          calling_skill: 'conversation',
        },
        ctx,
      );
      const next = boundHistory([...input.history, { role: 'user', content: input.message }, { role: 'assistant', content: result.text }]);
      return { reply: result.text, history: next.kept, dropped: next.dropped, route: result.route, usage: result.usage };
    },
  });
  return [promptInline, conversation];
}
