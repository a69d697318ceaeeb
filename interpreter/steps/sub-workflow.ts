import { z } from 'zod';
import type { StepBase } from '../plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../references.ts';
import type { StepKind } from './kind.ts';
import { common, compensable, type Compensable } from './parts.ts';

export interface CompiledSubWorkflowStep extends StepBase {
  kind: 'sub_workflow';
  definition: string;
  version: string;
  inputs: CompiledValue;
}

const subWorkflowOwn = z.strictObject({
  ...common,
  type: z.literal('sub_workflow'),
  /** Name of another registered definition of the same tenant. */
  definition: z.string().min(1).max(100),
  /** The exact version the child runs: pinned, never "latest". */
  version: z
    .string()
    .regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$/, 'pin a semantic version such as "1.0.0"'),
  /** The child run's input (templates allowed). */
  inputs: z.unknown().optional(),
});
export type SubWorkflowStep = z.infer<typeof subWorkflowOwn> & Compensable;
export const subWorkflowStepSchema = subWorkflowOwn.extend(compensable);

export const subWorkflowKind: StepKind<SubWorkflowStep, CompiledSubWorkflowStep> = {
  type: 'sub_workflow',
  kind: 'sub_workflow',
  schema: subWorkflowStepSchema,
  doc: 'Runs another registered definition (`definition` at the pinned `version`) as a child run with `inputs`; the child\'s output is the step\'s.',
  compile(step, base, { catalog, scope, pointer, problems }) {
    if (catalog && !catalog.definitions.has(`${step.definition}@${step.version}`)) {
      problems.push({ pointer: `${pointer}/definition`, message: `no registered definition "${step.definition}" version "${step.version}"` });
    }
    return {
      ...base,
      kind: 'sub_workflow',
      definition: step.definition,
      version: step.version,
      inputs: compileValue(step.inputs ?? {}, scope, `${pointer}/inputs`, problems),
    };
  },
  executor: {
    reportsSettle: true,
    execute(step, { frame, runner }) {
      const input = resolveValue(step.inputs, runner.data(frame));
      return runner.waited(
        runner.limited(() => runner.port.runChild({ stepId: step.id, stepPath: frame.path + step.id, definition: step.definition, version: step.version, input })),
      );
    },
  },
};
