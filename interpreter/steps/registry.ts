import type { AnyCompiledStep } from '../plan.ts';
import { agentKind, directiveKind, integrationKind, skillKind } from './activity.ts';
import { approvalKind } from './approval.ts';
import { blockKind } from './block.ts';
import { conditionalKind } from './conditional.ts';
import { failKind } from './fail.ts';
import { forEachKind } from './for-each.ts';
import type { StepExecutor, StepKind, StepLike } from './kind.ts';
import { loopKind } from './loop.ts';
import { modelKind } from './model.ts';
import { parallelKind } from './parallel.ts';
import { setKind } from './set.ts';
import { subWorkflowKind } from './sub-workflow.ts';
import { succeedKind } from './succeed.ts';
import { switchKind } from './switch.ts';
import { waitForEventKind } from './wait-for-event.ts';
import { waitKind } from './wait.ts';

/**
 * The step kinds, in the order the schema's union, its error message and the step reference list
 * them. Adding a kind is one module under interpreter/steps/ and one line here.
 */
export const BUILT_IN_STEP_KINDS = [
  skillKind,
  integrationKind,
  directiveKind,
  agentKind,
  modelKind,
  parallelKind,
  forEachKind,
  loopKind,
  conditionalKind,
  switchKind,
  blockKind,
  waitKind,
  waitForEventKind,
  setKind,
  subWorkflowKind,
  failKind,
  succeedKind,
  approvalKind,
] as const;

export type BuiltInStepKind = (typeof BUILT_IN_STEP_KINDS)[number];

const byType = new Map<string, StepKind>();
const executors = new Map<string, StepExecutor>();

/**
 * Adds a step kind to what the compiler and the engine know. The built-in kinds are registered
 * here; a kind registered later (e.g. from a test) compiles and runs, but the definition schema
 * (interpreter/schema.ts) is assembled from BUILT_IN_STEP_KINDS when it loads.
 */
export function registerStepKind<S extends StepLike, C extends AnyCompiledStep>(kind: StepKind<S, C>): void {
  if (byType.has(kind.type)) throw new Error(`step type "${kind.type}" is already registered`);
  const known = executors.get(kind.kind);
  if (known && known !== (kind.executor as unknown)) throw new Error(`compiled kind "${kind.kind}" already has another executor`);
  byType.set(kind.type, kind as unknown as StepKind);
  executors.set(kind.kind, kind.executor as unknown as StepExecutor);
}

for (const kind of BUILT_IN_STEP_KINDS) registerStepKind(kind as unknown as StepKind);

/** The kind of a written step (`type`); undefined for a type nobody registered. */
export function stepKindOf(type: string): StepKind | undefined {
  return byType.get(type);
}

/** The executor of a compiled step's `kind`. */
export function executorOf(step: AnyCompiledStep): StepExecutor {
  const executor = executors.get(step.kind);
  if (!executor) throw new Error(`no executor for compiled step kind "${step.kind}"`);
  return executor;
}
