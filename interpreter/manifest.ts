import type { Definition } from './schema.ts';
import { walkSteps } from './walk.ts';

/**
 * What a definition needs besides itself, found in one walk of its steps when it is registered and
 * stored beside it (`definitions.manifest`), so starting a run pins its dependencies from the
 * manifest instead of walking the raw steps again per kind (api/run-inputs.ts). The executable plan
 * is not stored: the interpreter compiles the definition inside the workflow, deterministically,
 * from the definition in the run's input (what replay needs).
 */
export interface Manifest {
  format: 1;
  dependencies: {
    /** `name@version` of every definition its sub_workflow steps start (not transitively). */
    definitions: Array<{ definition: string; version: string }>;
    skills: string[];
    integrations: string[];
    agents: string[];
    /** Whether a `model` step calls the model gateway. */
    models: boolean;
    /** Groups its approval steps and their escalations name. */
    approverGroups: string[];
  };
}

export const MANIFEST_FORMAT = 1;

/** The manifest of a (valid) definition. */
export function manifestOf(definition: Definition): Manifest {
  const definitions = new Map<string, { definition: string; version: string }>();
  const skills = new Set<string>();
  const integrations = new Set<string>();
  const agents = new Set<string>();
  const groups = new Set<string>();
  let models = false;
  walkSteps(definition.steps, '', (step) => {
    switch (step.type) {
      case 'skill':
        skills.add(step.skill);
        break;
      case 'integration':
        integrations.add(step.integration);
        break;
      case 'directive':
        integrations.add(step.directive);
        break;
      case 'model':
        models = true;
        break;
      case 'agent': {
        const name = step.agent ?? step.agent_ref?.slug;
        if (name !== undefined) agents.add(name);
        break;
      }
      case 'sub_workflow':
        definitions.set(`${step.definition}@${step.version}`, { definition: step.definition, version: step.version });
        break;
      case 'approval':
        for (const g of step.approvers.groups ?? []) groups.add(g);
        for (const g of step.escalation?.approvers.groups ?? []) groups.add(g);
        break;
      default:
        break;
    }
  });
  return {
    format: MANIFEST_FORMAT,
    dependencies: { definitions: [...definitions.values()], skills: [...skills], integrations: [...integrations], agents: [...agents], models, approverGroups: [...groups] },
  };
}

/** A stored manifest this code reads as is; any other (none, an older format) is compiled again. */
export function isCurrentManifest(value: unknown): value is Manifest {
  return typeof value === 'object' && value !== null && (value as { format?: unknown }).format === MANIFEST_FORMAT;
}
