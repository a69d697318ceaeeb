import type { ApprovalRecord } from '../../interpreter/approvals.ts';
import type { Plan } from '../../interpreter/compile.ts';
import { ContinueAsNewRequest, RunFailedError, executePlan, initialRunState, type RunEvent, type RunState } from '../../interpreter/engine.ts';
import { estimateHistory, type RunPath } from '../../interpreter/estimate.ts';
import type { Definition, Step } from '../../interpreter/schema.ts';
import type { ProblemDetail } from '../problem.ts';
import { SimulatedTime } from './simulated-time.ts';
import type { DryRunEnvironment, DryRunReport, DryRunRequest } from './dry-run-contract.ts';
import { SimulatedPort, type Waiting } from './simulated-port.ts';
import { ACTIVITY_TYPES, Recorder, calleeOf, runInfo, stepsOf } from './dry-run-steps.ts';

/**
 * Dry runs (POST /v1/definitions/dry-run): a definition runs through the real interpreter
 * (interpreter/engine.ts, `executePlan`) behind an InterpreterPort whose effects are all
 * simulated. Activities and child runs answer from the request's mocks (or a sample generated
 * from the callee's registered output schema), with Temporal's retry policy applied attempt by
 * attempt; approvals are decided as the request scripts them, through the same rules the workflow
 * applies (interpreter/approvals.ts `decide`); timers, waits and deadlines pass
 * in simulated time (simulated-time.ts); events arrive as scripted. Nothing leaves the process:
 * no Temporal call, no activity, no HTTP, no database write.
 *
 * Temporal's time-skipping test server (@temporalio/testing) downloads its binary at run time,
 * which this installation forbids, so the dry run uses this dedicated in-process environment
 * over the pure interpreter instead (docs/authoring.md).
 */

/**
 * Checks the mocks and approval scripts name steps that can take them: a 400 for each that does
 * not, with its path in the request and the steps that would.
 */
export function scriptProblems(request: DryRunRequest, definitions: readonly Definition[]): ProblemDetail[] {
  const all = new Map<string, Step>();
  for (const d of definitions) for (const [id, step] of stepsOf(d)) if (!all.has(id)) all.set(id, step);
  const problems: ProblemDetail[] = [];
  const mockable = [...all.values()].filter((s) => ACTIVITY_TYPES.has(s.type) || s.type === 'sub_workflow').map((s) => s.id);
  for (const id of Object.keys(request.mocks ?? {})) {
    const step = all.get(id);
    if (!step) problems.push({ path: `/mocks/${id}`, message: `no step "${id}" in the definition; steps that take mocks: ${mockable.join(', ') || '(none)'}` });
    else if (!ACTIVITY_TYPES.has(step.type) && step.type !== 'sub_workflow') {
      const hint = step.type === 'approval' ? 'script it under "approvals"' : step.type === 'wait_for_event' ? 'deliver its event under "events"' : 'it has no effect to mock';
      problems.push({ path: `/mocks/${id}`, message: `step "${id}" is a ${step.type} step: ${hint}; steps that take mocks: ${mockable.join(', ') || '(none)'}` });
    }
  }
  const approvals = [...all.values()].filter((s) => s.type === 'approval').map((s) => s.id);
  for (const id of Object.keys(request.approvals ?? {})) {
    const step = all.get(id);
    if (!step || step.type !== 'approval') {
      problems.push({ path: `/approvals/${id}`, message: `${step ? `step "${id}" is a ${step.type} step, not an approval` : `no step "${id}" in the definition`}; approval steps: ${approvals.join(', ') || '(none)'}` });
    }
  }
  return problems;
}

/** The path this run took, in the estimator's terms (interpreter/estimate.ts RunPath). */
function runPathOf(plan: Plan, state: RunState, rec: Recorder): RunPath {
  const path: Required<Pick<RunPath, 'iterations' | 'items' | 'branches' | 'signals' | 'approvals'>> & { skipped: string[] } = {
    iterations: {},
    items: {},
    branches: {},
    signals: {},
    approvals: {},
    skipped: [],
  };
  // Steps inside for_each iterations keep their state per iteration, not in the run's: what
  // started is what the path recorded.
  const started = new Set(rec.path.filter((p) => p.run === '').map((p) => p.step));
  for (const [id, step] of plan.byId) {
    const st = state.steps[id];
    if (!started.has(id) || st?.status === 'skipped') {
      path.skipped.push(id);
      continue;
    }
    if (!st) continue;
    if (step.kind === 'loop' && st.iteration !== undefined) path.iterations[id] = st.iteration;
    if (step.kind === 'for_each' && st.total !== undefined) path.items[id] = st.total;
    if (st.branch !== undefined && st.branch !== 'none') {
      path.branches[id] = st.branch === 'then' || st.branch === 'else' || st.branch === 'default' ? st.branch : Number(st.branch.slice(5));
    }
    if (step.kind === 'wait_for_event') path.signals[id] = st.output === null && st.status === 'completed' ? 0 : 1;
  }
  // Scripted decisions are API decisions: a refused one is stopped by the update's validator and
  // leaves no event. A step reached more than once (in a loop) is given its average.
  const reached = new Map<string, ApprovalRecord[]>();
  for (const { run, record } of rec.approvals.values()) if (run === '') reached.set(record.stepId, [...(reached.get(record.stepId) ?? []), record]);
  for (const [stepId, records] of reached) {
    const mean = (f: (r: ApprovalRecord) => number) => Math.round(records.reduce((n, r) => n + f(r), 0) / records.length);
    path.approvals[stepId] = {
      updates: mean((r) => r.decisions.length),
      stages: mean((r) => r.stage + 1),
      timersFired: mean((r) => (r.escalated ? 1 : 0) + (r.timedOut ? 1 : 0)),
    };
  }
  return path;
}

function stepReport(definition: Definition, state: RunState, rec: Recorder): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const [id, step] of stepsOf(definition)) {
    const st = state.steps[id];
    const calls = rec.calls.filter((c) => c.run === '' && c.stepId === id);
    const entry: Record<string, unknown> = { id, type: step.type, status: st?.status ?? 'not reached' };
    if (ACTIVITY_TYPES.has(step.type) || step.type === 'sub_workflow') entry.callee = calleeOf(step);
    const last = calls[calls.length - 1];
    if (last) {
      entry.input = last.input;
      entry.source = last.source;
      entry.attempts = last.attempts;
      if (calls.length > 1) entry.calls = calls.length;
    }
    if (st?.output !== undefined) entry.output = st.output;
    if (st?.error) entry.error = st.error;
    if (st?.branch !== undefined) entry.branch = st.branch;
    if (st?.iteration !== undefined) entry.iterations = st.iteration;
    if (st?.total !== undefined) entry.items = st.total;
    if (st?.continued) entry.continued = true;
    if (st?.handled) entry.handled = true;
    out.push(entry);
  }
  return out;
}

/** Each approval the run reached: its record as decided, and the attempts refused. */
function approvalReports(rec: Recorder): DryRunReport['approvals'] {
  return [...rec.approvals.values()].map(({ run: r, record, refused, scripted }) => ({
    run: r,
    step: record.stepId,
    stepPath: record.stepPath,
    status: record.status,
    scripted,
    stage: record.stage,
    quorum: record.quorum,
    ...(record.timedOut ? { timedOut: true } : {}),
    ...(record.escalated ? { escalated: true } : {}),
    decisions: record.decisions.map((d) => ({ principal: d.principal, decision: d.decision, at: d.at, ...(d.comment ? { comment: d.comment } : {}) })),
    refused,
  }));
}

/** Runs the dry run. `plan` is the validated definition's plan. */
export async function dryRun(definition: Definition, plan: Plan, request: DryRunRequest, env: DryRunEnvironment, source: 'inline' | 'registered'): Promise<DryRunReport> {
  const rec = new Recorder();
  const waiting = new Set<Waiting>();
  const startMs = Date.parse('2030-01-01T00:00:00.000Z');
  let finish: (value: 'settled' | 'stalled' | 'aborted') => void = () => undefined;
  const outcome = new Promise<'settled' | 'stalled' | 'aborted'>((resolve) => {
    finish = resolve;
  });
  const wallStart = Date.now();
  const time = new SimulatedTime(startMs, () => finish('stalled'));
  // The wall-clock cap: checked at every wake-up of the simulated clock.
  time.onWake(() => {
    if (Date.now() - wallStart > (env.maxWallMs ?? 10_000)) {
      rec.aborted ??= `the simulation ran longer than ${env.maxWallMs ?? 10_000} ms of real time`;
      finish('aborted');
    }
  });
  const events: RunEvent[] = [];
  const port = new SimulatedPort(time, time.root, rec, request, env, stepsOf(definition), '', waiting, events);
  for (const event of request.events ?? []) {
    time.at((event.afterSeconds ?? 0) * 1000, () => port.deliver({ name: event.name, payload: event.payload ?? null }));
  }
  const state = initialRunState(plan, definition.context?.mutable ?? {});
  port.state = state;
  const input = request.input ?? null;
  rec.payload(input);
  let output: unknown;
  let failure: RunFailedError | undefined;
  let unexpected: unknown;
  const run = executePlan(plan, { input, signal: request.signal ?? input, context: { readonly: definition.context?.readonly ?? {} }, run: runInfo(definition, '', env) }, port, state).then(
    (value) => {
      output = value;
      finish('settled');
    },
    (error: unknown) => {
      if (error instanceof RunFailedError) failure = error;
      else unexpected = error;
      finish('settled');
    },
  );
  time.poke();
  const result = await outcome;
  time.stop();
  void run;
  if (unexpected !== undefined && !(unexpected instanceof ContinueAsNewRequest)) throw unexpected;

  const path = runPathOf(plan, state, rec);
  const estimate = estimateHistory(plan, { path, ...(env.continueAsNewAfterEvents ? { continueAsNewAfterEvents: env.continueAsNewAfterEvents } : {}) }).typical;
  if (result === 'settled' && failure === undefined) rec.payload(output);
  const status: DryRunReport['status'] = result === 'aborted' || rec.aborted ? 'aborted' : result === 'stalled' ? 'blocked' : failure ? 'failed' : 'completed';
  const report: DryRunReport = {
    definition: { name: definition.name, version: definition.version, source },
    status,
    path: rec.path,
    steps: stepReport(definition, state, rec),
    calls: rec.calls,
    approvals: approvalReports(rec),
    events: { delivered: rec.delivered, undelivered: port.undelivered().map((e) => ({ name: e.name })) },
    simulatedSeconds: time.elapsed / 1000,
    predicted: {
      events: estimate.events,
      eventsPerRun: estimate.eventsPerRun,
      runs: estimate.runs,
      payloadBytes: rec.payloadBytes,
      largestPayloadBytes: rec.largestPayload,
      estimate,
    },
    warnings: rec.warnings,
  };
  if (status === 'completed') report.output = output ?? null;
  if (status === 'failed' && failure) report.error = { ...(state.error ?? { type: 'RunFailed' }), message: failure.message };
  if (status === 'blocked') report.blocked = { waitingFor: [...waiting].map((w) => w.describe()) };
  if (status === 'aborted') report.error = { type: 'DryRunLimit', message: rec.aborted ?? 'the simulation was stopped' };
  if (state.rollback) report.rollback = state.rollback;
  if (rec.largestPayload > 2 * 1024 * 1024) rec.warnings.push(`a payload of ${rec.largestPayload} bytes is past Temporal's 2 MiB payload limit`);
  return report;
}
