/**
 * The subset of jq that Serverless Workflow definitions use for their runtime expressions,
 * translated to the native expression language (Jexl with the platform's functions), so the
 * expression is checked at registration and evaluated deterministically in the workflow.
 *
 * Supported: `.`, `.a.b`, `.["k"]`, `.[0]`, `$name` and `$name.a`, literals (numbers, strings with
 * `\(...)` interpolation, true, false, arrays, objects with name or string keys), parentheses,
 * `+` (jq's: null is the identity, lists concatenate, objects merge, strings join), `- * / %`,
 * comparisons, `and`, `or`, `not`, `//` (alternative), pipes `a | b`, and the filters `length`,
 * `keys`, `tostring`, `tonumber`, `ascii_downcase`, `ascii_upcase`. Anything else throws
 * JqUnsupported naming the construct.
 */

export class JqUnsupported extends Error {}

export interface JqScope {
  /** The expression `.` stands for. */
  dot: string;
  /** `$name` → an expression; undefined: unknown variable. */
  variable(name: string): string | undefined;
}

type Token =
  | { t: 'num'; v: string }
  | { t: 'str'; parts: Array<string | Token[]> }
  | { t: 'var'; v: string }
  | { t: 'ident'; v: string }
  | { t: 'field'; v: string }
  | { t: 'dot' }
  | { t: 'op'; v: string }
  | { t: 'eof' };

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(src.slice(i)) as RegExpExecArray;
      tokens.push({ t: 'num', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (c === '"') {
      const parts: Array<string | Token[]> = [];
      let text = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new JqUnsupported('an unterminated string');
        const d = src[i] as string;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\') {
          const e = src[i + 1];
          if (e === '(') {
            // \( expr ): find the matching parenthesis
            let depth = 1;
            let j = i + 2;
            let inString = false;
            for (; j < src.length && depth > 0; j++) {
              const ch = src[j];
              if (inString) {
                if (ch === '\\') j++;
                else if (ch === '"') inString = false;
              } else if (ch === '"') inString = true;
              else if (ch === '(') depth++;
              else if (ch === ')') depth--;
            }
            if (depth !== 0) throw new JqUnsupported('an unterminated \\( in a string');
            if (text) parts.push(text);
            text = '';
            parts.push(tokenize(src.slice(i + 2, j - 1)));
            i = j;
            continue;
          }
          const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', '/': '/' };
          if (e === undefined || !(e in escapes)) throw new JqUnsupported(`the string escape \\${e ?? ''}`);
          text += escapes[e];
          i += 2;
          continue;
        }
        text += d;
        i++;
      }
      if (text || parts.length === 0) parts.push(text);
      tokens.push({ t: 'str', parts });
      continue;
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
      if (!m) throw new JqUnsupported('a "$" that is not a variable');
      tokens.push({ t: 'var', v: m[1] as string });
      i += m[0].length;
      continue;
    }
    if (c === '.') {
      const m = /^\.([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
      if (m) {
        tokens.push({ t: 'field', v: m[1] as string });
        i += m[0].length;
      } else if (src[i + 1] === '.') {
        throw new JqUnsupported('recursive descent ".."');
      } else {
        tokens.push({ t: 'dot' });
        i++;
      }
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i)) as RegExpExecArray;
      tokens.push({ t: 'ident', v: m[0] });
      i += m[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (['==', '!=', '<=', '>=', '//'].includes(two)) {
      tokens.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    if ('+-*/%<>|()[]{},:?'.includes(c)) {
      tokens.push({ t: 'op', v: c });
      i++;
      continue;
    }
    throw new JqUnsupported(`the character ${JSON.stringify(c)}`);
  }
  tokens.push({ t: 'eof' });
  return tokens;
}

function quote(s: string): string {
  if (/["\\\u0000-\u001f]/.test(s)) throw new JqUnsupported(`the text ${JSON.stringify(s)} (a quote, backslash or control character)`);
  return `"${s}"`;
}

/**
 * `base.key`: `get(base, key)`, which is total (no value when base is null or missing, as jq's
 * null), where Jexl's own `base["key"]` throws on a missing base.
 */
function access(base: string, key: string): string {
  return `get(${base}, ${key})`;
}

const FILTERS: Record<string, (x: string) => string> = {
  length: (x) => `length(${x})`,
  keys: (x) => `keys(${x})`,
  tostring: (x) => `string(${x})`,
  tonumber: (x) => `number(${x})`,
  ascii_downcase: (x) => `lower(${x})`,
  ascii_upcase: (x) => `upper(${x})`,
  not: (x) => `!(${x})`,
};

const PRECEDENCE: Record<string, number> = { '|': 1, '//': 2, or: 3, and: 4, '==': 5, '!=': 5, '<': 5, '<=': 5, '>': 5, '>=': 5, '+': 6, '-': 6, '*': 7, '/': 7, '%': 7 };

class Parser {
  private pos = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly scope: JqScope,
  ) {}

  private peek(): Token {
    return this.tokens[this.pos] as Token;
  }

  private next(): Token {
    return this.tokens[this.pos++] as Token;
  }

  private expectOp(v: string): void {
    const tok = this.next();
    if (tok.t !== 'op' || tok.v !== v) throw new JqUnsupported(`expected "${v}"`);
  }

  private isOp(v: string): boolean {
    const tok = this.peek();
    return tok.t === 'op' && tok.v === v;
  }

  parseAll(): string {
    const out = this.expr(0, this.scope.dot);
    if (this.peek().t !== 'eof') throw new JqUnsupported('text after the expression');
    return out;
  }

  /** Binary operators by precedence; `dot` is what `.` means here (a pipe changes it on its right). */
  private expr(minPrec: number, dot: string): string {
    let left = this.unary(dot);
    for (;;) {
      const tok = this.peek();
      const op = tok.t === 'op' ? tok.v : tok.t === 'ident' && (tok.v === 'and' || tok.v === 'or') ? tok.v : undefined;
      if (op === undefined || !(op in PRECEDENCE) || (PRECEDENCE[op] as number) < minPrec) return left;
      this.next();
      const prec = PRECEDENCE[op] as number;
      if (op === '|') {
        // `a | b`: b with `.` standing for a (right-associative).
        left = this.expr(prec, left);
        continue;
      }
      const right = this.expr(prec + 1, dot);
      switch (op) {
        case '+':
          left = `add(${left}, ${right})`;
          break;
        case '//':
          // jq: the right side when the left is null, false or missing.
          left = `((typeOf(${left}) == "boolean" && !${left}) ? ${right} : default(${left}, ${right}))`;
          break;
        case 'and':
          left = `(${left} && ${right})`;
          break;
        case 'or':
          left = `(${left} || ${right})`;
          break;
        case '==':
        case '!=':
          // jq's equality is strict: 1 == "1" is false.
          left = `(${op === '!=' ? '!' : ''}(typeOf(${left}) == typeOf(${right}) && ${left} == ${right}))`;
          break;
        default:
          left = `(${left} ${op} ${right})`;
      }
    }
  }

  private unary(dot: string): string {
    if (this.isOp('-')) {
      this.next();
      return `(0 - ${this.postfix(this.primary(dot))})`;
    }
    return this.postfix(this.primary(dot));
  }

  private postfix(base: string): string {
    let out = base;
    for (;;) {
      const tok = this.peek();
      if (tok.t === 'field') {
        this.next();
        out = access(out, quote(tok.v));
      } else if (tok.t === 'dot' && this.tokens[this.pos + 1]?.t === 'op' && (this.tokens[this.pos + 1] as { v: string }).v === '[') {
        this.next();
      } else if (this.isOp('[')) {
        this.next();
        const t = this.peek();
        if (t.t === 'num' && /^\d+$/.test(t.v)) {
          this.next();
          out = access(out, t.v);
        } else if (t.t === 'str' && t.parts.length === 1 && typeof t.parts[0] === 'string') {
          this.next();
          out = access(out, quote(t.parts[0]));
        } else {
          throw new JqUnsupported('an index that is not a whole number or a string (slices, iterators)');
        }
        this.expectOp(']');
      } else if (this.isOp('?')) {
        throw new JqUnsupported('the optional operator "?"');
      } else {
        return out;
      }
    }
  }

  private primary(dot: string): string {
    const tok = this.next();
    switch (tok.t) {
      case 'num':
        return tok.v;
      case 'str': {
        const pieces = tok.parts.map((p) => (typeof p === 'string' ? quote(p) : `string(${new Parser(p, { ...this.scope, dot }).parseAll()})`));
        return pieces.length === 1 ? (pieces[0] as string) : `(${pieces.join(' + ')})`;
      }
      case 'var': {
        const v = this.scope.variable(tok.v);
        if (v === undefined) throw new JqUnsupported(`the variable $${tok.v}`);
        return v;
      }
      case 'field':
        return access(dot, quote(tok.v));
      case 'dot':
        return dot;
      case 'ident': {
        if (tok.v === 'true' || tok.v === 'false') return tok.v;
        if (tok.v === 'null') return '_null';
        const filter = FILTERS[tok.v];
        if (filter) return filter(dot);
        throw new JqUnsupported(`the jq function ${tok.v}`);
      }
      case 'op':
        if (tok.v === '(') {
          const inner = this.expr(0, dot);
          this.expectOp(')');
          return `(${inner})`;
        }
        if (tok.v === '[') {
          const items: string[] = [];
          while (!this.isOp(']')) {
            items.push(this.expr(2, dot));
            if (this.isOp(',')) this.next();
            else if (!this.isOp(']')) throw new JqUnsupported('a list that is not comma separated');
          }
          this.next();
          return `[${items.join(', ')}]`;
        }
        if (tok.v === '{') {
          let obj = '{}';
          while (!this.isOp('}')) {
            const key = this.next();
            let name: string;
            if (key.t === 'ident') name = key.v;
            else if (key.t === 'str' && key.parts.length === 1 && typeof key.parts[0] === 'string') name = key.parts[0];
            else throw new JqUnsupported('an object key that is not a name or plain string');
            let value: string;
            if (this.isOp(':')) {
              this.next();
              value = this.expr(2, dot);
            } else {
              value = access(dot, quote(name));
            }
            obj = `put(${obj}, ${quote(name)}, ${value})`;
            if (this.isOp(',')) this.next();
            else if (!this.isOp('}')) throw new JqUnsupported('an object that is not comma separated');
          }
          this.next();
          return obj;
        }
        throw new JqUnsupported(`"${tok.v}" here`);
      case 'eof':
        throw new JqUnsupported('an empty expression');
    }
  }
}

/** Translates one jq expression (without `${ }`); throws JqUnsupported. */
export function translateJq(source: string, scope: JqScope): string {
  return new Parser(tokenize(source), scope).parseAll();
}
