/**
 * Data flow between steps: `${...}` templates and the seed-002 bare reference form.
 *
 * - `"${steps.summarize.output.summary}"`: a string that is exactly one template keeps the
 *   referenced value's type (object, number, ...); templates inside a longer string interpolate.
 * - `"fetch-data.data"`: a string that is a step id of an earlier step followed by a path reads
 *   that step's output (`steps.fetch-data.output.data`). Whether a string is such a reference is
 *   decided once, at compile time, from the ids of the steps that run before it; every other
 *   string is a literal.
 *
 * Pure functions only: this module runs inside the Temporal workflow sandbox.
 */

export const REFERENCE_ROOTS = ['input', 'context', 'steps', 'run'] as const;
export type ReferenceRoot = (typeof REFERENCE_ROOTS)[number];

export type PathSegment = string | number;

export interface Reference {
  /** The text as written, for error messages. */
  source: string;
  root: ReferenceRoot;
  path: PathSegment[];
}

export type CompiledValue =
  | { kind: 'literal'; value: unknown }
  | { kind: 'ref'; ref: Reference }
  | { kind: 'interpolate'; parts: Array<string | Reference> }
  | { kind: 'array'; items: CompiledValue[] }
  | { kind: 'object'; entries: Array<[string, CompiledValue]> };

/** A problem found while compiling, located by a JSON Pointer relative to the compiled value. */
export interface CompileProblem {
  pointer: string;
  message: string;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_-]*/y;
const INDEX = /\[(\d+)\]/y;
const QUOTED = /\[(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\]/y;

/** Parses `root.a.b[0]["c d"]` into segments, or returns an error message. */
export function parsePath(text: string): PathSegment[] | string {
  const segments: PathSegment[] = [];
  let pos = 0;
  const src = text.trim();
  const readIdent = (): string | undefined => {
    IDENT.lastIndex = pos;
    const m = IDENT.exec(src);
    if (!m) return undefined;
    pos = IDENT.lastIndex;
    return m[0];
  };
  const first = readIdent();
  if (first === undefined) return `"${src}" is not a reference: it must start with a name`;
  segments.push(first);
  while (pos < src.length) {
    const ch = src[pos];
    if (ch === '.') {
      pos += 1;
      const ident = readIdent();
      if (ident === undefined) return `"${src}": expected a name after "." at character ${pos + 1}`;
      segments.push(ident);
      continue;
    }
    if (ch === '[') {
      INDEX.lastIndex = pos;
      const idx = INDEX.exec(src);
      if (idx) {
        segments.push(Number(idx[1]));
        pos = INDEX.lastIndex;
        continue;
      }
      QUOTED.lastIndex = pos;
      const quoted = QUOTED.exec(src);
      if (quoted) {
        segments.push((quoted[1] ?? quoted[2] ?? '').replace(/\\(.)/g, '$1'));
        pos = QUOTED.lastIndex;
        continue;
      }
      return `"${src}": expected [number] or ["key"] at character ${pos + 1}`;
    }
    return `"${src}" is not a plain reference (unexpected "${ch}" at character ${pos + 1}); operators and functions are not supported in templates`;
  }
  return segments;
}

/** Options that say which names a reference may use at this point of the definition. */
export interface CompileScope {
  /** Ids of the steps that complete before the value is evaluated. */
  earlierSteps: ReadonlySet<string>;
  /** Ids of every step in the definition, to tell "later step" from "no such step". */
  allSteps: ReadonlySet<string>;
}

function checkReference(
  source: string,
  scope: CompileScope,
): Reference | string {
  const parsed = parsePath(source);
  if (typeof parsed === 'string') return parsed;
  const [root, ...rest] = parsed;
  if (typeof root !== 'string' || !(REFERENCE_ROOTS as readonly string[]).includes(root)) {
    return `"${source}": references start with one of ${REFERENCE_ROOTS.join(', ')}`;
  }
  if (root === 'steps') {
    const id = rest[0];
    if (typeof id !== 'string') return `"${source}": name a step, as in steps.<id>.output`;
    if (!scope.earlierSteps.has(id)) {
      return scope.allSteps.has(id)
        ? `"${source}" refers to step "${id}", which does not run before this point`
        : `"${source}" refers to step "${id}", which does not exist`;
    }
    const field = rest[1];
    if (field !== undefined && field !== 'output' && field !== 'status') {
      return `"${source}": a step exposes "output" and "status", not "${String(field)}"`;
    }
  }
  return { source, root: root as ReferenceRoot, path: rest };
}

const BARE_REFERENCE = /^([A-Za-z][A-Za-z0-9_-]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])+)$/;
const TEMPLATE = /\$\{([^}]*)\}/g;

function compileString(text: string, scope: CompileScope, pointer: string, problems: CompileProblem[]): CompiledValue {
  const bare = BARE_REFERENCE.exec(text);
  if (bare && !text.includes('${')) {
    const stepIdText = bare[1] ?? '';
    if (scope.earlierSteps.has(stepIdText)) {
      const parsed = parsePath(`steps["${stepIdText}"].output${bare[2] ?? ''}`);
      if (typeof parsed !== 'string') {
        return { kind: 'ref', ref: { source: text, root: 'steps', path: parsed.slice(1) } };
      }
    } else if (scope.allSteps.has(stepIdText)) {
      problems.push({ pointer, message: `"${text}" refers to step "${stepIdText}", which does not run before this point` });
      return { kind: 'literal', value: text };
    }
  }
  if (!text.includes('${')) return { kind: 'literal', value: text };

  const parts: Array<string | Reference> = [];
  let last = 0;
  for (const match of text.matchAll(TEMPLATE)) {
    const start = match.index ?? 0;
    if (start > last) parts.push(text.slice(last, start));
    const inner = (match[1] ?? '').trim();
    const ref = checkReference(inner, scope);
    if (typeof ref === 'string') {
      problems.push({ pointer, message: ref });
      parts.push(match[0]);
    } else {
      parts.push(ref);
    }
    last = start + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  // Only text outside complete templates can hold an unterminated one (a rejected template's own
  // text is kept in `parts` but has already been reported).
  const unterminated = text.replace(TEMPLATE, '').includes('${');
  if (unterminated) problems.push({ pointer, message: `"${text}" has an unterminated "\${"` });
  if (parts.length === 1 && typeof parts[0] !== 'string' && parts[0] !== undefined) {
    return { kind: 'ref', ref: parts[0] };
  }
  return { kind: 'interpolate', parts };
}

/** Escapes one JSON Pointer segment (RFC 6901). */
export function pointerSegment(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Compiles a JSON value (a step's `inputs`, the definition's `output`) into a tree where every
 * reference is parsed and checked. Problems are collected, never thrown, so validation can report
 * all of them at once.
 */
export function compileValue(
  value: unknown,
  scope: CompileScope,
  pointer: string,
  problems: CompileProblem[],
): CompiledValue {
  if (typeof value === 'string') return compileString(value, scope, pointer, problems);
  if (Array.isArray(value)) {
    return { kind: 'array', items: value.map((v, i) => compileValue(v, scope, `${pointer}/${i}`, problems)) };
  }
  if (value !== null && typeof value === 'object') {
    return {
      kind: 'object',
      entries: Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        compileValue(v, scope, `${pointer}/${pointerSegment(k)}`, problems),
      ]),
    };
  }
  return { kind: 'literal', value };
}

/** Raised when a reference names data that is not there at run time. */
export class ReferenceResolutionError extends Error {
  override name = 'ReferenceResolutionError';
  constructor(
    readonly reference: string,
    message: string,
  ) {
    super(message);
  }
}

/** The data a reference can read while a run executes. */
export interface EvaluationScope {
  input: unknown;
  context: { readonly: Record<string, unknown>; mutable: Record<string, unknown> };
  steps: Record<string, { status: string; output?: unknown }>;
  run: Record<string, unknown>;
}

function lookup(scope: EvaluationScope, ref: Reference): unknown {
  let current: unknown = scope[ref.root];
  const walked: string[] = [ref.root];
  for (const segment of ref.path) {
    if (current === null || current === undefined || typeof current !== 'object') {
      throw new ReferenceResolutionError(
        ref.source,
        `"${ref.source}": ${walked.join('.')} is ${current === null ? 'null' : typeof current}, so it has no "${String(segment)}"`,
      );
    }
    if (!Object.prototype.hasOwnProperty.call(current, segment)) {
      throw new ReferenceResolutionError(ref.source, `"${ref.source}": ${walked.join('.')} has no "${String(segment)}"`);
    }
    current = (current as Record<string | number, unknown>)[segment];
    walked.push(String(segment));
  }
  return current;
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Evaluates a compiled value against the run's data; throws ReferenceResolutionError. */
export function resolveValue(compiled: CompiledValue, scope: EvaluationScope): unknown {
  switch (compiled.kind) {
    case 'literal':
      return compiled.value;
    case 'ref':
      return lookup(scope, compiled.ref);
    case 'interpolate':
      return compiled.parts.map((p) => (typeof p === 'string' ? p : stringify(lookup(scope, p)))).join('');
    case 'array':
      return compiled.items.map((item) => resolveValue(item, scope));
    case 'object':
      return Object.fromEntries(compiled.entries.map(([k, v]) => [k, resolveValue(v, scope)]));
  }
}
