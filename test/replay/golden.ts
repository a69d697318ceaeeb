import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { childLists } from '../../interpreter/compile.ts';
import type { Definition, Step } from '../../interpreter/schema.ts';

export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/golden', import.meta.url));
export const HISTORIES_DIR = fileURLToPath(new URL('../fixtures/histories', import.meta.url));

/**
 * Layout of test/fixtures/golden:
 *
 *   <name>.json           a golden definition (validated against the built-in catalog)
 *   <name>.run.json       optional: how the recorder runs it (GoldenRunOptions)
 *   <name>.children.json  optional: the definitions its sub_workflow steps call (an array; validated too)
 *
 * Definitions are strict, so nothing about the run itself can live inside the definition file.
 * `<name>` is lower-case letters, digits and "-": a dot always starts a sidecar suffix.
 */
const GOLDEN_FILE = /^([a-z0-9][a-z0-9-]*)\.json$/;
const SIDECAR_FILE = /^([a-z0-9][a-z0-9-]*)\.(run|children)\.json$/;

const signalSchema = z.strictObject({
  /** The signal (event) name. */
  name: z.string().min(1),
  payload: z.unknown().optional(),
  /** Send it only once the run's state shows this step running (default: right after the start). */
  whenStep: z.string().min(1).optional(),
  /**
   * With `whenStep` naming an approval step: also wait until its pending approval reached this
   * stage (1 once it escalated), so a signal can target the escalation's approvers.
   */
  whenStage: z.number().int().min(0).optional(),
});

export const runOptionsSchema = z.strictObject({
  /** Merged over GOLDEN_INPUT. */
  input: z.record(z.string(), z.unknown()).optional(),
  /** Adds `loopback`: the base URL of a loopback HTTP server the recorder runs (and allow-lists). */
  loopback: z.boolean().optional(),
  /** RunInput.continueAsNewAfterEvents: the recorder saves every run of the chain. */
  continueAsNewAfterEvents: z.number().int().min(1).optional(),
  /** Signals the recorder sends, in order. */
  signals: z
    .array(signalSchema.refine((s) => s.whenStage === undefined || s.whenStep !== undefined, { message: '"whenStage" needs "whenStep"' }))
    .optional(),
  /** How the run must end; the recorder refuses to save anything else. */
  expect: z.enum(['completed', 'failed']).optional(),
  /** RunInput.recordEvents: the run emits lifecycle events (every run the API starts does). */
  recordEvents: z.boolean().optional(),
  /** RunInput.agents: registry agents (AgentDefinition) pinned for the run's agent steps. */
  agents: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  /**
   * Scripted behaviours of the loopback LLM server per provider model name (LlmBehaviour objects
   * of test/support/llm-double.ts, e.g. `{"kind": "error", "status": 500}`); the recorder points
   * the routing table's Ollama routes at it.
   */
  llm: z.record(z.string(), z.array(z.record(z.string(), z.unknown()))).optional(),
});
export type GoldenRunOptions = z.infer<typeof runOptionsSchema>;

export interface Golden {
  /** File name without `.json`; the recorded run's workflow id is `golden-<name>`. */
  name: string;
  definition: unknown;
  run: GoldenRunOptions;
  /** Child definitions (raw, as in the file). */
  children: unknown[];
}

const readJson = (file: string): unknown => JSON.parse(readFileSync(join(GOLDEN_DIR, file), 'utf8')) as unknown;

/** Golden definitions: each has committed histories recorded by `npm run record-histories`. */
export function goldenDefinitions(): Golden[] {
  const files = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.json')).sort();
  const names = new Set(files.flatMap((f) => GOLDEN_FILE.exec(f)?.[1] ?? []));
  for (const f of files) {
    if (GOLDEN_FILE.test(f)) continue;
    const sidecar = SIDECAR_FILE.exec(f);
    if (!sidecar) throw new Error(`${GOLDEN_DIR}/${f}: not a golden (<name>.json) nor a sidecar (<name>.run.json, <name>.children.json)`);
    if (!names.has(sidecar[1] ?? '')) throw new Error(`${GOLDEN_DIR}/${f}: no golden definition ${sidecar[1]}.json`);
  }
  return [...names].sort().map((name) => {
    const runFile = `${name}.run.json`;
    const childrenFile = `${name}.children.json`;
    const run = existsSync(join(GOLDEN_DIR, runFile)) ? runOptionsSchema.parse(readJson(runFile)) : {};
    const children = existsSync(join(GOLDEN_DIR, childrenFile)) ? z.array(z.unknown()).min(1).parse(readJson(childrenFile)) : [];
    return { name, definition: readJson(`${name}.json`), run, children };
  });
}

/** Input each golden run receives (merged under its `<name>.run.json` input). */
export const GOLDEN_INPUT = { customer: 'ada' };

/** The workflow id the recorder gives a golden's run. */
export const goldenWorkflowId = (name: string): string => `golden-${name}`;

/**
 * Layout of test/fixtures/histories (each file is `temporal workflow show --output json`):
 *
 *   <name>.json                          the golden's run
 *   <name>.<n>.json                      run n (from 1) of a golden that continued as new
 *   <name>.child.<path>.json             a child run (sub_workflow), <path> = its workflow id after
 *   <name>.child.<path>.<n>.json           `golden-<name>/`, URI-encoded (`each%5B0%5D%2Fenrich`)
 *
 * Histories do not hold their own workflow id; replay needs it (child workflow ids derive from it).
 */
export interface HistoryFixture {
  file: string;
  golden: string;
  /** The URI-decoded child path, for a child run. */
  child?: string;
  /** The run's position in its continue-as-new chain (1-based), when it has one. */
  run?: number;
  workflowId: string;
  /** Files of one workflow id share a base: `<name>` or `<name>.child.<path>`. */
  base: string;
}

const HISTORY_FILE = /^([a-z0-9][a-z0-9-]*)(?:\.child\.([^.]+))?(?:\.(\d+))?\.json$/;

export function historyBase(golden: string, childPath?: string): string {
  return childPath === undefined ? golden : `${golden}.child.${encodeURIComponent(childPath)}`;
}

export function parseHistoryFile(file: string): HistoryFixture {
  const m = HISTORY_FILE.exec(file);
  if (!m) throw new Error(`${HISTORIES_DIR}/${file}: not a history fixture name (<name>[.child.<path>][.<n>].json)`);
  const golden = m[1] ?? '';
  const child = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
  const fixture: HistoryFixture = {
    file,
    golden,
    workflowId: child === undefined ? goldenWorkflowId(golden) : `${goldenWorkflowId(golden)}/${child}`,
    base: historyBase(golden, child),
  };
  if (child !== undefined) fixture.child = child;
  if (m[3] !== undefined) fixture.run = Number(m[3]);
  return fixture;
}

export function historyFixtures(): HistoryFixture[] {
  if (!existsSync(HISTORIES_DIR)) return [];
  return readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map(parseHistoryFile)
    .sort((a, b) => a.base.localeCompare(b.base) || (a.run ?? 0) - (b.run ?? 0));
}

export interface HistoryEvent {
  eventId: string;
  eventType: string;
  [attributes: string]: unknown;
}

export function readHistory(file: string): { events: HistoryEvent[] } {
  return JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as { events: HistoryEvent[] };
}

/**
 * Every step of a definition: nested lists, compensations, per-step and shared handlers, and
 * rollback steps (a rollback string calls a skill, so it counts as a skill step).
 */
export function stepsOf(definition: Definition): Step[] {
  const found: Step[] = [];
  const visit = (steps: readonly Step[]) => {
    for (const step of steps) {
      found.push(step);
      for (const [, children] of childLists(step)) visit(children);
    }
  };
  visit(definition.steps);
  const handling = definition.error_handling;
  for (const policy of Object.values(handling?.per_step ?? {})) visit(policy.handler ?? []);
  visit(handling?.handler ?? []);
  for (const entry of handling?.rollback?.steps ?? []) {
    visit([typeof entry === 'string' ? { id: `rollback-${entry}`, type: 'skill', skill: entry } : entry]);
  }
  return found;
}
