import type { z } from 'zod';
import type { BindingName, CompileProblem, NameScope } from '../expressions.ts';
import type { OutputContract, OutputContracts } from '../output-shapes.ts';
import type { AnyCompiledStep, Catalog, CompiledStep, StepBase } from '../plan.ts';
import type { Maybe, StepRun } from '../runtime.ts';
import type { Definition, Step } from '../schema.ts';

/**
 * What a step kind is: one module under interpreter/steps/ holds its schema piece, its compile,
 * its execution on the port and its documentation; interpreter/steps/registry.ts lists them. The
 * compiler and the engine look a kind up by its `type` (as written) or `kind` (compiled) and
 * never name one. See docs/architecture.md, "Adding a step kind".
 */

/** Where a step is compiled: what its expressions may read. */
export interface Where {
  /** Inside an error handler, a compensation or a rollback step: no further `custom` handling. */
  handling?: boolean;
  visible: ReadonlySet<string>;
  bindings: ReadonlySet<BindingName>;
  /** Why a step id that exists is not readable here. */
  hidden: ReadonlyMap<string, string>;
}

/** The compiler's services to a step kind's `compile`. */
export interface CompileContext {
  /** JSON Pointer of the step. */
  readonly pointer: string;
  readonly where: Where;
  /** The names the step's own expressions may read. */
  readonly scope: NameScope;
  scopeFor(where: Where): NameScope;
  /** Where to report problems (each with the JSON Pointer at fault). */
  readonly problems: CompileProblem[];
  /** What the installation can run; absent when compiling a pinned copy. */
  readonly catalog: Catalog | undefined;
  readonly definition: Definition;
  /** Ids later steps may read once this one ran (the step's own id is in it). */
  readonly exported: Set<string>;
  /** What the step left unset, so the callee's registered defaults may apply. */
  readonly defaulted: { timeout: boolean; retry: boolean };
  /** Compiles a nested list; its ids become the step's descendants, and readable later with `exportInner`. */
  nested(steps: readonly Step[], at: string, where: Where, exportInner: boolean): CompiledStep[];
  /** Compiles one nested step (a parallel branch); its ids become the step's descendants. */
  nestedStep(step: Step, at: string, where: Where): { step: CompiledStep; exported: Set<string> };
  /** The ids of these steps and of every step nested in them. */
  idsIn(steps: readonly Step[]): string[];
}

/** How the engine runs a compiled kind. */
export interface StepExecutor<C extends AnyCompiledStep = AnyCompiledStep> {
  /** The step's completion is reported to the port (`onStepSettled`): the kind does work or waits. */
  reportsSettle: boolean;
  /** The kind interprets `timeout` itself; otherwise the engine runs it under a deadline. */
  ownsTimeout?: boolean;
  /** True when the port retries the step itself (a Temporal retry policy), not the engine. */
  retriesItself?(step: C): boolean;
  /** The step type as written, for summaries; the kind when absent. */
  typeOf?(step: C): string;
  execute(step: C, run: StepRun): Maybe<unknown>;
}

/** The least a written step is. */
export interface StepLike {
  id: string;
  type: string;
}

export interface StepKind<S extends StepLike = StepLike, C extends AnyCompiledStep = AnyCompiledStep> {
  /** The `type` written in definitions. */
  type: S['type'];
  /** The compiled `kind` (several written types may share one, e.g. the activity calls). */
  kind: string;
  /** The step's schema: a strict object with `type: z.literal(type)`. */
  schema: z.ZodType;
  /** One paragraph for the step reference (docs/definition-language.md is generated from it). */
  doc: string;
  /** Calls an activity: default retries and timeout, declared `outputs` checked. */
  activity?: boolean;
  /** The step's nested lists, with their field path relative to the step. */
  children?(step: S): Array<[string, Step[]]>;
  /** Variables the step writes (`context.mutable`), known before compiling. */
  variables?(step: S): string[];
  /** The output contract the step's callee registered. */
  outputContract?(step: S, outputs: OutputContracts): OutputContract | undefined;
  /** True when the compiled step always ends the run (later steps in its list are unreachable). */
  endsRun?(step: C): boolean;
  compile(step: S, base: StepBase, cx: CompileContext): C;
  executor: StepExecutor<C>;
}
