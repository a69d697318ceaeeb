import { z } from 'zod';
import { MODEL_ACTIVITY } from '../../common/constants.ts';
import { compileValue } from '../references.ts';
import { activityExecutor, type CompiledActivityStep } from './activity.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, type Compensable } from './parts.ts';

/**
 * A model call (seed 003's queue payload): `model` names a route or alias of the routing table;
 * the call runs on the lane's models queue and falls back along the route's chain.
 */
const modelOwn = z.strictObject({
  ...common,
  type: z.literal('model'),
  /** A route or alias, e.g. `local/qwen-14b`. */
  model: z.string().min(1).max(200),
  system_prompt: z.string().max(200_000).optional(),
  /** The prompt; templates such as `${steps.fetch.output.body}` are resolved at run time. */
  user_prompt: z.string().min(1).max(200_000),
  max_tokens: z.number().int().min(1).max(200_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** A JSON Schema the reply must satisfy; the output's `json` holds the parsed reply. */
  response_schema: z.record(z.string(), z.unknown()).optional(),
  /** Who asks (seed 003): logged with the call. */
  agent_id: z.string().min(1).max(200).optional(),
  calling_skill: z.string().min(1).max(200).optional(),
  /** The call's priority; the definition's `priority` by default. */
  priority: z.enum(['urgent', 'high', 'normal', 'low']).optional(),
  /** An opaque label echoed in the output and logs (seed 003 `callback`). */
  callback: z.string().max(2000).optional(),
  outputs: z.array(z.string().min(1)).optional(),
});
export type ModelStep = z.infer<typeof modelOwn> & Compensable;
export const modelStepSchema = modelOwn.extend(compensable);

export const modelKind: StepKind<ModelStep, CompiledActivityStep> = {
  type: 'model',
  kind: 'activity',
  schema: modelStepSchema,
  doc: 'Calls a model route or alias (`model`) on the lane\'s models queue with templated prompts; `response_schema` makes the parsed reply the output\'s `json`.',
  activity: true,
  outputContract(step, outputs) {
    const contract = outputs.get(`models:${MODEL_ACTIVITY}`);
    // The parsed reply (`json`) follows the step's own response_schema.
    if (!contract || step.response_schema === undefined) return contract;
    const properties = { ...(contract.schema.properties as Record<string, unknown> | undefined), json: step.response_schema };
    return { label: contract.label, schema: { ...contract.schema, properties } };
  },
  compile(step, base, cx) {
    // The request is seed 003's queue payload; prompts are templates, the schema is literal.
    const { response_schema: responseSchema, ...fields } = {
      model: step.model,
      user_prompt: step.user_prompt,
      ...(step.system_prompt !== undefined ? { system_prompt: step.system_prompt } : {}),
      ...(step.max_tokens !== undefined ? { max_tokens: step.max_tokens } : {}),
      ...(step.temperature !== undefined ? { temperature: step.temperature } : {}),
      ...(step.response_schema !== undefined ? { response_schema: step.response_schema } : {}),
      ...(step.agent_id !== undefined ? { agent_id: step.agent_id } : {}),
      ...(step.calling_skill !== undefined ? { calling_skill: step.calling_skill } : {}),
      priority: step.priority ?? cx.definition.priority ?? 'normal',
      ...(step.callback !== undefined ? { callback: step.callback } : {}),
    };
    const request = compileValue(fields, cx.scope, cx.pointer, cx.problems);
    const compiled: CompiledActivityStep = {
      ...base,
      kind: 'activity',
      family: 'models',
      name: MODEL_ACTIVITY,
      type: step.type,
      inputs:
        responseSchema === undefined || request.kind !== 'object'
          ? request
          : { kind: 'object', entries: [...request.entries, ['response_schema', { kind: 'literal', value: responseSchema }]] },
      fromSignal: false,
      outputs: step.outputs ?? [],
      defaulted: cx.defaulted,
    };
    const models = cx.catalog?.models;
    if (models && !models.has(step.model)) {
      cx.problems.push({
        pointer: `${cx.pointer}/model`,
        message: `unknown model "${step.model}"; routes and aliases: ${[...models].sort().join(', ') || '(none)'}`,
      });
    }
    return compiled;
  },
  executor: activityExecutor,
};
