import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Config } from '../../common/config.ts';
import { catalogNames, type ActivityCatalog } from '../catalog.ts';
import { loadMcpServers, type McpServers } from './mcp.ts';
import type { AgentDefinition, AgentTool } from './types.ts';

/**
 * The agent registry: agent definitions (model route, system prompt, tools, guardrails) from the
 * built-ins plus AGENTS_FILE (JSON or YAML), validated once at startup. The API pins the
 * definitions a run's agent steps use into its input, so a run never sees a later edit.
 */

/**
 * Hard cap on an agent's turns. Every turn is a few history events (model call, tool calls), so
 * a capped loop stays well inside Temporal's history limits without continue-as-new.
 */
export const MAX_AGENT_ITERATIONS = 100;
/** Hard cap on an agent run's wall-clock timeout (a day). */
export const MAX_AGENT_TIMEOUT_SECONDS = 24 * 3600;

const toolName = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'tool names start with a letter and use letters, digits, "_", "." or "-" (at most 64)');

const toolSchema = z.strictObject({
  name: toolName,
  kind: z.enum(['skill', 'integration', 'mcp']),
  target: z.string().min(1).max(200).optional(),
  server: z.string().min(1).max(64).optional(),
  description: z.string().max(4000).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  risk: z.enum(['normal', 'high']).optional(),
  approvers: z.array(z.string().min(1).max(200)).min(1).max(100).optional(),
});

const guardrailsSchema = z.strictObject({
  max_iterations: z.number().int().min(1).max(MAX_AGENT_ITERATIONS),
  allowed_tools: z.array(z.string().min(1)).optional(),
  token_budget: z.number().int().min(1).optional(),
  timeout_seconds: z.number().int().min(1).max(MAX_AGENT_TIMEOUT_SECONDS).optional(),
});

export const agentDefinitionSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,99}$/, 'agent names start with a letter and use letters, digits, "_" or "-" (at most 100)'),
  description: z.string().min(1).max(2000),
  model: z.string().min(1).max(200),
  system_prompt: z.string().min(1).max(100_000),
  tools: z.array(toolSchema).max(64).default([]),
  guardrails: guardrailsSchema,
  max_tokens: z.number().int().min(1).max(200_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  output_schema: z.record(z.string(), z.unknown()).optional(),
});

const agentsFileSchema = z.union([z.array(z.unknown()), z.strictObject({ agents: z.array(z.unknown()) })]);

/** Agents every installation has. None yet: agents depend on the installation's model routes and tools. */
export const BUILTIN_AGENTS: readonly AgentDefinition[] = [];

/** One problem in the agents file, at a JSON pointer. */
export interface AgentProblem {
  pointer: string;
  message: string;
}

export class AgentRegistryError extends Error {
  override name = 'AgentRegistryError';
  constructor(
    readonly source: string,
    readonly problems: AgentProblem[],
  ) {
    super(`${source} is invalid:\n  ${problems.map((p) => `${p.pointer || '/'}: ${p.message}`).join('\n  ')}`);
  }
}

export interface AgentRegistry {
  readonly agents: ReadonlyMap<string, AgentDefinition>;
  /** Agent names, for the definition validator. */
  names(): Set<string>;
  get(name: string): AgentDefinition | undefined;
}

/** What validation checks tools against; omitted parts go unchecked. */
export interface AgentRegistryContext {
  catalog?: ActivityCatalog;
  mcpServers?: McpServers;
  /** Model routes and aliases of the routing table. */
  models?: ReadonlySet<string>;
}

const pointerOf = (path: ReadonlyArray<PropertyKey>) => path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

/** JSON Schema of a catalog skill's input, for the model's function declaration. */
function parametersOf(catalog: ActivityCatalog | undefined, tool: AgentTool): Record<string, unknown> | undefined {
  if (tool.kind === 'mcp' || !catalog) return undefined;
  const spec = (tool.kind === 'skill' ? catalog.skills : catalog.integrations).find((s) => s.name === (tool.target ?? tool.name));
  if (!spec) return undefined;
  try {
    const schema = z.toJSONSchema(spec.input, { unrepresentable: 'any' }) as Record<string, unknown>;
    delete schema.$schema;
    return schema.type === 'object' ? schema : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Validates agent definitions: the shape (zod), then what the shape cannot say: unique names,
 * tool targets in the catalog, MCP servers configured, allowed tools among the agent's tools.
 * Returns the definitions with skill tools' parameters filled from the skills' schemas.
 */
export function validateAgents(raw: unknown[], ctx: AgentRegistryContext = {}, base = ''): { agents: AgentDefinition[]; problems: AgentProblem[] } {
  const problems: AgentProblem[] = [];
  const agents: AgentDefinition[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item, index) => {
    const at = `${base}/${index}`;
    const parsed = agentDefinitionSchema.safeParse(item);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ pointer: `${at}${pointerOf(issue.path)}`, message: issue.message });
      return;
    }
    const agent = parsed.data as AgentDefinition;
    if (seen.has(agent.name)) problems.push({ pointer: `${at}/name`, message: `agent "${agent.name}" is already defined at ${base}/${seen.get(agent.name)}` });
    seen.set(agent.name, index);
    if (ctx.models && !ctx.models.has(agent.model)) {
      problems.push({ pointer: `${at}/model`, message: `unknown model "${agent.model}"; routes and aliases: ${[...ctx.models].sort().join(', ') || '(none)'}` });
    }
    const toolNames = new Set<string>();
    agent.tools.forEach((tool, t) => {
      const tp = `${at}/tools/${t}`;
      if (toolNames.has(tool.name)) problems.push({ pointer: `${tp}/name`, message: `tool "${tool.name}" is listed twice` });
      toolNames.add(tool.name);
      if (tool.kind === 'mcp') {
        if (!tool.server) problems.push({ pointer: `${tp}/server`, message: 'an mcp tool names its server' });
        else if (ctx.mcpServers && !ctx.mcpServers[tool.server]) {
          problems.push({ pointer: `${tp}/server`, message: `no MCP server "${tool.server}" is configured (MCP_SERVERS: ${Object.keys(ctx.mcpServers).join(', ') || 'none'})` });
        }
      } else {
        if (tool.server) problems.push({ pointer: `${tp}/server`, message: `only mcp tools name a server` });
        const family = tool.kind === 'skill' ? ctx.catalog?.skills : ctx.catalog?.integrations;
        const target = tool.target ?? tool.name;
        if (family && !family.some((s) => s.name === target)) {
          problems.push({ pointer: `${tp}/${tool.target ? 'target' : 'name'}`, message: `unknown ${tool.kind} "${target}"; known: ${family.map((s) => s.name).sort().join(', ') || '(none)'}` });
        }
      }
      if (tool.approvers && tool.risk !== 'high') problems.push({ pointer: `${tp}/approvers`, message: 'approvers apply to tools with risk "high" only' });
      const parameters = tool.parameters ?? parametersOf(ctx.catalog, tool);
      if (parameters) tool.parameters = parameters;
    });
    agent.guardrails.allowed_tools?.forEach((name, i) => {
      if (!toolNames.has(name)) problems.push({ pointer: `${at}/guardrails/allowed_tools/${i}`, message: `"${name}" is not one of the agent's tools (${[...toolNames].join(', ') || 'none'})` });
    });
    agents.push(agent);
  });
  return { agents, problems };
}

/** Reads AGENTS_FILE: a list of agents, or `{agents: [...]}`, as JSON or YAML. */
function readAgentsFile(path: string): { items: unknown[]; base: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AgentRegistryError(`AGENTS_FILE (${path})`, [{ pointer: '', message: `cannot be read: ${(error as Error).message}` }]);
  }
  let raw: unknown;
  try {
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new AgentRegistryError(`AGENTS_FILE (${path})`, [{ pointer: '', message: `not ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(error as Error).message}` }]);
  }
  const parsed = agentsFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new AgentRegistryError(`AGENTS_FILE (${path})`, [{ pointer: '', message: 'expected a list of agents or {"agents": [...]}' }]);
  }
  return Array.isArray(parsed.data) ? { items: parsed.data, base: '' } : { items: parsed.data.agents, base: '/agents' };
}

/** Builds a registry from already-validated definitions. */
export function createAgentRegistry(agents: readonly AgentDefinition[]): AgentRegistry {
  const map = new Map(agents.map((a) => [a.name, a]));
  return {
    agents: map,
    names: () => new Set(map.keys()),
    get: (name) => map.get(name),
  };
}

/**
 * Loads the installation's agents: the built-ins, then AGENTS_FILE (a file agent replaces a
 * built-in of the same name). Throws AgentRegistryError listing every problem with its pointer
 * (`/agents/<i>/...` for `{agents: [...]}` files, `/<i>/...` for lists).
 */
export function loadAgentRegistry(
  config: Pick<Config, 'AGENTS_FILE' | 'MCP_SERVERS' | 'MCP_SERVERS_FILE'>,
  catalog?: ActivityCatalog,
): AgentRegistry {
  const byName = new Map(BUILTIN_AGENTS.map((a) => [a.name, a]));
  if (config.AGENTS_FILE) {
    const { items, base } = readAgentsFile(config.AGENTS_FILE);
    const ctx: AgentRegistryContext = { mcpServers: loadMcpServers(config), ...(catalog ? { catalog, models: catalogNames(catalog).models } : {}) };
    const { agents, problems } = validateAgents(items, ctx, base);
    if (problems.length > 0) throw new AgentRegistryError(`AGENTS_FILE (${config.AGENTS_FILE})`, problems);
    for (const a of agents) byName.set(a.name, a);
  }
  return createAgentRegistry([...byName.values()]);
}

/** The agents a set of names resolves to (unknown names are skipped: they call an activity). */
export function pinAgents(registry: AgentRegistry, names: Iterable<string>): Record<string, AgentDefinition> {
  const pinned: Record<string, AgentDefinition> = {};
  for (const name of names) {
    const agent = registry.get(name);
    if (agent) pinned[name] = agent;
  }
  return pinned;
}
