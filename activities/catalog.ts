import { z } from 'zod';
import type { Config } from '../common/config.ts';
import type { ActivityKind } from '../common/constants.ts';
import type { OutputContract } from '../interpreter/output-shapes.ts';
import type { AgentDefinition } from './agents/types.ts';
import { createMcpActivities, loadMcpServers } from './agents/mcp.ts';
import { createIntegrationRegistry } from './integrations/registry.ts';
import { createModelSkills, modelNamesOf } from './models/generate.ts';
import { MODEL_ACTIVITY } from '../common/constants.ts';
import { createPromptSkills } from './skills/prompt.ts';
import { createSkillRegistry } from './skills/registry.ts';
import type { SkillSpec } from './skills/skill.ts';

/** Everything the workers of a lane can run, by activity family (each family has its own task queue). */
export type ActivityCatalog = Record<ActivityKind, SkillSpec[]>;

/**
 * The installation's catalog: built-in skills and integrations (agents arrive with their own
 * registry). `extra` adds implementations, e.g. the test suites' stand-ins for the seed documents'
 * skills; a name may appear once per family.
 */
export function createActivityCatalog(
  config: Pick<Config, 'HTTP_FETCH_ALLOWED_HOSTS'> & Partial<Pick<Config, 'MCP_SERVERS' | 'MCP_SERVERS_FILE'>>,
  extra: Partial<ActivityCatalog> = {},
): ActivityCatalog {
  // Agents' MCP tools (mcp.callTool, mcp.listTools) run on the agents queue when servers are configured.
  const mcpServers = loadMcpServers(config);
  // model.generate over the routing table (validated here, at startup); a test may supply its own.
  const models = [...createModelSkills(config).filter((s) => !extra.models?.some((e) => e.name === s.name)), ...(extra.models ?? [])];
  const generate = models.find((s) => s.name === MODEL_ACTIVITY);
  const catalog: ActivityCatalog = {
    // prompt_inline and conversation call whichever model.generate the models family has.
    skills: [...createSkillRegistry(config), ...(generate ? createPromptSkills(generate) : []), ...(extra.skills ?? [])],
    integrations: [...createIntegrationRegistry(config), ...(extra.integrations ?? [])],
    models,
    agents: [...(Object.keys(mcpServers).length > 0 ? createMcpActivities(mcpServers) : []), ...(extra.agents ?? [])],
  };
  for (const [family, specs] of Object.entries(catalog)) {
    const seen = new Set<string>();
    for (const spec of specs) {
      if (seen.has(spec.name)) throw new Error(`${family}: "${spec.name}" is registered twice`);
      seen.add(spec.name);
    }
  }
  return catalog;
}

/** Names per family, for registration-time validation. */
export function catalogNames(catalog: ActivityCatalog): Record<ActivityKind, Set<string>> {
  return {
    skills: new Set(catalog.skills.map((s) => s.name)),
    integrations: new Set(catalog.integrations.map((s) => s.name)),
    // A model step names a route or alias of the routing table, not the activity.
    models: new Set(catalog.models.flatMap((s) => modelNamesOf(s) ?? [s.name])),
    agents: new Set(catalog.agents.map((s) => s.name)),
  };
}

/** A skill's registered timeout and retry defaults, as runs receive them (`RunInput.activityDefaults`). */
export interface CatalogDefaults {
  timeoutSeconds?: number;
  retry?: { maxAttempts?: number; initialIntervalSeconds?: number; backoffCoefficient?: number; maxIntervalSeconds?: number };
}

/** Defaults per `<family>:<name>` for every spec that declares some; a step's own values win over them. */
export function catalogDefaults(catalog: ActivityCatalog): Record<string, CatalogDefaults> {
  const out: Record<string, CatalogDefaults> = {};
  for (const [family, specs] of Object.entries(catalog)) {
    for (const spec of specs) {
      if (spec.defaults && (spec.defaults.timeoutSeconds !== undefined || spec.defaults.retry !== undefined)) {
        out[`${family}:${spec.name}`] = {
          ...(spec.defaults.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.defaults.timeoutSeconds }),
          ...(spec.defaults.retry === undefined ? {} : { retry: { ...spec.defaults.retry } }),
        };
      }
    }
  }
  return out;
}

const FAMILY_LABEL: Record<ActivityKind, string> = { skills: 'skill', integrations: 'integration', models: 'model step', agents: 'agent' };

/** A zod schema as the JSON Schema of what it produces (closed objects stay closed). */
function outputJsonSchema(schema: z.ZodType): Record<string, unknown> | undefined {
  try {
    return z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** What a registry agent's step returns (workflows/agent.ts, AgentResult); `output` follows its output_schema. */
function agentResultSchema(agent: AgentDefinition): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    properties: {
      output: agent.output_schema ?? {},
      text: { type: 'string' },
      iterations: { type: 'number' },
      toolCalls: { type: 'array', items: {} },
      usage: {
        type: 'object',
        additionalProperties: false,
        properties: { inputTokens: { type: 'number' }, outputTokens: { type: 'number' } },
      },
      routes: { type: 'array', items: { type: 'string' } },
    },
  };
}

/**
 * The output contract of every skill, integration, model and agent, keyed `<family>:<name>`, for
 * the validator's output checks (ValidationContext.outputs). Registry agents run as child
 * workflows and return an AgentResult whatever activity shares their name.
 */
export function outputContracts(catalog: ActivityCatalog, agents: Iterable<AgentDefinition> = []): Map<string, OutputContract> {
  const contracts = new Map<string, OutputContract>();
  for (const [family, specs] of Object.entries(catalog) as Array<[ActivityKind, SkillSpec[]]>) {
    for (const spec of specs) {
      const schema = outputJsonSchema(spec.output);
      const label = family === 'models' ? 'the model call' : `${FAMILY_LABEL[family]} "${spec.name}"`;
      if (schema) contracts.set(`${family}:${spec.name}`, { label, schema });
    }
  }
  for (const agent of agents) contracts.set(`agents:${agent.name}`, { label: `agent "${agent.name}"`, schema: agentResultSchema(agent) });
  return contracts;
}
