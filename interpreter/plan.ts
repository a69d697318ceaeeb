import type { CompiledExpression } from './expressions.ts';
import type { OutputContracts } from './output-shapes.ts';
import type { CompiledValue } from './references.ts';
import type { CompiledActivityStep } from './steps/activity.ts';
import type { CompiledApprovalStep } from './steps/approval.ts';
import type { CompiledBlockStep } from './steps/block.ts';
import type { CompiledConditionalStep } from './steps/conditional.ts';
import type { CompiledFailStep } from './steps/fail.ts';
import type { CompiledForEachStep } from './steps/for-each.ts';
import type { CompiledLoopStep } from './steps/loop.ts';
import type { CompiledParallelStep } from './steps/parallel.ts';
import type { CompiledSetStep } from './steps/set.ts';
import type { CompiledSubWorkflowStep } from './steps/sub-workflow.ts';
import type { CompiledSucceedStep } from './steps/succeed.ts';
import type { CompiledSwitchStep } from './steps/switch.ts';
import type { CompiledWaitForEventStep } from './steps/wait-for-event.ts';
import type { CompiledWaitStep } from './steps/wait.ts';

/**
 * The compiled plan the engine executes, and what every compiled step carries. Each step kind's
 * own compiled shape lives in its module (interpreter/steps/<kind>.ts).
 */

/** The activity families, each on its own task queue per lane. */
export type ActivityFamily = 'skills' | 'integrations' | 'models' | 'agents';

/** The retry policy a step runs with, after defaults and the hard cap. */
export interface EffectiveRetry {
  maxAttempts: number;
  initialIntervalSeconds: number;
  maxIntervalSeconds: number;
  backoffCoefficient: number;
  /** `linear` cannot be expressed as a Temporal retry policy; the engine spaces those attempts. */
  linear: boolean;
  nonRetryableErrorTypes: string[];
}

/** What happens after a step's last attempt fails. */
export type OnError =
  | { action: 'halt' }
  | { action: 'skip' }
  | { action: 'rollback' }
  | { action: 'custom'; handler: CompiledStep[] };

export interface StepBase {
  id: string;
  /** JSON Pointer of the step in the definition, e.g. `/steps/2/then/0`. */
  pointer: string;
  if?: CompiledExpression;
  /** Seconds: start-to-close for activities, a deadline for everything else. */
  timeoutSeconds?: number;
  retry: EffectiveRetry;
  onError: OnError;
  compensate?: CompiledStep[];
}

/** Any compiled step: what the engine handles without knowing its kind. */
export interface AnyCompiledStep extends StepBase {
  kind: string;
}

export type CompiledStep =
  | CompiledApprovalStep
  | CompiledActivityStep
  | CompiledParallelStep
  | CompiledForEachStep
  | CompiledLoopStep
  | CompiledConditionalStep
  | CompiledBlockStep
  | CompiledSwitchStep
  | CompiledWaitStep
  | CompiledWaitForEventStep
  | CompiledSetStep
  | CompiledSubWorkflowStep
  | CompiledFailStep
  | CompiledSucceedStep;

export interface Plan {
  steps: CompiledStep[];
  /** The event types that start this definition, each with its optional filter (`event` bound). */
  eventTriggers: Array<{ event: string; filter?: CompiledExpression }>;
  output?: CompiledValue;
  /** Saga rollback after a failure or cancellation. */
  rollback: { enabled: boolean; steps: CompiledStep[] };
  /** Whether any path can roll back (so cancellation compensates too). */
  rollsBackOnCancel: boolean;
  /** Caps activity steps in flight at once (resource_limits.max_concurrent_steps). */
  maxConcurrentSteps?: number;
  /** Every step by id (nested, handler and compensation steps included). */
  byId: Map<string, CompiledStep>;
  /** For each composite step, the ids of every step nested inside it. */
  descendants: Map<string, string[]>;
}

/** What the installation can run, for the registration-time checks. */
export interface Catalog {
  skills: ReadonlySet<string>;
  integrations: ReadonlySet<string>;
  agents: ReadonlySet<string>;
  /** Model routes and aliases; model names go unchecked when absent. */
  models?: ReadonlySet<string>;
  /** `name@version` of the definitions a sub_workflow may call. */
  definitions: ReadonlySet<string>;
  /** Registered output schemas by `<family>:<name>`: declared outputs and reads of them are checked. */
  outputs?: OutputContracts;
}
