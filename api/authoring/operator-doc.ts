// Over 400 lines: one document, seed 001's operator-doc template, its 14 sections and the small text helpers they share.
import { MODEL_ACTIVITY, activityTaskQueue, workflowTaskQueue } from '../../common/constants.ts';
import { STEP_DEFAULTS, type CompiledActivityStep, type CompiledStep, type EffectiveRetry, type Plan } from '../../interpreter/compile.ts';
import type { HistoryEstimate } from '../../interpreter/estimate.ts';
import type { Definition, Step } from '../../interpreter/schema.ts';
import type { ActivityView, CatalogView } from '../routes/catalog.ts';
import { definitionGraph } from './graph.ts';

/**
 * The operator doc of a definition version: the user's workflow template (seed 001, sections 0
 * to 13) filled with what the platform knows for certain from the definition, the compiled plan
 * (effective retries and timeouts, error strategies), the catalog (what each skill does, whether
 * it has side effects, its registered defaults), the lane's queues, the history estimate and the
 * diagram; everything it cannot know is a `TODO:` with the question for the owner.
 *
 * Pure: the same function serves GET /v1/definitions/{name}/versions/{v}/operator-doc and
 * `npm run docs:operator` (scripts/write-operator-docs.ts).
 */

export interface OperatorDocSource {
  definition: Definition;
  plan: Plan;
  estimate: HistoryEstimate;
  catalog: CatalogView;
  /** The lane the version runs on (its own, else the installation's default). */
  lane: string;
  /** sha256 of the canonical JSON, what runs are pinned by. */
  hash: string;
  /** Registry facts, when the version is registered. */
  registered?: { status: string; createdBy: string; createdAt: string };
  /** Where the definition JSON lives, when known (the script passes the file). */
  source?: string;
}

const TODO = (question: string) => `TODO: ${question}`;

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function seconds(s: number): string {
  if (s % 86_400 === 0) return `${s / 86_400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s >= 60 && s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

function callee(step: Step): string | undefined {
  switch (step.type) {
    case 'skill':
      return `skill \`${step.skill}\``;
    case 'integration':
      return `integration \`${step.integration}\``;
    case 'directive':
      return `directive \`${step.directive}\``;
    case 'agent':
      return `agent \`${step.agent ?? step.agent_ref?.slug ?? ''}\``;
    case 'model':
      return `model \`${step.model}\``;
    case 'sub_workflow':
      return `sub-workflow \`${step.definition}@${step.version}\``;
    default:
      return undefined;
  }
}

/** The catalog entry a step calls, when it is a skill, integration or directive. */
function activityOf(step: Step, catalog: CatalogView): ActivityView | undefined {
  if (step.type === 'skill') return catalog.skills.find((s) => s.name === step.skill);
  if (step.type === 'integration') return catalog.integrations.find((s) => s.name === step.integration);
  if (step.type === 'directive') return catalog.integrations.find((s) => s.name === step.directive);
  return undefined;
}

/**
 * Whether a step changes something outside the platform: the callee's `sideEffects`, except an
 * HTTP read (a callee with a `method` input whose step sends GET or HEAD, literally or by its
 * schema's default), which the HTTP client sends without an idempotency key.
 */
function writes(raw: Step | undefined, view: ActivityView | undefined): boolean | undefined {
  if (!view) return undefined;
  if (!view.sideEffects) return false;
  const method = (view.input.properties as Record<string, { default?: unknown }> | undefined)?.method;
  if (method === undefined) return true;
  const given = (raw as { inputs?: Record<string, unknown> } | undefined)?.inputs?.method;
  const value = given === undefined ? method.default : given;
  return !(typeof value === 'string' && ['GET', 'HEAD'].includes(value.toUpperCase()));
}

function firstSentence(text: string): string {
  return (text.split(/(?<=\.)\s/)[0] ?? text).replace(/\.$/, '');
}

function sentence(text: string): string {
  return /[.!?]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`;
}

function familyOf(step: CompiledActivityStep): string {
  return step.family;
}

/** The retry and timeout a step runs with: the step's own, else the skill's registered defaults, else the platform's. */
function effective(step: CompiledActivityStep, view: ActivityView | undefined): { timeoutSeconds: number; retry: EffectiveRetry } {
  const d = view?.defaults;
  const timeoutSeconds = step.defaulted.timeout ? (d?.timeoutSeconds ?? step.timeoutSeconds ?? STEP_DEFAULTS.timeoutSeconds) : (step.timeoutSeconds ?? STEP_DEFAULTS.timeoutSeconds);
  const retry = step.defaulted.retry && d?.retry ? { ...step.retry, ...d.retry } : step.retry;
  return { timeoutSeconds, retry };
}

function retryText(retry: EffectiveRetry): string {
  if (retry.maxAttempts <= 1) return '1 attempt (no retry)';
  const backoff = retry.linear
    ? `linear backoff (${retry.initialIntervalSeconds} s × attempt)`
    : retry.backoffCoefficient === 1
      ? `a fixed ${retry.initialIntervalSeconds} s between attempts`
      : `exponential backoff (initial ${retry.initialIntervalSeconds} s, coefficient ${retry.backoffCoefficient}, max ${retry.maxIntervalSeconds} s)`;
  const non = retry.nonRetryableErrorTypes.length > 0 ? `; never retried: ${retry.nonRetryableErrorTypes.map((t) => `\`${t}\``).join(', ')}` : '';
  return `${retry.maxAttempts} attempts, ${backoff}${non}`;
}

function onErrorText(step: CompiledStep, plan: Plan): string {
  switch (step.onError.action) {
    case 'halt':
      return plan.rollback.enabled ? 'the run rolls back (compensations, then the rollback steps) and fails' : 'the run fails';
    case 'skip':
      return 'the step is skipped (output null) and the run goes on';
    case 'rollback':
      return 'the run rolls back (compensations newest first, then the rollback steps) and fails';
    case 'custom':
      return `the handler runs (${step.onError.handler.map((h) => `\`${h.id}\``).join(', ')}) and the run goes on with its output`;
  }
}

/** Every step with its depth, in definition order (handlers and compensations after their step). */
function walk(steps: readonly CompiledStep[], depth = 0, out: Array<{ step: CompiledStep; depth: number; where?: string }> = [], where?: string) {
  for (const step of steps) {
    out.push({ step, depth, ...(where ? { where } : {}) });
    switch (step.kind) {
      case 'parallel':
        walk(step.branches, depth + 1, out, 'branch');
        break;
      case 'for_each':
      case 'loop':
      case 'block':
        walk(step.steps, depth + 1, out);
        break;
      case 'conditional':
        walk(step.then, depth + 1, out, 'then');
        walk(step.else, depth + 1, out, 'else');
        break;
      case 'switch':
        step.cases.forEach((c, i) => walk(c.steps, depth + 1, out, `case ${i + 1}`));
        walk(step.default, depth + 1, out, 'default');
        break;
      default:
        break;
    }
    if (step.onError.action === 'custom') walk(step.onError.handler, depth + 1, out, `on error of ${step.id}`);
    if (step.compensate) walk(step.compensate, depth + 1, out, `compensates ${step.id}`);
  }
  return out;
}

/** What one step does, in a sentence. */
function describeStep(step: CompiledStep, raw: Step | undefined, catalog: CatalogView): string {
  const call = raw ? callee(raw) : undefined;
  switch (step.kind) {
    case 'activity': {
      const view = raw ? activityOf(raw, catalog) : undefined;
      const what = view ? `: ${firstSentence(view.description)}` : '';
      const w = writes(raw, view);
      return `calls ${call ?? step.name}${what}${w === true ? ' (it changes an external system)' : w === false && view?.sideEffects ? ' (a read: GET)' : ''}`;
    }
    case 'sub_workflow':
      return `starts ${call} as a child run and waits for its output`;
    case 'parallel':
      return `runs ${plural(step.branches.length, 'branch')} at once (waits for ${step.waitFor === 'all' ? 'all' : step.waitFor === 'any' ? 'the first' : step.waitFor}, at most ${step.maxConcurrency} at a time)`;
    case 'for_each':
      return `repeats its steps for each item of \`${sourceOf(raw, 'items')}\` (${step.maxConcurrency} at a time)`;
    case 'loop':
      return `repeats its steps while \`${step.condition.source}\` holds, at most ${step.maxIterations} times`;
    case 'block':
      return `runs ${plural(step.steps.length, 'step')} in order, as one step`;
    case 'conditional':
      return `branches on \`${step.condition.source}\``;
    case 'switch':
      return `chooses one of ${plural(step.cases.length, 'case')}${step.default.length > 0 ? ' or the default' : ''}`;
    case 'wait':
      return step.durationMs !== undefined ? `waits ${seconds(step.durationMs / 1000)}` : step.until ? 'waits until a computed time' : 'waits a computed duration';
    case 'wait_for_event':
      return `waits for the event \`${step.event}\`${step.filter ? ` matching \`${step.filter.source}\`` : ''}${step.timeoutSeconds !== undefined ? ` for at most ${seconds(step.timeoutSeconds)} (then ${step.onTimeout === 'continue' ? 'goes on with null' : 'fails'})` : ' (no timeout)'}`;
    case 'set':
      return `sets ${step.values.map(([n]) => `\`${n}\``).join(', ')}`;
    case 'fail':
      return 'fails the run';
    case 'succeed':
      return 'ends the run successfully';
    case 'approval': {
      const first = step.stages[0];
      return `asks ${first ? approverText(first.approvers) : 'approvers'} to approve (quorum ${first?.quorum ?? 1})`;
    }
  }
}

function sourceOf(raw: Step | undefined, field: string): string {
  const value = raw ? (raw as unknown as Record<string, unknown>)[field] : undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function approverText(a: { principals: string[]; groups: string[] }): string {
  return [...a.principals.map((p) => `\`${p}\``), ...a.groups.map((g) => `group \`${g}\``)].join(', ');
}

/** `input.<field>` paths the definition reads (templates and conditions). */
function inputFields(definition: Definition): string[] {
  const text = JSON.stringify(definition.steps) + JSON.stringify(definition.output ?? {});
  const fields = new Set<string>();
  for (const m of text.matchAll(/\binput\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)/g)) fields.add(m[1] as string);
  return [...fields].sort();
}

/** Hosts of literal http(s) URLs in the steps' inputs. */
function literalHosts(step: Step): string[] {
  const hosts = new Set<string>();
  for (const m of JSON.stringify((step as { inputs?: unknown }).inputs ?? {}).matchAll(/https?:\/\/([A-Za-z0-9.-]+(?::\d+)?)/g)) hosts.add(m[1] as string);
  return [...hosts];
}

function rawSteps(definition: Definition): Map<string, Step> {
  const byId = new Map<string, Step>();
  const visit = (steps: readonly Step[] | undefined) => {
    for (const s of steps ?? []) {
      byId.set(s.id, s);
      const r = s as unknown as Record<string, unknown>;
      for (const key of ['steps', 'then', 'else', 'default', 'compensate']) if (Array.isArray(r[key])) visit(r[key] as Step[]);
      if (Array.isArray(r.cases)) for (const c of r.cases as Array<{ steps?: Step[] }>) visit(c.steps);
    }
  };
  visit(definition.steps);
  visit(definition.error_handling?.rollback?.steps?.filter((s): s is Step => typeof s !== 'string'));
  visit(definition.error_handling?.handler);
  const handlers = definition.error_handling?.per_step;
  if (handlers) for (const p of Object.values(handlers)) visit(p.handler);
  return byId;
}

/** What the sections share: the definition, its plan and catalog, and the step lists drawn from them once. */
function docFacts(src: OperatorDocSource) {
  const { definition: d, plan, catalog, lane, estimate } = src;
  const raw = rawSteps(d);
  const all = walk(plan.steps);
  const rollbackSteps = walk(plan.rollback.steps);
  const everything = [...all, ...rollbackSteps];
  const activities = everything.filter((e): e is { step: CompiledActivityStep; depth: number } => e.step.kind === 'activity');
  const approvals = everything.map((e) => e.step).filter((s) => s.kind === 'approval');
  const events = everything.map((e) => e.step).filter((s) => s.kind === 'wait_for_event');
  const children = everything.map((e) => e.step).filter((s) => s.kind === 'sub_workflow');
  const sideEffecting = activities.filter((a) => {
    const r = raw.get(a.step.id);
    const w = writes(r, r ? activityOf(r, catalog) : undefined);
    return w ?? a.step.family !== 'skills';
  });
  const triggers = d.triggers ?? [];
  const schedule = triggers.filter((t) => t.type === 'schedule');
  const eventTriggers = triggers.filter((t) => t.type === 'event');
  const fields = inputFields(d);
  const hosts = [...new Set(activities.flatMap((a) => (raw.get(a.step.id) ? literalHosts(raw.get(a.step.id) as Step) : [])))];
  const queues = [workflowTaskQueue(lane), ...new Set(activities.map((a) => activityTaskQueue(lane, familyOf(a.step) as never)))];
  const systems = [
    ...(d.systems ?? []).map((s) => `${s} (declared in the definition's \`systems\`)`),
    ...hosts.map((h) => `the HTTP host \`${h}\` (a literal URL in a step's inputs)`),
    ...activities
      .map((a) => raw.get(a.step.id))
      .filter((s): s is Step => s !== undefined && (s.type === 'integration' || s.type === 'directive'))
      .map((s) => `integration \`${s.type === 'integration' ? s.integration : s.type === 'directive' ? s.directive : ''}\``),
    ...(activities.some((a) => a.step.family === 'models') ? ['the model providers of the routing table (model steps)'] : []),
    'Temporal (the run, its step inputs and outputs, its history)',
    'PostgreSQL (the definition registry, lifecycle events, the approval audit trail)',
  ].filter((s, i, arr) => arr.indexOf(s) === i);
  const graph = definitionGraph(d);
  return { src, d, plan, catalog, lane, estimate, raw, all, rollbackSteps, everything, activities, approvals, events, children, sideEffecting, triggers, schedule, eventTriggers, fields, hosts, queues, systems, graph };
}

type DocFacts = ReturnType<typeof docFacts>;
type Line = (text?: string) => void;

/** The title and provenance lines above section 0. */
function header(f: DocFacts, line: Line): void {
  const { src, d } = f;
  line(`# ${d.name}`);
  line();
  line(`> Generated from \`${d.name}@${d.version}\` (hash \`${src.hash}\`${src.registered ? `, registered by ${src.registered.createdBy} at ${src.registered.createdAt}, status \`${src.registered.status}\`` : ''}) by \`GET /v1/definitions/{name}/versions/{version}/operator-doc\` (or \`npm run docs:operator\`).`);
  line('> Everything here without `TODO:` is what the platform knows for certain from the definition and its catalog; each `TODO:` is a question for the owner. Regenerate it for every new version.');
  line();
  line(`Definition: ${src.source ? `[\`${src.source}\`](${src.source.replace(/^docs\//, '../')})` : TODO('where the definition JSON is kept (a repository path)')}, version \`${d.version}\`.`);
  line();
}

/** Section 0: Index Entry (for catalog). */
function indexEntry(f: DocFacts, line: Line): void {
  const { src, d, activities, approvals, children, sideEffecting, schedule, eventTriggers, fields, systems } = f;
  line('## 0. Index Entry (for catalog)');
  line();
  line(`- **Workflow name:** \`${d.name}\``);
  line(`- **Short description:** ${d.description ? sentence(d.description) : TODO('describe in 1–2 sentences what this workflow does (the definition has no `description`)')}`);
  line(`- **Business domain / product:** ${TODO('the domain or product this workflow serves')}`);
  const category = approvals.length > 0 ? 'Approvals' : schedule.length > 0 ? 'Back-office (scheduled)' : eventTriggers.length > 0 ? 'Sync (event-driven)' : sideEffecting.length > 0 ? 'Notifications or writes' : 'Ingestion or reporting (reads only)';
  line(`- **Category:** ${TODO(`confirm the category; proposed from its steps: ${category}`)}`);
  line(`- **Status:** ${src.registered ? `registry status \`${src.registered.status}\` (version ${d.version}).` : 'generated from the file, not from the registry (`GET /v1/definitions/{name}` shows the registry status).'} ${TODO('the environments it is live in (dev, staging, prod)')}`);
  const riskProposal = approvals.length > 0 || sideEffecting.length > 0 ? 'Medium' : 'Low';
  line(
    `- **Risk level:** ${d.risk_level ? `${d.risk_level[0]?.toUpperCase()}${d.risk_level.slice(1)} (declared in the definition's \`risk_level\`).` : TODO(`a human must set \`risk_level\`; proposed ${riskProposal}: ${sideEffecting.length > 0 ? `${plural(sideEffecting.length, 'step')} with side effects (${sideEffecting.map((a) => `\`${a.step.id}\``).join(', ')})` : 'no step has side effects'}${approvals.length > 0 ? ', with human approval' : ''}`)}`,
  );
  line('- **Primary systems touched:**');
  for (const s of systems) line(`  - ${s}`);
  if (fields.some((f) => /url/i.test(f))) line(`  - ${TODO(`the hosts the caller-given ${fields.filter((f) => /url/i.test(f)).map((f) => `\`input.${f}\``).join(', ')} may point at (the workers' \`HTTP_FETCH_ALLOWED_HOSTS\` bounds them)`)}`);
  line(`- **Primary owners:** ${d.owner ? `${d.owner} (the definition's \`owner\`)` : TODO('the team or role responsible for this workflow (set `owner`)')}`);
  const related = [...children.map((c) => `\`${c.definition}@${c.version}\` (sub-workflow of step \`${c.id}\`)`), ...activities.filter((a) => a.step.family === 'agents').map((a) => `agent \`${a.step.name}\` (step \`${a.step.id}\`)`)];
  line(`- **Related workflows:** ${related.length > 0 ? related.join(', ') : 'None known (no sub_workflow or agent step).'}`);
  line();
}

/** Section 1: Problem Statement. */
function problemStatement(f: DocFacts, line: Line): void {
  const { d, lane } = f;
  line('## 1. Problem Statement');
  line();
  line(`- **Business context:** ${TODO('the product or business area this workflow belongs to')}`);
  line(`- **Problem:** ${d.description ? `${sentence(d.description)} ` : ''}${TODO('the exact problem this automation solves')}`);
  line(`- **Goal / success criteria:** ${TODO(`measurable outcomes; proposed${lane === 'prod-critical' ? ': ≥ 98% of runs completed over 24 h (seed 003 prod SLO)' : ''} and a p95 run time the owner accepts`)}`);
  line();
}

/** Section 2: High-Level Flow. */
function highLevelFlow(f: DocFacts, line: Line): void {
  const { d, plan, catalog, lane, raw, all, triggers, schedule, eventTriggers, graph } = f;
  line('## 2. High-Level Flow');
  line();
  line('### 2.1 Narrative');
  line();
  const start = triggers.length > 0 ? triggers.map((t) => (t.type === 'manual' ? 'an API call (`POST /v1/runs`)' : t.type === 'schedule' ? `a schedule (${t.cron ? `cron \`${t.cron}\`${t.timezone ? ` ${t.timezone}` : ''}` : `every ${seconds(t.interval ?? 0)}`})` : `the event \`${t.event}\``)).join(', ') : 'an API call (`POST /v1/runs`)';
  line(`A run starts on ${start}${d.trigger ? ` or the signal \`${d.trigger.signal}\`` : ''}. The API pins version \`${d.version}\` and starts one interpreter workflow on lane \`${lane}\`. Then, in order:`);
  line();
  for (const [i, s] of plan.steps.entries()) line(`${i + 1}. **\`${s.id}\`** ${describeStep(s, raw.get(s.id), catalog)}${s.if ? ` (only if \`${s.if.source}\`)` : ''}.`);
  line();
  const decisions = all.filter((e) => ['conditional', 'switch', 'loop', 'approval', 'parallel'].includes(e.step.kind) || e.step.if);
  line(
    decisions.length > 0
      ? `Decision points: ${decisions.map((e) => `\`${e.step.id}\``).join(', ')}. ${plan.rollback.enabled ? 'A failure rolls the run back (see §5).' : 'A step that fails for good ends the run as §5 says.'}`
      : `No decision point: the steps run in sequence. ${plan.rollback.enabled ? 'A failure rolls the run back (see §5).' : 'A step that fails for good ends the run as §5 says.'}`,
  );
  line();
  line('### 2.2 Steps & Actors (text diagram)');
  line();
  line(`1. **Caller → API:** \`POST /v1/runs {"definition": "${d.name}", "input": {…}}\`${schedule.length > 0 ? ', or Temporal\'s schedule' : ''}${eventTriggers.length > 0 ? ', or `POST /v1/events`' : ''}; synchronous only up to the start.`);
  line(`2. **API → Temporal:** workflow \`interpreter\` on \`${workflowTaskQueue(lane)}\`.`);
  let n = 3;
  for (const e of all) {
    const s = e.step;
    const indent = '   '.repeat(e.depth);
    const where = e.where ? `[${e.where}] ` : '';
    if (s.kind === 'activity') {
      line(`${indent}${n}. ${where}**Lane worker → ${s.family === 'agents' ? 'agent' : 'activity'} \`${s.name === MODEL_ACTIVITY ? MODEL_ACTIVITY : s.name}\`** on \`${activityTaskQueue(lane, s.family as never)}\`, summary \`step ${s.id}\`.`);
    } else if (s.kind === 'approval') {
      line(`${indent}${n}. ${where}**Approvers (${approverText(s.stages[0]?.approvers ?? { principals: [], groups: [] })}) → API:** \`POST /v1/runs/{runId}/approvals/${s.id}\` decides step \`${s.id}\`.`);
    } else if (s.kind === 'wait_for_event') {
      line(`${indent}${n}. ${where}**Sender → API:** \`POST /v1/runs/{runId}/events\` (or a signal) delivers \`${s.event}\` to step \`${s.id}\`.`);
    } else if (s.kind === 'sub_workflow') {
      line(`${indent}${n}. ${where}**Temporal:** child run of \`${s.definition}@${s.version}\` (step \`${s.id}\`).`);
    } else {
      line(`${indent}${n}. ${where}**Interpreter:** \`${s.id}\` ${describeStep(s, raw.get(s.id), catalog)} (no activity: workflow code).`);
    }
    n += 1;
  }
  line(`${n}. **Temporal** keeps the result; the caller reads \`GET /v1/runs/{runId}\` (or follows \`GET /v1/runs/{runId}/events\`).`);
  line();
  line('```mermaid');
  line(graph.mermaid.trimEnd());
  line('```');
  line();
}

/** Section 3: Triggers and Inputs. */
function triggersAndInputs(f: DocFacts, line: Line): void {
  const { d, schedule, eventTriggers, fields } = f;
  line('## 3. Triggers and Inputs');
  line();
  line('### 3.1 Triggers');
  line();
  line('- **Manual:** `POST /v1/runs` with a key holding the `submit` role (every definition can be started this way).');
  for (const t of schedule) {
    line(`- **Schedule:** ${t.cron ? `cron \`${t.cron}\`` : `every ${seconds(t.interval ?? 0)}`}${t.timezone ? ` (${t.timezone})` : ''}, overlap \`${t.overlap ?? 'skip'}\`; a Temporal Schedule owned by the newest active version.${t.description ? ` ${t.description}.` : ''}`);
  }
  for (const t of eventTriggers) line(`- **Event:** \`${t.event}\`${t.filter ? ` where \`${t.filter}\`` : ''}, posted to \`POST /v1/events\`.${t.description ? ` ${t.description}.` : ''}`);
  if (d.trigger) line(`- **Signal (seed 004):** \`${d.trigger.signal}\`${d.trigger.filter ? ` where \`${d.trigger.filter}\`` : ''}.`);
  if (schedule.length === 0 && eventTriggers.length === 0 && !d.trigger) line('- No schedule and no event trigger: runs start only through the API.');
  line();
  line('### 3.2 Input Payloads');
  line();
  line(`- **Fields the definition reads:** ${fields.length > 0 ? fields.map((f) => `\`input.${f}\``).join(', ') : 'none (it does not read `input`)'}.`);
  line('- **Validation:** the platform enforces only the size limit (256 KiB) on `input`; a missing field fails the first step that reads it (`ReferenceError`) or the skill\'s own input check (`InvalidSkillInput`).');
  line(`- **Schema, required fields and examples:** ${TODO('the input contract callers must follow, with an example')}`);
  line();
}

/** Section 4: Actions and Outputs. */
function actionsAndOutputs(f: DocFacts, line: Line): void {
  const { d, catalog, raw, activities, children } = f;
  line('## 4. Actions and Outputs');
  line();
  line('### 4.1 Systems Touched');
  line();
  if (activities.length === 0 && children.length === 0) line('Not applicable for this workflow: no step calls a skill, integration, model, agent or child run; it runs in workflow code only.');
  for (const a of activities) {
    const r = raw.get(a.step.id);
    const view = r ? activityOf(r, catalog) : undefined;
    const hostsHere = r ? literalHosts(r) : [];
    line(`- **\`${a.step.id}\`** (${r ? callee(r) : a.step.name}): ${view ? view.description : a.step.family === 'models' ? 'a model call over the routing table' : a.step.family === 'agents' ? 'an agent run' : 'not in this installation\'s catalog'}`);
    const w = writes(r, view);
    line(`  - Side effects: ${w === true ? 'yes: it changes something outside the platform' : w === false ? (view?.sideEffects ? 'none expected: an HTTP read (GET), sent without an idempotency key' : 'none (it reads or computes only)') : TODO('whether this call changes anything outside the platform')}${hostsHere.length > 0 ? `; host ${hostsHere.map((h) => `\`${h}\``).join(', ')}` : ''}.`);
    if (a.step.outputs.length > 0) line(`  - Declared outputs: ${a.step.outputs.map((o) => `\`${o}\``).join(', ')}.`);
  }
  for (const c of children) line(`- **\`${c.id}\`**: child run of \`${c.definition}@${c.version}\`; its own operator doc covers what it touches.`);
  line();
  line('### 4.2 Final Outcome');
  line();
  line(`- **Output:** ${d.output ? `the definition's \`output\`: \`${JSON.stringify(d.output)}\`` : 'the output of the last step that ran'}.`);
  line('- **Persisted:** the run, each step\'s input and output and the history in Temporal (for the namespace retention); lifecycle events in PostgreSQL (`GET /v1/runs/{runId}/events`).');
  line(`- **Downstream processes:** ${TODO('who consumes the output or the side effects')}`);
  line();
}

/** Section 5: Failure Modes and Error Handling. */
function failureModes(f: DocFacts, line: Line): void {
  const { d, plan, catalog, lane, raw, everything, activities } = f;
  line('## 5. Failure Modes and Error Handling');
  line();
  line('### 5.1 Failure Scenarios');
  line();
  line('| step | runs with | after its last attempt |');
  line('| --- | --- | --- |');
  for (const a of activities) {
    const r = raw.get(a.step.id);
    const eff = effective(a.step, r ? activityOf(r, catalog) : undefined);
    line(`| \`${a.step.id}\` | ${retryText(a.step.retry.linear ? a.step.retry : eff.retry)}; ${seconds(eff.timeoutSeconds)} per attempt (start-to-close) | ${onErrorText(a.step, plan)} |`);
  }
  for (const e of everything.filter((x) => x.step.kind !== 'activity')) {
    const s = e.step;
    const notes: string[] = [];
    if (s.kind === 'loop') notes.push(`more than ${s.maxIterations} iterations fails with \`LoopLimitExceeded\``);
    if (s.kind === 'wait_for_event') notes.push(s.timeoutSeconds === undefined ? 'waits forever if the event never comes' : `no event in ${seconds(s.timeoutSeconds)}: ${s.onTimeout === 'continue' ? 'goes on with null' : '`Timeout`'}`);
    if (s.kind === 'approval') notes.push(`a rejection ${s.onReject === 'continue' ? 'lets the run go on (later steps read the decision)' : 'fails the step (`ApprovalRejected`)'}${s.stages[0]?.timeoutMs !== undefined ? `; no decision in ${seconds((s.stages[0]?.timeoutMs ?? 0) / 1000)}: ${s.stages[0]?.onTimeout}` : '; no timeout: waits until decided'}`);
    if (s.kind === 'sub_workflow') notes.push('a failed child run fails the step (`ChildRunFailed`)');
    if (s.kind === 'fail') notes.push('fails by design');
    if (s.timeoutSeconds !== undefined && s.kind !== 'wait_for_event' && s.kind !== 'approval') notes.push(`a ${seconds(s.timeoutSeconds)} deadline (\`Timeout\`)`);
    if (notes.length > 0 || s.retry.maxAttempts > 1) line(`| \`${s.id}\` | ${s.retry.maxAttempts > 1 ? retryText(s.retry) : 'no retry'}; ${notes.join('; ') || '—'} | ${onErrorText(s, plan)} |`);
  }
  line();
  line(`Also: a run nobody's workers pick up stays \`running\` until a worker of lane \`${lane}\` polls, or its execution timeout (\`resource_limits.max_execution_time\` ${d.resource_limits?.max_execution_time ? `= ${seconds(d.resource_limits.max_execution_time)}` : 'unset: RUN_EXECUTION_TIMEOUT_SECONDS'}) ends it \`timed_out\`.`);
  line();
  line('### 5.2 Handling Strategy');
  line();
  line('- **Detection:** the run\'s `status: failed` with `error.{step,type,attempts}`; `skill failed` log lines; `ExecutionStatus="Failed" AND DefinitionName="' + d.name + '"` in Temporal Web; the `workflow.run.failed` lifecycle event (webhooks).');
  line(`- **Response:** bounded retries as above, then ${plan.rollback.enabled ? 'the rollback path (below), then ' : ''}the run sits in the failed-runs list (the DLQ): fix the cause, then reset or re-run ([OPERATIONS.md](../OPERATIONS.md#retry-reset-or-re-run-a-failed-run)).`);
  if (plan.rollback.enabled || everything.some((e) => e.step.compensate)) {
    const comp = everything.filter((e) => e.step.compensate).map((e) => `\`${e.step.id}\` (by ${(e.step.compensate ?? []).map((c) => `\`${c.id}\``).join(', ')})`);
    line(`- **Rollback path:** ${comp.length > 0 ? `compensations newest first: ${comp.join(', ')}` : 'no step declares `compensate`'}${plan.rollback.steps.length > 0 ? `; then the rollback steps ${plan.rollback.steps.map((s) => `\`${s.id}\``).join(', ')}` : ''}. A failed compensation leaves \`rollback.status: failed\` ([OPERATIONS.md](../OPERATIONS.md#a-rollback-failed)).`);
  } else line('- **Rollback path:** none: no step declares `compensate` and rollback is not enabled, so a failure leaves whatever earlier steps did in place.');
  line(`- **User/ops visibility:** ${TODO('who is alerted on a failed run, and how')}`);
  line();
}

/** Section 6: Idempotency Strategy. */
function idempotencyStrategy(f: DocFacts, line: Line): void {
  const { sideEffecting } = f;
  line('## 6. Idempotency Strategy');
  line();
  line('- **Run start:** send `idempotencyKey` (or `Idempotency-Key`): the same key returns the same run, another input with it is a 409. Without a key every call starts a new run.');
  line(
    sideEffecting.length > 0
      ? `- **Side effects:** each call carries the idempotency key \`<workflowId>/<step path>\` (stable across retries and resets): ${sideEffecting.map((a) => `\`${a.step.id}\``).join(', ')}. The receiving system must honour it for a retry to be safe. ${TODO('confirm each receiver deduplicates on that key')}`
      : '- **Side effects:** none of the steps changes anything outside the platform, so retries and re-runs are harmless.',
  );
  line(`- **Edge cases:** ${TODO('what a duplicate business event means (the same order twice) and how it is detected')}`);
  line();
}

/** Section 7: Job and Queue Model. */
function jobAndQueueModel(f: DocFacts, line: Line): void {
  const { d, catalog, lane, raw, activities } = f;
  line('## 7. Job and Queue Model');
  line();
  line('### 7.1 Jobs');
  line();
  line('| name (activity type) | queue | max processing time | idempotency notes |');
  line('| --- | --- | --- | --- |');
  for (const a of activities) {
    const r = raw.get(a.step.id);
    const view = r ? activityOf(r, catalog) : undefined;
    const eff = effective(a.step, view);
    const w = writes(r, view);
    line(`| \`${a.step.name}\` (step \`${a.step.id}\`) | \`${activityTaskQueue(lane, a.step.family as never)}\` | ${seconds(eff.timeoutSeconds)} per attempt | ${w === false ? (view?.sideEffects ? 'a read: safe to repeat' : 'pure: safe to repeat') : 'key `<workflowId>/' + a.step.id + '`'} |`);
  }
  line(`| interpreter workflow | \`${workflowTaskQueue(lane)}\` | the run's execution timeout | workflow id from the start's idempotency key |`);
  line();
  line('### 7.2 Retries and DLQs');
  line();
  line('- **Retry policy:** per step, as in §5.1 (Temporal retries activities; `linear` backoff is spaced by the interpreter).');
  line(`- **Dead-letter queue:** the failed-runs list, \`GET /v1/runs?status=failed&definition=${d.name}\`. ${TODO('who reviews it, and how often')}`);
  line();
}

/** Section 8: Observability. */
function observability(f: DocFacts, line: Line): void {
  const { d, lane, estimate, activities, queues } = f;
  line('## 8. Observability');
  line();
  line('### 8.1 Logging');
  line();
  line(`- **Per step:** \`skill started\`, \`skill completed\` (with \`ms\`), \`skill failed\` (with \`errorType\`, \`nonRetryable\`) from the workers of lane \`${lane}\`, with \`correlationId\`, \`definition\`, \`version\`, \`workflowId\`, \`stepId\`, \`attempt\`.`);
  line(`- **One run:** \`jq 'select(.workflowId=="<runId>")'\`; one request end to end: \`select(.correlationId=="…")\`; the run's lifecycle events: \`workflow logs <runId>\`.`);
  line();
  line('### 8.2 Metrics');
  line();
  line(`- **Queues to watch:** ${queues.map((q) => `\`${q}\``).join(', ')} (backlog and pollers: \`temporal task-queue describe\`).`);
  line(`- **Runs:** \`temporal workflow count --query 'DefinitionName="${d.name}" AND ExecutionStatus="Failed"'\`, and the metrics and alerts in [OPERATIONS.md](../OPERATIONS.md#metrics-and-alerts).`);
  if (activities.some((a) => a.step.family === 'models')) line('- **Model calls:** `model_call_duration`, `model_calls_total`, `model_fallbacks_total` ([models.md](../models.md#metrics)).');
  line(`- **History size:** about ${estimate.typical.events} events per run typically, ${estimate.worst.eventsPerRun} at worst per run (${estimate.worst.runs > 1 ? `${estimate.worst.runs} runs after continue-as-new` : 'one run'}), against Temporal's 51,200.`);
  line(`- **Dashboards and alert thresholds:** ${TODO('where this workflow\'s dashboard lives and which thresholds page someone')}`);
  line();
}

/** Section 9: Human-in-the-Loop & Safety. */
function humanInTheLoop(f: DocFacts, line: Line): void {
  const { approvals, sideEffecting } = f;
  line('## 9. Human-in-the-Loop & Safety');
  line();
  if (approvals.length === 0) line(`- **Approval steps:** none. ${sideEffecting.length > 0 ? TODO('the steps with side effects run without a human decision: confirm that is acceptable') : 'Not applicable for this workflow: no step changes anything outside the platform.'}`);
  for (const a of approvals) {
    const first = a.stages[0];
    const esc = a.stages[1];
    line(
      `- **\`${a.id}\`:** ${first ? approverText(first.approvers) : ''}, quorum ${first?.quorum ?? 1}${a.allowSelfApproval ? ', self-approval allowed' : ', never the run\'s starter'}${first?.timeoutMs !== undefined ? `, ${seconds(first.timeoutMs / 1000)} to decide (then ${first.onTimeout})` : ', no deadline'}${esc ? `; escalates to ${approverText(esc.approvers)} (quorum ${esc.quorum}${esc.timeoutMs !== undefined ? `, ${seconds(esc.timeoutMs / 1000)}, then ${esc.onTimeout}` : ''})` : ''}. Decided with \`POST /v1/runs/{runId}/approvals/${a.id}\` or \`workflow approve\`; waiting approvals show in \`GET /v1/approvals\`.`,
    );
  }
  line(`- **Risky operations:** ${sideEffecting.length > 0 ? `${sideEffecting.map((a) => `\`${a.step.id}\``).join(', ')} ${sideEffecting.length === 1 ? 'changes an external system' : 'change external systems'}. ` : ''}${TODO('any high-impact action and its extra safeguards')}`);
  line(`- **Auditability:** the run records \`StartedBy\`, \`Tenant\`, \`CorrelationId\`, the pinned version and hash, every input and output in Temporal${approvals.length > 0 ? '; every approval decision and refused attempt is in `GET /v1/runs/{runId}/audit`' : ''}.`);
  line();
}

/** Section 10: Interfaces and Data Contracts. */
function interfacesAndContracts(f: DocFacts, line: Line): void {
  const { activities, approvals, events } = f;
  line('## 10. Interfaces and Data Contracts');
  line();
  line('- **Internal APIs:** `POST /v1/runs`, `GET /v1/runs/{runId}`, `GET /v1/runs/{runId}/events` ([api.md](../api.md)).');
  line(`- **Events:** lifecycle events \`workflow.run.*\`, \`workflow.step.*\`${approvals.length > 0 ? ', `workflow.approval.*`' : ''} (webhooks, [lifecycle-events.md](../lifecycle-events.md))${events.length > 0 ? `; it receives ${events.map((e) => `\`${e.event}\``).join(', ')}` : ''}.`);
  const relied = activities.filter((a) => a.step.outputs.length > 0).map((a) => `\`${a.step.id}\`: ${a.step.outputs.map((o) => `\`${o}\``).join(', ')}`);
  line(`- **External API contracts:** the fields relied on are checked against each callee's registered output schema at registration${relied.length > 0 ? ` (declared: ${relied.join('; ')})` : ''}. ${TODO('the real upstream APIs behind these steps and their owners')}`);
  line('- **Types in code:** `interpreter/schema.ts` (definition), `activities/` (each skill\'s input and output schema), `workflows/types.ts` (run input).');
  line();
}

/** Section 11: Implementation Notes. */
function implementationNotes(f: DocFacts, line: Line): void {
  const { src, activities } = f;
  line('## 11. Implementation Notes');
  line();
  line(`- **Code locations:** the definition (${src.source ? `\`${src.source}\`` : TODO('its repository path')}); the platform runs it (\`workflows/interpreter.ts\`, \`interpreter/engine.ts\`); the skills it calls: ${[...new Set(activities.map((a) => a.step.name))].map((s) => `\`${s}\``).join(', ') || 'none'}.`);
  line('- **Key patterns reused:** no custom code: a definition over the platform\'s skills, retries and error strategies.');
  line();
}

/** Section 12: Testing Strategy. */
function testingStrategy(f: DocFacts, line: Line): void {
  const { d, all, activities } = f;
  line('## 12. Testing Strategy');
  line();
  const branches = all.filter((e) => e.step.kind === 'conditional' || e.step.kind === 'switch' || e.step.kind === 'approval');
  line(`- **Dry runs:** \`workflow dry-run ${d.name} --scenario <file>\` runs this version through the interpreter with mocked effects in simulated time; one scenario per path is the minimum: ${['the happy path', ...branches.map((e) => `each branch of \`${e.step.id}\``), ...activities.filter((a) => a.step.retry.maxAttempts > 1).slice(0, 3).map((a) => `\`${a.step.id}\` failing every attempt`)].join(', ')}.`);
  line(`- **Test coverage, where tests live, how to run:** ${TODO('the tests that cover this workflow (e2e against a real platform, dry-run scenarios kept with the definition)')}`);
  line();
}

/** Section 13: Rollout and Operations. */
function rolloutAndOperations(f: DocFacts, line: Line): void {
  const { d, plan, lane, everything, approvals, events } = f;
  line('## 13. Rollout and Operations');
  line();
  line(`- **Lane:** \`${lane}\`${d.lane ? '' : ' (the installation\'s default: the definition names none)'}; priority ${d.priority ?? 'normal (unset)'}.${lane === 'prod-critical' ? ' Seed 003 asks prod-critical work for high/urgent priority, a fallback and a rollback.' : ''}`);
  line('- **Deployment:** register with `workflow register <file>` (or `POST /v1/definitions`); a change is a new `version`; running runs keep their pinned version; deprecate or retire old versions ([OPERATIONS.md](../OPERATIONS.md#definition-lifecycle-deprecate-and-retire)).');
  line(`- **Environments and staged rollout:** ${TODO('the environments, and how a new version is promoted')}`);
  line('- **Runbook references:** [OPERATIONS.md](../OPERATIONS.md): failed runs (the dead-letter list), retry/reset/re-run, cancel' + (approvals.length > 0 ? ', approvals' : '') + (events.length > 0 ? ', a run waits for an event' : '') + (everything.some((e) => e.step.kind === 'loop') ? ', a loop hit its limit' : '') + (plan.rollback.enabled ? ', a rollback failed' : '') + '.');
  line();
}

/** The operator doc as Markdown. */
export function operatorDoc(src: OperatorDocSource): string {
  const facts = docFacts(src);
  const out: string[] = [];
  const line: Line = (text = '') => out.push(text);
  for (const section of [header, indexEntry, problemStatement, highLevelFlow, triggersAndInputs, actionsAndOutputs, failureModes, idempotencyStrategy, jobAndQueueModel, observability, humanInTheLoop, interfacesAndContracts, implementationNotes, testingStrategy, rolloutAndOperations]) section(facts, line);
  return `${out.join('\n')}\n`;
}
