// Just over 400 lines: one concept, compiling a definition into its plan; each kind's own part lives in steps/.
import { BINDING_NAMES, ROOT_NAMES, type CompileProblem, type NameScope } from './expressions.ts';
import { closedFields, type OutputContract, type OutputContracts } from './output-shapes.ts';
import type { CompiledStep, Catalog, EffectiveRetry, OnError, Plan, StepBase } from './plan.ts';
import { compileCondition, compileValue, pointerSegment } from './references.ts';
import { LIMITS, MAX_ATTEMPTS_CAP, type Definition, type ErrorStrategy, type RetrySpec, type Step, type StepErrorPolicy } from './schema.ts';
import type { CompileContext, Where } from './steps/kind.ts';
import { stepKindOf } from './steps/registry.ts';
import { stepIdsIn, walkSteps } from './walk.ts';

/**
 * Turns a schema-valid definition into the plan the engine executes: expressions parsed and
 * checked against the steps that run earlier, retry and error policies resolved. Pure and
 * deterministic: the API runs it to validate, the workflow runs it again on the pinned copy. What
 * a step kind compiles to is its own module's business (interpreter/steps/); this file handles
 * what every step has: ids and scopes, `if`, retry, timeout, error policy, compensation.
 */

export type {
  ActivityFamily,
  AnyCompiledStep,
  Catalog,
  CompiledStep,
  EffectiveRetry,
  OnError,
  Plan,
  StepBase,
} from './plan.ts';
export type { CompiledActivityStep } from './steps/activity.ts';
export type { CompiledApprovalStage, CompiledApprovalStep } from './steps/approval.ts';
export type { CompiledConditionalStep } from './steps/conditional.ts';
export type { CompiledFailStep } from './steps/fail.ts';
export type { CompiledForEachStep } from './steps/for-each.ts';
export type { CompiledLoopStep } from './steps/loop.ts';
export type { CompiledParallelStep } from './steps/parallel.ts';
export type { CompiledSetStep } from './steps/set.ts';
export type { CompiledSubWorkflowStep } from './steps/sub-workflow.ts';
export type { CompiledSucceedStep } from './steps/succeed.ts';
export type { CompiledSwitchStep } from './steps/switch.ts';
export type { CompiledWaitForEventStep } from './steps/wait-for-event.ts';
export type { CompiledWaitStep } from './steps/wait.ts';
export { durationMs, runtimeDurationMs } from './durations.ts';
export { approverGroups, childLists, walkSteps } from './walk.ts';
export { LIMITS };

/** Defaults for every activity step that does not say otherwise (invariant 3: all bounded). */
export const STEP_DEFAULTS = {
  timeoutSeconds: 30,
  maxAttempts: 3,
  initialIntervalSeconds: 1,
  maxIntervalSeconds: 30,
  backoffCoefficient: 2,
} as const;

/** The output contract a step's callee registered, when the catalog knows one. */
export function outputContractOf(step: Step, outputs: OutputContracts | undefined): OutputContract | undefined {
  if (!outputs) return undefined;
  return stepKindOf(step.type)?.outputContract?.(step, outputs);
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

const NOWHERE: Where = { visible: new Set(), bindings: new Set(), hidden: new Map() };

/** One compilation: the definition's ids, variables and output contracts, and what it found. */
class Compiler {
  readonly problems: CompileProblem[] = [];
  private readonly errorHandling: NonNullable<Definition['error_handling']>;
  private readonly defaultStrategy: ErrorStrategy;
  private readonly perStep: Record<string, StepErrorPolicy>;
  private readonly byId = new Map<string, CompiledStep>();
  private readonly descendants = new Map<string, string[]>();
  private readonly allSteps = new Set<string>();
  private readonly variables: Set<string>;
  private readonly readonlyKeys: Set<string>;
  private readonly contracts = new Map<string, OutputContract>();
  private usesRollback: boolean;
  private sharedHandler: CompiledStep[] | undefined;
  private readonly compilingHandlerFor = new Set<string>();

  constructor(
    private readonly definition: Definition,
    private readonly catalog: Catalog | undefined,
  ) {
    this.errorHandling = definition.error_handling ?? {};
    this.defaultStrategy = this.errorHandling.default ?? 'halt';
    this.perStep = this.errorHandling.per_step ?? {};
    this.usesRollback = this.defaultStrategy === 'rollback' || this.errorHandling.rollback?.enabled === true;
    this.variables = new Set(Object.keys(definition.context?.mutable ?? {}));
    this.readonlyKeys = new Set(Object.keys(definition.context?.readonly ?? {}));
    // Pre-pass: every step id (for hyphenated names and "later step" messages), every variable,
    // every registered output contract.
    this.everyList((step) => {
      this.allSteps.add(step.id);
      for (const name of stepKindOf(step.type)?.variables?.(step) ?? []) this.variables.add(name);
    });
    if (catalog?.outputs) {
      const outputs = catalog.outputs;
      this.everyList((step) => {
        const contract = outputContractOf(step, outputs);
        if (contract) this.contracts.set(step.id, contract);
      });
    }
  }

  /** Visits every step of the definition: the steps, handlers and rollback steps. */
  private everyList(visit: (step: Step) => void): void {
    const walk = (steps: readonly Step[]) => walkSteps(steps, '', visit);
    walk(this.definition.steps);
    for (const policy of Object.values(this.perStep)) if (policy.handler) walk(policy.handler);
    if (this.errorHandling.handler) walk(this.errorHandling.handler);
    for (const s of this.errorHandling.rollback?.steps ?? []) if (typeof s !== 'string') walk([s]);
  }

  scopeFor(where: Where): NameScope {
    return {
      steps: where.visible,
      allSteps: this.allSteps,
      variables: this.variables,
      readonly: this.readonlyKeys,
      bindings: where.bindings,
      whyInvisible: (id) => {
        const why = where.hidden.get(id);
        return why === undefined ? undefined : `step "${id}" ${why}`;
      },
      ...(this.contracts.size > 0 ? { outputOf: (id: string) => this.contracts.get(id) } : {}),
    };
  }

  /** Declared `outputs` the callee's registered output schema does not have. */
  private checkDeclaredOutputs(step: Step, pointer: string): void {
    const contract = this.contracts.get(step.id);
    const fields = contract ? closedFields(contract.schema) : undefined;
    if (!contract || !fields || !('outputs' in step) || !step.outputs) return;
    step.outputs.forEach((name, i) => {
      if (!fields.includes(name)) {
        this.problems.push({
          pointer: `${pointer}/outputs/${i}`,
          message: `step "${step.id}" declares output "${name}", but ${contract.label} returns no such field; its output has: ${fields.join(', ') || '(no fields)'}`,
        });
      }
    });
  }

  private onErrorFor(step: Step, where: Where): OnError {
    const policy = this.perStep[step.id];
    if (step.continue_on_error || policy?.continue_on_error) return { action: 'skip' };
    let strategy: ErrorStrategy = policy?.strategy ?? this.defaultStrategy;
    // `retry` only says how to retry; after the last attempt the definition's default applies.
    if (strategy === 'retry') strategy = this.defaultStrategy === 'retry' ? 'halt' : this.defaultStrategy;
    // A failing handler (or compensation) step does not start another handler: it fails the run.
    if (where.handling && policy?.strategy !== 'custom' && strategy === 'custom') strategy = 'halt';
    switch (strategy) {
      case 'skip':
        return { action: 'skip' };
      case 'rollback':
        this.usesRollback = true;
        return { action: 'rollback' };
      case 'custom':
        return this.customHandler(step, where, policy);
      default:
        return { action: 'halt' };
    }
  }

  private customHandler(step: Step, where: Where, policy: StepErrorPolicy | undefined): OnError {
    const own = policy?.strategy === 'custom' ? policy.handler : undefined;
    const handlerSteps = own ?? this.errorHandling.handler;
    const ownPointer = `/error_handling/per_step/${pointerSegment(step.id)}/handler`;
    if (!handlerSteps) {
      this.problems.push({
        pointer: policy?.strategy === 'custom' ? ownPointer : '/error_handling/handler',
        message: `the "custom" strategy for step "${step.id}" needs handler steps`,
      });
      return { action: 'halt' };
    }
    const handlerPointer = own ? ownPointer : '/error_handling/handler';
    // A step's own handler sees what the step sees; the shared default handler may run anywhere.
    const handlerWhere: Where = own
      ? { handling: true, visible: where.visible, bindings: new Set([...where.bindings, 'error']), hidden: where.hidden }
      : { handling: true, visible: new Set(), bindings: new Set(['error']), hidden: new Map() };
    // The shared handler is compiled once and reused; a handler that contains the step it
    // handles (a duplicate id, reported elsewhere) is compiled once too.
    if (!own && this.sharedHandler) return { action: 'custom', handler: this.sharedHandler };
    if (this.compilingHandlerFor.has(step.id)) return { action: 'halt' };
    this.compilingHandlerFor.add(step.id);
    const compiled = this.compileList(handlerSteps, handlerPointer, handlerWhere).steps;
    this.compilingHandlerFor.delete(step.id);
    if (!own) this.sharedHandler = compiled;
    return { action: 'custom', handler: compiled };
  }

  /** Compiles a step list; returns the compiled steps and the ids readable after the list ran. */
  compileList(steps: readonly Step[], pointer: string, where: Where): { steps: CompiledStep[]; exported: Set<string> } {
    const visible = new Set(where.visible);
    const exported = new Set<string>();
    const compiled: CompiledStep[] = [];
    steps.forEach((step, index) => {
      const { step: c, exported: out } = this.compileStep(step, `${pointer}/${index}`, { ...where, visible });
      compiled.push(c);
      for (const id of out) {
        visible.add(id);
        exported.add(id);
      }
      const ends = stepKindOf(step.type)?.endsRun?.(c) === true;
      if (ends && index < steps.length - 1 && step.if === undefined) {
        this.problems.push({
          pointer: `${pointer}/${index + 1}`,
          message: `step "${steps[index + 1]?.id}" is unreachable: step "${step.id}" (${step.type}) always ends the run before it`,
        });
      }
    });
    return { steps: compiled, exported };
  }

  /** What every step has: id, pointer, retry, error policy, `if` and timeout. */
  private baseOf(step: Step, pointer: string, where: Where, isActivity: boolean): StepBase {
    const base: StepBase = {
      id: step.id,
      pointer,
      retry: retryOf(step.retry, this.perStep[step.id], isActivity),
      onError: this.onErrorFor(step, where),
    };
    if (step.if !== undefined) {
      const cond = compileCondition(step.if, this.scopeFor(where), `${pointer}/if`, this.problems);
      if (cond) base.if = cond;
    }
    if (step.timeout !== undefined) base.timeoutSeconds = step.timeout;
    else if (isActivity) base.timeoutSeconds = STEP_DEFAULTS.timeoutSeconds;
    return base;
  }

  compileStep(step: Step, pointer: string, where: Where): { step: CompiledStep; exported: Set<string> } {
    const kind = stepKindOf(step.type);
    if (!kind) throw new Error(`step "${step.id}" has the unregistered type "${step.type}"`);
    const policy = this.perStep[step.id];
    const isActivity = kind.activity === true;
    const base = this.baseOf(step, pointer, where, isActivity);
    if (isActivity) this.checkDeclaredOutputs(step, pointer);
    // A custom handler's output stands in for a failed step's, so later reads may see either shape.
    if (base.onError.action === 'custom') this.contracts.delete(step.id);
    const exported = new Set<string>([step.id]);
    const nestedIds: string[] = [];
    const cx: CompileContext = {
      pointer,
      where,
      scope: this.scopeFor(where),
      scopeFor: (w) => this.scopeFor(w),
      problems: this.problems,
      catalog: this.catalog,
      definition: this.definition,
      exported,
      defaulted: {
        timeout: step.timeout === undefined,
        retry: step.retry === undefined && policy?.max_attempts === undefined && policy?.backoff === undefined,
      },
      nested: (steps, at, w, exportInner) => {
        const result = this.compileList(steps, at, w);
        nestedIds.push(...stepIdsIn(steps));
        if (exportInner) for (const id of result.exported) exported.add(id);
        return result.steps;
      },
      nestedStep: (s, at, w) => {
        const result = this.compileStep(s, at, w);
        nestedIds.push(...stepIdsIn([s]));
        return result;
      },
      idsIn: stepIdsIn,
    };
    const compiled = kind.compile(step, base, cx) as CompiledStep;
    if (step.compensate) {
      compiled.compensate = cx.nested(
        step.compensate,
        `${pointer}/compensate`,
        { handling: true, visible: new Set([...where.visible, step.id]), bindings: new Set([...where.bindings, 'error']), hidden: where.hidden },
        false,
      );
    }
    if (nestedIds.length > 0) this.descendants.set(step.id, nestedIds);
    this.byId.set(step.id, compiled);
    return { step: compiled, exported };
  }

  /** Ids that collide with the names expressions start with, or with a variable, are ambiguous. */
  checkIds(): void {
    const reserved = new Set<string>([...ROOT_NAMES, ...BINDING_NAMES]);
    walkSteps(this.definition.steps, '/steps', (step, pointer) => {
      if (reserved.has(step.id)) {
        this.problems.push({ pointer: `${pointer}/id`, message: `"${step.id}" is a reserved name in expressions; choose another step id` });
      } else if (this.variables.has(step.id)) {
        this.problems.push({ pointer: `${pointer}/id`, message: `"${step.id}" is both a step id and a variable name; rename one` });
      }
    });
  }

  /** The rollback steps: steps, or skill names (`"cleanup"` calls the `cleanup` skill). */
  compileRollback(visible: ReadonlySet<string>): CompiledStep[] {
    const rollbackWhere: Where = { handling: true, visible, bindings: new Set(['error']), hidden: new Map() };
    return (this.errorHandling.rollback?.steps ?? []).map((entry, index) => {
      const at = `/error_handling/rollback/steps/${index}`;
      if (typeof entry !== 'string') return this.compileStep(entry, at, rollbackWhere).step;
      const step: Step = { id: `rollback-${index + 1}-${entry.replace(/[^A-Za-z0-9_-]/g, '_')}`.slice(0, 64), type: 'skill', skill: entry };
      const { step: c } = this.compileStep(step, at, rollbackWhere);
      if (this.catalog && !this.catalog.skills.has(entry)) {
        // compileStep reported it at `${at}/skill`; point at the string itself instead.
        const last = this.problems[this.problems.length - 1];
        if (last?.pointer === `${at}/skill`) last.pointer = at;
      }
      return c;
    });
  }

  /** Per-step policies name existing steps; handler steps go with the `custom` strategy only. */
  checkPolicies(): void {
    for (const [id, policy] of Object.entries(this.perStep)) {
      const at = `/error_handling/per_step/${pointerSegment(id)}`;
      if (!this.allSteps.has(id)) this.problems.push({ pointer: at, message: `no step has the id "${id}"` });
      if (policy.handler && policy.strategy !== 'custom') {
        this.problems.push({
          pointer: `${at}/handler`,
          message: `handler steps run only with the "custom" strategy (this policy is "${policy.strategy}")`,
        });
      }
    }
  }

  /** Compensation only runs when something can roll back; otherwise it is dead code. */
  checkCompensation(): void {
    if (this.usesRollback) return;
    walkSteps(this.definition.steps, '/steps', (step, pointer) => {
      if (step.compensate) {
        this.problems.push({
          pointer: `${pointer}/compensate`,
          message: `step "${step.id}" declares compensation, but nothing in this definition rolls back; set error_handling.rollback.enabled or a "rollback" strategy`,
        });
      }
    });
  }

  /** The event types that start the definition, each with its filter. */
  eventTriggers(): Plan['eventTriggers'] {
    const triggers: Plan['eventTriggers'] = [];
    const scope = this.scopeFor({ visible: new Set(), bindings: new Set(['event']), hidden: new Map() });
    const add = (event: string, filter: string | undefined, at: string) => {
      const compiled = filter === undefined ? undefined : compileCondition(filter, scope, at, this.problems);
      triggers.push(compiled ? { event, filter: compiled } : { event });
    };
    (this.definition.triggers ?? []).forEach((trigger, i) => {
      if (trigger.type === 'event') add(trigger.event, trigger.filter, `/triggers/${i}/filter`);
    });
    if (this.definition.trigger) add(this.definition.trigger.signal, this.definition.trigger.filter, '/trigger/filter');
    return triggers;
  }

  plan(): Plan {
    this.checkIds();
    const top = this.compileList(this.definition.steps, '/steps', NOWHERE);
    const rollbackSteps = this.compileRollback(top.exported);
    this.checkPolicies();
    this.checkCompensation();
    const { definition } = this;
    const output =
      definition.output === undefined
        ? undefined
        : compileValue(definition.output, this.scopeFor({ visible: top.exported, bindings: new Set(), hidden: new Map() }), '/output', this.problems);
    const plan: Plan = {
      steps: top.steps,
      eventTriggers: this.eventTriggers(),
      rollback: { enabled: this.errorHandling.rollback?.enabled === true || this.defaultStrategy === 'rollback', steps: rollbackSteps },
      rollsBackOnCancel: this.usesRollback,
      byId: this.byId,
      descendants: this.descendants,
    };
    if (output !== undefined) plan.output = output;
    if (definition.resource_limits?.max_concurrent_steps !== undefined) plan.maxConcurrentSteps = definition.resource_limits.max_concurrent_steps;
    return plan;
  }
}

/**
 * Turns a schema-valid definition into the plan the engine executes (see the file's comment).
 * Problems carry the JSON Pointer at fault; a plan with problems must not run.
 */
export function compileDefinition(definition: Definition, catalog?: Catalog): { plan: Plan; problems: CompileProblem[] } {
  const compiler = new Compiler(definition, catalog);
  const plan = compiler.plan();
  return { plan, problems: compiler.problems };
}
