import { pointerSegments } from '../interpreter/sensitive.ts';
import type { SensitiveSpec } from '../interpreter/schema.ts';

/**
 * Masking of declared sensitive values (the definition's `sensitive` field) on the API's read
 * paths, for callers without the `sensitive-reader` role (docs/sensitive-data.md). Two passes:
 * the declared places are replaced by SENSITIVE_MASK, then every string anywhere in the answer
 * that contains one of the values found there is masked too, so a copy (a later step that echoed
 * the value, a run output built from it, an error message quoting it) does not leak it either.
 */

export const SENSITIVE_MASK = '[sensitive]';

/** Strings shorter than this are not searched for elsewhere (masking every "1" would mask everything). */
const MIN_SCRUB_LENGTH = 4;

type Json = unknown;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The value at a path, or undefined. */
function at(value: Json, segments: readonly string[]): Json {
  let node = value;
  for (const s of segments) {
    if (Array.isArray(node)) node = node[Number(s)];
    else if (isRecord(node)) node = node[s];
    else return undefined;
  }
  return node;
}

/** Every string (and number, as text) inside a value: what a copy of it would contain. */
function leaves(value: Json, into: Set<string>): void {
  if (typeof value === 'string') {
    if (value.length >= MIN_SCRUB_LENGTH && value !== SENSITIVE_MASK) into.add(value);
  } else if (typeof value === 'number' || typeof value === 'bigint') {
    const text = String(value);
    if (text.length >= MIN_SCRUB_LENGTH) into.add(text);
  } else if (Array.isArray(value)) {
    for (const v of value) leaves(v, into);
  } else if (isRecord(value)) {
    for (const v of Object.values(value)) leaves(v, into);
  }
}

/** A copy of `value` with the place at `segments` replaced by the mask (nothing when absent). */
function maskAt(value: Json, segments: readonly string[]): Json {
  if (segments.length === 0) return value === undefined ? value : SENSITIVE_MASK;
  const [head, ...rest] = segments as [string, ...string[]];
  if (Array.isArray(value)) {
    const index = Number(head);
    if (!Number.isInteger(index) || index < 0 || index >= value.length) return value;
    const copy = [...value];
    copy[index] = maskAt(copy[index], rest);
    return copy;
  }
  if (isRecord(value) && Object.hasOwn(value, head)) return { ...value, [head]: maskAt(value[head], rest) };
  return value;
}

/** What a run holds that its definition declares sensitive. */
export interface SensitiveData {
  input?: unknown;
  /** Step outputs by step id. */
  outputs?: Record<string, unknown>;
}

/** Masks one run's data: built from its definition's spec and the values the run holds. */
export class Masker {
  readonly values: ReadonlySet<string>;
  readonly #pattern: RegExp | undefined;

  constructor(
    readonly spec: SensitiveSpec | undefined,
    data: SensitiveData = {},
  ) {
    const values = new Set<string>();
    for (const pointer of spec?.input ?? []) leaves(at(data.input, pointerSegments(pointer)), values);
    for (const [stepId, pointers] of Object.entries(spec?.steps ?? {})) {
      for (const pointer of pointers) leaves(at(data.outputs?.[stepId], pointerSegments(pointer)), values);
    }
    this.values = values;
    // Longest first, so a value containing another is masked whole.
    const sorted = [...values].sort((a, b) => b.length - a.length).map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.#pattern = sorted.length > 0 ? new RegExp(sorted.join('|'), 'g') : undefined;
  }

  /** Whether the definition declares anything sensitive at all. */
  get active(): boolean {
    return (this.spec?.input?.length ?? 0) > 0 || Object.keys(this.spec?.steps ?? {}).length > 0;
  }

  /** A step's output with its declared places masked, then every copy of a sensitive value. */
  stepOutput(stepId: string, output: unknown): unknown {
    let masked = output;
    for (const pointer of this.spec?.steps?.[stepId] ?? []) masked = maskAt(masked, pointerSegments(pointer));
    return this.scrub(masked);
  }

  /** The run's input with its declared places masked. */
  input(input: unknown): unknown {
    let masked = input;
    for (const pointer of this.spec?.input ?? []) masked = maskAt(masked, pointerSegments(pointer));
    return this.scrub(masked);
  }

  /** Any value with every occurrence of a sensitive value (inside strings too) masked. */
  scrub<T>(value: T): T {
    const pattern = this.#pattern;
    if (!pattern) return value;
    const walk = (v: unknown): unknown => {
      if (typeof v === 'string') return v.replace(pattern, SENSITIVE_MASK);
      if ((typeof v === 'number' || typeof v === 'bigint') && this.values.has(String(v))) return SENSITIVE_MASK;
      if (Array.isArray(v)) return v.map(walk);
      if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item)]));
      return v;
    };
    return walk(value) as T;
  }
}
