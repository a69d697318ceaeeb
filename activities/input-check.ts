import type { z } from 'zod';
import { walkSteps } from '../interpreter/compile.ts';
import { pointerSegment } from '../interpreter/references.ts';
import type { Definition, Step } from '../interpreter/schema.ts';
import { toPointer, type Problem } from '../interpreter/validate.ts';
import type { ActivityCatalog } from './catalog.ts';
import { SECRET_NAME, isSecretReference } from './integrations/secrets.ts';
import type { SkillSpec } from './skills/skill.ts';

/**
 * Registration-time checks of the inputs a definition gives its skill and integration steps,
 * against each one's zod input schema. Only what is certain is reported: a value holding a
 * `${...}` template, a bare step reference (`fetch-data.data`) or a secret reference is known at
 * run time only, so issues at or under it are left to the activity's own check. Missing required
 * fields, unknown fields of strict schemas and literal values of the wrong type or shape are
 * reported with the JSON pointer of the offending value.
 */

/** The seed-002 bare reference form, as the interpreter reads it (interpreter/references.ts). */
const BARE_REFERENCE = /^([A-Za-z][A-Za-z0-9_-]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])+)$/;

type Families = Pick<ActivityCatalog, 'skills' | 'integrations'>;

/** True when a value is decided at run time: a template, a bare step reference or a secret reference. */
function isDynamic(value: unknown, stepIds: ReadonlySet<string>): boolean {
  if (isSecretReference(value)) return true;
  if (typeof value !== 'string') return false;
  if (value.includes('${')) return true;
  const head = BARE_REFERENCE.exec(value)?.[1];
  return head !== undefined && stepIds.has(head);
}

function containsDynamic(value: unknown, stepIds: ReadonlySet<string>): boolean {
  if (isDynamic(value, stepIds)) return true;
  if (Array.isArray(value)) return value.some((v) => containsDynamic(v, stepIds));
  if (value !== null && typeof value === 'object') return Object.values(value).some((v) => containsDynamic(v, stepIds));
  return false;
}

/** The values along a path, from the root (index 0) to the value at the path. */
function valuesAlong(root: unknown, path: readonly PropertyKey[]): unknown[] {
  const values: unknown[] = [root];
  let node = root;
  for (const key of path) {
    node = node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key as string] : undefined;
    values.push(node);
  }
  return values;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Problems of one step's inputs against a spec's input schema; `base` points at the inputs. */
export function checkInputs(spec: Pick<SkillSpec, 'name' | 'input' | 'secretInputs'>, inputs: unknown, base: string, stepIds: ReadonlySet<string>): Problem[] {
  const problems: Problem[] = [];
  const raw = inputs ?? {};
  const report = (path: readonly PropertyKey[], message: string) => problems.push({ path: `${base}${toPointer(path)}`, message });

  for (const field of spec.secretInputs ?? []) {
    const value = isPlainObject(raw) ? raw[field] : undefined;
    if (value !== undefined && !isSecretReference(value)) {
      report([field], `"${field}" of ${spec.name} must be a secret reference such as {"secret": "NAME"}; secrets never go in definitions`);
    }
  }
  const visitSecrets = (value: unknown, path: PropertyKey[]) => {
    if (isSecretReference(value)) {
      if (!SECRET_NAME.test(value.secret) || value.secret.includes('..')) {
        report([...path, 'secret'], `"${value.secret}" is not a valid secret name (letters, digits, "_", ".", "-")`);
      }
    } else if (Array.isArray(value)) value.forEach((v, i) => visitSecrets(v, [...path, i]));
    else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) visitSecrets(v, [...path, k]);
  };
  visitSecrets(raw, []);

  let result: ReturnType<z.ZodType['safeParse']>;
  try {
    result = spec.input.safeParse(raw);
  } catch {
    // Async refinements cannot run here; the activity checks its input on every attempt anyway.
    return problems;
  }
  if (result.success) return problems;
  for (const issue of result.error.issues) {
    const along = valuesAlong(raw, issue.path);
    // Under a run-time value (or a parent that is one), nothing is known yet.
    if (along.some((v) => isDynamic(v, stepIds))) continue;
    const value = along[along.length - 1];
    const parent = along[along.length - 2];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) report([...issue.path, key], `unknown field "${key}" for ${spec.name}`);
      continue;
    }
    if (value === undefined && issue.path.length > 0 && isPlainObject(parent)) {
      const field = String(issue.path[issue.path.length - 1]);
      report(issue.path, `missing required field "${field}" for ${spec.name}`);
      continue;
    }
    // A wrong shape somewhere below may come from a template inside it: only literals are judged.
    if (containsDynamic(value, stepIds)) continue;
    report(issue.path, `${issue.message} (input of ${spec.name})`);
  }
  return problems;
}

/** Every step of a definition with its JSON pointer: steps, handlers and rollback steps. */
function everyStep(definition: Definition, visit: (step: Step, pointer: string) => void): void {
  walkSteps(definition.steps, '/steps', visit);
  const handling = definition.error_handling;
  for (const [id, policy] of Object.entries(handling?.per_step ?? {})) {
    if (policy.handler) walkSteps(policy.handler, `/error_handling/per_step/${pointerSegment(id)}/handler`, visit);
  }
  if (handling?.handler) walkSteps(handling.handler, '/error_handling/handler', visit);
  (handling?.rollback?.steps ?? []).forEach((entry, i) => {
    if (typeof entry !== 'string') walkSteps([entry], '/error_handling/rollback/steps', (s, p) => visit(s, p.replace(/^\/error_handling\/rollback\/steps\/0/, `/error_handling/rollback/steps/${i}`)));
  });
}

/**
 * Problems of every skill, integration and directive step whose inputs (or payload) violate the
 * called spec's input schema. Unknown names are the validator's to report, not this check's.
 */
export function checkActivityInputs(definition: Definition, catalog: Families): Problem[] {
  const skills = new Map(catalog.skills.map((s) => [s.name, s]));
  const integrations = new Map(catalog.integrations.map((s) => [s.name, s]));
  const stepIds = new Set<string>();
  everyStep(definition, (step) => stepIds.add(step.id));
  const problems: Problem[] = [];
  everyStep(definition, (step, pointer) => {
    let spec: SkillSpec | undefined;
    let inputs: unknown;
    let field: string;
    if (step.type === 'skill') [spec, inputs, field] = [skills.get(step.skill), step.inputs, 'inputs'];
    else if (step.type === 'integration') [spec, inputs, field] = [integrations.get(step.integration), step.inputs, 'inputs'];
    else if (step.type === 'directive') [spec, inputs, field] = [integrations.get(step.directive), step.payload, 'payload'];
    else return;
    if (!spec) return;
    for (const p of checkInputs(spec, inputs, `${pointer}/${field}`, stepIds)) problems.push({ ...p, stepId: step.id });
  });
  return problems;
}

/** The validator's extra check for an installation's catalog (ValidationContext.extraChecks). */
export function inputChecker(catalog: Families): (definition: Definition) => Problem[] {
  return (definition) => checkActivityInputs(definition, catalog);
}
