import { walkSteps } from './compile.ts';
import { splitTemplate } from './expressions.ts';
import { pointerSegment } from './references.ts';
import type { Definition, SensitiveSpec, Step } from './schema.ts';

/**
 * Declared sensitivity (the definition's `sensitive` field): which parts of a run's input and of
 * its steps' outputs only `sensitive-reader` callers may see. Temporal's history holds them
 * encrypted (the payload codec) and the API masks them (common/sensitive.ts); what neither can
 * reach is a value copied into a place written in the clear: an approval's `summary` (the inbox,
 * Temporal Web's current details) and a `fail` step's `error` (the failure message, which the
 * codec does not encrypt). Validation refuses those copies here, with their JSON paths.
 *
 * Pure functions only: this module loads in the workflow sandbox with the validator.
 */

/** One place in the run's data: `input` and a pointer, or a step's output and a pointer. */
export interface SensitivePlace {
  root: 'input' | 'step';
  stepId?: string;
  segments: string[];
  /** Where the definition declares it, e.g. `/sensitive/input/0`. */
  declaredAt: string;
}

/** Splits a JSON Pointer into unescaped segments (`""` is the whole value: no segments). */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function joinPointer(segments: readonly string[]): string {
  return segments.map((s) => `/${pointerSegment(s)}`).join('');
}

/** Every place a spec declares. */
export function sensitivePlaces(spec: SensitiveSpec | undefined): SensitivePlace[] {
  const places: SensitivePlace[] = [];
  (spec?.input ?? []).forEach((pointer, i) => places.push({ root: 'input', segments: pointerSegments(pointer), declaredAt: `/sensitive/input/${i}` }));
  for (const [stepId, pointers] of Object.entries(spec?.steps ?? {})) {
    pointers.forEach((pointer, i) =>
      places.push({ root: 'step', stepId, segments: pointerSegments(pointer), declaredAt: `/sensitive/steps/${pointerSegment(stepId)}/${i}` }),
    );
  }
  return places;
}

/** A read of the run's data an expression makes: root, step and the path as far as it is static. */
interface DataRead {
  root: 'input' | 'step';
  stepId?: string;
  segments: string[];
}

const ACCESSOR = /^\s*(?:\.\s*([A-Za-z_$][\w$]*)|\[\s*(?:(\d+)|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\])/;
const NAME = /[A-Za-z_$][\w$-]*/g;

/**
 * The reads of `input` and of step outputs in one expression, each as far as its path is static
 * (`input[var]` counts as reading all of `input`). Text inside string literals is skipped.
 * Conservative by design: a read it cannot place counts as reading the whole prefix.
 */
export function dataReads(expression: string, allSteps: ReadonlySet<string>): DataRead[] {
  const reads: DataRead[] = [];
  // Blank out string literals so a quoted "input.ssn" is not a read (bracket keys are parsed below first).
  let i = 0;
  while (i < expression.length) {
    NAME.lastIndex = i;
    const match = NAME.exec(expression);
    if (!match) break;
    const start = match.index;
    let name = match[0];
    // Inside a quoted string or after a "." (a property, not a root)?
    const before = expression.slice(0, start);
    const quotes = (before.match(/"/g)?.length ?? 0) % 2 === 1 || (before.match(/'/g)?.length ?? 0) % 2 === 1;
    const isProperty = /\.\s*$/.test(before) || /[\w$]$/.test(before);
    if (name.includes('-') && !allSteps.has(name)) name = name.slice(0, name.indexOf('-'));
    let rest = expression.slice(start + name.length);
    i = start + name.length;
    if (quotes || isProperty) continue;
    const segments: string[] = [];
    for (;;) {
      const acc = ACCESSOR.exec(rest);
      if (!acc) break;
      segments.push(acc[1] ?? acc[2] ?? acc[3] ?? acc[4] ?? '');
      rest = rest.slice(acc[0].length);
      i += acc[0].length;
    }
    if (name === 'input') reads.push({ root: 'input', segments });
    else if (name === 'steps') {
      const [stepId, field, ...path] = segments;
      if (stepId === undefined) {
        for (const id of allSteps) reads.push({ root: 'step', stepId: id, segments: [] });
      } else if (field === undefined || field === 'output') reads.push({ root: 'step', stepId, segments: path });
    } else if (allSteps.has(name)) reads.push({ root: 'step', stepId: name, segments });
  }
  return reads;
}

/** True when one path is a prefix of the other: reading either exposes part of the other. */
function overlaps(a: readonly string[], b: readonly string[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k += 1) if (a[k] !== b[k]) return false;
  return true;
}

/** The sensitive place a template string reads, if any. */
function sensitiveRead(text: string, places: readonly SensitivePlace[], allSteps: ReadonlySet<string>): { read: DataRead; place: SensitivePlace } | undefined {
  const { parts } = splitTemplate(text);
  const bodies = parts.filter((p): p is { body: string } => typeof p !== 'string').map((p) => p.body);
  // The seed-002 bare form: the whole string is `step-id.path`.
  if (bodies.length === 0 && /^[A-Za-z][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\])+$/.test(text)) bodies.push(text);
  for (const body of bodies) {
    for (const read of dataReads(body, allSteps)) {
      const place = places.find((p) => p.root === read.root && p.stepId === read.stepId && overlaps(p.segments, read.segments));
      if (place) return { read, place };
    }
  }
  return undefined;
}

function describePlace(place: SensitivePlace): string {
  const pointer = joinPointer(place.segments) || '(the whole value)';
  return place.root === 'input' ? `the sensitive input ${pointer}` : `the sensitive output ${pointer} of step "${place.stepId}"`;
}

/**
 * What is wrong with a definition's `sensitive` field: steps it names that do not exist, and every
 * summary or failure message that would copy a sensitive value into a place no mask reaches.
 */
export function sensitiveProblems(definition: Definition): Array<{ path: string; message: string; stepId?: string }> {
  const spec = definition.sensitive;
  if (!spec) return [];
  const problems: Array<{ path: string; message: string; stepId?: string }> = [];
  const all: Array<[Step, string]> = [];
  const collect = (step: Step, pointer: string) => all.push([step, pointer]);
  walkSteps(definition.steps, '/steps', collect);
  for (const [id, policy] of Object.entries(definition.error_handling?.per_step ?? {})) {
    if (policy.handler) walkSteps(policy.handler, `/error_handling/per_step/${pointerSegment(id)}/handler`, collect);
  }
  if (definition.error_handling?.handler) walkSteps(definition.error_handling.handler, '/error_handling/handler', collect);
  const allSteps = new Set(all.map(([s]) => s.id));
  for (const stepId of Object.keys(spec.steps ?? {})) {
    if (!allSteps.has(stepId)) problems.push({ path: `/sensitive/steps/${pointerSegment(stepId)}`, message: `no step has the id "${stepId}"` });
  }
  const places = sensitivePlaces(spec);
  if (places.length === 0) return problems;
  for (const [step, pointer] of all) {
    const fields: Array<[string, string | undefined, string]> =
      step.type === 'approval'
        ? [['summary', step.summary, 'an approval summary is shown in the clear (the approvers\' inbox, Temporal Web\'s current details)']]
        : step.type === 'fail'
          ? [['error', step.error, 'a failure message is stored in the clear (Temporal does not encrypt failure messages)']]
          : [];
    for (const [field, text, why] of fields) {
      if (text === undefined) continue;
      const found = sensitiveRead(text, places, allSteps);
      if (!found) continue;
      problems.push({
        path: `${pointer}/${field}`,
        stepId: step.id,
        message: `reads ${describePlace(found.place)} (declared at ${found.place.declaredAt}); ${why}, so it cannot be masked: leave the value out of the ${field}`,
      });
    }
  }
  return problems;
}
