/** What both importers share: the report's shape, refusals, JSON Pointer segments and step ids. */

export type Obj = Record<string, unknown>;
export type Step = Record<string, unknown>;

export interface ImportEntry {
  /** JSON Pointer into the source document. */
  path: string;
  construct: string;
  /** What it became (mapped) or why not (refused). */
  detail: string;
}

export interface ImportResult {
  definition?: Obj;
  mapped: ImportEntry[];
  refused: ImportEntry[];
}

/** A construct without an exact native equivalent: reported with its path, never half-converted. */
export class Refusal extends Error {
  constructor(
    readonly path: string,
    readonly construct: string,
    message: string,
  ) {
    super(message);
  }
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Escapes one JSON Pointer segment (RFC 6901). */
export function seg(s: string | number): string {
  return String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

const RESERVED_IDS = new Set(['input', 'context', 'steps', 'run', 'signal', 'vars', 'item', 'index', 'iteration', 'error', 'event']);

/** Unique native step ids derived from the source's names (`_` never appears: it marks variables). */
export class StepIds {
  private readonly used = new Set<string>();

  next(base: string): string {
    let slug = base.replace(/[^A-Za-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'step';
    if (!/^[A-Za-z]/.test(slug)) slug = `s-${slug}`;
    if (RESERVED_IDS.has(slug)) slug = `step-${slug}`;
    let id = slug;
    for (let n = 2; this.used.has(id); n++) id = `${slug}-${n}`;
    this.used.add(id);
    return id;
  }
}

/** A native name for a definition from free text. */
export function slugName(text: unknown, fallback = 'imported'): string {
  const slug = typeof text === 'string' ? text.replace(/[^A-Za-z0-9._ -]+/g, ' ').trim().replace(/\s+/g, '-').slice(0, 100) : '';
  return /^[A-Za-z0-9]/.test(slug) ? slug.toLowerCase() : fallback;
}

/** True when the list ends with a fail step that always fails (a step after it could never run). */
export function endsInFail(steps: Step[]): boolean {
  const last = steps.at(-1);
  return last !== undefined && last.type === 'fail' && last.if === undefined;
}

/** Runs one translation, recording a refusal instead of stopping, so every problem is reported. */
export function guarded(refused: ImportEntry[], translate: () => Step[]): Step[] {
  try {
    return translate();
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    refused.push({ path: error.path, construct: error.construct, detail: error.message });
    return [];
  }
}

/** What `_s<k>` holds once a machine (or task list) has ended. */
export const END = '__end';

/** Options every importer takes. */
export interface ImportOptionsBase {
  /** The native definition's name (default: from the source). */
  name?: string;
  version?: string;
  /** Bound of the loop a machine with jumps runs in: transitions per entry (default 10,000). */
  maxTransitions?: number;
}

/**
 * The dispatch loop of a machine with jumps: a bounded `loop` over a `switch` on `_s<k>`, one case
 * per state (or task), until a state sets `_s<k>` to END.
 */
export function dispatchLoop(ids: StepIds, k: number, what: string, cases: Array<{ equals: string; steps: Step[] }>, bound = 10_000): Step {
  return {
    id: ids.next(`machine-${k}`),
    type: 'loop',
    description: `${what} ${k}: runs the one named by _s${k} until one ends it (at most ${bound} transitions)`,
    condition: `_s${k} != "${END}"`,
    max_iterations: bound,
    steps: [{ id: ids.next(`machine-${k}-next`), type: 'switch', value: `_s${k}`, cases }],
  };
}

/** The bookkeeping both translators keep: the report, the run's variables, error handlers, step ids. */
export class TranslatorBase<V = unknown> {
  readonly mapped: ImportEntry[] = [];
  readonly refused: ImportEntry[] = [];
  readonly variables = new Map<string, V>();
  readonly perStep: Record<string, unknown> = {};
  readonly ids = new StepIds();

  /** Declares a variable (in context.mutable, with its initial value) and returns its name. */
  v(name: string, initial: V = null as V): string {
    if (!this.variables.has(name)) this.variables.set(name, initial);
    return name;
  }

  id(base: string): string {
    return this.ids.next(base);
  }

  /**
   * The import's answer: the definition `build` returns, with the error handlers gathered on the
   * way, and the report; after a refusal anywhere (thrown, or recorded and `build` returning
   * undefined), the report alone: nothing is half-converted.
   */
  result(build: () => Obj | undefined): ImportResult {
    try {
      const definition = build();
      if (!definition) return { mapped: this.mapped, refused: this.refused };
      if (Object.keys(this.perStep).length > 0) definition.error_handling = { per_step: this.perStep };
      return { definition, mapped: this.mapped, refused: this.refused };
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      this.refused.push({ path: error.path, construct: error.construct, detail: error.message });
      return { mapped: this.mapped, refused: this.refused };
    }
  }
}
