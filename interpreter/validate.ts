import type { z } from 'zod';
import { compileDefinition, walkSteps, type Catalog, type Plan } from './compile.ts';
import { pointerSegment } from './references.ts';
import { LIMITS, STEP_ID_PATTERN, definitionSchema, stepSchema, unwrapDefinition, type Definition, type Step } from './schema.ts';

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
  /** Names of the integrations the workers can call. */
  integrations: ReadonlySet<string>;
  /** Names of the agents the workers can run. */
  agents: ReadonlySet<string>;
  /** Configured lane names. */
  lanes: readonly string[];
  /** `name@version` of the registered definitions a sub_workflow may call (the caller's tenant). */
  definitions?: ReadonlySet<string>;
}

export type ValidationResult =
  | { ok: true; definition: Definition; plan: Plan }
  | { ok: false; problems: Problem[] };

/** Formats a zod issue path as a JSON Pointer. */
export function toPointer(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => `/${pointerSegment(typeof p === 'symbol' ? String(p) : p)}`).join('');
}

/** The id of the innermost step a JSON Pointer points into, if any. */
function stepIdAt(raw: unknown, pointer: string): string | undefined {
  const segments = pointer.split('/').slice(1);
  let node: unknown = raw;
  let found: string | undefined;
  for (const segment of segments) {
    if (node === null || typeof node !== 'object') break;
    node = (node as Record<string, unknown>)[segment.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (isRecord(node) && typeof node.id === 'string' && typeof node.type === 'string') found = node.id;
  }
  return found;
}

function zodProblems(error: z.ZodError, raw: unknown): Problem[] {
  const problems: Problem[] = [];
  const add = (issue: z.core.$ZodIssue, prefix: ReadonlyArray<PropertyKey>) => {
    // A step whose type is known but whose fields are wrong reports those fields, not "no union member matched".
    if (issue.code === 'invalid_union' && issue.errors.length > 0 && issue.errors.some((e) => e.length > 0)) {
      const best = issue.errors.reduce((a, b) => (b.length > 0 && (a.length === 0 || b.length < a.length) ? b : a));
      for (const inner of best) add(inner, [...prefix, ...issue.path]);
      return;
    }
    const path = toPointer([...prefix, ...issue.path]);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    const stepId = stepIdAt(raw, path);
    problems.push(stepId === undefined ? { path, message } : { path, message, stepId });
  };
  for (const issue of error.issues) add(issue, []);
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A stand-in for a document that failed the schema, built from its well-formed parts, so the
 * whole-document checks can still run and every problem is reported in one answer. A step that
 * fails its schema is replaced by an empty `set` step with the same id (so references to it still
 * resolve); returns undefined when the steps cannot be lined up.
 */
function salvage(raw: unknown): Definition | undefined {
  if (!isRecord(raw) || !Array.isArray(raw.steps)) return undefined;
  const steps: Step[] = [];
  for (const candidate of raw.steps as unknown[]) {
    const parsed = stepSchema.safeParse(candidate);
    if (parsed.success) steps.push(parsed.data);
    else if (isRecord(candidate) && typeof candidate.id === 'string' && STEP_ID_PATTERN.test(candidate.id)) {
      steps.push({ id: candidate.id, type: 'set', values: {} });
    } else return undefined;
  }
  const standIn: Record<string, unknown> = { name: 'salvaged', version: '0.0.0', steps };
  for (const field of ['lane', 'context', 'error_handling', 'output'] as const) {
    const schema = definitionSchema.shape[field];
    const parsed = schema.safeParse(raw[field]);
    if (parsed.success && parsed.data !== undefined) standIn[field] = parsed.data;
  }
  return standIn as Definition;
}

/** The checks that need the whole document: unique ids, limits, known names, references. */
function documentProblems(definition: Definition, ctx: ValidationContext): { plan: Plan; problems: Problem[] } {
  const problems: Problem[] = [];
  const seen = new Map<string, string>();
  let count = 0;
  let deepest = 0;
  const visit = (step: Step, pointer: string, depth: number) => {
    count += 1;
    deepest = Math.max(deepest, depth);
    const first = seen.get(step.id);
    if (first !== undefined) {
      problems.push({ path: `${pointer}/id`, message: `duplicate step id "${step.id}" (first used at ${first})`, stepId: step.id });
    } else {
      seen.set(step.id, pointer);
    }
    if (depth === LIMITS.maxNestingDepth + 1) {
      problems.push({ path: pointer, message: `steps nest ${depth} levels deep here; the limit is ${LIMITS.maxNestingDepth}`, stepId: step.id });
    }
  };
  walkSteps(definition.steps, '/steps', visit);
  const handling = definition.error_handling;
  for (const [id, policy] of Object.entries(handling?.per_step ?? {})) {
    if (policy.handler) walkSteps(policy.handler, `/error_handling/per_step/${pointerSegment(id)}/handler`, visit, 2);
  }
  if (handling?.handler) walkSteps(handling.handler, '/error_handling/handler', visit, 2);
  (handling?.rollback?.steps ?? []).forEach((entry, i) => {
    if (typeof entry !== 'string') walkSteps([entry], '/error_handling/rollback/steps', (s, p, d) => visit(s, p.replace(/\/steps\/0/, `/steps/${i}`), d + 1));
  });
  if (count > LIMITS.maxSteps) {
    problems.push({ path: '/steps', message: `the definition has ${count} steps (nested ones included); the limit is ${LIMITS.maxSteps}` });
  }

  if (definition.lane !== undefined && !ctx.lanes.includes(definition.lane)) {
    problems.push({ path: '/lane', message: `unknown lane "${definition.lane}"; configured lanes: ${ctx.lanes.join(', ')}` });
  }

  const catalog: Catalog = {
    skills: ctx.skills,
    integrations: ctx.integrations,
    agents: ctx.agents,
    definitions: ctx.definitions ?? new Set(),
  };
  const { plan, problems: compileProblems } = compileDefinition(definition, catalog);
  for (const p of compileProblems) {
    const stepId = stepIdAt(definition, p.pointer);
    problems.push(stepId === undefined ? { path: p.pointer, message: p.message } : { path: p.pointer, message: p.message, stepId });
  }
  return { plan, problems };
}

/** Every `name@version` a definition's sub_workflow steps call (to look them up before validating). */
export function subWorkflowReferences(raw: unknown): Array<{ definition: string; version: string }> {
  const found: Array<{ definition: string; version: string }> = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (isRecord(node)) {
      if (node.type === 'sub_workflow' && typeof node.definition === 'string' && typeof node.version === 'string') {
        found.push({ definition: node.definition, version: node.version });
      }
      Object.values(node).forEach(visit);
    }
  };
  visit(unwrapDefinition(raw));
  return found;
}

/**
 * Validates a submitted definition and returns every problem at once: schema errors with their
 * JSON paths, then the checks that need the whole document (unique ids, references to earlier
 * steps, known skills, integrations, agents, definitions and lanes, limits). When the schema
 * fails, the whole-document checks still run on the parts that are well-formed. Seed 004's
 * `{"workflow": {...}}` wrapper is accepted; `definition` is the unwrapped form.
 */
export function validateDefinition(submitted: unknown, ctx: ValidationContext): ValidationResult {
  // TextEncoder, not Buffer: this module must also load in the workflow sandbox.
  const size = new TextEncoder().encode(JSON.stringify(submitted ?? null)).length;
  if (size > LIMITS.maxDefinitionBytes) {
    return {
      ok: false,
      problems: [{ path: '', message: `the definition is ${size} bytes; the limit is ${LIMITS.maxDefinitionBytes}` }],
    };
  }
  const raw = unwrapDefinition(submitted);
  const wrapped = raw !== submitted;
  const relocate = (p: Problem): Problem => (wrapped ? { ...p, path: `/workflow${p.path}` } : p);
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = zodProblems(parsed.error, raw);
    const standIn = salvage(raw);
    if (standIn !== undefined) {
      const reported = problems.map((p) => p.path);
      problems.push(
        ...documentProblems(standIn, ctx).problems.filter(
          (p) => !reported.some((r) => p.path === r || p.path.startsWith(`${r}/`) || r.startsWith(`${p.path}/`)),
        ),
      );
    }
    return { ok: false, problems: problems.map(relocate) };
  }
  const definition = parsed.data;
  const { plan, problems } = documentProblems(definition, ctx);
  return problems.length > 0 ? { ok: false, problems: problems.map(relocate) } : { ok: true, definition, plan };
}
