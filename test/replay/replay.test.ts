import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createLogger } from '../../common/logger.ts';
import { STEP_TYPES, type Definition, type StepType } from '../../interpreter/schema.ts';
import { installRuntime } from '../../workers/runtime.ts';
import { GOLDEN_DIR, goldenDefinitions, historyFixtures, readHistory, stepsOf, type HistoryEvent, type HistoryFixture } from './golden.ts';

/**
 * Determinism guard: every committed history of a golden definition must replay on the current
 * interpreter without a nondeterminism error. A change that alters the commands the interpreter
 * emits for an existing history must be gated with patched() and come with a new fixture.
 */
const bundlePath = process.env.WORKFLOW_BUNDLE_PATH;
const logger = createLogger('replay', process.env.LOG_LEVEL ?? 'warn');
installRuntime(logger);

const goldens = goldenDefinitions();
const fixtures = historyFixtures();
const byBase = new Map<string, HistoryFixture[]>();
for (const f of fixtures) byBase.set(f.base, [...(byBase.get(f.base) ?? []), f]);
const events = (f: HistoryFixture): HistoryEvent[] => readHistory(f.file).events;
const lastType = (f: HistoryFixture): string | undefined => events(f).at(-1)?.eventType;

/** Step kinds no golden can use (none: registry agents are pinned by the golden's run options). */
const UNCOVERABLE: readonly StepType[] = [];

test('every golden definition has a committed history', () => {
  const recorded = new Set(fixtures.filter((f) => f.child === undefined).map((f) => f.golden));
  const missing = goldens.map((g) => g.name).filter((n) => !recorded.has(n));
  assert.deepEqual(missing, [], `record them with npm run record-histories (golden definitions live in ${GOLDEN_DIR})`);
  const orphans = [...new Set(fixtures.map((f) => f.golden))].filter((n) => !goldens.some((g) => g.name === n));
  assert.deepEqual(orphans, [], 'histories without a golden definition');
});

test('continue-as-new chains are complete: runs 1..n, each but the last ends by continuing as new', () => {
  for (const [base, runs] of byBase) {
    const [only] = runs;
    if (runs.length === 1 && only && only.run === undefined) {
      assert.notEqual(lastType(only), 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW', `${base}.json continued as new: record the whole chain`);
      continue;
    }
    assert.deepEqual(runs.map((r) => r.run), runs.map((_, i) => i + 1), `${base}: runs numbered from 1 without gaps, and no unnumbered file`);
    runs.forEach((r, i) => {
      const continued = lastType(r) === 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW';
      assert.equal(continued, i < runs.length - 1, `${r.file}: ${continued ? 'continued as new but is the last run' : 'ended the chain early'}`);
    });
  }
});

test('the recorded goldens cover every step kind', () => {
  const recorded = new Set(fixtures.map((f) => f.golden));
  const used = new Set<StepType>();
  for (const golden of goldens.filter((g) => recorded.has(g.name))) {
    for (const definition of [golden.definition, ...golden.children] as Definition[]) {
      for (const step of stepsOf(definition)) used.add(step.type);
    }
  }
  const expected = STEP_TYPES.filter((t) => !UNCOVERABLE.includes(t));
  assert.deepEqual([...used].sort(), [...expected].sort());
});

test('the recorded histories show the behaviours the goldens exist for', () => {
  const all = fixtures.flatMap((f) => events(f).map((e) => ({ file: f.file, e })));
  const has = (what: string, predicate: (e: HistoryEvent, file: string) => boolean) =>
    assert.ok(all.some(({ e, file }) => predicate(e, file)), `no recorded history shows ${what}`);
  const attrs = (e: HistoryEvent, key: string) => e[key] as Record<string, unknown> | undefined;

  // Continue-as-new: a chain of at least two runs, the later ones resuming the earlier.
  assert.ok([...byBase.values()].some((runs) => runs.length >= 2), 'no golden continued as new');
  has('a run started by continue-as-new', (e) => Boolean(attrs(e, 'workflowExecutionStartedEventAttributes')?.continuedExecutionRunId));
  // The engine's yield after PURE_STEPS_PER_TASK pure steps: a 1 ms timer.
  has('the pure-step yield (a 1 ms timer)', (e) => attrs(e, 'timerStartedEventAttributes')?.startToFireTimeout === '0.001s');
  has('an event (signal)', (e) => e.eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED');
  has('a cancelled timer (the parallel branch that lost the race, a step timeout)', (e) => e.eventType === 'EVENT_TYPE_TIMER_CANCELED');
  // PATCHES.parallelFirstWins: a race of branches finishing in the same workflow task (parallel-race).
  has('the parallel-first-wins patch marker', (e) => {
    const marker = attrs(e, 'markerRecordedEventAttributes');
    const data = (marker?.details as { 'patch-data'?: { payloads?: Array<{ data?: string }> } } | undefined)?.['patch-data']?.payloads?.[0]?.data;
    return marker?.markerName === 'core_patch' && data !== undefined && Buffer.from(data, 'base64').toString().includes('"parallel-first-wins"');
  });
  has('a timer that fired on a step timeout', (e) => e.eventType === 'EVENT_TYPE_TIMER_FIRED');
  has('a child run', (e) => e.eventType === 'EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED');
  has('a failed run', (e) => e.eventType === 'EVENT_TYPE_WORKFLOW_EXECUTION_FAILED');
  has('an integration activity', (e) => {
    const queue = attrs(e, 'activityTaskScheduledEventAttributes')?.taskQueue as { name?: string } | undefined;
    return queue?.name?.endsWith('.integrations') === true;
  });
  has('an activity retried by Temporal', (e) => Number(attrs(e, 'activityTaskStartedEventAttributes')?.attempt ?? 1) > 1);
  // Approvals: decisions by signal (the Temporal UI path), PendingApprovers kept up to date, the
  // audit trail written by the platform activity, and an escalation's second deadline.
  has('an approval signal', (e) => attrs(e, 'workflowExecutionSignaledEventAttributes')?.signalName === 'approval');
  has('a PendingApprovers upsert', (e) => {
    const fields = (attrs(e, 'upsertWorkflowSearchAttributesEventAttributes')?.searchAttributes as { indexedFields?: Record<string, unknown> } | undefined)?.indexedFields;
    return fields !== undefined && 'PendingApprovers' in fields;
  });
  has('the audit trail activity on the platform queue', (e) => {
    const scheduled = attrs(e, 'activityTaskScheduledEventAttributes');
    const queue = scheduled?.taskQueue as { name?: string } | undefined;
    return (scheduled?.activityType as { name?: string } | undefined)?.name === 'recordAudit' && queue?.name?.endsWith('.platform') === true;
  });
  // Lifecycle events, model calls and registry agents.
  const scheduledAs = (e: HistoryEvent, name: string, queueSuffix: string) => {
    const scheduled = attrs(e, 'activityTaskScheduledEventAttributes');
    const queue = scheduled?.taskQueue as { name?: string } | undefined;
    return (scheduled?.activityType as { name?: string } | undefined)?.name === name && queue?.name?.endsWith(queueSuffix) === true;
  };
  has('the lifecycle-events write on the platform queue', (e) => scheduledAs(e, 'recordRunEvents', '.platform'));
  has('a model call on the models queue', (e) => scheduledAs(e, 'model.generate', '.models'));
  has('an agent run as a child workflow', (e) => (attrs(e, 'childWorkflowExecutionStartedEventAttributes')?.workflowType as { name?: string } | undefined)?.name === 'agent');
  has("an agent's tool call on the skills queue", (e, file) => file.includes('.child.') && scheduledAs(e, 'echo', '.skills'));
  // Every child a parent started has its own recorded history.
  for (const f of fixtures) {
    for (const e of events(f)) {
      const child = (attrs(e, 'childWorkflowExecutionStartedEventAttributes')?.workflowExecution as { workflowId?: string } | undefined)?.workflowId;
      if (child !== undefined) assert.ok(fixtures.some((c) => c.workflowId === child), `${f.file}: child ${child} has no recorded history`);
    }
  }
});

for (const fixture of fixtures) {
  test(`history ${fixture.file} replays on the current interpreter`, async () => {
    assert.ok(bundlePath, 'WORKFLOW_BUNDLE_PATH is set by the test runner');
    const history = readHistory(fixture.file);
    assert.ok(history.events.length > 5, 'the fixture holds a real history');
    // The recorded workflow id: the interpreter derives child workflow ids from it.
    await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath } }, history, fixture.workflowId);
  });
}

test('replay catches a changed interpreter (DeterminismViolationError), and only a changed one', async () => {
  const bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./altered-interpreter.ts', import.meta.url)),
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: (m: string, meta?: Record<string, unknown>) => logger.warn(meta ?? {}, m),
      error: (m: string, meta?: Record<string, unknown>) => logger.error(meta ?? {}, m),
    },
  });
  const history = readHistory('sequential-echo.json');
  const results = new Map<string, Error | undefined>();
  const replays = Worker.runReplayHistories({ workflowBundle: bundle }, [
    { workflowId: 'altered-passthrough/sequential-echo', history },
    { workflowId: 'altered-extra-timer/sequential-echo', history },
    { workflowId: 'altered-renamed-activity/sequential-echo', history },
  ]);
  for await (const result of replays) results.set(result.workflowId.split('/')[0] ?? '', result.error);

  assert.equal(results.get('altered-passthrough'), undefined, 'the unchanged wrapper replays cleanly');
  for (const changed of ['altered-extra-timer', 'altered-renamed-activity']) {
    const error = results.get(changed);
    assert.ok(error instanceof DeterminismViolationError, `${changed}: expected a DeterminismViolationError, got ${String(error)}`);
  }
  assert.match(String(results.get('altered-renamed-activity')?.message), /echo-v2/);
});
