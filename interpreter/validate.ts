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

/**
 * Validates a submitted definition and returns every problem at once: schema errors with their
 * JSON paths, then the checks that need the whole document (unique ids, references to earlier
 * steps, known skills and lanes, size limits).
 */
export function validateDefinition(raw: unknown, ctx: ValidationContext): ValidationResult {
  const size = JSON.stringify(raw ?? null).length;
  if (size > LIMITS.maxDefinitionBytes) {
    return {
      ok: false,
      problems: [{ path: '', message: `the definition is ${size} bytes; the limit is ${LIMITS.maxDefinitionBytes}` }],
    };
  }
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, problems: zodProblems(parsed.error, raw) };
  const definition = parsed.data;
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

  return problems.length > 0 ? { ok: false, problems } : { ok: true, definition, plan };
}
