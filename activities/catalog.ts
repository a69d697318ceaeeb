import type { Config } from '../common/config.ts';
import type { ActivityKind } from '../common/constants.ts';
import { createIntegrationRegistry } from './integrations/registry.ts';
import { createSkillRegistry } from './skills/registry.ts';
import type { SkillSpec } from './skills/skill.ts';

/** Everything the workers of a lane can run, by activity family (each family has its own task queue). */
export type ActivityCatalog = Record<ActivityKind, SkillSpec[]>;

/**
 * The installation's catalog: built-in skills and integrations (agents arrive with their own
 * registry). `extra` adds implementations, e.g. the test suites' stand-ins for the seed documents'
 * skills; a name may appear once per family.
 */
export function createActivityCatalog(config: Pick<Config, 'HTTP_FETCH_ALLOWED_HOSTS'>, extra: Partial<ActivityCatalog> = {}): ActivityCatalog {
  const catalog: ActivityCatalog = {
    skills: [...createSkillRegistry(config), ...(extra.skills ?? [])],
    integrations: [...createIntegrationRegistry(config), ...(extra.integrations ?? [])],
    models: [...(extra.models ?? [])],
    agents: [...(extra.agents ?? [])],
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
    models: new Set(catalog.models.map((s) => s.name)),
    agents: new Set(catalog.agents.map((s) => s.name)),
  };
}
