import type { SearchAttributePair } from '@temporalio/common';
import type { AgentRegistry } from '../activities/agents/registry.ts';
import type { AgentDefinition } from '../activities/agents/types.ts';
import { MODEL_ACTIVITY } from '../common/constants.ts';
import { runSearchAttributePairs } from '../common/search-attributes.ts';
import { manifestOf, type Manifest } from '../interpreter/manifest.ts';
import type { Definition } from '../interpreter/schema.ts';
import type { RunInput } from '../workflows/types.ts';
import type { ApiKeyStore } from './auth.ts';
import type { DefinitionsStore, StoredDefinition } from './definitions-store.ts';

/** What a run pins when it starts, besides its own definition. */
export interface RunPins {
  /** Every definition its sub_workflow steps may start, transitively. */
  subDefinitions: NonNullable<RunInput['subDefinitions']>;
  /** Members of the groups its approval steps (and its children's) name. */
  directory: NonNullable<RunInput['directory']>;
  /** The registry agents its agent steps (and its children's) name. */
  agents?: Record<string, AgentDefinition>;
  /** Registered timeouts and retries of the skills, integrations and models its steps call. */
  activityDefaults?: NonNullable<RunInput['activityDefaults']>;
}

/** The registered defaults of the activities these definitions' steps call. */
export function defaultsFor(all: NonNullable<RunInput['activityDefaults']> | undefined, bodies: readonly Definition[]): NonNullable<RunInput['activityDefaults']> {
  return defaultsOf(all, bodies.map(manifestOf));
}

/** The registered defaults of the activities these manifests name. */
function defaultsOf(all: NonNullable<RunInput['activityDefaults']> | undefined, manifests: readonly Manifest[]): NonNullable<RunInput['activityDefaults']> {
  const used: NonNullable<RunInput['activityDefaults']> = {};
  if (!all) return used;
  const take = (key: string) => {
    const found = all[key];
    if (found) used[key] = found;
  };
  for (const { dependencies: d } of manifests) {
    for (const name of d.skills) take(`skills:${name}`);
    for (const name of d.integrations) take(`integrations:${name}`);
    if (d.models) take(`models:${MODEL_ACTIVITY}`);
    for (const name of d.agents) take(`agents:${name}`);
  }
  return used;
}

/** The registry agents these manifests name, and the groups their high-risk tools' approvers name. */
function agentPins(registry: AgentRegistry | undefined, manifests: readonly Manifest[]): { agents: Record<string, AgentDefinition>; groups: string[] } {
  const agents: Record<string, AgentDefinition> = {};
  if (!registry) return { agents, groups: [] };
  for (const name of manifests.flatMap((m) => m.dependencies.agents)) {
    const agent = registry.get(name);
    if (agent) agents[name] = agent;
  }
  const groups = Object.values(agents).flatMap((a) =>
    a.tools.flatMap((t) => (t.approvers ?? []).filter((p) => p.startsWith('group:')).map((p) => p.slice('group:'.length))),
  );
  return { agents, groups };
}

/**
 * What a run of `root` pins, from the manifests of it and of every definition its sub_workflow
 * steps start (interpreter/manifest.ts): the stored ones of registered versions, computed only for
 * a definition that is not stored (a dry run's).
 */
export async function pinRunDependencies(definitions: DefinitionsStore, keys: ApiKeyStore, tenant: string, root: { body: Definition; manifest?: Manifest }): Promise<RunPins> {
  const rootManifest = root.manifest ?? manifestOf(root.body);
  const children = await definitions.subDefinitions(tenant, rootManifest);
  const manifests = [rootManifest, ...Object.values(children).map((c) => c.manifest)];
  const subDefinitions = Object.fromEntries(Object.entries(children).map(([key, c]) => [key, { definition: c.definition, hash: c.hash }]));
  const pinned = agentPins(definitions.pinning.agents, manifests);
  const groups = [...new Set([...manifests.flatMap((m) => m.dependencies.approverGroups), ...pinned.groups])];
  const activityDefaults = defaultsOf(definitions.pinning.activityDefaults, manifests);
  return {
    subDefinitions,
    directory: keys.groupMembers(tenant, groups),
    ...(Object.keys(pinned.agents).length > 0 ? { agents: pinned.agents } : {}),
    ...(Object.keys(activityDefaults).length > 0 ? { activityDefaults } : {}),
  };
}

export interface RunIdentity {
  tenant: string;
  startedBy: string;
  correlationId: string;
  /** The event that caused the run, when one did. */
  trigger?: { event: { id: string; [key: string]: unknown } };
}

/** The interpreter's input for a run of `definition`, the same for API, event and scheduled starts. */
export function runInputFor(
  definition: StoredDefinition,
  input: unknown,
  who: RunIdentity,
  pins: RunPins | undefined,
  continueAsNewAfterEvents: number | undefined,
): RunInput {
  return {
    definition: definition.body,
    definitionHash: definition.hash,
    input: input ?? null,
    lane: definition.lane,
    tenant: who.tenant,
    startedBy: who.startedBy,
    correlationId: who.correlationId,
    // Every run the API starts emits lifecycle events (GET /v1/runs/{id}/events, webhooks).
    recordEvents: true,
    ...(continueAsNewAfterEvents ? { continueAsNewAfterEvents } : {}),
    ...(pins && Object.keys(pins.subDefinitions).length > 0 ? { subDefinitions: pins.subDefinitions } : {}),
    ...(pins && Object.keys(pins.directory).length > 0 ? { directory: pins.directory } : {}),
    ...(pins?.agents && Object.keys(pins.agents).length > 0 ? { agents: pins.agents } : {}),
    ...(pins?.activityDefaults && Object.keys(pins.activityDefaults).length > 0 ? { activityDefaults: pins.activityDefaults } : {}),
    ...(who.trigger ? { trigger: who.trigger, causationId: who.trigger.event.id } : {}),
  };
}

/** The search attributes every run carries (Temporal Web filters on them). */
export function runSearchAttributes(definition: StoredDefinition, who: RunIdentity): SearchAttributePair[] {
  return runSearchAttributePairs({
    definition: definition.name,
    version: definition.version,
    lane: definition.lane,
    tenant: who.tenant,
    startedBy: who.startedBy,
    correlationId: who.correlationId,
    ...(who.trigger ? { causationId: who.trigger.event.id } : {}),
  });
}
