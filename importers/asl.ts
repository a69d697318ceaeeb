/**
 * Amazon States Language (Step Functions) → a native definition.
 *
 * A state machine is a graph of named states joined by `Next`; the native language is structured
 * (lists of steps, composites). The translation keeps the machine's own semantics:
 *
 * - Every machine (the top level, each Parallel branch, each Map iteration) has its own variables:
 *   `_d<k>` is the JSON document flowing between its states, `_s<k>` the state to run next.
 *   Internal names start with `_`; ASL variables (`Assign`) become `v_<name>`.
 * - A machine whose states form one chain (each state has one successor, no Choice, no Catch, no
 *   state entered twice) becomes those steps in order. Any other machine becomes a bounded
 *   `loop` over a `switch` on `_s<k>`, one case per state, so every jump (a Choice, a Catch, a
 *   backward `Next`) is exact.
 * - JSONPath data flow (InputPath, Parameters, ResultSelector, ResultPath, OutputPath, ItemsPath,
 *   ItemSelector) becomes expressions over `_d<k>`; Choice rules become typed comparisons
 *   (`NumericEquals` is false for the string "42", as on AWS).
 *
 * Anything that cannot be mapped exactly is refused with its JSON path and the reason; an import
 * with a refusal produces no definition, because a definition that runs differently from its
 * source is worse than none.
 *
 * Pure: no I/O. The API parses the source text and registers the result.
 */

import { dispatchLoop, END, endsInFail, guarded, isObj, Refusal, seg, slugName, TranslatorBase, type ImportOptionsBase, type ImportResult, type Obj, type Step } from './common.ts';

export type { ImportEntry, ImportResult } from './common.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface AslImportOptions extends ImportOptionsBase {
  /** Task `Resource` (an ARN, exactly, or a prefix ending in `*`) → the skill that runs it. */
  resources?: Record<string, string>;
}
const STATE_TYPES = new Set(['Pass', 'Task', 'Choice', 'Wait', 'Succeed', 'Fail', 'Parallel', 'Map']);

/** Fields each state type may carry; anything else is refused rather than ignored. */
const STATE_FIELDS: Record<string, string[]> = {
  common: ['Type', 'Comment', 'Next', 'End', 'InputPath', 'OutputPath', 'Assign', 'QueryLanguage'],
  Pass: ['Result', 'ResultPath', 'Parameters'],
  Task: ['Resource', 'Parameters', 'ResultSelector', 'ResultPath', 'Retry', 'Catch', 'TimeoutSeconds', 'HeartbeatSeconds'],
  Choice: ['Choices', 'Default'],
  Wait: ['Seconds', 'SecondsPath', 'Timestamp', 'TimestampPath'],
  Succeed: [],
  Fail: ['Error', 'Cause', 'ErrorPath', 'CausePath'],
  Parallel: ['Branches', 'Parameters', 'ResultSelector', 'ResultPath', 'Retry', 'Catch'],
  Map: ['ItemProcessor', 'Iterator', 'ItemsPath', 'ItemSelector', 'Parameters', 'MaxConcurrency', 'ResultSelector', 'ResultPath', 'Retry', 'Catch', 'ToleratedFailurePercentage', 'ToleratedFailureCount'],
};

/** A string literal inside an expression. */
function str(s: string): string {
  if (/["\\\u0000-\u001f]/.test(s)) throw new Refusal('', 'text', `the text ${JSON.stringify(s)} holds a quote, backslash or control character`);
  return `"${s}"`;
}

/** A JSON literal inside an expression (Jexl has no null literal: null is refused where it would be needed). */
function literal(v: unknown, path: string): string {
  if (typeof v === 'string') return str(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x, i) => literal(x, `${path}/${i}`)).join(', ')}]`;
  if (isObj(v)) {
    // Jexl's object literals take names as keys, not strings.
    return Object.entries(v).reduce((acc, [k, x]) => `put(${acc}, ${str(k)}, ${literal(x, `${path}/${seg(k)}`)})`, '{}');
  }
  throw new Refusal(path, 'literal', 'a null literal cannot be compared in an expression');
}

/**
 * A string literal for an intrinsic's argument: any text. Jexl 2.3 unescapes only the first `\\`
 * of a literal and reads `\"` before the closing quote as an escaped quote, so text holding a
 * backslash is written as its backslash-free parts joined by one (`base64Decode("XA==")` is `\`).
 */
function jstr(s: string, at: string): string {
  if (/[\u0000-\u001f]/.test(s)) throw new Refusal(at, 'intrinsic function', `the text ${JSON.stringify(s)} holds a control character`);
  const plain = (part: string) => `"${part.replace(/"/g, '\\"')}"`;
  if (!s.includes('\\')) return plain(s);
  return `join([${s.split('\\').map(plain).join(', ')}], base64Decode("XA=="))`;
}

/** An intrinsic function's argument, parsed. `raw` keeps a string's escapes as written. */
type IntrinsicArg =
  | { kind: 'string'; raw: string }
  | { kind: 'number'; value: number }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' }
  | { kind: 'path'; path: string }
  | { kind: 'call'; name: string; args: IntrinsicArg[] };

/** Parses `States.Name(arg, ...)`, arguments being 'strings', numbers, booleans, null, paths or nested calls. */
export function parseIntrinsic(text: string): IntrinsicArg {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at character ${i + 1} of ${JSON.stringify(text)}`);
  };
  const space = () => {
    while (text[i] === ' ') i++;
  };
  const arg = (): IntrinsicArg => {
    space();
    if (text.startsWith('States.', i)) {
      const name = /^States\.([A-Za-z0-9]+)\(/.exec(text.slice(i));
      if (!name) fail('expected States.<Name>(');
      i += (name as RegExpExecArray)[0].length;
      const args: IntrinsicArg[] = [];
      space();
      if (text[i] === ')') {
        i++;
        return { kind: 'call', name: (name as RegExpExecArray)[1] as string, args };
      }
      for (;;) {
        args.push(arg());
        space();
        if (text[i] === ',') i++;
        else if (text[i] === ')') {
          i++;
          return { kind: 'call', name: (name as RegExpExecArray)[1] as string, args };
        } else fail('expected "," or ")"');
      }
    }
    if (text[i] === "'") {
      let j = i + 1;
      let raw = '';
      while (j < text.length && text[j] !== "'") {
        if (text[j] === '\\') {
          raw += text.slice(j, j + 2);
          j += 2;
        } else raw += text[j++];
      }
      if (j >= text.length) fail('unterminated string');
      i = j + 1;
      return { kind: 'string', raw };
    }
    if (text[i] === '$') {
      let j = i;
      let depth = 0;
      let quote: string | undefined;
      for (; j < text.length; j++) {
        const ch = text[j] as string;
        if (quote) {
          if (ch === quote) quote = undefined;
        } else if (ch === "'" || ch === '"') quote = ch;
        else if (ch === '[') depth++;
        else if (ch === ']') depth--;
        else if (depth === 0 && (ch === ',' || ch === ')' || ch === ' ')) break;
      }
      const path = text.slice(i, j);
      i = j;
      return { kind: 'path', path };
    }
    const num = /^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?/.exec(text.slice(i));
    if (num) {
      i += num[0].length;
      return { kind: 'number', value: Number(num[0]) };
    }
    for (const [word, value] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(word, i) && !/[A-Za-z0-9_]/.test(text[i + word.length] ?? '')) {
        i += word.length;
        return value === null ? { kind: 'null' } : { kind: 'boolean', value };
      }
    }
    return fail('expected an argument');
  };
  const top = arg();
  space();
  if (i !== text.length) fail('unexpected text after the call');
  if (top.kind !== 'call') fail('expected States.<Name>(...)');
  return top;
}

/** ASL's escapes in a string argument: a backslash takes the next character as it is. */
const unescape = (raw: string) => raw.replace(/\\(.)/g, '$1');

interface Machine {
  k: number;
  /** For a Map iteration: the machine whose `$$.Map.Item` this is. */
  mapItem?: number;
}

class Translator extends TranslatorBase<Json> {
  private machines = 0;

  constructor(private readonly options: AslImportOptions) {
    super();
  }

  newMachine(mapItem?: number): Machine {
    const k = this.machines++;
    return mapItem === undefined ? { k } : { k, mapItem };
  }

  /**
   * A JSONPath (the subset ASL's paths use: `$`, `.name`, `['name']`, `[n]`; `$$.` for the
   * context object; `$name` for a variable) as an expression over `base`.
   */
  path(path: unknown, base: string, m: Machine, at: string): string {
    if (typeof path !== 'string') throw new Refusal(at, 'path', 'a path is a string starting with "$"');
    let rest: string;
    let expr: string;
    if (path.startsWith('$$.')) {
      const ctx = path.slice(3);
      if (ctx === 'Map.Item.Value' || ctx.startsWith('Map.Item.Value.') || ctx.startsWith('Map.Item.Value[')) {
        if (m.mapItem === undefined) throw new Refusal(at, 'context object', '$$.Map.Item is only defined in a Map\'s ItemSelector');
        expr = this.v(`_item${m.mapItem}`);
        rest = ctx.slice('Map.Item.Value'.length);
      } else if (ctx === 'Map.Item.Index') {
        if (m.mapItem === undefined) throw new Refusal(at, 'context object', '$$.Map.Item is only defined in a Map\'s ItemSelector');
        return this.v(`_idx${m.mapItem}`);
      } else if (ctx === 'Execution.Input' || ctx.startsWith('Execution.Input.') || ctx.startsWith('Execution.Input[')) {
        expr = 'input';
        rest = ctx.slice('Execution.Input'.length);
      } else {
        throw new Refusal(at, 'context object', `the context field ${JSON.stringify(path)} has no equivalent (supported: $$.Execution.Input, $$.Map.Item.Value, $$.Map.Item.Index)`);
      }
    } else if (/^\$[A-Za-z_]/.test(path)) {
      const name = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(path)?.[1] ?? '';
      expr = this.v(`v_${name}`);
      rest = path.slice(1 + name.length);
    } else if (path.startsWith('$')) {
      expr = base;
      rest = path.slice(1);
    } else {
      throw new Refusal(at, 'path', `${JSON.stringify(path)} is not a path (paths start with "$")`);
    }
    const segment = /^(?:\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^'\\]*)'\]|\["([^"\\]*)"\]|\[(\d+)\])/;
    while (rest.length > 0) {
      const match = segment.exec(rest);
      if (!match) {
        throw new Refusal(at, 'path', `${JSON.stringify(path)}: only plain fields and indexes are supported in paths (no wildcards, filters, slices or "..")`);
      }
      const key = match[1] ?? match[2] ?? match[3];
      // get() is total: a missing field on the way gives no value (IsPresent false), not a TypeError.
      expr = `get(${expr}, ${key !== undefined ? str(key) : match[4]})`;
      rest = rest.slice(match[0].length);
    }
    return expr;
  }

  /** The value of a `.$` field: a path, or an intrinsic function call. */
  reference(value: unknown, base: string, m: Machine, at: string): string {
    if (typeof value === 'string' && value.startsWith('States.')) {
      let call: IntrinsicArg;
      try {
        call = parseIntrinsic(value);
      } catch (error) {
        throw new Refusal(at, 'intrinsic function', `cannot parse the intrinsic function call: ${(error as Error).message}`);
      }
      const expr = this.intrinsic(call, base, m, at);
      this.mapped.push({ path: at, construct: 'intrinsic function', detail: `${value.split('(')[0]} → ${expr}` });
      return expr;
    }
    return this.path(value, base, m, at);
  }

  /** An intrinsic function call (or one of its arguments) as a native expression. */
  intrinsic(arg: IntrinsicArg, base: string, m: Machine, at: string, opts: { template?: boolean } = {}): string {
    switch (arg.kind) {
      case 'string':
        // A Format template keeps its brace and backslash escapes: format() reads them.
        return jstr(opts.template ? arg.raw.replace(/\\'/g, "'") : unescape(arg.raw), at);
      case 'number':
      case 'boolean':
        return String(arg.value);
      case 'null':
        throw new Refusal(at, 'intrinsic function', 'a null argument has no native literal');
      case 'path':
        return this.path(arg.path, base, m, at);
      case 'call':
        break;
    }
    const { name, args } = arg;
    const fn = `States.${name}`;
    const count = (min: number, max = min) => {
      if (args.length < min || args.length > max) throw new Refusal(at, fn, `${fn} takes ${min === max ? min : `${min} to ${max}`} argument(s), not ${args.length}`);
    };
    const a = (i: number) => this.intrinsic(args[i] as IntrinsicArg, base, m, at, { template: fn === 'States.Format' && i === 0 });
    switch (name) {
      case 'Format':
        if (args.length < 1) throw new Refusal(at, fn, `${fn} takes a template and its arguments`);
        return `format(${args.map((_, i) => a(i)).join(', ')})`;
      case 'StringToJson':
        count(1);
        return `parseJson(${a(0)})`;
      case 'JsonToString':
        count(1);
        return `json(${a(0)})`;
      case 'Array':
        return `[${args.map((_, i) => a(i)).join(', ')}]`;
      case 'ArrayPartition':
        count(2);
        return `partition(${a(0)}, ${a(1)})`;
      case 'ArrayContains':
        count(2);
        return `containsValue(${a(0)}, ${a(1)})`;
      case 'ArrayRange': {
        // Inclusive of the last value, as on AWS: range() stops before its end.
        count(3);
        const step = `integer(${a(2)})`;
        return `range(integer(${a(0)}), integer(${a(1)}) + (${step} > 0 ? 1 : -1), ${step})`;
      }
      case 'ArrayGetItem':
        count(2);
        return `get(${a(0)}, integer(${a(1)}))`;
      case 'ArrayLength':
        count(1);
        return `length(${a(0)})`;
      case 'ArrayUnique':
        count(1);
        return `unique(${a(0)})`;
      case 'Base64Encode':
        count(1);
        return `base64Encode(${a(0)})`;
      case 'Base64Decode':
        count(1);
        return `base64Decode(${a(0)})`;
      case 'JsonMerge':
        count(3);
        if (!(args[2]?.kind === 'boolean' && args[2].value === false)) throw new Refusal(at, fn, 'only the shallow merge (false as the third argument) exists, as on AWS');
        return `merge(${a(0)}, ${a(1)})`;
      case 'MathAdd':
        count(2);
        return `(integer(${a(0)}) + integer(${a(1)}))`;
      case 'StringSplit':
        count(2);
        return `splitAny(${a(0)}, ${a(1)})`;
      case 'UUID':
        count(0);
        return 'uuid()';
      case 'Hash':
        count(2);
        if (args[1]?.kind === 'string' && !['MD5', 'SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'].includes(unescape(args[1].raw))) throw new Refusal(at, fn, 'the algorithm is MD5, SHA-1, SHA-256, SHA-384 or SHA-512');
        return `hash(${a(0)}, ${a(1)})`;
      case 'MathRandom':
        throw new Refusal(at, fn, 'a random number has no deterministic equivalent: a value derived from the run would not be random, so the definition would run differently from its source');
      default:
        throw new Refusal(at, fn, `the intrinsic function ${fn} does not exist`);
    }
  }

  /**
   * A payload template (Parameters, ItemSelector, ResultSelector) as a native value: fields whose
   * name ends in `.$` take a path's value, every other field is a literal.
   */
  payload(value: unknown, base: string, m: Machine, at: string): unknown {
    if (Array.isArray(value)) return value.map((x, i) => this.payload(x, base, m, `${at}/${i}`));
    if (isObj(value)) {
      const out: Obj = {};
      for (const [key, x] of Object.entries(value)) {
        if (key.endsWith('.$')) {
          out[key.slice(0, -2)] = this.t(this.reference(x, base, m, `${at}/${seg(key)}`));
        } else {
          out[key] = this.payload(x, base, m, `${at}/${seg(key)}`);
        }
      }
      return out;
    }
    return this.constant(value, at);
  }

  /** A literal JSON value kept as it is (a string holding "${" would read as a template: refused). */
  constant(value: unknown, at: string): unknown {
    if (typeof value === 'string' && value.includes('${')) throw new Refusal(at, 'literal', 'a literal holding "${" would be read as a template');
    if (Array.isArray(value)) return value.map((x, i) => this.constant(x, `${at}/${i}`));
    if (isObj(value)) return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, this.constant(x, `${at}/${seg(k)}`)]));
    return value;
  }

  /** ResultPath: where the result goes in the state's raw input. */
  resultPath(resultPath: unknown, raw: string, result: string, at: string): string {
    if (resultPath === undefined || resultPath === '$') return result;
    if (resultPath === null) return raw;
    if (typeof resultPath !== 'string' || !resultPath.startsWith('$.')) throw new Refusal(at, 'ResultPath', 'ResultPath is null, "$" or "$.field..." (fields only)');
    const keys = resultPath.slice(2).split('.');
    if (keys.some((k) => !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(k))) throw new Refusal(at, 'ResultPath', 'only plain field names are supported in ResultPath');
    const build = (i: number, at: string): string => {
      const key = keys[i] as string;
      const here = `${at}[${str(key)}]`;
      return `put(${at}, ${str(key)}, ${i === keys.length - 1 ? result : build(i + 1, here)})`;
    };
    return build(0, raw);
  }

  /** `${...}` around an expression. */
  t(expr: string): string {
    return `\${${expr}}`;
  }

  inputPath(state: Obj, m: Machine, at: string): unknown {
    if (state.InputPath === null) return {};
    return this.t(state.InputPath === undefined ? `_d${m.k}` : this.path(state.InputPath, `_d${m.k}`, m, `${at}/InputPath`));
  }

  /** The values that end a state: ResultSelector, Assign, ResultPath, OutputPath, then the next state. */
  finish(state: Obj, m: Machine, at: string, next: string | undefined, opts: { raw?: string } = {}): Obj {
    const k = m.k;
    const values: Obj = {};
    // The raw result (a Task's, Parallel's or Map's), through ResultSelector: read from the raw
    // expression itself, since one set step cannot write _r<k> twice.
    if (opts.raw !== undefined) values[this.v(`_r${k}`)] = state.ResultSelector !== undefined ? this.payload(state.ResultSelector, opts.raw, m, `${at}/ResultSelector`) : this.t(opts.raw);
    Object.assign(values, this.assign(state.Assign, `_r${k}`, m, `${at}/Assign`));
    values[this.v(`_o${k}`)] = this.t(this.resultPath(state.ResultPath, `_d${k}`, `_r${k}`, `${at}/ResultPath`));
    values[`_d${k}`] = state.OutputPath === null ? {} : this.t(state.OutputPath === undefined ? `_o${k}` : this.path(state.OutputPath, `_o${k}`, m, `${at}/OutputPath`));
    if (next !== undefined) values[`_s${k}`] = next;
    return values;
  }

  assign(assign: unknown, base: string, m: Machine, at: string): Obj {
    if (assign === undefined) return {};
    if (!isObj(assign)) throw new Refusal(at, 'Assign', 'Assign is an object');
    const out: Obj = {};
    for (const [key, value] of Object.entries(assign)) {
      const name = key.endsWith('.$') ? key.slice(0, -2) : key;
      if (!/^[A-Za-z_][A-Za-z0-9_]{0,61}$/.test(name)) throw new Refusal(`${at}/${seg(key)}`, 'Assign', `the variable name ${JSON.stringify(name)} is not supported`);
      out[this.v(`v_${name}`)] = key.endsWith('.$') ? this.t(this.reference(value, base, m, `${at}/${seg(key)}`)) : this.payload(value, base, m, `${at}/${seg(key)}`);
    }
    // AWS evaluates every expression of one Assign before it assigns any ({"x.$": "$y", "y.$": "$x"}
    // swaps), where a set step's values see the writes before them: when one reads a variable the
    // same Assign writes, every value goes to a temporary first.
    const written = Object.keys(out);
    const text = JSON.stringify(Object.values(out));
    if (!written.some((v) => new RegExp(`\\b${v}\\b`).test(text))) return out;
    const staged: Obj = {};
    for (const [v, value] of Object.entries(out)) staged[this.v(`_a${v.slice(1)}`)] = value;
    for (const v of written) staged[v] = this.t(`_a${v.slice(1)}`);
    return staged;
  }

  /** A Choice rule as a typed condition over the state's effective input. */
  rule(rule: unknown, m: Machine, at: string): string {
    if (!isObj(rule)) throw new Refusal(at, 'Choice rule', 'a rule is an object');
    if (Array.isArray(rule.And)) return `(${rule.And.map((r, i) => this.rule(r, m, `${at}/And/${i}`)).join(' && ')})`;
    if (Array.isArray(rule.Or)) return `(${rule.Or.map((r, i) => this.rule(r, m, `${at}/Or/${i}`)).join(' || ')})`;
    if (rule.Not !== undefined) return `!${this.rule(rule.Not, m, `${at}/Not`)}`;
    if (rule.Condition !== undefined) throw new Refusal(`${at}/Condition`, 'JSONata condition', 'JSONata is not supported');
    const x = this.path(rule.Variable, `_in${m.k}`, m, `${at}/Variable`);
    const ops = Object.keys(rule).filter((key) => !['Variable', 'Next', 'Assign', 'Comment'].includes(key));
    if (ops.length !== 1) throw new Refusal(at, 'Choice rule', 'a rule has exactly one comparison');
    const op = ops[0] as string;
    const operand = rule[op];
    const where = `${at}/${op}`;
    const typed: Record<string, string> = { String: 'string', Numeric: 'number', Boolean: 'boolean' };
    const is = (type: string) => `typeOf(${x}) == ${str(type)}`;
    const tests: Record<string, string> = { IsNull: is('null'), IsString: is('string'), IsNumeric: is('number'), IsBoolean: is('boolean'), IsPresent: `typeOf(${x}) != "missing"` };
    if (op in tests) {
      if (typeof operand !== 'boolean') throw new Refusal(where, op, `${op} takes true or false`);
      return operand ? `(${tests[op]})` : `!(${tests[op]})`;
    }
    const comparison = /^(String|Numeric|Boolean)(Equals|LessThan|LessThanEquals|GreaterThan|GreaterThanEquals)(Path)?$/.exec(op);
    if (!comparison) throw new Refusal(where, op, `the comparison ${op} is not mapped yet (mapped: String/Numeric/Boolean Equals and orderings, their Path forms, IsNull, IsPresent, IsString, IsNumeric, IsBoolean, And, Or, Not)`);
    const [, kind, relation, byPath] = comparison as unknown as [string, string, string, string | undefined];
    if (kind === 'Boolean' && relation !== 'Equals') throw new Refusal(where, op, `${op} does not exist`);
    const type = typed[kind] as string;
    let other: string;
    if (byPath) {
      const y = this.path(operand, `_in${m.k}`, m, where);
      other = y;
      const symbol = { Equals: '==', LessThan: '<', LessThanEquals: '<=', GreaterThan: '>', GreaterThanEquals: '>=' }[relation];
      return `(${is(type)} && typeOf(${y}) == ${str(type)} && ${x} ${symbol} ${other})`;
    }
    if ((type === 'string' && typeof operand !== 'string') || (type === 'number' && typeof operand !== 'number') || (type === 'boolean' && typeof operand !== 'boolean')) {
      throw new Refusal(where, op, `${op} compares with a ${type}`);
    }
    other = literal(operand, where);
    const symbol = { Equals: '==', LessThan: '<', LessThanEquals: '<=', GreaterThan: '>', GreaterThanEquals: '>=' }[relation];
    return `(${is(type)} && ${x} ${symbol} ${other})`;
  }

  /** Catch and Retry of a Task, Parallel or Map on its native step. */
  errors(state: Obj, stepId: string, m: Machine, at: string, step: Step): { guard?: string } {
    if (Array.isArray(state.Retry) && state.Retry.length > 0) {
      if (state.Retry.length > 1) throw new Refusal(`${at}/Retry`, 'Retry', 'more than one retrier is not mapped yet');
      const retrier = state.Retry[0] as Obj;
      const errorsOf = retrier.ErrorEquals;
      if (!Array.isArray(errorsOf) || !(errorsOf.length === 1 && errorsOf[0] === 'States.ALL')) {
        throw new Refusal(`${at}/Retry/0/ErrorEquals`, 'Retry', 'a retrier for some errors only is not mapped yet (States.ALL is)');
      }
      const maxAttempts = typeof retrier.MaxAttempts === 'number' ? retrier.MaxAttempts : 3;
      const rate = typeof retrier.BackoffRate === 'number' ? retrier.BackoffRate : 2;
      if (rate !== 1 && rate !== 2) throw new Refusal(`${at}/Retry/0/BackoffRate`, 'Retry', 'BackoffRate 1 (fixed) and 2 (exponential) are mapped');
      if (maxAttempts + 1 > 10) throw new Refusal(`${at}/Retry/0/MaxAttempts`, 'Retry', 'at most 9 retries (10 attempts) are allowed here');
      step.retry = {
        max_attempts: maxAttempts + 1,
        backoff: rate === 1 ? 'fixed' : 'exponential',
        initial_interval: typeof retrier.IntervalSeconds === 'number' ? retrier.IntervalSeconds : 1,
        ...(typeof retrier.MaxDelaySeconds === 'number' ? { max_interval: retrier.MaxDelaySeconds } : {}),
      };
      this.mapped.push({ path: `${at}/Retry`, construct: 'Retry', detail: `the retry policy of step "${stepId}"` });
    }
    if (!Array.isArray(state.Catch) || state.Catch.length === 0) return {};
    const k = m.k;
    const caught = this.v(`_c${k}`, false);
    const cases = state.Catch.map((catcher: unknown, i: number) => {
      const where = `${at}/Catch/${i}`;
      if (!isObj(catcher) || !Array.isArray(catcher.ErrorEquals) || typeof catcher.Next !== 'string') throw new Refusal(where, 'Catch', 'a catcher has ErrorEquals and Next');
      const names = catcher.ErrorEquals as unknown[];
      const when = names.includes('States.ALL') ? 'true' : `contains(${literal(names, `${where}/ErrorEquals`)}, error.type)`;
      const values: Obj = { [caught]: true, [`_r${k}`]: { Error: this.t('error.type'), Cause: this.t('error.message') } };
      Object.assign(values, this.assign(catcher.Assign, `_r${k}`, m, `${where}/Assign`));
      values[`_o${k}`] = this.t(this.resultPath(catcher.ResultPath, `_d${k}`, `_r${k}`, `${where}/ResultPath`));
      values[`_d${k}`] = this.t(`_o${k}`);
      values[`_s${k}`] = catcher.Next;
      return { when, steps: [{ id: this.id(`${stepId}-catch-${i}`), type: 'set', values }] };
    });
    this.perStep[stepId] = {
      strategy: 'custom',
      handler: [
        {
          id: this.id(`${stepId}-catch`),
          type: 'switch',
          cases,
          // Not caught: the same error goes on up, type and message kept.
          default: [{ id: this.id(`${stepId}-rethrow`), type: 'fail', error: this.t('error.message'), error_type: this.t('error.type') }],
        },
      ],
    };
    this.mapped.push({ path: `${at}/Catch`, construct: 'Catch', detail: `a custom error handler on step "${stepId}"` });
    return { guard: `!${caught}` };
  }

  /** The native steps of one state; a non-linear machine ends each with the next state's name. */
  state(name: string, state: Obj, m: Machine, at: string, linear: boolean, machineStates: Obj): Step[] {
    const k = m.k;
    if (state.QueryLanguage === 'JSONata') throw new Refusal(`${at}/QueryLanguage`, 'JSONata', 'JSONata states are not supported: only JSONPath');
    const type = state.Type;
    if (typeof type !== 'string' || !STATE_TYPES.has(type)) throw new Refusal(`${at}/Type`, String(type), `the state type ${JSON.stringify(type)} is not supported`);
    for (const key of Object.keys(state)) {
      if (!STATE_FIELDS.common?.includes(key) && !STATE_FIELDS[type]?.includes(key)) throw new Refusal(`${at}/${seg(key)}`, `${type}.${key}`, `the field ${key} is not mapped for a ${type} state`);
    }
    const terminal = type === 'Choice' || type === 'Succeed' || type === 'Fail';
    let next: string | undefined;
    if (!terminal) {
      if (state.End === true) next = END;
      else if (typeof state.Next === 'string' && state.Next in machineStates) next = state.Next;
      else throw new Refusal(at, type, 'a state needs "End": true or a "Next" naming a state of the same machine');
    }
    const nextValue = linear ? undefined : next;
    const id = this.id(name);
    const _in = this.v(`_in${k}`);
    const _r = this.v(`_r${k}`);
    this.v(`_o${k}`);
    const steps: Step[] = [];
    switch (type) {
      case 'Pass': {
        const result = state.Result !== undefined ? this.constant(state.Result, `${at}/Result`) : state.Parameters !== undefined ? this.payload(state.Parameters, _in, m, `${at}/Parameters`) : this.t(_in);
        steps.push({ id, type: 'set', description: `Pass state "${name}"`, values: { [_in]: this.inputPath(state, m, at), [_r]: result, ...this.finish(state, m, at, nextValue) } });
        break;
      }
      case 'Succeed':
        steps.push({ id, type: 'set', description: `Succeed state "${name}"`, values: { [_in]: this.inputPath(state, m, at), [`_d${k}`]: state.OutputPath === null ? {} : this.t(state.OutputPath === undefined ? _in : this.path(state.OutputPath, _in, m, `${at}/OutputPath`)), ...(linear ? {} : { [`_s${k}`]: END }) } });
        break;
      case 'Fail': {
        const error = typeof state.ErrorPath === 'string' ? this.t(this.path(state.ErrorPath, `_d${k}`, m, `${at}/ErrorPath`)) : typeof state.Error === 'string' ? state.Error : 'States.Fail';
        const cause = typeof state.CausePath === 'string' ? this.t(this.path(state.CausePath, `_d${k}`, m, `${at}/CausePath`)) : typeof state.Cause === 'string' ? state.Cause : typeof state.Error === 'string' ? state.Error : 'States.Fail';
        if (typeof error === 'string' && !error.startsWith('${') && !/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/.test(error)) throw new Refusal(`${at}/Error`, 'Fail', `the error name ${JSON.stringify(error)} is not a valid error type here (letters, digits, "_", ".", "-")`);
        steps.push({ id, type: 'fail', description: `Fail state "${name}"`, error: this.constant(cause, `${at}/Cause`), error_type: error });
        break;
      }
      case 'Wait': {
        const w = this.v(`_w${k}`);
        const prep: Obj = { [_in]: this.inputPath(state, m, at) };
        const wait: Step = { id: this.id(`${name}-wait`), type: 'wait' };
        const checks: Step[] = [];
        if (typeof state.Seconds === 'number') {
          if (!Number.isInteger(state.Seconds) || state.Seconds < 0) throw new Refusal(`${at}/Seconds`, 'Wait', 'Seconds is a whole number ≥ 0');
          wait.duration = `${state.Seconds}s`;
        } else if (typeof state.Timestamp === 'string') {
          wait.until = this.constant(state.Timestamp, `${at}/Timestamp`);
        } else if (state.SecondsPath !== undefined) {
          prep[w] = this.t(this.path(state.SecondsPath, _in, m, `${at}/SecondsPath`));
          const shown = `${String(state.SecondsPath)} == \${json(${w})}`;
          checks.push(
            { id: this.id(`${name}-not-long`), type: 'fail', if: `typeOf(${w}) != "number" || ${w} != floor(${w})`, error_type: 'States.Runtime', error: `An error occurred while executing the state '${name}'. The SecondsPath parameter cannot be parsed as a long value: ${shown}` },
            { id: this.id(`${name}-negative`), type: 'fail', if: `${w} < 0`, error_type: 'States.Runtime', error: `An error occurred while executing the state '${name}'. The SecondsPath parameter references a negative value: ${shown}` },
          );
          wait.duration = this.t(w);
        } else if (state.TimestampPath !== undefined) {
          wait.until = this.t(this.path(state.TimestampPath, _in, m, `${at}/TimestampPath`));
        } else {
          throw new Refusal(at, 'Wait', 'a Wait state has one of Seconds, SecondsPath, Timestamp, TimestampPath');
        }
        const out: Obj = { [`_d${k}`]: state.OutputPath === null ? {} : this.t(state.OutputPath === undefined ? _in : this.path(state.OutputPath, _in, m, `${at}/OutputPath`)) };
        if (nextValue !== undefined) out[`_s${k}`] = nextValue;
        steps.push({ id, type: 'set', description: `Wait state "${name}": its input`, values: prep }, ...checks, wait, { id: this.id(`${name}-out`), type: 'set', values: out });
        break;
      }
      case 'Choice': {
        if (!Array.isArray(state.Choices) || state.Choices.length === 0) throw new Refusal(`${at}/Choices`, 'Choice', 'a Choice state needs Choices');
        const matched = this.v(`_m${k}`);
        const rules = state.Choices.map((rule, i) => this.rule(rule, m, `${at}/Choices/${i}`));
        const pick = rules.reduceRight((rest, cond, i) => `${cond} ? ${i} : ${rest}`, '-1');
        const output = state.OutputPath === null ? {} : this.t(state.OutputPath === undefined ? _in : this.path(state.OutputPath, _in, m, `${at}/OutputPath`));
        steps.push({ id, type: 'set', description: `Choice state "${name}"`, values: { [_in]: this.inputPath(state, m, at), [matched]: this.t(pick), [`_d${k}`]: output } });
        const cases = state.Choices.map((rule: unknown, i: number) => {
          const r = rule as Obj;
          if (typeof r.Next !== 'string' || !(r.Next in machineStates)) throw new Refusal(`${at}/Choices/${i}/Next`, 'Choice', 'each rule has a Next naming a state of the same machine');
          return { equals: i, steps: [{ id: this.id(`${name}-rule-${i}`), type: 'set', values: { ...this.assign(r.Assign, _in, m, `${at}/Choices/${i}/Assign`), [`_s${k}`]: r.Next } }] };
        });
        let fallback: Step;
        if (typeof state.Default === 'string') {
          if (!(state.Default in machineStates)) throw new Refusal(`${at}/Default`, 'Choice', 'Default names a state of the same machine');
          fallback = { id: this.id(`${name}-default`), type: 'set', values: { ...this.assign(state.Assign, _in, m, `${at}/Assign`), [`_s${k}`]: state.Default } };
        } else {
          fallback = { id: this.id(`${name}-no-match`), type: 'fail', error_type: 'States.NoChoiceMatched', error: `No Matches! (state '${name}')` };
        }
        steps.push({ id: this.id(`${name}-next`), type: 'switch', value: matched, cases, default: [fallback] });
        break;
      }
      case 'Task': {
        const resource = state.Resource;
        const skill = typeof resource === 'string' ? this.skillFor(resource) : undefined;
        if (skill === undefined) throw new Refusal(`${at}/Resource`, 'Task', `no skill is mapped for the resource ${JSON.stringify(resource)}: pass "resources": {"<resource>": "<skill>"}`);
        const inputs = state.Parameters !== undefined ? this.payload(state.Parameters, _in, m, `${at}/Parameters`) : undefined;
        if (inputs !== undefined && !isObj(inputs)) throw new Refusal(`${at}/Parameters`, 'Task', 'a Task\'s Parameters must be an object (a skill takes named inputs)');
        const call: Step = { id: this.id(`${name}-call`), type: 'skill', skill, inputs: inputs ?? { input: this.t(_in) } };
        if (typeof state.TimeoutSeconds === 'number') call.timeout = state.TimeoutSeconds;
        const { guard } = this.errors(state, call.id as string, m, at, call);
        steps.push({ id, type: 'set', description: `Task state "${name}": its input`, values: { [_in]: this.inputPath(state, m, at), ...(guard ? { [`_c${k}`]: false } : {}) } }, call);
        steps.push({ id: this.id(`${name}-out`), type: 'set', ...(guard ? { if: guard } : {}), values: this.finish(state, m, at, nextValue, { raw: `steps[${str(call.id as string)}].output` }) });
        this.mapped.push({ path: `${at}/Resource`, construct: 'Task', detail: `skill "${skill}"${inputs === undefined ? ' with the state input as {"input": ...}' : ''}` });
        break;
      }
      case 'Parallel': {
        if (!Array.isArray(state.Branches) || state.Branches.length === 0) throw new Refusal(`${at}/Branches`, 'Parallel', 'a Parallel state needs Branches');
        const prep: Obj = { [_in]: this.inputPath(state, m, at) };
        const branchInput = state.Parameters !== undefined ? this.payload(state.Parameters, _in, m, `${at}/Parameters`) : this.t(_in);
        const branchMachines: Machine[] = [];
        const branchSteps = state.Branches.map((branch: unknown, i: number) => {
          const bm = this.newMachine();
          branchMachines.push(bm);
          prep[this.v(`_d${bm.k}`)] = branchInput;
          return this.machine(branch, bm, `${at}/Branches/${i}`, `${name}-branch-${i + 1}`, prep);
        });
        const run: Step = { id: this.id(`${name}-branches`), type: 'parallel', wait_for: 'all', steps: branchSteps };
        const { guard } = this.errors(state, run.id as string, m, at, run);
        if (guard) prep[`_c${k}`] = false;
        steps.push({ id, type: 'set', description: `Parallel state "${name}": each branch's input`, values: prep }, run);
        steps.push({ id: this.id(`${name}-out`), type: 'set', ...(guard ? { if: guard } : {}), values: this.finish(state, m, at, nextValue, { raw: `[${branchMachines.map((b) => `_d${b.k}`).join(', ')}]` }) });
        break;
      }
      case 'Map': {
        const processor = (state.ItemProcessor ?? state.Iterator) as unknown;
        const where = state.ItemProcessor !== undefined ? `${at}/ItemProcessor` : `${at}/Iterator`;
        if (!isObj(processor)) throw new Refusal(at, 'Map', 'a Map state needs ItemProcessor (or Iterator)');
        const config = processor.ProcessorConfig;
        if (isObj(config) && config.Mode !== undefined && config.Mode !== 'INLINE') throw new Refusal(`${where}/ProcessorConfig/Mode`, 'Map', 'only INLINE maps are supported (a distributed map reads items from S3)');
        if (state.ToleratedFailurePercentage !== undefined || state.ToleratedFailureCount !== undefined) throw new Refusal(at, 'Map', 'tolerated failures are not mapped yet');
        const items = this.v(`_items${k}`);
        const acc = this.v(`_acc${k}`);
        const im = this.newMachine(k);
        const item = this.v(`_item${k}`);
        const idx = this.v(`_idx${k}`);
        const prep: Obj = {
          [_in]: this.inputPath(state, m, at),
          [items]: this.t(state.ItemsPath === undefined ? _in : this.path(state.ItemsPath, _in, m, `${at}/ItemsPath`)),
          [acc]: [],
        };
        const selector = state.ItemSelector ?? state.Parameters;
        const first: Obj = {
          [item]: this.t('item'),
          [idx]: this.t('index'),
          [this.v(`_d${im.k}`)]: selector !== undefined ? this.payload(selector, _in, im, state.ItemSelector !== undefined ? `${at}/ItemSelector` : `${at}/Parameters`) : this.t('item'),
        };
        const body = this.machineSteps(processor, im, where, first);
        const each: Step = {
          id: this.id(`${name}-items`),
          type: 'for_each',
          items: this.t(items),
          max_concurrency: 1,
          steps: [
            { id: this.id(`${name}-item`), type: 'set', values: first },
            ...body,
            // An iteration that always fails has nothing to collect (a step after it could never run).
            ...(endsInFail(body) ? [] : [{ id: this.id(`${name}-collect`), type: 'set', values: { [acc]: this.t(`concat(${acc}, [_d${im.k}])`) } }]),
          ],
        };
        const { guard } = this.errors(state, each.id as string, m, at, each);
        if (guard) prep[`_c${k}`] = false;
        if (typeof state.MaxConcurrency === 'number' && state.MaxConcurrency !== 1) {
          this.mapped.push({ path: `${at}/MaxConcurrency`, construct: 'Map.MaxConcurrency', detail: 'iterations run one at a time (each iteration writes the run\'s variables)' });
        }
        steps.push({ id, type: 'set', description: `Map state "${name}": its items`, values: prep }, each);
        steps.push({ id: this.id(`${name}-out`), type: 'set', ...(guard ? { if: guard } : {}), values: this.finish(state, m, at, nextValue, { raw: acc }) });
        break;
      }
    }
    this.mapped.push({ path: at, construct: `${type} state`, detail: `step "${id}"${steps.length > 1 ? ` and ${steps.length - 1} more` : ''}` });
    return steps;
  }

  skillFor(resource: string): string | undefined {
    for (const [pattern, skill] of Object.entries(this.options.resources ?? {})) {
      if (pattern === resource || (pattern.endsWith('*') && resource.startsWith(pattern.slice(0, -1)))) return skill;
    }
    return undefined;
  }

  /**
   * The states of one machine as native steps. `init` receives the machine's start (`_s<k>`) when
   * the machine needs the dispatch loop.
   */
  machineSteps(machine: unknown, m: Machine, at: string, init: Obj): Step[] {
    if (!isObj(machine) || typeof machine.StartAt !== 'string' || !isObj(machine.States)) throw new Refusal(at, 'state machine', 'a state machine has StartAt and States');
    if (machine.QueryLanguage === 'JSONata') throw new Refusal(`${at}/QueryLanguage`, 'JSONata', 'JSONata state machines are not supported: only JSONPath');
    const states = machine.States;
    if (!(machine.StartAt in states)) throw new Refusal(`${at}/StartAt`, 'StartAt', `no state is named ${JSON.stringify(machine.StartAt)}`);
    for (const key of Object.keys(machine)) {
      if (!['StartAt', 'States', 'Comment', 'QueryLanguage', 'ProcessorConfig', 'TimeoutSeconds', 'Version'].includes(key)) throw new Refusal(`${at}/${seg(key)}`, key, `the field ${key} is not mapped`);
    }
    // One chain from StartAt, every state on it, no Choice and no Catch: the states in order.
    const chain: string[] = [];
    let cursor: string | undefined = machine.StartAt;
    let linear = true;
    while (cursor !== undefined) {
      const s = states[cursor] as Obj;
      if (chain.includes(cursor) || !isObj(s) || s.Type === 'Choice' || (Array.isArray(s.Catch) && s.Catch.length > 0)) {
        linear = false;
        break;
      }
      chain.push(cursor);
      cursor = s.End === true || s.Type === 'Succeed' || s.Type === 'Fail' ? undefined : typeof s.Next === 'string' ? s.Next : undefined;
    }
    if (linear && chain.length !== Object.keys(states).length) linear = false;
    const k = m.k;
    this.v(`_d${k}`);
    if (linear) {
      return chain.flatMap((name) => guarded(this.refused, () => this.state(name, states[name] as Obj, m, `${at}/States/${seg(name)}`, true, states)));
    }
    init[this.v(`_s${k}`, END)] = machine.StartAt;
    const cases = Object.entries(states).map(([name, s]) => ({ equals: name, steps: guarded(this.refused, () => this.state(name, s as Obj, m, `${at}/States/${seg(name)}`, false, states)) }));
    return [dispatchLoop(this.ids, k, 'State machine', cases, this.options.maxTransitions)];
  }

  /** One branch of a Parallel: a single native step (a block when the branch has several). */
  machine(machine: unknown, m: Machine, at: string, name: string, init: Obj): Step {
    const steps = this.machineSteps(machine, m, at, init);
    if (steps.length === 1) return steps[0] as Step;
    return { id: this.id(name), type: 'block', description: `Branch ${name}: its states in order`, steps };
  }
}

/** Converts a parsed ASL document. Never throws for a bad document: refusals are reported. */
export function importAsl(doc: unknown, options: AslImportOptions = {}): ImportResult {
  const tr = new Translator(options);
  return tr.result(() => {
    if (!isObj(doc)) throw new Refusal('', 'document', 'an ASL document is a JSON object with StartAt and States');
    for (const key of Object.keys(doc)) {
      if (!['StartAt', 'States', 'Comment', 'Version', 'TimeoutSeconds', 'QueryLanguage'].includes(key)) throw new Refusal(`/${seg(key)}`, key, `the top-level field ${key} is not mapped`);
    }
    const top = tr.newMachine();
    const init: Obj = { [tr.v('_d0')]: '${input|default({})}' };
    const body = tr.machineSteps(doc, top, '', init);
    const steps: Step[] = [
      { id: tr.id('start'), type: 'set', description: 'The execution input is the first state\'s input', values: init },
      ...body,
      ...(endsInFail(body) ? [] : [{ id: tr.id('done'), type: 'succeed', description: 'The last state\'s output is the run\'s output', output: '${_d0}' }]),
    ];
    if (tr.refused.length > 0) return undefined;
    const definition: Obj = {
      name: options.name ?? slugName(doc.Comment),
      version: options.version ?? '1.0.0',
      description: `Imported from Amazon States Language${typeof doc.Comment === 'string' ? `: ${doc.Comment}` : ''}`.slice(0, 5000),
      context: { mutable: Object.fromEntries(tr.variables) },
      steps,
    };
    if (typeof doc.TimeoutSeconds === 'number') {
      definition.resource_limits = { max_execution_time: doc.TimeoutSeconds };
      tr.mapped.push({ path: '/TimeoutSeconds', construct: 'TimeoutSeconds', detail: 'resource_limits.max_execution_time' });
    }
    return definition;
  });
}
