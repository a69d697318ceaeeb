import type { Definition, Step } from './schema.ts';
import { stepKindOf } from './steps/registry.ts';

/** Walking a definition's steps: every kind names its own nested lists (StepKind.children). */

/** The nested step lists of a step, with their field path relative to the step. */
export function childLists(step: Step): Array<[string, Step[]]> {
  const lists = [...(stepKindOf(step.type)?.children?.(step) ?? [])];
  if (step.compensate) lists.push(['compensate', step.compensate]);
  return lists;
}

/** Every step in a list, nested ones included, with its JSON Pointer and nesting depth. */
export function walkSteps(
  steps: readonly Step[],
  pointer: string,
  visit: (step: Step, pointer: string, depth: number) => void,
  depth = 1,
): void {
  steps.forEach((step, index) => {
    const at = `${pointer}/${index}`;
    visit(step, at, depth);
    for (const [field, children] of childLists(step)) walkSteps(children, `${at}/${field}`, visit, depth + 1);
  });
}

/** The ids of these steps and of every step nested in them, in walking order. */
export function stepIdsIn(steps: readonly Step[]): string[] {
  const ids: string[] = [];
  walkSteps(steps, '', (s) => ids.push(s.id));
  return ids;
}

/** Groups named by the approval steps (and escalations) of these definitions. */
export function approverGroups(definitions: readonly Definition[]): string[] {
  const groups = new Set<string>();
  for (const definition of definitions) {
    walkSteps(definition.steps, '', (step) => {
      if (step.type !== 'approval') return;
      for (const g of step.approvers.groups ?? []) groups.add(g);
      for (const g of step.escalation?.approvers.groups ?? []) groups.add(g);
    });
  }
  return [...groups];
}
