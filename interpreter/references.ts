import {
  ExpressionError,
  compileExpression,
  evaluate,
  splitTemplate,
  type CompileProblem,
  type CompiledExpression,
  type EvaluationData,
  type NameScope,
} from './expressions.ts';

/**
 * Data flow between steps: values (a step's `inputs`, a `set` step's values, the definition's
 * `output`) may hold templates and the seed-002 bare reference form.
 *
 * - `"${steps.summarize.output.summary}"`: a string that is exactly one template keeps the value's
 *   type (object, number, ...); templates inside a longer string interpolate.
 * - `"fetch-data.data"`: a string that is a step id of an earlier step followed by a path reads
 *   that step's output (`steps.fetch-data.output.data`). Whether a string is such a reference is
 *   decided once, at compile time, from the ids of the steps that run before it; every other
 *   string is a literal.
 *
 * Pure functions only: this module runs inside the Temporal workflow sandbox.
 */

export type { CompileProblem } from './expressions.ts';

export type CompiledValue =
  | { kind: 'literal'; value: unknown }
  | { kind: 'expr'; expr: CompiledExpression }
  | { kind: 'interpolate'; parts: Array<string | CompiledExpression> }
  | { kind: 'array'; items: CompiledValue[] }
  | { kind: 'object'; entries: Array<[string, CompiledValue]> };

/** Escapes one JSON Pointer segment (RFC 6901). */
export function pointerSegment(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

const BARE_REFERENCE = /^([A-Za-z][A-Za-z0-9_-]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])+)$/;

function compileString(text: string, scope: NameScope, pointer: string, problems: CompileProblem[]): CompiledValue {
  if (!text.includes('${')) {
    const bare = BARE_REFERENCE.exec(text);
    const id = bare?.[1];
    if (id !== undefined && scope.steps.has(id)) {
      const expr = compileExpression(text, scope, pointer, problems);
      return expr ? { kind: 'expr', expr } : { kind: 'literal', value: text };
    }
    if (id !== undefined && scope.allSteps.has(id)) {
      const why = scope.whyInvisible?.(id) ?? `step "${id}" does not run before this point`;
      problems.push({ pointer, message: `"${text}" reads step "${id}", but ${why}` });
    }
    return { kind: 'literal', value: text };
  }
  const { parts, error } = splitTemplate(text);
  if (error) {
    problems.push({ pointer, message: error });
    return { kind: 'literal', value: text };
  }
  const compiled: Array<string | CompiledExpression> = [];
  for (const part of parts) {
    if (typeof part === 'string') {
      compiled.push(part);
      continue;
    }
    const expr = compileExpression(part.body.trim(), scope, pointer, problems);
    compiled.push(expr ?? '');
  }
  const only = compiled[0];
  if (compiled.length === 1 && only !== undefined && typeof only !== 'string') return { kind: 'expr', expr: only };
  return { kind: 'interpolate', parts: compiled };
}

/**
 * Compiles a JSON value into a tree where every template is parsed and checked. Problems are
 * collected, never thrown, so validation can report all of them at once.
 */
export function compileValue(value: unknown, scope: NameScope, pointer: string, problems: CompileProblem[]): CompiledValue {
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

/** True when the value holds no template or reference (it evaluates to itself). */
export function isConstant(value: CompiledValue): boolean {
  switch (value.kind) {
    case 'literal':
      return true;
    case 'array':
      return value.items.every(isConstant);
    case 'object':
      return value.entries.every(([, v]) => isConstant(v));
    default:
      return false;
  }
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function evaluateDefined(expr: CompiledExpression, data: EvaluationData): unknown {
  const value = evaluate(expr, data);
  if (value === undefined) {
    throw new ExpressionError(
      `"${expr.source}" has no value (a field or step output it reads is missing); use "|default(...)" to allow that`,
    );
  }
  return value;
}

/** Evaluates a compiled value against the run's data; throws ExpressionError. */
export function resolveValue(compiled: CompiledValue, data: EvaluationData): unknown {
  switch (compiled.kind) {
    case 'literal':
      return compiled.value;
    case 'expr':
      return evaluateDefined(compiled.expr, data);
    case 'interpolate':
      return compiled.parts.map((p) => (typeof p === 'string' ? p : stringify(evaluateDefined(p, data)))).join('');
    case 'array':
      return compiled.items.map((item) => resolveValue(item, data));
    case 'object':
      return Object.fromEntries(compiled.entries.map(([k, v]) => [k, resolveValue(v, data)]));
  }
}

/** Evaluates a condition: `${...}` around it is optional; the result counts by JavaScript truthiness. */
export function compileCondition(source: string, scope: NameScope, pointer: string, problems: CompileProblem[]): CompiledExpression | undefined {
  const trimmed = source.trim();
  const { parts } = splitTemplate(trimmed);
  const only = parts[0];
  const body = parts.length === 1 && only !== undefined && typeof only !== 'string' ? only.body : trimmed;
  return compileExpression(body.trim(), scope, pointer, problems);
}

export function testCondition(expr: CompiledExpression, data: EvaluationData): boolean {
  return Boolean(evaluate(expr, data));
}
