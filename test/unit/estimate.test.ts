import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { catalogNames, createActivityCatalog } from '../../activities/catalog.ts';
import { compileDefinition } from '../../interpreter/compile.ts';
import { estimateHistory, HISTORY_LIMITS, type RunPath } from '../../interpreter/estimate.ts';
import { definitionSchema } from '../../interpreter/schema.ts';
import { validateDefinition, type ValidationContext } from '../../interpreter/validate.ts';
import { GOLDEN_DIR, HISTORIES_DIR } from '../replay/golden.ts';

/**
 * Submit-time history estimates against the measured events of the replay fixtures. The path a
 * recorded run took (loop iterations, branches, skipped steps) is given as each fixture's
 * description states it; the estimate must land within ±10% of the recorded history's length.
 */

const planOf = (name: string) => {
  const definition = definitionSchema.parse(JSON.parse(readFileSync(join(GOLDEN_DIR, `${name}.json`), 'utf8')));
  const { plan, problems } = compileDefinition(definition);
  assert.deepEqual(problems, []);
  return plan;
};
const measured = (file: string) => (JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as { events: unknown[] }).events.length;

/**
 * Goldens whose recorded run follows a path the estimate can be told. Lifecycle events are recorded
 * only where the golden's run options say so (`recordEvents`). error-handling records the failure
 * path (a fail retried then handled, a timed-out group, the final failure rolling back), which is
 * the worst case. approvals is left out: its run is a script of refused, repeated and escalated
 * decisions (8 signals) that no per-step count describes.
 */
const FIXTURES: Array<{ name: string; path: RunPath; compare?: 'typical' | 'worst' }> = [
  { name: 'sequential-echo', path: {} },
  // The failing fetch is skipped: its activity is still 6 events.
  { name: 'sequential-skip', path: {} },
  // 5000 iterations of 3 pure steps: one 1 ms timer every 10,000 pure steps.
  { name: 'pure-steps', path: { iterations: { spin: 5000 } } },
  // vip-only's if is false, the loop runs 3 times, total 48 > 40, the second switch case, the region default.
  { name: 'control-flow', path: { skipped: ['vip-only', 'early-exit'], iterations: { count: 3 }, branches: { size: 'then', route: 1, 'region-route': 'default' } } },
  // any/N: the branches that lose were started and are cancelled.
  { name: 'parallel-race', path: {} },
  // Events, an approval by signal, timers and child workflows (sub_workflow, for_each of children).
  { name: 'io-and-events', path: {} },
  // Model steps, a registry agent as a child workflow, lifecycle-event writes.
  { name: 'lifecycle-models-agents', path: { lifecycleEvents: true } },
  { name: 'error-handling', path: {}, compare: 'worst' },
];

describe('estimates against the replay fixtures (±10%)', () => {
  for (const { name, path, compare = 'typical' } of FIXTURES) {
    test(`${name} (${compare} case)`, () => {
      const estimate = estimateHistory(planOf(name), { path: { lifecycleEvents: false, ...path } });
      const actual = measured(`${name}.json`);
      const predicted = estimate[compare].events;
      const error = Math.abs(predicted - actual) / actual;
      assert.ok(error <= 0.1, `${name}: estimated ${predicted} events, recorded ${actual} (${Math.round(error * 100)}% off)`);
      assert.ok(estimate.worst.events >= estimate.typical.events, 'the worst case is at least the typical one');
    });
  }
});

const catalog = createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] });
const ctx: ValidationContext = { ...catalogNames(catalog), lanes: ['prod-critical'] };
const echo = (id: string) => ({ id, type: 'skill', skill: 'echo', inputs: { id } });

describe('limits', () => {
  test('a sequential definition: 4 + 6n + 1 events plus the lifecycle write at the end', () => {
    const result = validateDefinition({ name: 'e', version: '1.0.0', steps: Array.from({ length: 10 }, (_, i) => echo(`s${i}`)) }, ctx);
    assert.ok(result.ok);
    const estimate = estimateHistory(result.plan);
    assert.equal(estimate.typical.events, 5 + 60 + 6);
    assert.equal(estimate.typical.runs, 1);
    assert.deepEqual(estimate.warnings, []);
    assert.equal(estimate.steps.length, 10);
  });

  test('a loop at max_iterations past the warning threshold warns; continue-as-new splits it into runs', () => {
    const loop = { id: 'poll', type: 'loop', condition: 'true', max_iterations: 5000, steps: [echo('check')] };
    const result = validateDefinition({ name: 'l', version: '1.0.0', steps: [loop] }, ctx);
    assert.ok(result.ok);
    const estimate = estimateHistory(result.plan, { continueAsNewAfterEvents: 10_000 });
    assert.equal(estimate.worst.events, 5 + 5000 * 6 + 6);
    assert.equal(estimate.worst.runs, 4);
    assert.ok(estimate.worst.eventsPerRun <= 10_000 + 6);
    assert.ok(estimate.worst.eventsPerRun < HISTORY_LIMITS.maxEvents);
    assert.equal(estimate.typical.events, 5 + 3 * 6 + 6);
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
    assert.equal(estimate.typical.events, 5 + 54_000 + 6);
    assert.ok(estimate.typical.runs > 1);
    assert.ok(estimate.warnings.some((w) => /warning at 10000/.test(w.message)) || estimate.typical.eventsPerRun <= 10_000 + 6);
  });
});
