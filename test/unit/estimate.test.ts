import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { catalogNames, createActivityCatalog } from '../../activities/catalog.ts';
import { compileDefinition, type Plan } from '../../interpreter/compile.ts';
import { estimateHistory, HISTORY_LIMITS, type RunPath } from '../../interpreter/estimate.ts';
import { definitionSchema } from '../../interpreter/schema.ts';
import { validateDefinition, type ValidationContext } from '../../interpreter/validate.ts';
import { GOLDEN_DIR, HISTORIES_DIR, historyBase, parseHistoryFile } from '../replay/golden.ts';

/**
 * Submit-time history estimates against the measured events of the replay fixtures. The path a
 * recorded run took (loop iterations, branches, skipped steps, how its approvals were decided) is
 * given as each fixture's description states it; the estimate must land within ±10% of the
 * recorded history's length.
 */

const planFrom = (raw: unknown) => {
  const { plan, problems } = compileDefinition(definitionSchema.parse(raw));
  assert.deepEqual(problems, []);
  return plan;
};
const planOf = (name: string) => planFrom(JSON.parse(readFileSync(join(GOLDEN_DIR, `${name}.json`), 'utf8')));
const childPlanOf = (name: string, child: string) => {
  const children = JSON.parse(readFileSync(join(GOLDEN_DIR, `${name}.children.json`), 'utf8')) as Array<{ name: string }>;
  return planFrom(children.find((c) => c.name === child));
};

interface Recorded {
  events: number;
  runs: number;
  /** The patch ids of the history's patch markers, in order. */
  patches: string[];
}

/** A fixture's recorded run: every continue-as-new segment together. */
function recorded(base: string): Recorded {
  const files = readdirSync(HISTORIES_DIR).filter((f) => parseHistoryFile(f).base === base);
  assert.ok(files.length > 0, `no history ${base}`);
  const out: Recorded = { events: 0, runs: files.length, patches: [] };
  for (const file of files) {
    const history = JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as { events: Array<Record<string, any>> };
    out.events += history.events.length;
    for (const event of history.events) {
      const data = event.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data as string | undefined;
      if (data) out.patches.push((JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { id: string }).id);
    }
  }
  return out;
}

/**
 * Every history under test/fixtures/histories, with the path its recorded run took as the
 * golden's description and run options state it. `patches` are the patches the code that recorded
 * it had (the test checks them against the history's markers): a history recorded before a patch
 * existed has none of its events. Lifecycle events are recorded only where the golden's run options
 * say so (`recordEvents`). error-handling records the failure path (a fail retried then handled, a
 * timed-out group, the final failure rolling back), which is the worst case.
 */
const FIXTURES: Array<{ base: string; plan: () => Plan; path: RunPath; compare?: 'typical' | 'worst'; continueAsNewAfterEvents?: number }> = [
  { base: 'sequential-echo', plan: () => planOf('sequential-echo'), path: { patches: [] } },
  // The failing fetch is skipped: its activity is still 6 events.
  { base: 'sequential-skip', plan: () => planOf('sequential-skip'), path: { patches: [] } },
  // 5000 iterations of 3 pure steps: one 1 ms timer every 10,000 pure steps.
  { base: 'pure-steps', plan: () => planOf('pure-steps'), path: { patches: [], iterations: { spin: 5000 } } },
  // vip-only's if is false, the loop runs 3 times, total 48 > 40, the second switch case, the region default.
  {
    base: 'control-flow',
    plan: () => planOf('control-flow'),
    path: { patches: [], skipped: ['vip-only', 'early-exit'], iterations: { count: 3 }, branches: { size: 'then', route: 1, 'region-route': 'default' } },
  },
  // any/N: the branches that lose were started and are cancelled.
  { base: 'parallel-race', plan: () => planOf('parallel-race'), path: { patches: ['parallel-first-wins'] } },
  // Events, timers and child workflows (sub_workflow, for_each of children).
  { base: 'io-and-events', plan: () => planOf('io-and-events'), path: { patches: [] } },
  // The children it starts: golden-child, a set and an echo.
  ...['enrich', 'enrich-each[0]/enrich-one', 'enrich-each[1]/enrich-one'].map((child) => ({
    base: historyBase('io-and-events', child),
    plan: () => childPlanOf('io-and-events', 'golden-child'),
    path: { patches: [] },
  })),
  // Model steps, a registry agent as a child workflow, lifecycle-event writes, an approval by one signal.
  {
    base: 'lifecycle-models-agents',
    plan: () => planOf('lifecycle-models-agents'),
    path: { patches: [], lifecycleEvents: true, approvals: { 'sign-off': { signals: 1, updates: 0 } } },
  },
  { base: 'error-handling', plan: () => planOf('error-handling'), path: { patches: [] }, compare: 'worst' },
  // 8 signals (no decision proofs yet): zed refused, ann, ann repeated (not audited), ben: quorum;
  // quiet times out (approve); cat late for two-keys (refused); dan; the timeout escalates; dan and eve.
  {
    base: 'approvals',
    plan: () => planOf('approvals'),
    path: {
      patches: [],
      approvals: {
        'two-keys': { signals: 4, updates: 0, audited: 3 },
        quiet: { signals: 0, updates: 0, audited: 0, timersFired: 1 },
        escalated: { signals: 4, updates: 0, audited: 4, stages: 2, timersFired: 1 },
      },
    },
  },
  // 4 signals, each checked by verifyDecisionToken: two refused as unproven, ann and ben accepted.
  {
    base: 'approval-proofs',
    plan: () => planOf('approval-proofs'),
    path: { patches: ['approval-decision-proofs'], lifecycleEvents: true, approvals: { 'two-keys': { signals: 4, updates: 0 } } },
  },
  // Seed 002's code skills: three activities whose input carries the definition's resource limits.
  { base: 'code-skills', plan: () => planOf('code-skills'), path: { patches: ['approval-decision-proofs'] } },
  // The run fails at its last step: the step's own error type (run-failure-step-type).
  { base: 'failure-type', plan: () => planOf('failure-type'), path: { patches: ['approval-decision-proofs', 'run-failure-step-type'], lifecycleEvents: true } },
  // Issue 19: uuid/now/base64 add no events; the structured fail is caught, reported by an activity, raised again.
  { base: 'structured-errors', plan: () => planOf('structured-errors'), path: { patches: ['approval-decision-proofs', 'run-failure-step-type'] } },
  // A block of two echo activities, a skipped block, one more echo.
  { base: 'block-sequence', plan: () => planOf('block-sequence'), path: { patches: ['approval-decision-proofs'], skipped: ['skipped'] } },
  // continueAsNewAfterEvents 100: 24 loop iterations, 16 items, the event sent at the start.
  {
    base: 'continue-as-new',
    plan: () => planOf('continue-as-new'),
    path: { patches: [], iterations: { batches: 24 }, items: { fan: 16 } },
    continueAsNewAfterEvents: 100,
  },
];

/** Histories that are not an interpreter run: the registry agent's own workflow (its parent counts it as a child). */
const NOT_DEFINITIONS = new Set([historyBase('lifecycle-models-agents', 'research')]);

describe('estimates against the replay fixtures (±10%)', () => {
  test('every history fixture is compared', () => {
    const bases = new Set(readdirSync(HISTORIES_DIR).map((f) => parseHistoryFile(f).base));
    const covered = new Set([...FIXTURES.map((f) => f.base), ...NOT_DEFINITIONS]);
    assert.deepEqual([...bases].filter((b) => !covered.has(b)), []);
  });

  for (const { base, plan, path, compare = 'typical', continueAsNewAfterEvents } of FIXTURES) {
    test(`${base} (${compare} case)`, (t) => {
      const actual = recorded(base);
      assert.deepEqual([...new Set(actual.patches)], path.patches, 'the patches the recording took');
      const estimate = estimateHistory(plan(), { path: { lifecycleEvents: false, ...path }, ...(continueAsNewAfterEvents ? { continueAsNewAfterEvents } : {}) });
      const predicted = estimate[compare];
      const error = Math.abs(predicted.events - actual.events) / actual.events;
      assert.ok(error <= 0.1, `${base}: estimated ${predicted.events} events, recorded ${actual.events} (${Math.round(error * 100)}% off)`);
      assert.equal(predicted.runs, actual.runs, 'runs (continue-as-new segments)');
      t.diagnostic(`estimated ${predicted.events} events in ${predicted.runs} run(s), recorded ${actual.events} in ${actual.runs}`);
      // A recorded path may hold more than the worst case assumes (refused signals); the cases themselves do not.
      const cases = estimateHistory(plan(), { path: { patches: path.patches ?? [] } });
      assert.ok(cases.worst.events >= cases.typical.events, 'the worst case is at least the typical one');
    });
  }
});

const catalog = createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] });
const ctx: ValidationContext = { ...catalogNames(catalog), lanes: ['prod-critical'] };
const echo = (id: string) => ({ id, type: 'skill', skill: 'echo', inputs: { id } });

describe('limits', () => {
  test('a sequential definition: 4 + 6n + 1 events, the decision-proofs patch marker (2) and the lifecycle write at the end', () => {
    const result = validateDefinition({ name: 'e', version: '1.0.0', steps: Array.from({ length: 10 }, (_, i) => echo(`s${i}`)) }, ctx);
    assert.ok(result.ok);
    const estimate = estimateHistory(result.plan);
    assert.equal(estimate.typical.events, 5 + 60 + 2 + 6);
    assert.equal(estimate.typical.runs, 1);
    assert.deepEqual(estimate.warnings, []);
    assert.equal(estimate.steps.length, 10);
  });

  test('an approval decided by one API decision costs 19 events (and its cancelled timer); by signals, escalated and timed out as the path says', () => {
    const approval = { id: 'ok', type: 'approval', approvers: { principals: ['ann'] }, timeout: 60, on_timeout: 'escalate', escalation: { approvers: { principals: ['bob'] }, timeout: 60 } };
    const result = validateDefinition({ name: 'a', version: '1.0.0', steps: [approval] }, ctx);
    assert.ok(result.ok, JSON.stringify(result.ok ? [] : result.problems));
    // Reaching it and its end: 2 upserts; the update (5) with its verifyDecisionToken activity (6);
    // the stage timer cancelled (2); the audit write (6).
    const api = estimateHistory(result.plan).steps[0];
    assert.equal(api?.typical, 2 + 11 + 2 + 6);
    // Worst: escalated (a third upsert), both stage timers fired, a decision per stage.
    assert.equal(api?.worst, 3 + 2 * 11 + 2 * 5 + 2 * 6);
    // Two signals (one refused, one accepted) after the escalation, on a run without decision proofs.
    const signals = estimateHistory(result.plan, { path: { patches: [], approvals: { ok: { signals: 2, updates: 0, stages: 2, timersFired: 1 } } } }).steps[0];
    assert.equal(signals?.typical, 3 + 2 * 4 + 5 + 2 + 2 * 6);
  });

  test('a loop at max_iterations past the warning threshold warns; continue-as-new splits it into runs', () => {
    const loop = { id: 'poll', type: 'loop', condition: 'true', max_iterations: 5000, steps: [echo('check')] };
    const result = validateDefinition({ name: 'l', version: '1.0.0', steps: [loop] }, ctx);
    assert.ok(result.ok);
    const estimate = estimateHistory(result.plan, { continueAsNewAfterEvents: 10_000 });
    // The worst case fails (the failure-type patch, 2); each of the 4 runs takes the proofs patch
    // (2) and each of the 3 new ones starts again (4).
    assert.equal(estimate.worst.events, 5 + 5000 * 6 + 2 + 6 + 4 * 2 + 3 * 4);
    assert.equal(estimate.worst.runs, 4);
    assert.ok(estimate.worst.eventsPerRun <= 10_000 + 6);
    assert.ok(estimate.worst.eventsPerRun < HISTORY_LIMITS.maxEvents);
    assert.equal(estimate.typical.events, 5 + 3 * 6 + 2 + 6);
    assert.deepEqual(estimate.problems, []);
  });

  test('a parallel step that must exceed 51,200 events in one run is refused at validation, naming the step', () => {
    // No safe point inside a parallel branch: 9000 literal items × 6 events cannot continue as new.
    const fan = {
      id: 'fan',
      type: 'parallel',
      steps: [{ id: 'each', type: 'for_each', items: Array.from({ length: 9000 }, (_, i) => i), steps: [echo('one')] }, echo('side')],
    };
    const result = validateDefinition({ name: 'p', version: '1.0.0', steps: [echo('first'), fan] }, ctx);
    assert.equal(result.ok, false);
    const problem = result.ok ? undefined : result.problems.find((p) => p.path === '/steps/1');
    assert.ok(problem, JSON.stringify(result));
    assert.equal(problem.stepId, 'fan');
    assert.match(problem.message, /step "fan" needs at least 54006 history events with no point where the run can continue as new \(Temporal ends a run at 51200\)/);
  });

  test('the same fan-out at the top level continues as new between items and is accepted', () => {
    const result = validateDefinition({ name: 'f', version: '1.0.0', steps: [{ id: 'each', type: 'for_each', items: Array.from({ length: 9000 }, (_, i) => i), steps: [echo('one')] }] }, ctx);
    assert.ok(result.ok, JSON.stringify(result.ok ? [] : result.problems));
    const estimate = estimateHistory(result.plan);
    assert.equal(estimate.typical.runs, 6);
    assert.equal(estimate.typical.events, 5 + 54_000 + 6 + 6 * 2 + 5 * 4);
    assert.ok(estimate.warnings.some((w) => /warning at 10000/.test(w.message)) || estimate.typical.eventsPerRun <= 10_000 + 6);
  });
});
