import { md5, sha1 } from '@noble/hashes/legacy';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';
import { v5 as uuidV5 } from 'uuid';
import { LIMITS } from './steps/parts.ts';

/**
 * The function library of expressions (interpreter/expressions.ts registers each with Jexl as a
 * function and a transform): pure and total over JSON data, no clock, randomness or I/O; `now()`
 * and `uuid()` read the run's own sources through `withRunClock`.
 */

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function lengthOf(value: unknown): number {
  if (typeof value === 'string' || Array.isArray(value)) return value.length;
  if (isPlainRecord(value)) return Object.keys(value).length;
  return 0;
}

function toNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (Number.isNaN(n)) throw new Error(`${JSON.stringify(value)} is not a number`);
  return n;
}

function numbers(values: unknown[]): number[] {
  const flat = values.length === 1 && Array.isArray(values[0]) ? (values[0] as unknown[]) : values;
  return flat.map(toNumber);
}

/**
 * What `now()` and `uuid()` read: the run's own deterministic sources (the engine passes them in
 * `EvaluationData.clock`). Never a clock or a random number: the same history gives the same
 * values on replay.
 */
export interface RunClock {
  /** The run's clock, epoch milliseconds (Temporal's workflow time). */
  now(): number;
  /** The next id of the run: a UUID derived from the run and a counter kept in its state. */
  uuid(): string;
}

/** The clock of the evaluation under way; set only while `evaluate` runs (Jexl's evalSync is synchronous). */
let activeClock: RunClock | undefined;

/** Runs `evaluate` with `clock` as the one `now()` and `uuid()` read (restoring the outer one after). */
export function withRunClock<T>(clock: RunClock | undefined, evaluate: () => T): T {
  const outer = activeClock;
  activeClock = clock;
  try {
    return evaluate();
  } finally {
    activeClock = outer;
  }
}

function runClock(name: string): RunClock {
  if (!activeClock) throw new Error(`${name}() is only available while a run evaluates its definition`);
  return activeClock;
}

/** The namespace of the platform's name-based ids (UUID v5, RFC 9562): `uuid()` of run R, n-th call = v5("R/n"). */
export const RUN_UUID_NAMESPACE = '6f1b2a4e-3c57-5d0a-9e2b-7a51c0d4e8f3';

/** A UUID v5 for the `n`-th `uuid()` call of the run `seed`: deterministic, unique per run and call. */
export function runUuid(seed: string, n: number): string {
  return uuidV5(`${seed}/${n}`, RUN_UUID_NAMESPACE);
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 (RFC 4648, with padding) of the UTF-8 bytes of a string. TextEncoder, not Buffer: this runs in the sandbox. */
function base64Encode(value: unknown): string {
  const bytes = new TextEncoder().encode(typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b, c] = [bytes[i] as number, bytes[i + 1], bytes[i + 2]];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]! + (b === undefined ? '=' : BASE64[(n >> 6) & 63]!) + (c === undefined ? '=' : BASE64[n & 63]!);
  }
  return out;
}

/** The UTF-8 text that base64 (standard or URL-safe alphabet, padding optional) encodes; anything else fails. */
function base64Decode(value: unknown): string {
  if (typeof value !== 'string') throw new Error(`base64Decode needs a string, not ${JSON.stringify(value) ?? 'no value'}`);
  const text = value.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]*$/.test(text) || text.length % 4 === 1) throw new Error(`${JSON.stringify(value)} is not base64`);
  const bytes: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const ch of text) {
    acc = (acc << 6) | BASE64.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 255);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    throw new Error(`${JSON.stringify(value)} does not encode UTF-8 text`);
  }
}

/** Hash functions by the names Step Functions' States.Hash takes: pure JavaScript (@noble/hashes), so they run in the sandbox. */
const HASHES: Record<string, (data: Uint8Array) => Uint8Array> = { MD5: md5, 'SHA-1': sha1, 'SHA-256': sha256, 'SHA-384': sha384, 'SHA-512': sha512 };

function hashOf(data: unknown, algorithm: unknown): string {
  if (typeof data !== 'string') throw new Error(`hash needs a string to hash, not ${JSON.stringify(data) ?? 'no value'}`);
  const fn = typeof algorithm === 'string' ? HASHES[algorithm] : undefined;
  if (!fn) throw new Error(`hash: the algorithm ${JSON.stringify(algorithm) ?? 'no value'} is not one of ${Object.keys(HASHES).join(', ')}`);
  return bytesToHex(fn(new TextEncoder().encode(data)));
}

function toInteger(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${JSON.stringify(value) ?? 'no value'} is not a whole number`);
  return value;
}

/** Equality of JSON values: same type, same items in order, same fields in any order. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isPlainRecord(a) && isPlainRecord(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** A value in a format() hole as Step Functions' States.Format writes it: text as it is, lists `[a, b]`, objects `{k=v}`, the rest as JSON. */
function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `[${value.map(formatValue).join(', ')}]`;
  if (isPlainRecord(value)) return `{${Object.entries(value).map(([k, v]) => `${k}=${formatValue(v)}`).join(', ')}}`;
  return JSON.stringify(value) ?? 'null';
}

function formatTemplate(template: unknown, ...args: unknown[]): string {
  if (typeof template !== 'string') throw new Error('format needs a template string');
  let out = '';
  let used = 0;
  for (let i = 0; i < template.length; i++) {
    const ch = template[i] as string;
    const nextCh = template[i + 1];
    if (ch === '\\' && (nextCh === '{' || nextCh === '}' || nextCh === '\\')) {
      out += nextCh;
      i++;
    } else if (ch === '{' && nextCh === '}') {
      if (used >= args.length) throw new Error(`format: the template has more {} than the ${args.length} argument(s)`);
      out += formatValue(args[used++]);
      i++;
    } else out += ch;
  }
  if (used !== args.length) throw new Error(`format: ${args.length} argument(s) for ${used} {}`);
  return out;
}

/**
 * The functions expressions may call, both as `name(x, ...)` and as transforms `x|name(...)`.
 * Pure and total over JSON data; anything else throws a clear error at run time.
 */
export const EXPRESSION_FUNCTIONS: Record<string, { doc: string; fn: (...args: any[]) => unknown }> = {
  length: { doc: 'items in a list, characters in a string, keys in an object', fn: lengthOf },
  keys: { doc: "an object's keys", fn: (o: unknown) => (isPlainRecord(o) ? Object.keys(o) : []) },
  values: { doc: "an object's values", fn: (o: unknown) => (isPlainRecord(o) ? Object.values(o) : []) },
  upper: { doc: 'upper case', fn: (s: unknown) => String(s).toUpperCase() },
  lower: { doc: 'lower case', fn: (s: unknown) => String(s).toLowerCase() },
  trim: { doc: 'strip surrounding whitespace', fn: (s: unknown) => String(s).trim() },
  string: { doc: 'text form (JSON for objects and lists)', fn: (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? '') },
  number: { doc: 'parse a number', fn: toNumber },
  json: { doc: 'JSON text of a value', fn: (v: unknown) => JSON.stringify(v) ?? 'null' },
  parseJson: { doc: 'parse JSON text', fn: (s: unknown) => JSON.parse(String(s)) as unknown },
  default: { doc: 'the value, or the fallback when it is null or missing', fn: (v: unknown, fallback: unknown) => v ?? fallback },
  contains: {
    doc: 'whether a list holds a value or a string holds a substring',
    fn: (haystack: unknown, needle: unknown) =>
      Array.isArray(haystack) ? haystack.includes(needle) : typeof haystack === 'string' ? haystack.includes(String(needle)) : false,
  },
  startsWith: { doc: 'whether a string starts with a prefix', fn: (s: unknown, p: unknown) => String(s).startsWith(String(p)) },
  endsWith: { doc: 'whether a string ends with a suffix', fn: (s: unknown, p: unknown) => String(s).endsWith(String(p)) },
  split: { doc: 'split a string', fn: (s: unknown, sep: unknown) => String(s).split(String(sep)) },
  join: { doc: 'join a list into a string', fn: (l: unknown, sep: unknown) => (Array.isArray(l) ? l.join(sep === undefined ? ',' : String(sep)) : String(l)) },
  slice: {
    doc: 'part of a list or string',
    fn: (v: unknown, start: unknown, end: unknown) =>
      typeof v === 'string' || Array.isArray(v) ? v.slice(toNumber(start ?? 0), end === undefined ? undefined : toNumber(end)) : v,
  },
  first: { doc: 'the first item of a list', fn: (l: unknown) => (Array.isArray(l) ? l[0] : undefined) ?? null },
  last: { doc: 'the last item of a list', fn: (l: unknown) => (Array.isArray(l) ? l[l.length - 1] : undefined) ?? null },
  range: {
    doc: 'the list [start, start + step, ...] up to, not including, end (step defaults to 1; at most 100,000 items)',
    fn: (start: unknown, end: unknown, step?: unknown) => {
      const [a, b] = [toNumber(start), toNumber(end)];
      if (step === undefined) {
        if (b - a > LIMITS.maxForEachItems) throw new Error(`range(${a}, ${b}) is longer than ${LIMITS.maxForEachItems}`);
        return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
      }
      const s = toNumber(step);
      if (s === 0) throw new Error('range: the step cannot be 0');
      const count = Math.max(0, Math.ceil((b - a) / s));
      if (count > LIMITS.maxForEachItems) throw new Error(`range(${a}, ${b}, ${s}) is longer than ${LIMITS.maxForEachItems}`);
      return Array.from({ length: count }, (_, i) => a + i * s);
    },
  },
  round: { doc: 'round to the nearest integer', fn: (n: unknown) => Math.round(toNumber(n)) },
  floor: { doc: 'round down', fn: (n: unknown) => Math.floor(toNumber(n)) },
  ceil: { doc: 'round up', fn: (n: unknown) => Math.ceil(toNumber(n)) },
  abs: { doc: 'absolute value', fn: (n: unknown) => Math.abs(toNumber(n)) },
  min: { doc: 'smallest of numbers (or of one list)', fn: (...v: unknown[]) => Math.min(...numbers(v)) },
  max: { doc: 'largest of numbers (or of one list)', fn: (...v: unknown[]) => Math.max(...numbers(v)) },
  sum: { doc: 'sum of a list of numbers', fn: (...v: unknown[]) => numbers(v).reduce((a, b) => a + b, 0) },
  concat: {
    doc: 'one list of the items of several lists, in order (a value that is not a list counts as one item)',
    fn: (...lists: unknown[]) => lists.flatMap((l) => (Array.isArray(l) ? l : l === undefined ? [] : [l])),
  },
  add: {
    doc: 'jq\'s "+": null (or no value) is the identity, numbers add, strings join, lists concatenate, objects merge; other pairs fail',
    fn: (a: unknown, b: unknown) => {
      if (a === null || a === undefined) return b ?? null;
      if (b === null || b === undefined) return a;
      if (typeof a === 'number' && typeof b === 'number') return a + b;
      if (typeof a === 'string' && typeof b === 'string') return a + b;
      if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      if (isPlainRecord(a) && isPlainRecord(b)) return { ...a, ...b };
      throw new Error(`cannot add ${Array.isArray(a) ? 'a list' : typeof a} and ${Array.isArray(b) ? 'a list' : typeof b}`);
    },
  },
  get: {
    doc: 'a field of an object or an item of a list (an own field only; no value when absent)',
    fn: (o: unknown, key: unknown) => {
      if (Array.isArray(o)) return typeof key === 'number' ? o[key < 0 ? o.length + key : key] : undefined;
      return isPlainRecord(o) && Object.prototype.hasOwnProperty.call(o, String(key)) ? o[String(key)] : undefined;
    },
  },
  put: {
    doc: 'a copy of an object with one field set (any key; a value that is not an object counts as {})',
    fn: (o: unknown, key: unknown, value: unknown) => ({ ...(isPlainRecord(o) ? o : {}), [String(key)]: value }),
  },
  typeOf: {
    doc: 'the JSON type of a value: "string", "number", "boolean", "null", "array", "object", or "missing" when there is no value',
    fn: (v: unknown) => (v === undefined ? 'missing' : v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v),
  },
  now: {
    doc: "the run's clock as ISO 8601 UTC text (Temporal's workflow time: the same on replay)",
    fn: () => new Date(runClock('now').now()).toISOString(),
  },
  uuid: {
    doc: 'a new UUID for each call, derived from the run and a counter in its state (the same on replay)',
    fn: () => runClock('uuid').uuid(),
  },
  base64Encode: { doc: 'standard base64 of the UTF-8 text (a value that is not text: of its JSON)', fn: base64Encode },
  base64Decode: { doc: 'the UTF-8 text base64 encodes (standard or URL-safe, padding optional)', fn: base64Decode },
  format: {
    doc: 'the template with each {} replaced by the next argument (text as it is, other values as Step Functions writes them); \\{, \\} and \\\\ are a literal brace and backslash',
    fn: formatTemplate,
  },
  splitAny: {
    doc: 'split a string at every one of the given characters, empty parts dropped',
    fn: (s: unknown, chars: unknown) => {
      if (typeof s !== 'string' || typeof chars !== 'string') throw new Error('splitAny needs a string and a string of delimiting characters');
      const delimiters = new Set(chars);
      const parts: string[] = [];
      let part = '';
      for (const ch of s) {
        if (delimiters.has(ch)) {
          if (part) parts.push(part);
          part = '';
        } else part += ch;
      }
      if (part) parts.push(part);
      return parts;
    },
  },
  partition: {
    doc: 'a list cut into lists of the given size (the last may be shorter)',
    fn: (list: unknown, size: unknown) => {
      if (!Array.isArray(list)) throw new Error('partition needs a list');
      const n = toInteger(size);
      if (n < 1) throw new Error(`partition: the size must be at least 1, not ${n}`);
      return Array.from({ length: Math.ceil(list.length / n) }, (_, i) => list.slice(i * n, i * n + n));
    },
  },
  unique: {
    doc: 'a list without repeated items (equal as JSON; the first of each kept)',
    fn: (list: unknown) => {
      if (!Array.isArray(list)) throw new Error('unique needs a list');
      return list.filter((item, i) => list.findIndex((other) => jsonEqual(other, item)) === i);
    },
  },
  containsValue: {
    doc: 'whether a list holds an item equal (as JSON) to the value, objects and lists included',
    fn: (list: unknown, value: unknown) => Array.isArray(list) && list.some((item) => jsonEqual(item, value)),
  },
  hash: {
    doc: 'the lower-case hex digest of the UTF-8 text with MD5, SHA-1, SHA-256, SHA-384 or SHA-512',
    fn: hashOf,
  },
  integer: {
    doc: 'the value when it is a whole number; anything else fails',
    fn: toInteger,
  },
  merge: {
    doc: 'a shallow merge of objects, later ones winning',
    fn: (...objects: unknown[]) => Object.assign({}, ...objects.filter(isPlainRecord)) as unknown,
  },
};
