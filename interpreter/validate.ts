import type { z } from 'zod';
import { compileDefinition, type Plan } from './compile.ts';
import { pointerSegment } from './references.ts';
import { LIMITS, definitionSchema, type Definition } from './schema.ts';

/** One thing wrong with a definition, located by a JSON Pointer into the submitted document. */
export interface Problem {
  path: string;
  message: string;
  /** The id of the step the problem sits in, when there is one. */
  stepId?: string;
}

/** What the validator needs to know about the installation it validates for. */
export interface ValidationContext {
  /** Names of the skills the workers can run. */
  skills: ReadonlySet<string>;
  /** Configured lane names. */
  lanes: readonly string[];
}

export type ValidationResult =
  | { ok: true; definition: Definition; plan: Plan }
  | { ok: false; problems: Problem[] };

/** Formats a zod issue path as a JSON Pointer. */
export function toPointer(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => `/${pointerSegment(typeof p === 'symbol' ? String(p) : p)}`).join('');
}

function stepIdAt(raw: unknown, pointer: string): string | undefined {
  const m = /^\/steps\/(\d+)/.exec(pointer);
  if (!m || raw === null || typeof raw !== 'object') return undefined;
  const steps = (raw as { steps?: unknown }).steps;
  if (!Array.isArray(steps)) return undefined;
  const step: unknown = steps[Number(m[1])];
  if (step && typeof step === 'object' && typeof (step as { id?: unknown }).id === 'string') {
    return (step as { id: string }).id;
  }
  return undefined;
}

function zodProblems(error: z.ZodError, raw: unknown): Problem[] {
  return error.issues.map((issue) => {
    const path = toPointer(issue.path);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    const stepId = stepIdAt(raw, path);
    return stepId === undefined ? { path, message } : { path, message, stepId };
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A stand-in for a document that failed the schema, built from its well-formed parts only, so the
 * whole-document checks can still run and every problem is reported in one answer. Step indexes
 * are preserved; returns undefined when the steps cannot be lined up (a step without a string id).
 */
function salvage(raw: unknown): Definition | undefined {
  if (!isRecord(raw) || !Array.isArray(raw.steps)) return undefined;
  const steps: unknown[] = raw.steps;
  if (!steps.every((s) => isRecord(s) && typeof s.id === 'string')) return undefined;
  const perStep = isRecord(raw.error_handling) && isRecord(raw.error_handling.per_step) ? raw.error_handling.per_step : {};
  const standIn = {
    name: '',
    version: '',
    ...(typeof raw.lane === 'string' ? { lane: raw.lane } : {}),
    steps: steps.map((s) => {
      const step = s as Record<string, unknown>;
      const checkable = step.type === 'skill' && typeof step.skill === 'string';
      return {
        id: step.id,
        // Only a step that is a skill step with a skill name gets the unknown-skill check.
        type: checkable ? 'skill' : 'unchecked',
        skill: checkable ? step.skill : '',
        inputs: isRecord(step.inputs) ? step.inputs : {},
      };
    }),
    error_handling: { per_step: Object.fromEntries(Object.keys(perStep).map((id) => [id, { strategy: 'halt' }])) },
    ...(isRecord(raw.output) ? { output: raw.output } : {}),
  };
  return standIn as unknown as Definition;
}

/** The checks that need the whole document: unique ids, known skills and lanes, references. */
function documentProblems(definition: Definition, ctx: ValidationContext): { plan: Plan; problems: Problem[] } {
  const problems: Problem[] = [];

  const seen = new Map<string, number>();
  definition.steps.forEach((step, index) => {
    const first = seen.get(step.id);
    if (first !== undefined) {
      problems.push({
        path: `/steps/${index}/id`,
        message: `duplicate step id "${step.id}" (first used at /steps/${first})`,
        stepId: step.id,
      });
    } else {
      seen.set(step.id, index);
    }
    if (step.type === 'skill' && !ctx.skills.has(step.skill)) {
      problems.push({
        path: `/steps/${index}/skill`,
        message: `unknown skill "${step.skill}"; available: ${[...ctx.skills].sort().join(', ')}`,
        stepId: step.id,
      });
    }
  });

  if (definition.lane !== undefined && !ctx.lanes.includes(definition.lane)) {
    problems.push({ path: '/lane', message: `unknown lane "${definition.lane}"; configured lanes: ${ctx.lanes.join(', ')}` });
  }

  const { plan, problems: compileProblems } = compileDefinition(definition);
  for (const p of compileProblems) {
    const stepId = stepIdAt(definition, p.pointer);
    problems.push(stepId === undefined ? { path: p.pointer, message: p.message } : { path: p.pointer, message: p.message, stepId });
  }
  return { plan, problems };
}

/**
 * Validates a submitted definition and returns every problem at once: schema errors with their
 * JSON paths, then the checks that need the whole document (unique ids, references to earlier
 * steps, known skills and lanes, size limits). When the schema fails, the whole-document checks
 * still run on the parts that are well-formed.
 */
export function validateDefinition(raw: unknown, ctx: ValidationContext): ValidationResult {
  // TextEncoder, not Buffer: this module must also load in the workflow sandbox.
  const size = new TextEncoder().encode(JSON.stringify(raw ?? null)).length;
  if (size > LIMITS.maxDefinitionBytes) {
    return {
      ok: false,
      problems: [{ path: '', message: `the definition is ${size} bytes; the limit is ${LIMITS.maxDefinitionBytes}` }],
    };
  }
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = zodProblems(parsed.error, raw);
    const standIn = salvage(raw);
    if (standIn !== undefined) {
      const reported = new Set(problems.map((p) => p.path));
      problems.push(...documentProblems(standIn, ctx).problems.filter((p) => !reported.has(p.path)));
    }
    return { ok: false, problems };
  }
  const definition = parsed.data;
  const { plan, problems } = documentProblems(definition, ctx);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, definition, plan };
}
