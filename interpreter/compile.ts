import { BINDING_NAMES, ROOT_NAMES, type BindingName, type CompileProblem, type CompiledExpression, type NameScope } from './expressions.ts';
import { MODEL_ACTIVITY } from '../common/constants.ts';
import { closedFields, type OutputContract, type OutputContracts } from './output-shapes.ts';
import { compileCondition, compileValue, pointerSegment, type CompiledValue } from './references.ts';
import {
  LIMITS,
  MAX_ATTEMPTS_CAP,
  MAX_WAIT_SECONDS,
  type Definition,
  type ErrorStrategy,
  type RetrySpec,
  type Step,
  type StepErrorPolicy,
} from './schema.ts';

/** Defaults for every activity step that does not say otherwise (invariant 3: all bounded). */
export const STEP_DEFAULTS = {
  timeoutSeconds: 30,
  maxAttempts: 3,
  initialIntervalSeconds: 1,
  maxIntervalSeconds: 30,
  backoffCoefficient: 2,
} as const;

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

interface StepBase {
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

export interface CompiledActivityStep extends StepBase {
  kind: 'activity';
  family: ActivityFamily;
  /** The activity's name: the skill, integration or agent. */
  name: string;
  /** The step type as written (`skill`, `integration`, `directive`, `agent`). */
  type: string;
  inputs: CompiledValue;
  /** Seed 004 `input: {"from_signal": true}`: the step's input is the triggering event. */
  fromSignal: boolean;
  outputs: string[];
  guardrails?: Record<string, unknown>;
  /** What the step (and its per-step policy) left unset: the skill's registered defaults apply there. */
  defaulted: { timeout: boolean; retry: boolean };
}

export interface CompiledParallelStep extends StepBase {
  kind: 'parallel';
  branches: CompiledStep[];
  waitFor: 'all' | 'any' | number;
  maxConcurrency: number;
}

export interface CompiledForEachStep extends StepBase {
  kind: 'for_each';
  items: CompiledValue;
  steps: CompiledStep[];
  maxConcurrency: number;
}

export interface CompiledLoopStep extends StepBase {
  kind: 'loop';
  condition: CompiledExpression;
  steps: CompiledStep[];
  maxIterations: number;
}

export interface CompiledConditionalStep extends StepBase {
  kind: 'conditional';
  condition: CompiledExpression;
  then: CompiledStep[];
  else: CompiledStep[];
}

export interface CompiledSwitchStep extends StepBase {
  kind: 'switch';
  value?: CompiledExpression;
  cases: Array<{ when?: CompiledExpression; equals?: unknown; steps: CompiledStep[] }>;
  default: CompiledStep[];
}

export interface CompiledWaitStep extends StepBase {
  kind: 'wait';
  durationMs?: number;
  /** A templated duration, computed when the step starts (seconds, duration text or ISO 8601). */
  duration?: CompiledValue;
  until?: CompiledValue;
}

export interface CompiledWaitForEventStep extends StepBase {
  kind: 'wait_for_event';
  event: string;
  filter?: CompiledExpression;
  onTimeout: 'fail' | 'continue';
}

export interface CompiledSetStep extends StepBase {
  kind: 'set';
  values: Array<[string, CompiledValue]>;
}

export interface CompiledSubWorkflowStep extends StepBase {
  kind: 'sub_workflow';
  definition: string;
  version: string;
  inputs: CompiledValue;
}

export interface CompiledFailStep extends StepBase {
  kind: 'fail';
  error: CompiledValue;
  /** A fixed type, or a template computed when the step fails. */
  errorType: string | CompiledValue;
}

export interface CompiledSucceedStep extends StepBase {
  kind: 'succeed';
  output?: CompiledValue;
}

export interface CompiledApprovalStage {
  approvers: { principals: string[]; groups: string[] };
  quorum: number;
  timeoutMs?: number;
  onTimeout: 'reject' | 'approve' | 'fail' | 'escalate';
}

export interface CompiledApprovalStep extends StepBase {
  kind: 'approval';
  summary?: CompiledValue;
  allowSelfApproval: boolean;
  /** The first approver set, then the escalation's when there is one. */
  stages: CompiledApprovalStage[];
  onReject: 'fail' | 'continue';
}

export type CompiledStep =
  | CompiledApprovalStep
  | CompiledActivityStep
  | CompiledParallelStep
  | CompiledForEachStep
  | CompiledLoopStep
  | CompiledConditionalStep
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

/** The output contract a step's callee registered, when the catalog knows one. */
export function outputContractOf(step: Step, outputs: OutputContracts | undefined): OutputContract | undefined {
  if (!outputs) return undefined;
  switch (step.type) {
    case 'skill':
      return outputs.get(`skills:${step.skill}`);
    case 'integration':
      return outputs.get(`integrations:${step.integration}`);
    case 'directive':
      return outputs.get(`integrations:${step.directive}`);
    case 'agent':
      return outputs.get(`agents:${step.agent ?? step.agent_ref?.slug ?? ''}`);
    case 'model': {
      const contract = outputs.get(`models:${MODEL_ACTIVITY}`);
      // The parsed reply (`json`) follows the step's own response_schema.
      if (!contract || step.response_schema === undefined) return contract;
      const properties = { ...(contract.schema.properties as Record<string, unknown> | undefined), json: step.response_schema };
      return { label: contract.label, schema: { ...contract.schema, properties } };
    }
    default:
      return undefined;
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration: seconds as a number, or text such as `1h30m`. */
const ISO_DURATION = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * A duration computed at run time, in milliseconds: seconds (a number), duration text (`90s`,
 * `1h30m`) or ISO 8601 (`PT1M30S`, `P1D`). Throws a message for anything else, or a negative or
 * too long wait.
 */
export function runtimeDurationMs(value: unknown): number {
  let ms: number | undefined;
  if (typeof value === 'number' && Number.isFinite(value)) ms = Math.round(value * 1000);
  else if (typeof value === 'string') {
    const iso = ISO_DURATION.exec(value);
    if (iso && value !== 'P' && !value.endsWith('T')) {
      const [d, h, m, sec] = iso.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number];
      ms = Math.round((((d * 24 + h) * 60 + m) * 60 + sec) * 1000);
    } else if (/^(\d+(\.\d+)?(ms|s|m|h|d)\s*)+$/.test(value)) ms = durationMs(value);
  }
  if (ms === undefined) throw new Error(`${JSON.stringify(value)} is not a duration (seconds, text such as "90s", or ISO 8601 such as "PT30S")`);
  if (ms < 0) throw new Error(`the duration ${JSON.stringify(value)} is negative`);
  if (ms > MAX_WAIT_SECONDS * 1000) throw new Error(`the wait is longer than ${MAX_WAIT_SECONDS / 86_400} days`);
  return ms;
}

export function durationMs(duration: number | string): number {
  if (typeof duration === 'number') return Math.round(duration * 1000);
  let total = 0;
  for (const m of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000);
  return Math.round(total);
}

function retryOf(spec: RetrySpec | undefined, policy: StepErrorPolicy | undefined, isActivity: boolean): EffectiveRetry {
  // A per-step policy's attempts and backoff describe the retries before its final action, whatever
  // that action is; the step's own `retry` block wins over both.
  const fallbackAttempts = isActivity ? STEP_DEFAULTS.maxAttempts : 1;
  const maxAttempts = spec?.max_attempts ?? policy?.max_attempts ?? fallbackAttempts;
  const backoff = spec?.backoff ?? policy?.backoff ?? 'exponential';
  return {
    maxAttempts: Math.min(maxAttempts, MAX_ATTEMPTS_CAP),
    initialIntervalSeconds: spec?.initial_interval ?? policy?.initial_interval ?? STEP_DEFAULTS.initialIntervalSeconds,
    maxIntervalSeconds: spec?.max_interval ?? policy?.max_interval ?? STEP_DEFAULTS.maxIntervalSeconds,
    backoffCoefficient: backoff === 'exponential' ? STEP_DEFAULTS.backoffCoefficient : 1,
    linear: backoff === 'linear',
    nonRetryableErrorTypes: spec?.non_retryable_errors ?? policy?.non_retryable_errors ?? [],
  };
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

/** The nested step lists of a step, with their field path relative to the step. */
export function childLists(step: Step): Array<[string, Step[]]> {
  const lists: Array<[string, Step[]]> = [];
  switch (step.type) {
    case 'parallel':
    case 'for_each':
    case 'loop':
      lists.push(['steps', step.steps]);
      break;
    case 'conditional':
      lists.push(['then', step.then]);
      if (step.else) lists.push(['else', step.else]);
      break;
    case 'switch':
      step.cases.forEach((c, i) => lists.push([`cases/${i}/steps`, c.steps]));
      if (step.default) lists.push(['default', step.default]);
      break;
    default:
      break;
  }
  if (step.compensate) lists.push(['compensate', step.compensate]);
  return lists;
}

interface Where {
  /** Inside an error handler, a compensation or a rollback step: no further `custom` handling. */
  handling?: boolean;
  visible: ReadonlySet<string>;
  bindings: ReadonlySet<BindingName>;
  /** Why a step id that exists is not readable here. */
  hidden: ReadonlyMap<string, string>;
}

/**
 * Turns a schema-valid definition into the plan the engine executes: expressions parsed and
 * checked against the steps that run earlier, retry and error policies resolved. Pure and
 * deterministic: the API runs it to validate, the workflow runs it again on the pinned copy.
 */
export function compileDefinition(definition: Definition, catalog?: Catalog): { plan: Plan; problems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const errorHandling = definition.error_handling ?? {};
  const defaultStrategy: ErrorStrategy = errorHandling.default ?? 'halt';
  const perStep = errorHandling.per_step ?? {};
  const byId = new Map<string, CompiledStep>();
  const descendants = new Map<string, string[]>();

  // Pre-pass: every step id (for hyphenated names and "later step" messages), every variable.
  const allSteps = new Set<string>();
  const variables = new Set(Object.keys(definition.context?.mutable ?? {}));
  const collect = (steps: readonly Step[]) =>
    walkSteps(steps, '', (step) => {
      allSteps.add(step.id);
      if (step.type === 'set') for (const key of Object.keys(step.values)) variables.add(key);
    });
  collect(definition.steps);
  for (const policy of Object.values(perStep)) if (policy.handler) collect(policy.handler);
  if (errorHandling.handler) collect(errorHandling.handler);
  for (const s of errorHandling.rollback?.steps ?? []) if (typeof s !== 'string') collect([s]);
  const readonlyKeys = new Set(Object.keys(definition.context?.readonly ?? {}));
  const contracts = new Map<string, OutputContract>();
  if (catalog?.outputs) {
    const record = (steps: readonly Step[]) =>
      walkSteps(steps, '', (step) => {
        const contract = outputContractOf(step, catalog.outputs);
        if (contract) contracts.set(step.id, contract);
      });
    record(definition.steps);
    for (const policy of Object.values(perStep)) if (policy.handler) record(policy.handler);
    if (errorHandling.handler) record(errorHandling.handler);
    for (const s of errorHandling.rollback?.steps ?? []) if (typeof s !== 'string') record([s]);
  }

  const scopeFor = (where: Where): NameScope => ({
    steps: where.visible,
    allSteps,
    variables,
    readonly: readonlyKeys,
    bindings: where.bindings,
    whyInvisible: (id) => {
      const why = where.hidden.get(id);
      return why === undefined ? undefined : `step "${id}" ${why}`;
    },
    ...(contracts.size > 0 ? { outputOf: (id: string) => contracts.get(id) } : {}),
  });

  /** Declared `outputs` the callee's registered output schema does not have. */
  const checkDeclaredOutputs = (step: Step, pointer: string) => {
    const contract = contracts.get(step.id);
    const fields = contract ? closedFields(contract.schema) : undefined;
    if (!contract || !fields || !('outputs' in step) || !step.outputs) return;
    step.outputs.forEach((name, i) => {
      if (!fields.includes(name)) {
        problems.push({
          pointer: `${pointer}/outputs/${i}`,
          message: `step "${step.id}" declares output "${name}", but ${contract.label} returns no such field; its output has: ${fields.join(', ') || '(no fields)'}`,
        });
      }
    });
  };

  let usesRollback = defaultStrategy === 'rollback' || errorHandling.rollback?.enabled === true;

  function onErrorFor(step: Step, where: Where): OnError {
    const policy = perStep[step.id];
    if (step.continue_on_error || policy?.continue_on_error) return { action: 'skip' };
    let strategy: ErrorStrategy = policy?.strategy ?? defaultStrategy;
    // `retry` only says how to retry; after the last attempt the definition's default applies.
    if (strategy === 'retry') strategy = defaultStrategy === 'retry' ? 'halt' : defaultStrategy;
    // A failing handler (or compensation) step does not start another handler: it fails the run.
    if (where.handling && policy?.strategy !== 'custom' && strategy === 'custom') strategy = 'halt';
    switch (strategy) {
      case 'skip':
        return { action: 'skip' };
      case 'rollback':
        usesRollback = true;
        return { action: 'rollback' };
      case 'custom': {
        const own = policy?.strategy === 'custom' ? policy.handler : undefined;
        const handlerSteps = own ?? errorHandling.handler;
        if (!handlerSteps) {
          problems.push({
            pointer: policy?.strategy === 'custom' ? `/error_handling/per_step/${pointerSegment(step.id)}/handler` : '/error_handling/handler',
            message: `the "custom" strategy for step "${step.id}" needs handler steps`,
          });
          return { action: 'halt' };
        }
        const handlerPointer = own ? `/error_handling/per_step/${pointerSegment(step.id)}/handler` : '/error_handling/handler';
        // A step's own handler sees what the step sees; the shared default handler may run anywhere.
        const handlerWhere: Where = own
          ? { handling: true, visible: where.visible, bindings: new Set([...where.bindings, 'error']), hidden: where.hidden }
          : { handling: true, visible: new Set(), bindings: new Set(['error']), hidden: new Map() };
        // The shared handler is compiled once and reused; a handler that contains the step it
        // handles (a duplicate id, reported elsewhere) is compiled once too.
        const cacheKey = own ? undefined : '/error_handling/handler';
        if (cacheKey && sharedHandler) return { action: 'custom', handler: sharedHandler };
        if (compilingHandlerFor.has(step.id)) return { action: 'halt' };
        compilingHandlerFor.add(step.id);
        const compiled = compileList(handlerSteps, handlerPointer, handlerWhere).steps;
        compilingHandlerFor.delete(step.id);
        if (cacheKey) sharedHandler = compiled;
        return { action: 'custom', handler: compiled };
      }
      default:
        return { action: 'halt' };
    }
  }
  let sharedHandler: CompiledStep[] | undefined;
  const compilingHandlerFor = new Set<string>();

  /** Compiles a step list; returns the compiled steps and the ids readable after the list ran. */
  function compileList(steps: readonly Step[], pointer: string, where: Where): { steps: CompiledStep[]; exported: Set<string> } {
    const visible = new Set(where.visible);
    const exported = new Set<string>();
    const compiled: CompiledStep[] = [];
    steps.forEach((step, index) => {
      const at = `${pointer}/${index}`;
      const { step: c, exported: out } = compileStep(step, at, { ...where, visible });
      compiled.push(c);
      for (const id of out) {
        visible.add(id);
        exported.add(id);
      }
      // A `fail` whose policy lets the run go on (skip, custom) does not end it.
      const ends = step.type === 'succeed' || (step.type === 'fail' && (c.onError.action === 'halt' || c.onError.action === 'rollback'));
      if (ends && index < steps.length - 1 && step.if === undefined) {
        problems.push({
          pointer: `${pointer}/${index + 1}`,
          message: `step "${steps[index + 1]?.id}" is unreachable: step "${step.id}" (${step.type}) always ends the run before it`,
        });
      }
    });
    return { steps: compiled, exported };
  }

  function compileStep(step: Step, pointer: string, where: Where): { step: CompiledStep; exported: Set<string> } {
    const scope = scopeFor(where);
    const policy = perStep[step.id];
    const isActivity =
      step.type === 'skill' || step.type === 'integration' || step.type === 'directive' || step.type === 'agent' || step.type === 'model';
    const base: StepBase = {
      id: step.id,
      pointer,
      retry: retryOf(step.retry, policy, isActivity),
      onError: onErrorFor(step, where),
    };
    const defaulted = {
      timeout: step.timeout === undefined,
      retry: step.retry === undefined && policy?.max_attempts === undefined && policy?.backoff === undefined,
    };
    if (step.if !== undefined) {
      const cond = compileCondition(step.if, scope, `${pointer}/if`, problems);
      if (cond) base.if = cond;
    }
    if (step.timeout !== undefined) base.timeoutSeconds = step.timeout;
    else if (isActivity) base.timeoutSeconds = STEP_DEFAULTS.timeoutSeconds;
    if (isActivity) checkDeclaredOutputs(step, pointer);
    // A custom handler's output stands in for a failed step's, so later reads may see either shape.
    if (base.onError.action === 'custom') contracts.delete(step.id);
    const exported = new Set<string>([step.id]);
    const nestedIds: string[] = [];
    const nested = (steps: readonly Step[], at: string, w: Where, exportInner: boolean): CompiledStep[] => {
      const result = compileList(steps, at, w);
      walkSteps(steps, '', (s) => nestedIds.push(s.id));
      if (exportInner) for (const id of result.exported) exported.add(id);
      return result.steps;
    };
    const hideAll = (steps: readonly Step[], why: string, into: Map<string, string>) =>
      walkSteps(steps, '', (s) => {
        if (!into.has(s.id)) into.set(s.id, why);
      });

    let compiled: CompiledStep;
    switch (step.type) {
      case 'skill':
      case 'integration':
      case 'directive':
      case 'agent': {
        const family: ActivityFamily = step.type === 'skill' ? 'skills' : step.type === 'agent' ? 'agents' : 'integrations';
        const name =
          step.type === 'skill'
            ? step.skill
            : step.type === 'integration'
              ? step.integration
              : step.type === 'directive'
                ? step.directive
                : (step.agent ?? step.agent_ref?.slug ?? '');
        const rawInputs = step.type === 'directive' ? step.payload : step.type === 'agent' ? (step.inputs ?? step.input) : step.inputs;
        const inputField = step.type === 'directive' ? 'payload' : step.type === 'agent' && step.input ? 'input' : 'inputs';
        const fromSignal =
          rawInputs !== undefined && Object.keys(rawInputs).length === 1 && (rawInputs as { from_signal?: unknown }).from_signal === true;
        compiled = {
          ...base,
          kind: 'activity',
          family,
          name,
          type: step.type,
          inputs: fromSignal ? { kind: 'literal', value: null } : compileValue(rawInputs ?? {}, scope, `${pointer}/${inputField}`, problems),
          fromSignal,
          outputs: step.outputs ?? [],
          ...(step.type === 'agent' && step.guardrails ? { guardrails: step.guardrails as Record<string, unknown> } : {}),
          defaulted,
        };
        if (catalog) {
          const known = catalog[family];
          const field = step.type === 'agent' ? (step.agent_ref ? 'agent_ref/slug' : 'agent') : step.type;
          if (!known.has(name)) {
            const kind = family === 'skills' ? 'skill' : family === 'agents' ? 'agent' : 'integration';
            problems.push({
              pointer: `${pointer}/${field}`,
              message: `unknown ${kind} "${name}"; available: ${[...known].sort().join(', ') || '(none)'}`,
            });
          }
        }
        break;
      }
      case 'model': {
        // The request is seed 003's queue payload; prompts are templates, the schema is literal.
        const { response_schema: responseSchema, ...fields } = {
          model: step.model,
          user_prompt: step.user_prompt,
          ...(step.system_prompt !== undefined ? { system_prompt: step.system_prompt } : {}),
          ...(step.max_tokens !== undefined ? { max_tokens: step.max_tokens } : {}),
          ...(step.temperature !== undefined ? { temperature: step.temperature } : {}),
          ...(step.response_schema !== undefined ? { response_schema: step.response_schema } : {}),
          ...(step.agent_id !== undefined ? { agent_id: step.agent_id } : {}),
          ...(step.calling_skill !== undefined ? { calling_skill: step.calling_skill } : {}),
          priority: step.priority ?? definition.priority ?? 'normal',
          ...(step.callback !== undefined ? { callback: step.callback } : {}),
        };
        const request = compileValue(fields, scope, pointer, problems);
        compiled = {
          ...base,
          kind: 'activity',
          family: 'models',
          name: MODEL_ACTIVITY,
          type: step.type,
          inputs:
            responseSchema === undefined || request.kind !== 'object'
              ? request
              : { kind: 'object', entries: [...request.entries, ['response_schema', { kind: 'literal', value: responseSchema }]] },
          fromSignal: false,
          outputs: step.outputs ?? [],
          defaulted,
        };
        if (catalog?.models && !catalog.models.has(step.model)) {
          problems.push({
            pointer: `${pointer}/model`,
            message: `unknown model "${step.model}"; routes and aliases: ${[...catalog.models].sort().join(', ') || '(none)'}`,
          });
        }
        break;
      }
      case 'parallel': {
        const hidden = new Map(where.hidden);
        // Branches run side by side: one branch never reads another's steps.
        step.steps.forEach((branch) => hideAll([branch], `runs in a parallel branch of "${step.id}" and is not ordered with this one`, hidden));
        const branches = step.steps.map((branch, i) => {
          const own = new Map(hidden);
          walkSteps([branch], '', (s) => own.delete(s.id));
          const result = compileStep(branch, `${pointer}/steps/${i}`, { ...where, hidden: own });
          walkSteps([branch], '', (s) => nestedIds.push(s.id));
          for (const id of result.exported) exported.add(id);
          return result.step;
        });
        const waitFor = step.wait_for ?? 'all';
        if (typeof waitFor === 'number' && waitFor > step.steps.length) {
          problems.push({ pointer: `${pointer}/wait_for`, message: `wait_for is ${waitFor} but the step has ${step.steps.length} branch(es)` });
        }
        compiled = {
          ...base,
          kind: 'parallel',
          branches,
          waitFor,
          maxConcurrency: step.max_concurrency ?? step.steps.length,
        };
        break;
      }
      case 'for_each': {
        const items =
          typeof step.items === 'string'
            ? compileValue(step.items.includes('${') ? step.items : `\${${step.items}}`, scope, `${pointer}/items`, problems)
            : compileValue(step.items, scope, `${pointer}/items`, problems);
        const inner = nested(step.steps, `${pointer}/steps`, { ...where, bindings: new Set([...where.bindings, 'item', 'index']) }, false);
        compiled = { ...base, kind: 'for_each', items, steps: inner, maxConcurrency: step.max_concurrency ?? 1 };
        break;
      }
      case 'loop': {
        const innerWhere: Where = { ...where, bindings: new Set([...where.bindings, 'iteration']) };
        const inner = nested(step.steps, `${pointer}/steps`, innerWhere, true);
        // The condition may read the body's steps: before the first iteration they are pending.
        const conditionScope = scopeFor({ ...innerWhere, visible: new Set([...where.visible, ...exported]) });
        const condition = compileCondition(step.condition, conditionScope, `${pointer}/condition`, problems);
        compiled = {
          ...base,
          kind: 'loop',
          condition: condition ?? FALSE_CONDITION,
          steps: inner,
          maxIterations: step.max_iterations,
        };
        break;
      }
      case 'conditional': {
        const condition = compileCondition(step.condition, scope, `${pointer}/condition`, problems);
        compiled = {
          ...base,
          kind: 'conditional',
          condition: condition ?? FALSE_CONDITION,
          then: nested(step.then, `${pointer}/then`, where, true),
          else: step.else ? nested(step.else, `${pointer}/else`, where, true) : [],
        };
        break;
      }
      case 'switch': {
        const value = step.value === undefined ? undefined : compileCondition(step.value, scope, `${pointer}/value`, problems);
        const cases = step.cases.map((c, i) => {
          const when = c.when === undefined ? undefined : compileCondition(c.when, scope, `${pointer}/cases/${i}/when`, problems);
          return {
            ...(when ? { when } : {}),
            ...(c.equals !== undefined ? { equals: c.equals } : {}),
            steps: nested(c.steps, `${pointer}/cases/${i}/steps`, where, true),
          };
        });
        compiled = {
          ...base,
          kind: 'switch',
          ...(value ? { value } : {}),
          cases,
          default: step.default ? nested(step.default, `${pointer}/default`, where, true) : [],
        };
        break;
      }
      case 'wait':
        if (typeof step.duration === 'string' && step.duration.startsWith('${')) {
          compiled = { ...base, kind: 'wait', duration: compileValue(step.duration, scope, `${pointer}/duration`, problems) };
          break;
        }
        if (step.duration !== undefined && durationMs(step.duration) > MAX_WAIT_SECONDS * 1000) {
          problems.push({ pointer: `${pointer}/duration`, message: `the wait is longer than ${MAX_WAIT_SECONDS / 86_400} days` });
        }
        compiled =
          step.duration !== undefined
            ? { ...base, kind: 'wait', durationMs: durationMs(step.duration) }
            : { ...base, kind: 'wait', until: compileValue(step.until, scope, `${pointer}/until`, problems) };
        break;
      case 'wait_for_event': {
        const filter =
          step.filter === undefined
            ? undefined
            : compileCondition(step.filter, scopeFor({ ...where, bindings: new Set([...where.bindings, 'event']) }), `${pointer}/filter`, problems);
        compiled = { ...base, kind: 'wait_for_event', event: step.event, ...(filter ? { filter } : {}), onTimeout: step.on_timeout ?? 'fail' };
        break;
      }
      case 'set':
        compiled = {
          ...base,
          kind: 'set',
          values: Object.entries(step.values).map(([k, v]) => [k, compileValue(v, scope, `${pointer}/values/${pointerSegment(k)}`, problems)]),
        };
        break;
      case 'sub_workflow':
        if (catalog && !catalog.definitions.has(`${step.definition}@${step.version}`)) {
          problems.push({
            pointer: `${pointer}/definition`,
            message: `no registered definition "${step.definition}" version "${step.version}"`,
          });
        }
        compiled = {
          ...base,
          kind: 'sub_workflow',
          definition: step.definition,
          version: step.version,
          inputs: compileValue(step.inputs ?? {}, scope, `${pointer}/inputs`, problems),
        };
        break;
      case 'fail':
        compiled = {
          ...base,
          kind: 'fail',
          error: compileValue(step.error, scope, `${pointer}/error`, problems),
          errorType:
            step.error_type?.startsWith('${') === true
              ? compileValue(step.error_type, scope, `${pointer}/error_type`, problems)
              : (step.error_type ?? 'WorkflowFailed'),
        };
        break;
      case 'approval': {
        const set = (a: { principals?: string[] | undefined; groups?: string[] | undefined }) => ({ principals: a.principals ?? [], groups: a.groups ?? [] });
        const stages: CompiledApprovalStage[] = [
          {
            approvers: set(step.approvers),
            quorum: step.quorum ?? 1,
            ...(step.timeout !== undefined ? { timeoutMs: Math.round(step.timeout * 1000) } : {}),
            onTimeout: step.on_timeout ?? 'fail',
          },
        ];
        if (step.escalation) {
          stages.push({
            approvers: set(step.escalation.approvers),
            quorum: step.escalation.quorum ?? 1,
            timeoutMs: Math.round(step.escalation.timeout * 1000),
            onTimeout: step.escalation.on_timeout ?? 'fail',
          });
        }
        stages.forEach((stage, i) => {
          const at = i === 0 ? pointer : `${pointer}/escalation`;
          const named = new Set(stage.approvers.principals).size;
          if (stage.approvers.groups.length === 0 && stage.quorum > named) {
            problems.push({ pointer: `${at}/quorum`, message: `quorum ${stage.quorum} is more than the ${named} distinct approver(s) named` });
          }
        });
        compiled = {
          ...base,
          kind: 'approval',
          ...(step.summary !== undefined ? { summary: compileValue(step.summary, scope, `${pointer}/summary`, problems) } : {}),
          allowSelfApproval: step.allow_self_approval ?? false,
          stages,
          onReject: step.on_reject ?? 'fail',
        };
        break;
      }
      case 'succeed':
        compiled = {
          ...base,
          kind: 'succeed',
          ...(step.output !== undefined ? { output: compileValue(step.output, scope, `${pointer}/output`, problems) } : {}),
        };
        break;
    }
    if (step.compensate) {
      compiled.compensate = nested(
        step.compensate,
        `${pointer}/compensate`,
        { handling: true, visible: new Set([...where.visible, step.id]), bindings: new Set([...where.bindings, 'error']), hidden: where.hidden },
        false,
      );
    }
    if (nestedIds.length > 0) descendants.set(step.id, nestedIds);
    byId.set(step.id, compiled);
    return { step: compiled, exported };
  }

  // Ids that collide with the names expressions start with would be ambiguous.
  const reserved = new Set<string>([...ROOT_NAMES, ...BINDING_NAMES]);
  walkSteps(definition.steps, '/steps', (step, pointer) => {
    if (reserved.has(step.id)) problems.push({ pointer: `${pointer}/id`, message: `"${step.id}" is a reserved name in expressions; choose another step id` });
    else if (variables.has(step.id)) {
      problems.push({ pointer: `${pointer}/id`, message: `"${step.id}" is both a step id and a variable name; rename one` });
    }
  });

  const top = compileList(definition.steps, '/steps', { visible: new Set(), bindings: new Set(), hidden: new Map() });

  const rollbackSteps: CompiledStep[] = [];
  const rollbackWhere: Where = { handling: true, visible: top.exported, bindings: new Set(['error']), hidden: new Map() };
  (errorHandling.rollback?.steps ?? []).forEach((entry, index) => {
    const at = `/error_handling/rollback/steps/${index}`;
    if (typeof entry === 'string') {
      const step: Step = { id: `rollback-${index + 1}-${entry.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64), type: 'skill', skill: entry };
      const { step: c } = compileStep(step, at, rollbackWhere);
      if (catalog && !catalog.skills.has(entry)) {
        // compileStep reported it at `${at}/skill`; point at the string itself instead.
        const last = problems[problems.length - 1];
        if (last?.pointer === `${at}/skill`) last.pointer = at;
      }
      rollbackSteps.push(c);
    } else {
      rollbackSteps.push(compileStep(entry, at, rollbackWhere).step);
    }
  });

  for (const [id, policy] of Object.entries(perStep)) {
    if (!allSteps.has(id)) {
      problems.push({ pointer: `/error_handling/per_step/${pointerSegment(id)}`, message: `no step has the id "${id}"` });
    }
    if (policy.handler && policy.strategy !== 'custom') {
      problems.push({
        pointer: `/error_handling/per_step/${pointerSegment(id)}/handler`,
        message: `handler steps run only with the "custom" strategy (this policy is "${policy.strategy}")`,
      });
    }
  }

  // Compensation only runs when something can roll back; otherwise it is dead code.
  if (!usesRollback) {
    walkSteps(definition.steps, '/steps', (step, pointer) => {
      if (step.compensate) {
        problems.push({
          pointer: `${pointer}/compensate`,
          message: `step "${step.id}" declares compensation, but nothing in this definition rolls back; set error_handling.rollback.enabled or a "rollback" strategy`,
        });
      }
    });
  }

  const output =
    definition.output === undefined
      ? undefined
      : compileValue(definition.output, scopeFor({ visible: top.exported, bindings: new Set(), hidden: new Map() }), '/output', problems);

  const eventTriggers: Plan['eventTriggers'] = [];
  const triggerScope = scopeFor({ visible: new Set(), bindings: new Set(['event']), hidden: new Map() });
  (definition.triggers ?? []).forEach((trigger, i) => {
    if (trigger.type !== 'event') return;
    const filter = trigger.filter === undefined ? undefined : compileCondition(trigger.filter, triggerScope, `/triggers/${i}/filter`, problems);
    eventTriggers.push(filter ? { event: trigger.event, filter } : { event: trigger.event });
  });
  if (definition.trigger) {
    const filter = definition.trigger.filter === undefined ? undefined : compileCondition(definition.trigger.filter, triggerScope, '/trigger/filter', problems);
    eventTriggers.push(filter ? { event: definition.trigger.signal, filter } : { event: definition.trigger.signal });
  }

  const plan: Plan = {
    steps: top.steps,
    eventTriggers,
    rollback: { enabled: errorHandling.rollback?.enabled === true || defaultStrategy === 'rollback', steps: rollbackSteps },
    rollsBackOnCancel: usesRollback,
    byId,
    descendants,
  };
  if (output !== undefined) plan.output = output;
  if (definition.resource_limits?.max_concurrent_steps !== undefined) plan.maxConcurrentSteps = definition.resource_limits.max_concurrent_steps;
  return { plan, problems };
}

/** Placeholder for a condition that failed to compile (only reachable in a plan with problems). */
const FALSE_CONDITION = undefined as unknown as CompiledExpression;

export { LIMITS };
