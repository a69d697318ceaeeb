// Over 400 lines: one concept, the expression language (Jexl set-up, name checks, output-read checks, evaluation, templates); its function library is expression-functions.ts.
import jexlModule from 'jexl';
import JexlLexer, { type JexlToken } from 'jexl/dist/Lexer.js';
import { EXPRESSION_FUNCTIONS, withRunClock, type RunClock } from './expression-functions.ts';
import { missingField, type OutputContract } from './output-shapes.ts';
import { LIMITS } from './steps/parts.ts';

/**
 * Conditions and templates, evaluated with Jexl (Mozilla's JavaScript Expression Language): a
 * parser and a tree-walking evaluator, no `eval` or `new Function`, and no way to call anything but
 * the functions registered below. It bundles into the Temporal workflow sandbox and is
 * deterministic: the library below has no clock, randomness or I/O; `now()` and `uuid()` read the
 * run's own sources (`RunClock`), passed in with the data.
 *
 * The seed syntax works as written:
 * - `fetch-data.status == 200`: a step id (hyphens included) followed by a path reads that step's
 *   output; `steps.fetch-data.output.status` is the long form.
 * - `counter < 5`: a bare name reads a variable (`context.mutable`), then `context.readonly`.
 * - `${steps.summarize.output.summary}`, `${signal.subject.id}`: templates inside strings.
 *
 * Inside a name, `-` belongs to the name when there is no space around it: write `a - b` to
 * subtract. Every name is checked when the definition is registered; an unknown one is an error
 * with the step id and JSON path.
 */

/** Names every expression may start with. */
export const ROOT_NAMES = ['input', 'context', 'steps', 'run', 'signal', 'vars'] as const;

/** Names bound only in some places: `item`/`index` in for_each, `iteration` in loops, `error` in handlers, `event` in filters. */
export const BINDING_NAMES = ['item', 'index', 'iteration', 'error', 'event'] as const;
export type BindingName = (typeof BINDING_NAMES)[number];

/** Property names an expression may never read: they lead out of plain data. */
const FORBIDDEN_PROPERTIES = new Set(['__proto__', 'constructor', 'prototype', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__']);

/** What names an expression may use where it is written. */
export interface NameScope {
  /** Ids of the steps that have run (or may have run) before this point. */
  steps: ReadonlySet<string>;
  /** Every step id in the definition: tells "later step" from "no such step", and finds hyphenated ids. */
  allSteps: ReadonlySet<string>;
  /** Variable names: `context.mutable` keys and every `set` step's keys. */
  variables: ReadonlySet<string>;
  /** `context.readonly` keys. */
  readonly: ReadonlySet<string>;
  /** Which of the contextual bindings exist here. */
  bindings: ReadonlySet<BindingName>;
  /** Where step ids are placed relative to this point, for clearer messages about invisible ones. */
  whyInvisible?: (stepId: string) => string | undefined;
  /** The registered output contract of a step, when known: reads of fields it lacks are errors. */
  outputOf?: (stepId: string) => OutputContract | undefined;
}

export interface CompileProblem {
  pointer: string;
  message: string;
}

type Ast =
  | { type: 'UnaryExpression'; operator: string; right: Ast }
  | { type: 'BinaryExpression'; operator: string; left: Ast; right: Ast }
  | { type: 'ConditionalExpression'; test: Ast; consequent?: Ast; alternate: Ast }
  | { type: 'FilterExpression'; relative: boolean; expr: Ast; subject: Ast }
  | { type: 'Literal'; value: string | number | boolean }
  | { type: 'ArrayLiteral'; value: Ast[] }
  | { type: 'ObjectLiteral'; value: Record<string, Ast> }
  | { type: 'Identifier'; value: string; from?: Ast; relative?: boolean }
  | { type: 'FunctionCall'; name: string; pool: 'functions' | 'transforms'; args: Ast[] };

/** A parsed, checked expression, ready to evaluate many times. */
export interface CompiledExpression {
  /** The text as written in the definition. */
  source: string;
  /** The text Jexl parsed (hyphenated step ids rewritten to `steps["id"].output`). */
  text: string;
  /** The root names it reads, resolved once at compile time. */
  names: Array<{ name: string; kind: 'root' | 'binding' | 'step' | 'variable' | 'readonly' }>;
  expression: Expression;
}

export { EXPRESSION_FUNCTIONS, RUN_UUID_NAMESPACE, runUuid, type RunClock } from './expression-functions.ts';


// Jexl has no unary minus: its lexer glues a "-" to the number after it where the token before
// cannot end an operand (an operator, "(", "[", "?", ":", or nothing), and reads it as subtraction
// anywhere else. The comma is missing from that list (TomFrost/Jexl#97; the fix, #122, is
// unreleased), so `max(3, -4)` and `[1, -2]` failed to parse while `(-1)` worked. A comma cannot end
// an operand either; only expressions that failed to parse read differently.
const readsNegative = JexlLexer.prototype._isNegative;
JexlLexer.prototype._isNegative = function isNegative(this: JexlLexer, tokens: JexlToken[]): boolean {
  return tokens.at(-1)?.type === 'comma' || readsNegative.call(this, tokens);
};

const jexl = new jexlModule.Jexl();
// Jexl looks tokens up in a plain object, so inherited names (`constructor`, `toString`,
// `__proto__`) would lex as operators; without a prototype they lex as the names they are.
Object.setPrototypeOf(jexl._grammar.elements, null);
type Expression = ReturnType<typeof jexl.compile>;
for (const [name, { fn }] of Object.entries(EXPRESSION_FUNCTIONS)) {
  jexl.addFunction(name, fn);
  jexl.addTransform(name, fn);
}

const IDENT_START = /[A-Za-z_$]/;
const IDENT_CHAR = /[A-Za-z0-9_$]/;

/**
 * Rewrites hyphenated names so Jexl reads them as names, leaving string literals alone:
 * `steps.fetch-data.output` → `steps["fetch-data"].output`, `fetch-data.status` →
 * `steps["fetch-data"].output.status`, `headers.content-type` → `headers["content-type"]`.
 */
export function rewriteHyphens(text: string, allSteps: ReadonlySet<string>, report: (message: string) => void): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== ch) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const prev = i > 0 ? (text[i - 1] as string) : '';
    if (IDENT_START.test(ch) && !IDENT_CHAR.test(prev)) {
      let j = i;
      while (j < text.length && IDENT_CHAR.test(text[j] as string)) j += 1;
      // Greedily take "-part" segments written without spaces.
      while (text[j] === '-' && j + 1 < text.length && IDENT_CHAR.test(text[j + 1] as string)) {
        j += 1;
        while (j < text.length && IDENT_CHAR.test(text[j] as string)) j += 1;
      }
      const word = text.slice(i, j);
      if (word.includes('-')) {
        const trimmed = out.trimEnd();
        if (trimmed.endsWith('.')) {
          out = `${trimmed.slice(0, -1)}[${JSON.stringify(word)}]`;
        } else if (allSteps.has(word)) {
          out += `steps[${JSON.stringify(word)}].output`;
        } else {
          report(`"${word}" is not a step id; to subtract, put spaces around "-"`);
          out += word;
        }
      } else {
        out += word;
      }
      i = j;
      continue;
    }
    out += ch;
    i += 1;
  }
  return out;
}

function staticKey(ast: Ast): string | undefined {
  return ast.type === 'Literal' && typeof ast.value === 'string' ? ast.value : undefined;
}

/** The step id named by `steps.<id>` or `steps["<id>"]`, when `ast` is exactly that access. */
function stepAccess(ast: Ast): string | undefined {
  if (ast.type === 'Identifier' && ast.from?.type === 'Identifier' && ast.from.value === 'steps' && !ast.from.from && !ast.from.relative) {
    return ast.value;
  }
  if (ast.type === 'FilterExpression' && !ast.relative && ast.subject.type === 'Identifier' && ast.subject.value === 'steps' && !ast.subject.from) {
    return staticKey(ast.expr);
  }
  return undefined;
}

function explainStep(id: string, scope: NameScope): string {
  const why = scope.whyInvisible?.(id);
  if (why) return why;
  return scope.allSteps.has(id) ? `step "${id}" does not run before this point` : `there is no step "${id}"`;
}

function checkAst(ast: Ast, scope: NameScope, names: Map<string, CompiledExpression['names'][number]['kind']>, report: (m: string) => void): void {
  const accessed = stepAccess(ast);
  if (accessed !== undefined && !scope.steps.has(accessed)) report(explainStep(accessed, scope));
  switch (ast.type) {
    case 'Literal':
      return;
    case 'Identifier': {
      if (ast.from) {
        if (FORBIDDEN_PROPERTIES.has(ast.value)) report(`"${ast.value}" cannot be read in an expression`);
        checkAst(ast.from, scope, names, report);
        return;
      }
      if (ast.relative) return;
      const name = ast.value;
      if ((BINDING_NAMES as readonly string[]).includes(name)) {
        if (scope.bindings.has(name as BindingName)) names.set(name, 'binding');
        else report(`"${name}" is only available ${bindingWhere(name as BindingName)}`);
      } else if ((ROOT_NAMES as readonly string[]).includes(name)) {
        names.set(name, 'root');
      } else if (scope.steps.has(name)) {
        names.set(name, 'step');
      } else if (scope.allSteps.has(name)) {
        report(explainStep(name, scope));
      } else if (scope.variables.has(name)) {
        names.set(name, 'variable');
      } else if (scope.readonly.has(name)) {
        names.set(name, 'readonly');
      } else {
        report(`unknown name "${name}": not a step that runs earlier, a variable (context.mutable or a set step), a context.readonly key, or one of ${ROOT_NAMES.join(', ')}`);
      }
      return;
    }
    case 'FilterExpression': {
      const key = staticKey(ast.expr);
      if (!ast.relative && key !== undefined && FORBIDDEN_PROPERTIES.has(key)) report(`"${key}" cannot be read in an expression`);
      checkAst(ast.subject, scope, names, report);
      checkAst(ast.expr, scope, names, report);
      return;
    }
    case 'UnaryExpression':
      checkAst(ast.right, scope, names, report);
      return;
    case 'BinaryExpression':
      checkAst(ast.left, scope, names, report);
      checkAst(ast.right, scope, names, report);
      return;
    case 'ConditionalExpression':
      checkAst(ast.test, scope, names, report);
      if (ast.consequent) checkAst(ast.consequent, scope, names, report);
      checkAst(ast.alternate, scope, names, report);
      return;
    case 'ArrayLiteral':
      for (const item of ast.value) checkAst(item, scope, names, report);
      return;
    case 'ObjectLiteral':
      for (const item of Object.values(ast.value)) checkAst(item, scope, names, report);
      return;
    case 'FunctionCall':
      if (!Object.prototype.hasOwnProperty.call(EXPRESSION_FUNCTIONS, ast.name)) {
        report(`unknown function "${ast.name}"; available: ${Object.keys(EXPRESSION_FUNCTIONS).join(', ')}`);
      }
      for (const arg of ast.args ?? []) checkAst(arg, scope, names, report);
      return;
  }
}

/**
 * A property chain (`a.b[0]["c"]`) down to its root name, with the statically known keys in
 * order (undefined for a computed one), or undefined when `ast` is not such a chain.
 */
function chainOf(ast: Ast): { root: string; keys: Array<string | number | undefined>; computed: Ast[] } | undefined {
  const keys: Array<string | number | undefined> = [];
  const computed: Ast[] = [];
  let node: Ast = ast;
  for (;;) {
    if (node.type === 'Identifier' && node.from) {
      keys.unshift(node.value);
      node = node.from;
    } else if (node.type === 'FilterExpression' && !node.relative) {
      const key = node.expr.type === 'Literal' && (typeof node.expr.value === 'string' || typeof node.expr.value === 'number') ? node.expr.value : undefined;
      if (key === undefined) computed.push(node.expr);
      keys.unshift(key);
      node = node.subject;
    } else break;
  }
  if (keys.length === 0 || node.type !== 'Identifier' || node.from || node.relative) return undefined;
  return { root: node.value, keys, computed };
}

/**
 * Reads of step outputs whose fields the step's registered output schema does not have:
 * `fetch.body`, `steps.fetch.output.body`, `steps["fetch"].output.body`.
 */
function checkOutputReads(ast: Ast, scope: NameScope, names: ReadonlyMap<string, string>, report: (m: string) => void): void {
  const outputOf = scope.outputOf;
  if (!outputOf) return;
  const chain = ast.type === 'Identifier' || ast.type === 'FilterExpression' ? chainOf(ast) : undefined;
  if (chain) {
    let stepId: string | undefined;
    let path: Array<string | number | undefined> = [];
    if (chain.root === 'steps' && names.get('steps') === 'root' && typeof chain.keys[0] === 'string' && chain.keys[1] === 'output') {
      [stepId, path] = [chain.keys[0], chain.keys.slice(2)];
    } else if (names.get(chain.root) === 'step') {
      [stepId, path] = [chain.root, chain.keys];
    }
    const contract = stepId === undefined ? undefined : outputOf(stepId);
    const why = contract ? missingField(contract, path) : undefined;
    if (why) report(`step "${stepId}": ${why}`);
    for (const inner of chain.computed) checkOutputReads(inner, scope, names, report);
    return;
  }
  switch (ast.type) {
    case 'UnaryExpression':
      checkOutputReads(ast.right, scope, names, report);
      return;
    case 'BinaryExpression':
      checkOutputReads(ast.left, scope, names, report);
      checkOutputReads(ast.right, scope, names, report);
      return;
    case 'ConditionalExpression':
      checkOutputReads(ast.test, scope, names, report);
      if (ast.consequent) checkOutputReads(ast.consequent, scope, names, report);
      checkOutputReads(ast.alternate, scope, names, report);
      return;
    case 'FilterExpression':
      // A relative filter (`list[.x > 1]`) reads the items, not outputs; its subject may.
      checkOutputReads(ast.subject, scope, names, report);
      return;
    case 'Identifier':
      if (ast.from) checkOutputReads(ast.from, scope, names, report);
      return;
    case 'ArrayLiteral':
      for (const item of ast.value) checkOutputReads(item, scope, names, report);
      return;
    case 'ObjectLiteral':
      for (const item of Object.values(ast.value)) checkOutputReads(item, scope, names, report);
      return;
    case 'FunctionCall':
      for (const arg of ast.args ?? []) checkOutputReads(arg, scope, names, report);
      return;
    default:
      return;
  }
}

function bindingWhere(name: BindingName): string {
  switch (name) {
    case 'item':
    case 'index':
      return 'inside a for_each step';
    case 'iteration':
      return 'inside a loop step';
    case 'error':
      return 'in error handlers and compensation steps';
    case 'event':
      return "in a wait_for_event step's filter";
  }
}

/**
 * Parses and checks one expression. Problems are reported, never thrown, so validation lists
 * every one; returns undefined when the expression cannot be used.
 */
export function compileExpression(source: string, scope: NameScope, pointer: string, problems: CompileProblem[]): CompiledExpression | undefined {
  const before = problems.length;
  const report = (message: string) => problems.push({ pointer, message: `${message} (in "${source}")` });
  if (source.length > LIMITS.maxExpressionLength) {
    report(`the expression is longer than ${LIMITS.maxExpressionLength} characters`);
    return undefined;
  }
  const text = rewriteHyphens(source, scope.allSteps, report);
  const brackets = unbalanced(text);
  if (brackets) {
    report(`syntax error: ${brackets}`);
    return undefined;
  }
  let expression: Expression;
  try {
    expression = jexl.compile(text);
  } catch (error) {
    report(`syntax error: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  const ast = expression._getAst() as Ast | undefined;
  // jexl parses blank text to no tree at all.
  if (!ast) {
    report('the expression is empty');
    return undefined;
  }
  const names = new Map<string, CompiledExpression['names'][number]['kind']>();
  checkAst(ast, scope, names, report);
  if (problems.length === before) checkOutputReads(ast, scope, names, report);
  if (problems.length > before) return undefined;
  return { source, text, names: [...names].map(([name, kind]) => ({ name, kind })), expression };
}

/** The data an expression reads while a run executes. */
export interface EvaluationData {
  input: unknown;
  context: { readonly: Record<string, unknown>; mutable: Record<string, unknown> };
  /** Step states visible here, keyed by id. */
  steps: Record<string, { status: string; output?: unknown; error?: unknown }>;
  run: Record<string, unknown>;
  signal: unknown;
  bindings: Partial<Record<BindingName, unknown>>;
  /** The run's deterministic sources for `now()` and `uuid()`; without it they fail. */
  clock?: RunClock;
}

/** Raised when an expression or template fails at run time. */
export class ExpressionError extends Error {
  override name = 'ExpressionError';
}

function contextFor(compiled: CompiledExpression, data: EvaluationData): Record<string, unknown> {
  const ctx: Record<string, unknown> = {};
  for (const { name, kind } of compiled.names) {
    switch (kind) {
      case 'binding':
        ctx[name] = data.bindings[name as BindingName];
        break;
      case 'root':
        ctx[name] = name === 'vars' ? data.context.mutable : data[name as Exclude<(typeof ROOT_NAMES)[number], 'vars'>];
        break;
      case 'step':
        ctx[name] = data.steps[name]?.output;
        break;
      case 'variable':
        ctx[name] = data.context.mutable[name];
        break;
      case 'readonly':
        ctx[name] = data.context.readonly[name];
        break;
    }
  }
  return ctx;
}

export function evaluate(compiled: CompiledExpression, data: EvaluationData): unknown {
  let value: unknown;
  try {
    value = withRunClock(data.clock, () => compiled.expression.evalSync(contextFor(compiled, data)));
  } catch (error) {
    throw new ExpressionError(`"${compiled.source}" failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  // Only data comes out: a computed key such as input[k] with k = "constructor" cannot leak a function.
  if (typeof value === 'function' || value === Object.prototype || value === Array.prototype) {
    throw new ExpressionError(`"${compiled.source}" reads something that is not data`);
  }
  return value;
}

/** Unbalanced brackets outside string literals (Jexl tolerates an unclosed "("), or undefined. */
function unbalanced(text: string): string | undefined {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i] as string;
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== ch) j += text[j] === '\\' ? 2 : 1;
      i = j;
    } else if (ch === '(' || ch === '[' || ch === '{') stack.push(ch);
    else if (ch in pairs) {
      if (stack.pop() !== pairs[ch]) return `unexpected "${ch}" at character ${i + 1}`;
    }
  }
  return stack.length > 0 ? `"${stack[stack.length - 1]}" is never closed` : undefined;
}

/** Splits a string into literal text and `${...}` template bodies; braces and quotes inside a body nest. */
export function splitTemplate(text: string): { parts: Array<string | { body: string }>; error?: string } {
  const parts: Array<string | { body: string }> = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === '$' && text[i + 1] === '{') {
      let depth = 1;
      let j = i + 2;
      while (j < text.length && depth > 0) {
        const ch = text[j];
        if (ch === '"' || ch === "'") {
          let k = j + 1;
          while (k < text.length && text[k] !== ch) k += text[k] === '\\' ? 2 : 1;
          j = k + 1;
          continue;
        }
        if (ch === '{') depth += 1;
        else if (ch === '}') depth -= 1;
        j += 1;
      }
      if (depth > 0) return { parts, error: `"${text}" has an unterminated "\${"` };
      if (literal) parts.push(literal);
      literal = '';
      parts.push({ body: text.slice(i + 2, j - 1) });
      i = j;
      continue;
    }
    literal += text[i];
    i += 1;
  }
  if (literal) parts.push(literal);
  return { parts };
}
