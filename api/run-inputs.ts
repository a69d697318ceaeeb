import type { SearchAttributePair } from '@temporalio/common';
import { SA } from '../common/search-attributes.ts';
import { approverGroups } from '../interpreter/compile.ts';
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
}

export async function pinRunDependencies(definitions: DefinitionsStore, keys: ApiKeyStore, tenant: string, body: Definition): Promise<RunPins> {
  const subDefinitions = await definitions.subDefinitions(tenant, body);
  const groups = approverGroups([body, ...Object.values(subDefinitions).map((d) => d.definition)]);
  return { subDefinitions, directory: keys.groupMembers(tenant, groups) };
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
    ...(continueAsNewAfterEvents ? { continueAsNewAfterEvents } : {}),
    ...(pins && Object.keys(pins.subDefinitions).length > 0 ? { subDefinitions: pins.subDefinitions } : {}),
    ...(pins && Object.keys(pins.directory).length > 0 ? { directory: pins.directory } : {}),
    ...(who.trigger ? { trigger: who.trigger, causationId: who.trigger.event.id } : {}),
  };
}

/** The search attributes every run carries (Temporal Web filters on them). */
export function runSearchAttributes(definition: StoredDefinition, who: RunIdentity): SearchAttributePair[] {
  return [
    { key: SA.definition, value: definition.name },
    { key: SA.version, value: definition.version },
    { key: SA.lane, value: definition.lane },
    { key: SA.tenant, value: who.tenant },
    { key: SA.startedBy, value: who.startedBy },
    { key: SA.correlationId, value: who.correlationId },
    ...(who.trigger ? [{ key: SA.causationId, value: who.trigger.event.id }] : []),
  ];
}
