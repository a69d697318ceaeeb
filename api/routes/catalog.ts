import { Router } from 'express';
import { z } from 'zod';
import { handle } from '../contract.ts';
import { platformContracts } from '../contracts/platform.ts';
import type { AgentRegistry } from '../../activities/agents/registry.ts';
import type { ActivityCatalog } from '../../activities/catalog.ts';
import { modelNamesOf } from '../../activities/models/generate.ts';
import type { SkillSpec } from '../../activities/skills/skill.ts';

/**
 * What a definition can call on this installation: the skills and integrations with their input
 * and output JSON Schemas, the registry agents, the model routes and the lanes. The same catalog
 * the validator checks names against; the `workflow create` wizard suggests from it.
 */
export interface CatalogView {
  skills: ActivityView[];
  integrations: ActivityView[];
  agents: Array<{ name: string; description: string; model?: string; tools?: string[]; outputSchema?: Record<string, unknown> }>;
  models: string[];
  lanes: string[];
  defaultLane: string;
}

export interface ActivityView {
  name: string;
  description: string;
  sideEffects: boolean;
  input: Record<string, unknown>;
  output: Record<string, unknown>;
  secretInputs?: string[];
  defaults?: SkillSpec['defaults'];
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  try {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
    delete json.$schema;
    return json;
  } catch {
    return {};
  }
}

const activityView = (spec: SkillSpec): ActivityView => ({
  name: spec.name,
  description: spec.description,
  sideEffects: spec.sideEffects,
  input: jsonSchema(spec.input, 'input'),
  output: jsonSchema(spec.output, 'output'),
  ...(spec.secretInputs?.length ? { secretInputs: [...spec.secretInputs] } : {}),
  ...(spec.defaults ? { defaults: spec.defaults } : {}),
});

/** Built once at start: the catalog does not change while the API runs. */
export function catalogView(catalog: ActivityCatalog, agents: AgentRegistry | undefined, agentNames: ReadonlySet<string>, lanes: readonly string[], defaultLane: string): CatalogView {
  const registry = [...(agents?.agents.values() ?? [])].map((a) => ({
    name: a.name,
    description: a.description,
    model: a.model,
    tools: a.tools.map((t) => t.name),
    ...(a.output_schema ? { outputSchema: a.output_schema } : {}),
  }));
  const activityAgents = [...agentNames]
    .filter((n) => !registry.some((r) => r.name === n))
    .map((name) => ({ name, description: catalog.agents.find((s) => s.name === name)?.description ?? '' }));
  return {
    skills: catalog.skills.map(activityView),
    integrations: catalog.integrations.map(activityView),
    agents: [...registry, ...activityAgents].sort((a, b) => a.name.localeCompare(b.name)),
    models: [...new Set(catalog.models.flatMap((s) => modelNamesOf(s) ?? [s.name]))].sort(),
    lanes: [...lanes],
    defaultLane,
  };
}

export function catalogRoutes(deps: { catalogView?: CatalogView }): Router {
  const router = Router();
  handle(router, platformContracts.catalog, () => ({ status: 200, body: deps.catalogView ?? { skills: [], integrations: [], agents: [], models: [], lanes: [], defaultLane: '' } }));
  return router;
}
