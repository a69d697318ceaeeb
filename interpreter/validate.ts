// Over 400 lines: one concept, the checks of a whole definition at registration (schema, references, catalog, limits, cron, sub-workflows), each its own short function.
import type { z } from 'zod';
import { compileDefinition, walkSteps, type Catalog, type Plan } from './compile.ts';
import { MODEL_ACTIVITY } from '../common/constants.ts';
import { estimateHistory, type HistoryEstimate } from './estimate.ts';
import type { OutputContracts } from './output-shapes.ts';
import { pointerSegment } from './references.ts';
import { sensitiveProblems } from './sensitive.ts';
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
  /** Model routes and aliases of the routing table; model names go unchecked when absent. */
  models?: ReadonlySet<string>;
  /** Configured lane names. */
  lanes: readonly string[];
  /** `name@version` of the registered definitions a sub_workflow may call (the caller's tenant). */
  definitions?: ReadonlySet<string>;
  /**
   * Registered output schemas by `<family>:<name>` (activities/catalog.ts, outputContracts): a
   * step's declared `outputs` and every `${step-id.field}` read of them are checked against these.
   */
  outputs?: OutputContracts;
  /**
   * What the activity workers of the definition's lane reported running (common/worker-catalog.ts),
   * with the API's own fingerprints: a callee the API knows but those workers lack (or run with
   * another output schema) is refused. Families with no report are not judged.
   */
  workers?: WorkerAgreement;
  /** RUN_CONTINUE_AS_NEW_EVENTS, for the history estimate (default 10,000). */
  continueAsNewAfterEvents?: number;
  /**
   * Checks the installation adds (e.g. skill inputs against their schemas, activities/input-check.ts);
   * passed in by the API so this module stays free of I/O. Runs on every well-formed document.
   */
  extraChecks?: (definition: Definition) => Problem[];
}

type CatalogFamily = 'skills' | 'integrations' | 'models' | 'agents';

/** The lane's worker report against the API's catalog, name -> output-schema fingerprint per family. */
export interface WorkerAgreement {
  lane: string;
  reported: Partial<Record<CatalogFamily, { entries: Record<string, string>; reportedAt: string }>>;
  own: Partial<Record<CatalogFamily, Record<string, string>>>;
}

const FAMILY_NOUN: Record<CatalogFamily, string> = { skills: 'skill', integrations: 'integration', models: 'model activity', agents: 'agent activity' };

/** Why the lane's workers cannot run what a step calls, when the API's catalog has it but theirs does not. */
function workerProblem(agreement: WorkerAgreement, family: CatalogFamily, name: string): string | undefined {
  const own = agreement.own[family]?.[name];
  const report = agreement.reported[family];
  if (own === undefined || report === undefined) return undefined;
  const theirs = report.entries[name];
  const noun = FAMILY_NOUN[family];
  if (theirs === undefined) {
    const names = Object.keys(report.entries).sort();
    return (
      `${noun} "${name}" is in the API's catalog, but the workers of lane "${agreement.lane}" do not run it ` +
      `(their last report, ${report.reportedAt}: ${names.join(', ') || '(none)'}); deploy workers that have it, or use a lane whose workers do`
    );
  }
  if (theirs !== own) {
    return `the workers of lane "${agreement.lane}" run another version of ${noun} "${name}" (its output schema differs from the API's); deploy the same catalog to both`;
  }
  return undefined;
}

/** The activity a step calls, by family, for the worker-agreement check. */
function calledActivity(step: Step): [CatalogFamily, string, string] | undefined {
  switch (step.type) {
    case 'skill':
      return ['skills', step.skill, 'skill'];
    case 'integration':
      return ['integrations', step.integration, 'integration'];
    case 'directive':
      return ['integrations', step.directive, 'directive'];
    case 'model':
      return ['models', MODEL_ACTIVITY, 'model'];
    default:
      return undefined;
  }
}

export type ValidationResult =
  | { ok: true; definition: Definition; plan: Plan; estimate: HistoryEstimate }
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

/** zod issues with union errors replaced by the closest member's own issues, paths made absolute. */
function flatIssues(error: z.ZodError): Array<{ issue: z.core.$ZodIssue; path: PropertyKey[] }> {
  const flat: Array<{ issue: z.core.$ZodIssue; path: PropertyKey[] }> = [];
  const add = (issue: z.core.$ZodIssue, prefix: ReadonlyArray<PropertyKey>) => {
    // A step whose type is known but whose fields are wrong reports those fields, not "no union member matched".
    if (issue.code === 'invalid_union' && issue.errors.length > 0 && issue.errors.some((e) => e.length > 0)) {
      const best = issue.errors.reduce((a, b) => (b.length > 0 && (a.length === 0 || b.length < a.length) ? b : a));
      for (const inner of best) add(inner, [...prefix, ...issue.path]);
      return;
    }
    flat.push({ issue, path: [...prefix, ...issue.path] });
  };
  for (const issue of error.issues) add(issue, []);
  return flat;
}

function zodProblems(error: z.ZodError, raw: unknown): Problem[] {
  const problems: Problem[] = [];
  for (const { issue, path: at } of flatIssues(error)) {
    const path = toPointer(at);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      message = `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    const stepId = stepIdAt(raw, path);
    problems.push(stepId === undefined ? { path, message } : { path, message, stepId });
  }
  return problems;
}

/** Fallbacks for required fields a repaired document may lack. */
const REQUIRED_FALLBACKS: Record<string, unknown> = { max_iterations: 1, condition: 'false', values: {} };

/**
 * A copy of a document that failed the schema with each problem cut out: unknown fields and bad
 * values dropped, missing bounds filled, steps of unknown kinds replaced by empty `set` steps. The
 * whole-document checks (ids, references, known names) then run on everything that was well
 * formed, nested steps included. Undefined when a few rounds of repair do not yield a valid document.
 */
function repair(raw: unknown): Definition | undefined {
  const candidate: unknown = JSON.parse(JSON.stringify(raw ?? null));
  for (let round = 0; round < 8; round += 1) {
    const parsed = definitionSchema.safeParse(candidate);
    if (parsed.success) return parsed.data;
    for (const { issue, path } of flatIssues(parsed.error)) {
      const parent = path.slice(0, -1).reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined), candidate);
      const key = path[path.length - 1];
      if (issue.code === 'unrecognized_keys') {
        const target = path.reduce<unknown>((node, k) => (node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[k] : undefined), candidate);
        if (isRecord(target)) for (const k of issue.keys) delete target[k];
        continue;
      }
      if (key === undefined || parent === null || typeof parent !== 'object') return undefined;
      const container = parent as Record<PropertyKey, unknown>;
      if (isRecord(container) && (key === 'type' || key === 'id') && typeof container.id === 'string' && STEP_ID_PATTERN.test(container.id)) {
        // A step of an unknown kind: keep its id so references to it still resolve.
        for (const k of Object.keys(container)) if (k !== 'id') delete container[k];
        Object.assign(container, { type: 'set', values: {} });
      } else if (container[key] === undefined && typeof key === 'string' && key in REQUIRED_FALLBACKS) {
        container[key] = REQUIRED_FALLBACKS[key];
      } else if (Array.isArray(container) && typeof key === 'number') {
        container[key] = isRecord(container[key]) && typeof container[key].id === 'string' ? { id: container[key].id, type: 'set', values: {} } : null;
      } else if (container[key] !== undefined) {
        delete container[key];
      } else {
        return undefined;
      }
    }
  }
  return undefined;
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

const CRON_FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
] as const;

/** Why a 5-field cron expression is out of range, or undefined when it is valid. */
export function cronProblem(cron: string): string | undefined {
  const fields = cron.trim().split(/\s+/);
  for (const [i, field] of fields.entries()) {
    const spec = CRON_FIELDS[i];
    if (!spec) return 'cron expressions have 5 fields: minute hour day-of-month month day-of-week';
    const value = (text: string): number | undefined => {
      const named = 'names' in spec ? spec.names.indexOf(text.toUpperCase() as never) : -1;
      if (named >= 0) return named + spec.min;
      return /^\d+$/.test(text) ? Number(text) : undefined;
    };
    for (const item of field.split(',')) {
      const [range = '', step] = item.split('/');
      if (step !== undefined && !/^[1-9]\d*$/.test(step)) return `the ${spec.name} field "${field}" has an invalid step "/${step}"`;
      if (range === '*') continue;
      const bounds = range.split('-');
      if (bounds.length > 2) return `the ${spec.name} field "${field}" is not a value, a range or "*"`;
      const numbers = bounds.map(value);
      if (numbers.some((n) => n === undefined || n < spec.min || n > spec.max)) {
        return `the ${spec.name} field "${field}" is out of range (${spec.min}-${spec.max})`;
      }
      if (numbers.length === 2 && (numbers[0] as number) > (numbers[1] as number)) return `the ${spec.name} range "${range}" runs backwards`;
    }
  }
  return undefined;
}

/**
 * User info in an http(s) URL (`https://user:pass@host/`): the HTTP client would drop it without a
 * word, and a definition must not hold secrets anyway. The authority ends at "/", "?", "#" or
 * whitespace; a template inside it (`https://${input.user}@host/`) counts too.
 */
const URL_USER_INFO = /\bhttps?:\/\/([^\s/?#@]+)@/i;

/** What a step hands to its activity or child run, by field name. */
function stepInputs(step: Step): Array<[string, unknown]> {
  switch (step.type) {
    case 'skill':
    case 'integration':
    case 'sub_workflow':
      return [['inputs', step.inputs]];
    case 'agent':
      return [['inputs', step.inputs], ['input', step.input]];
    case 'directive':
      return [['payload', step.payload]];
    default:
      return [];
  }
}

/** Reports every string under `value` that holds a URL with credentials. */
function urlCredentialProblems(value: unknown, pointer: string, stepId: string, problems: Problem[]): void {
  if (typeof value === 'string') {
    const userInfo = URL_USER_INFO.exec(value)?.[1];
    if (userInfo === undefined) return;
    const user = userInfo.split(':')[0] ?? '';
    problems.push({
      path: pointer,
      stepId,
      message:
        `the URL carries credentials ("${user}${userInfo.includes(':') ? ':…' : ''}@"), which are never sent and do not belong in a definition; ` +
        'send them in a header whose value is a secret reference, e.g. "headers": {"authorization": {"secret": "API_TOKEN", "prefix": "Bearer "}} ' +
        '(docs/integrations.md, Secrets)',
    });
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => urlCredentialProblems(item, `${pointer}/${i}`, stepId, problems));
  } else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) urlCredentialProblems(item, `${pointer}/${pointerSegment(key)}`, stepId, problems);
  }
}

/** The checks that need the whole document: unique ids, limits, known names, references. */
function documentProblems(definition: Definition, ctx: ValidationContext): { plan: Plan; problems: Problem[]; estimate: HistoryEstimate } {
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
    for (const [field, value] of stepInputs(step)) urlCredentialProblems(value, `${pointer}/${field}`, step.id, problems);
    const called = ctx.workers ? calledActivity(step) : undefined;
    const why = called && ctx.workers ? workerProblem(ctx.workers, called[0], called[1]) : undefined;
    if (why && called) problems.push({ path: `${pointer}/${called[2]}`, message: why, stepId: step.id });
  };
  walkSteps(definition.steps, '/steps', visit);
  const handling = definition.error_handling;
  for (const [id, policy] of Object.entries(handling?.per_step ?? {})) {
    if (policy.handler) walkSteps(policy.handler, `/error_handling/per_step/${pointerSegment(id)}/handler`, visit, 2);
  }
  if (handling?.handler) walkSteps(handling.handler, '/error_handling/handler', visit, 2);
  (handling?.rollback?.steps ?? []).forEach((entry, i) => {
    const why = typeof entry === 'string' && ctx.workers ? workerProblem(ctx.workers, 'skills', entry) : undefined;
    if (why) problems.push({ path: `/error_handling/rollback/steps/${i}`, message: why });
    if (typeof entry !== 'string') walkSteps([entry], '/error_handling/rollback/steps', (s, p, d) => visit(s, p.replace(/\/steps\/0/, `/steps/${i}`), d + 1));
  });
  if (count > LIMITS.maxSteps) {
    problems.push({ path: '/steps', message: `the definition has ${count} steps (nested ones included); the limit is ${LIMITS.maxSteps}` });
  }

  (definition.triggers ?? []).forEach((trigger, i) => {
    if (trigger.type !== 'schedule') return;
    const cron = trigger.cron === undefined ? undefined : cronProblem(trigger.cron);
    if (cron) problems.push({ path: `/triggers/${i}/cron`, message: cron });
    if (trigger.timezone === undefined) return;
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: trigger.timezone });
    } catch {
      problems.push({ path: `/triggers/${i}/timezone`, message: `unknown time zone "${trigger.timezone}"; use an IANA name such as "UTC" or "Europe/Paris"` });
    }
  });

  if (definition.lane !== undefined && !ctx.lanes.includes(definition.lane)) {
    problems.push({ path: '/lane', message: `unknown lane "${definition.lane}"; configured lanes: ${ctx.lanes.join(', ')}` });
  }

  const catalog: Catalog = {
    skills: ctx.skills,
    integrations: ctx.integrations,
    agents: ctx.agents,
    ...(ctx.models ? { models: ctx.models } : {}),
    definitions: ctx.definitions ?? new Set(),
    ...(ctx.outputs ? { outputs: ctx.outputs } : {}),
  };
  const { plan, problems: compileProblems } = compileDefinition(definition, catalog);
  for (const p of compileProblems) {
    const stepId = stepIdAt(definition, p.pointer);
    problems.push(stepId === undefined ? { path: p.pointer, message: p.message } : { path: p.pointer, message: p.message, stepId });
  }
  // Declared sensitive values may not be copied where no mask reaches (interpreter/sensitive.ts).
  problems.push(...sensitiveProblems(definition));
  if (ctx.extraChecks) problems.push(...ctx.extraChecks(definition));
  // History size: a step that must exceed Temporal's per-run limit whatever the data is refused.
  const estimate = estimateHistory(plan, ctx.continueAsNewAfterEvents === undefined ? {} : { continueAsNewAfterEvents: ctx.continueAsNewAfterEvents });
  for (const p of estimate.problems) problems.push(p.stepId === undefined ? { path: p.path, message: p.message } : { path: p.path, message: p.message, stepId: p.stepId });
  return { plan, problems, estimate };
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
    const repaired = repair(raw);
    const standIn = repaired ?? salvage(raw);
    if (standIn !== undefined) {
      const reported = problems.map((p) => p.path);
      // A repaired document keeps every well-formed part, so only exact repeats are dropped; the
      // coarser stand-in lost the insides of broken steps, so nothing under them is trusted.
      const fresh = repaired
        ? (p: Problem) => !reported.includes(p.path)
        : (p: Problem) => !reported.some((r) => p.path === r || p.path.startsWith(`${r}/`) || r.startsWith(`${p.path}/`));
      problems.push(...documentProblems(standIn, ctx).problems.filter(fresh));
    }
    return { ok: false, problems: problems.map(relocate) };
  }
  const definition = parsed.data;
  const { plan, problems, estimate } = documentProblems(definition, ctx);
  return problems.length > 0 ? { ok: false, problems: problems.map(relocate) } : { ok: true, definition, plan, estimate };
}
