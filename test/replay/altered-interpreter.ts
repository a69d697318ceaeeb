/**
 * Test-only workflow bundle entry (replay.test.ts bundles it): a workflow registered as
 * `interpreter`, the type the golden histories recorded, that wraps the real interpreter with a
 * deliberate change. It proves the replay test fails when the interpreter's commands change. The
 * workflow id the replay runs under picks the change:
 *
 *   altered-passthrough/…       no change: the control (the wrapper alone must replay cleanly)
 *   altered-extra-timer/…       a 1 ms timer before the definition runs
 *   altered-renamed-activity/…  the first top-level skill step calls `<skill>-v2` instead
 */
import { sleep, workflowInfo } from '@temporalio/workflow';
import type { Definition } from '../../interpreter/schema.ts';
import { interpreter as realInterpreter } from '../../workflows/interpreter.ts';
import type { RunInput, RunResult } from '../../workflows/types.ts';

export const ALTERATIONS = ['passthrough', 'extra-timer', 'renamed-activity'] as const;
export type Alteration = (typeof ALTERATIONS)[number];

function renameFirstSkill(definition: Definition): Definition {
  let renamed = false;
  const steps = definition.steps.map((step) => {
    if (renamed || step.type !== 'skill') return step;
    renamed = true;
    return { ...step, skill: `${step.skill}-v2` };
  });
  if (!renamed) throw new Error('the definition has no top-level skill step to rename');
  return { ...definition, steps };
}

export async function interpreter(args: RunInput): Promise<RunResult> {
  const alteration = ALTERATIONS.find((a) => workflowInfo().workflowId.startsWith(`altered-${a}/`));
  switch (alteration) {
    case 'passthrough':
      return realInterpreter(args);
    case 'extra-timer':
      await sleep(1);
      return realInterpreter(args);
    case 'renamed-activity':
      return realInterpreter({ ...args, definition: renameFirstSkill(args.definition) });
    default:
      throw new Error(`replay this bundle under a workflow id "altered-<${ALTERATIONS.join('|')}>/…"`);
  }
}
