import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileDefinition, type Plan } from '../../interpreter/compile.ts';
import { PATCHES, PURE_STEPS_PER_TASK, RunFailedError, StepCallError, executePlan, initialRunState, type ActivityCall, type RunState } from '../../interpreter/engine.ts';
import { LIMITS, definitionSchema } from '../../interpreter/schema.ts';
import { runUuid } from '../../interpreter/expressions.ts';
import { applyDecision, judge, pendingApproverKeys, type ApprovalRecord, type DecisionAttempt, type Directory, type Verdict } from '../../interpreter/approvals.ts';
import { FakeCancelled, FakePort, fail, ok, runToEnd, runToFailure, type FakePortOptions } from '../support/fake-port.ts';

type Json = Record<string, unknown>;

/** Parses a definition with the real schema and compiles it; the definition must be clean. */
function planOf(steps: Json[], extra: Json = {}): Plan {
  const definition = definitionSchema.parse({ name: 'engine-test', version: '1.0.0', steps, ...extra });
  const { plan, problems } = compileDefinition(definition);
  assert.deepEqual(problems, [], 'the test definition must compile');
  return plan;
}

const skill = (id: string, name = 'echo', extra: Json = {}): Json => ({ id, type: 'skill', skill: name, ...extra });

function port(options: FakePortOptions = {}): FakePort {
  return new FakePort(options);
}

/** Status of every step in the run state, by id. */
function statuses(state: RunState): Record<string, string> {
  return Object.fromEntries(Object.entries(state.steps).map(([id, s]) => [id, s.status]));
}

describe('engine: activity steps', () => {
  test('skill: resolves inputs (templates, bare references, context, run) and passes the call settings', async () => {
    const plan = planOf(
      [
        skill('fetch-data', 'http-fetch', { inputs: { url: '${input.url}' }, outputs: ['data'], timeout: 45 }),
        skill('analyze', 'echo', {
          inputs: { data: 'fetch-data.data', env: '${context.readonly.environment}', run: '${run.id}', text: 'n=${input.n}', n: '${input.n}' },
        }),
      ],
      { context: { readonly: { environment: 'production' } } },
    );
    const p = port({ activities: { 'http-fetch': ok({ status: 200, data: { items: [1, 2, 3] } }) } });
    const { output, state } = await runToEnd(plan, p, {
      ctx: { input: { url: 'https://api.example.com/data', n: 2 }, context: { readonly: { environment: 'production' } }, run: { id: 'run-42' } },
    });
    assert.deepEqual(p.names(), ['http-fetch', 'echo']);
    const [fetch, analyze] = p.activities.map((r) => r.call);
    assert.deepEqual(fetch, {
      family: 'skills',
      name: 'http-fetch',
      type: 'skill',
      stepId: 'fetch-data',
      stepPath: 'fetch-data',
      input: { url: 'https://api.example.com/data' },
      timeoutSeconds: 45,
      retry: { maxAttempts: 3, initialIntervalSeconds: 1, maxIntervalSeconds: 30, backoffCoefficient: 2, linear: false, nonRetryableErrorTypes: [] },
      // The step set its timeout but no retry: the skill's registered retry defaults may apply.
      defaulted: { timeout: false, retry: true },
    });
    assert.deepEqual(analyze?.input, { data: { items: [1, 2, 3] }, env: 'production', run: 'run-42', text: 'n=2', n: 2 });
    assert.equal(analyze?.timeoutSeconds, 30);
    // Without an `output` the run's output is the last step's.
    assert.deepEqual(output, analyze?.input);
    assert.equal(state.status, 'completed');
    assert.equal(state.currentStep, undefined);
    assert.deepEqual(statuses(state), { 'fetch-data': 'completed', analyze: 'completed' });
  });

  test('integration and directive (payload) steps call the integrations family', async () => {
    const plan = planOf([
      { id: 'crm', type: 'integration', integration: 'crm.note', inputs: { text: 'hello' } },
      { id: 'post', type: 'directive', directive: 'forum.post.create', payload: { thread_id: '${input.thread}', previous: 'crm.text' } },
    ]);
    const p = port();
    const { output } = await runToEnd(plan, p, { ctx: { input: { thread: 't-9' } } });
    assert.deepEqual(
      p.activities.map((r) => [r.call.family, r.call.name, r.call.type, r.call.input]),
      [
        ['integrations', 'crm.note', 'integration', { text: 'hello' }],
        ['integrations', 'forum.post.create', 'directive', { thread_id: 't-9', previous: 'hello' }],
      ],
    );
    assert.deepEqual(output, { thread_id: 't-9', previous: 'hello' });
  });

  test('agent: `agent` with inputs and guardrails; `agent_ref` with input {from_signal: true} gets the triggering event', async () => {
    const plan = planOf([
      {
        id: 'analyze',
        type: 'agent',
        agent: 'data-analyzer',
        inputs: { q: '${input.q}' },
        guardrails: { max_iterations: 10, allowed_tools: ['fs_read'] },
        async: true,
      },
      { id: 'summarize', type: 'agent', agent_ref: { slug: 'forum_summary_agent' }, input: { from_signal: true } },
    ]);
    const signal = { type: 'forum.thread.created', subject: { id: 'thread-7' } };
    const p = port({ activities: { forum_summary_agent: ok({ summary: 'short' }) } });
    const { output } = await runToEnd(plan, p, { ctx: { input: { q: 'why' }, signal } });
    const [a, s] = p.activities.map((r) => r.call);
    assert.equal(a?.family, 'agents');
    assert.equal(a?.name, 'data-analyzer');
    assert.deepEqual(a?.input, { q: 'why' });
    assert.deepEqual(a?.guardrails, { max_iterations: 10, allowed_tools: ['fs_read'] });
    assert.equal(s?.family, 'agents');
    assert.equal(s?.name, 'forum_summary_agent');
    assert.deepEqual(s?.input, signal);
    assert.equal(s?.guardrails, undefined);
    assert.deepEqual(output, { summary: 'short' });
  });

  test('seed 004 as written: the directive payload reads ${signal.subject.id} and ${steps.summarize.output.summary}', async () => {
    const plan = planOf([
      { id: 'summarize', type: 'agent', agent_ref: { slug: 'forum_summary_agent' }, input: { from_signal: true } },
      {
        id: 'post_summary',
        type: 'directive',
        directive: 'forum.post.create',
        payload: { thread_id: '${signal.subject.id}', content: '${steps.summarize.output.summary}' },
      },
    ]);
    const p = port({ activities: { forum_summary_agent: ok({ summary: 'A thread about durable runs' }) } });
    await runToEnd(plan, p, { ctx: { signal: { subject: { id: 'th_123' } } } });
    assert.deepEqual(p.activities[1]?.call.input, { thread_id: 'th_123', content: 'A thread about durable runs' });
    assert.equal(p.activities[1]?.call.family, 'integrations');
  });

  test('declared outputs missing from the result fail the step with MissingOutput', async () => {
    const plan = planOf([skill('fetch-data', 'http-fetch', { outputs: ['data', 'status'] }), skill('next')]);
    const error = await runToFailure(plan, port({ activities: { 'http-fetch': ok({ status: 200 }) } }));
    const failed = error.state.steps['fetch-data'];
    assert.equal(failed?.status, 'failed');
    assert.equal(failed?.error?.type, 'MissingOutput');
    assert.match(failed?.error?.message ?? '', /"data"/);
    assert.doesNotMatch(failed?.error?.message ?? '', /"status"/);
    assert.deepEqual(error.state.steps.next, { status: 'pending' });
  });

  test('a template reading a missing field fails the step with ExpressionError before any call', async () => {
    const plan = planOf([skill('a'), skill('b', 'echo', { inputs: { v: '${steps.a.output.missing}' } })]);
    const p = port({ activities: { echo: ok({ present: 1 }) } });
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.b?.error?.type, 'ExpressionError');
    assert.match(error.state.steps.b?.error?.message ?? '', /has no value/);
    assert.equal(p.activities.length, 1);
  });
});

describe('engine: if', () => {
  test('a false `if` skips the step (output null), a true one runs it', async () => {
    const plan = planOf(
      [
        skill('a', 'echo', { inputs: { n: 1 } }),
        skill('b', 'never', { if: 'a.n > 1' }),
        skill('c', 'echo', { if: 'a.n == 1 && steps.b.status == "skipped"', inputs: { b: '${steps.b.output}' } }),
      ],
    );
    const p = port();
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(p.names(), ['echo', 'echo']);
    assert.deepEqual(state.steps.b, { status: 'skipped', output: null });
    assert.equal(state.steps.c?.status, 'completed');
    assert.deepEqual(output, { b: null });
  });

  test('a skipped last step does not replace the run output', async () => {
    const plan = planOf([skill('a', 'echo', { inputs: { n: 1 } }), skill('b', 'echo', { if: 'false' })]);
    const { output } = await runToEnd(plan, port());
    assert.deepEqual(output, { n: 1 });
  });
});

describe('engine: parallel', () => {
  test('wait_for all: branches overlap in time and the output maps branch ids to outputs', async () => {
    const plan = planOf([
      {
        id: 'parallel-tasks',
        type: 'parallel',
        steps: [skill('task1', 'process-a'), skill('task2', 'process-b')],
        wait_for: 'all',
      },
    ]);
    const p = port({ activities: { 'process-a': ok({ a: 1 }, 3000), 'process-b': ok({ b: 2 }, 5000) } });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(output, { task1: { a: 1 }, task2: { b: 2 } });
    assert.equal(p.elapsed, 5000, 'the branches ran side by side');
    assert.deepEqual(p.activities.map((r) => r.startedAt), [0, 0]);
    assert.deepEqual(statuses(state), { 'parallel-tasks': 'completed', task1: 'completed', task2: 'completed' });
  });

  test('wait_for any: the first branch to complete wins and the others are cancelled', async () => {
    const plan = planOf([
      { id: 'race', type: 'parallel', wait_for: 'any', steps: [skill('slow', 'slow'), skill('fast', 'fast')] },
      skill('after', 'echo', { inputs: { r: '${steps.race.output}' } }),
    ]);
    const p = port({ activities: { slow: ok('slow', 10_000), fast: ok('fast', 1000) } });
    const { state, output } = await runToEnd(plan, p);
    assert.deepEqual(output, { r: { fast: 'fast' } });
    assert.equal(p.activities.find((r) => r.call.name === 'slow')?.outcome, 'cancelled');
    assert.equal(p.activities.find((r) => r.call.name === 'slow')?.endedAt, 1000);
    assert.equal(state.steps.slow?.status, 'cancelled');
    assert.equal(state.steps.fast?.status, 'completed');
    assert.equal(state.steps.race?.status, 'completed');
    assert.equal(p.activities.find((r) => r.call.name === 'echo')?.startedAt, 1000, 'the run did not wait for the slow branch');
  });

  test('wait_for N: completes after N branches and cancels the rest', async () => {
    const plan = planOf([
      {
        id: 'two',
        type: 'parallel',
        wait_for: 2,
        steps: [skill('b1', 'one'), skill('b2', 'two'), skill('b3', 'three')],
      },
    ]);
    const p = port({ activities: { one: ok(1, 3000), two: ok(2, 1000), three: ok(3, 2000) } });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(output, { b2: 2, b3: 3 });
    assert.equal(state.steps.b1?.status, 'cancelled');
    assert.equal(p.elapsed, 2000);
  });

  // Branches that finish in the same workflow task (pure steps, or activities whose results arrive
  // together) used to all run and all be kept: the first to finish must win alone.
  test('wait_for any: of three set branches finishing in the same task, the first wins alone', async () => {
    const plan = planOf([
      {
        id: 'race',
        type: 'parallel',
        wait_for: 'any',
        steps: ['a', 'b', 'c'].map((id) => ({ id, type: 'set', values: { winner: id } })),
      },
      skill('after', 'echo', { inputs: { race: '${race}', winner: '${winner}' } }),
    ]);
    const p = port();
    const { output, state } = await runToEnd(plan, p, { vars: { winner: null } });
    assert.deepEqual(p.patchChecks, [PATCHES.parallelFirstWins]);
    assert.deepEqual(output, { race: { a: { winner: 'a' } }, winner: 'a' });
    assert.deepEqual(state.vars, { winner: 'a' });
    assert.deepEqual([state.steps.a?.status, state.steps.b?.status, state.steps.c?.status], ['completed', 'cancelled', 'cancelled']);
  });

  test('wait_for any: of three activity branches answering at the same moment, exactly one is kept', async () => {
    const plan = planOf([
      { id: 'race', type: 'parallel', wait_for: 'any', steps: ['a', 'b', 'c'].map((id) => skill(id, 'echo', { inputs: { v: id } })) },
    ]);
    const p = port({ activities: { echo: { respond: (call) => call.input, delayMs: 1000 } } });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(output, { a: { v: 'a' } });
    assert.deepEqual([state.steps.a?.status, state.steps.b?.status, state.steps.c?.status], ['completed', 'cancelled', 'cancelled']);
    assert.equal(p.elapsed, 1000);
  });

  test('a losing composite branch stops where it is: a step finishing after the race ended is cancelled, the next never starts', async () => {
    const plan = planOf([
      {
        id: 'race',
        type: 'parallel',
        wait_for: 'any',
        steps: [
          skill('fast', 'echo', { inputs: { v: 'fast' } }),
          { id: 'slow', type: 'conditional', condition: 'true', then: [skill('slow-echo', 'echo', { inputs: { v: 'slow' } }), { id: 'mark', type: 'set', values: { marked: true } }] },
        ],
      },
    ]);
    const p = port({ activities: { echo: { respond: (call) => call.input, delayMs: 1000 } } });
    const { output, state } = await runToEnd(plan, p, { vars: { marked: false } });
    assert.deepEqual(output, { fast: { v: 'fast' } });
    assert.deepEqual(state.vars, { marked: false });
    assert.deepEqual(['fast', 'slow', 'slow-echo', 'mark'].map((id) => state.steps[id]?.status), ['completed', 'cancelled', 'cancelled', undefined]);
    assert.deepEqual(p.settled.map((s) => `${s.stepId}:${s.status}`), ['fast:completed', 'race:completed'], 'no completion event for the loser');
  });

  test('wait_for all never consults the first-wins patch', async () => {
    const p = port();
    await runToEnd(planOf([{ id: 'all', type: 'parallel', steps: [skill('a'), skill('b')] }]), p);
    assert.deepEqual(p.patchChecks, []);
  });

  test('wait_for N: of branches finishing together, exactly N are kept and the rest are cancelled unstarted', async () => {
    const plan = planOf([
      {
        id: 'two',
        type: 'parallel',
        wait_for: 2,
        steps: [
          { id: 'a', type: 'set', values: { last: 'a' } },
          { id: 'b', type: 'conditional', condition: 'true', then: [{ id: 'b1', type: 'set', values: { last: 'b' } }] },
          { id: 'c', type: 'set', values: { last: 'c' } },
          { id: 'd', type: 'set', values: { last: 'd' } },
        ],
      },
    ]);
    const { output, state } = await runToEnd(plan, port(), { vars: { last: null } });
    assert.deepEqual(output, { a: { last: 'a' }, b: { last: 'b' } });
    assert.deepEqual(state.vars, { last: 'b' });
    assert.deepEqual(['a', 'b', 'b1', 'c', 'd'].map((id) => state.steps[id]?.status), ['completed', 'completed', 'completed', 'cancelled', 'cancelled']);
  });

  test('a run recorded before first-wins (unpatched) keeps every branch that finished, as it did then', async () => {
    const plan = planOf([
      { id: 'race', type: 'parallel', wait_for: 'any', steps: ['a', 'b', 'c'].map((id) => ({ id, type: 'set', values: { winner: id } })) },
    ]);
    const { output, state } = await runToEnd(plan, port({ unpatched: [PATCHES.parallelFirstWins] }), { vars: { winner: null } });
    assert.deepEqual(output, { a: { winner: 'a' }, b: { winner: 'b' }, c: { winner: 'c' } });
    assert.deepEqual(state.vars, { winner: 'c' });
  });

  test('wait_for any tolerates a failed branch when another completes', async () => {
    const plan = planOf([{ id: 'p', type: 'parallel', wait_for: 'any', steps: [skill('bad', 'bad'), skill('good', 'good')] }]);
    const p = port({ activities: { bad: fail('down', 'Down', { delayMs: 100 }), good: ok('yes', 500) } });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(output, { good: 'yes' });
    assert.equal(state.steps.bad?.status, 'failed');
  });

  test('wait_for all: a failing branch cancels its siblings and fails the run with its error', async () => {
    const plan = planOf([
      { id: 'p', type: 'parallel', steps: [skill('bad', 'bad'), skill('slow', 'slow')] },
      skill('never', 'never'),
    ]);
    const p = port({ activities: { bad: fail('exploded', 'Boom', { delayMs: 1000 }), slow: ok('x', 60_000) } });
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.slow?.status, 'cancelled');
    assert.equal(p.activities.find((r) => r.call.name === 'slow')?.outcome, 'cancelled');
    assert.equal(p.elapsed, 1000);
    assert.equal(error.state.steps.p?.status, 'failed');
    assert.deepEqual(error.state.error, { message: 'exploded', type: 'Boom', step: 'bad' });
    assert.deepEqual(error.state.steps.never, { status: 'pending' });
    assert.match(error.message, /^step "bad" failed: exploded/);
  });

  test('wait_for N tolerates failures until too few branches can complete, then fails with the deciding error', async () => {
    const plan = planOf([
      { id: 'p', type: 'parallel', wait_for: 2, steps: [skill('b1', 'bad'), skill('b2', 'bad2'), skill('b3', 'ok')] },
    ]);
    const p = port({ activities: { bad: fail('x', 'X', { delayMs: 100 }), bad2: fail('y', 'Y', { delayMs: 200 }), ok: ok(1, 1000) } });
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.p?.status, 'failed');
    assert.equal(error.state.steps.b1?.status, 'failed');
    assert.deepEqual(error.state.error, { message: 'y', type: 'Y', step: 'b2' });
    assert.equal(error.state.steps.b3?.status, 'cancelled');
    assert.equal(p.elapsed, 200);
  });

  test('max_concurrency limits branches in flight and every branch still runs', async () => {
    const plan = planOf([
      { id: 'p', type: 'parallel', max_concurrency: 2, steps: ['a', 'b', 'c', 'd', 'e'].map((id) => skill(id, 'work')) },
    ]);
    const p = port({ activities: { work: ok('done', 1000) } });
    const { output } = await runToEnd(plan, p);
    assert.equal(p.peakInFlight(), 2);
    assert.equal(p.activities.length, 5);
    assert.equal(p.elapsed, 3000);
    assert.deepEqual(output, { a: 'done', b: 'done', c: 'done', d: 'done', e: 'done' });
  });

  test('a branch may be a composite step with its own sequence', async () => {
    const plan = planOf([
      {
        id: 'p',
        type: 'parallel',
        steps: [
          { id: 'left', type: 'conditional', condition: 'true', then: [skill('l1', 'echo', { inputs: { v: 1 } }), skill('l2', 'echo', { inputs: { v: '${l1.v + 1}' } })] },
          skill('right', 'echo', { inputs: { v: 'r' } }),
        ],
      },
      skill('after', 'echo', { inputs: { l: 'l2.v', r: 'right.v' } }),
    ]);
    const { output } = await runToEnd(plan, port());
    assert.deepEqual(output, { l: 2, r: 'r' });
  });
});

describe('engine: for_each', () => {
  const delays: Record<string, number> = { o1: 4000, o2: 3000, o3: 2000, o4: 1000 };
  const handle = (): FakePortOptions => ({
    activities: {
      handle: {
        respond: (call) => ({ handled: (call.input as { order: string }).order, i: (call.input as { i: number }).i }),
        delayMs: (call) => delays[(call.input as { order: string }).order] ?? 0,
      },
    },
  });

  test('results keep item order when iterations finish out of order; max_concurrency caps iterations in flight', async () => {
    const plan = planOf([
      {
        id: 'each',
        type: 'for_each',
        items: '${input.orders}',
        max_concurrency: 2,
        steps: [skill('handle', 'handle', { inputs: { order: '${item}', i: '${index}' } })],
      },
    ]);
    const p = port(handle());
    const { output, state } = await runToEnd(plan, p, { ctx: { input: { orders: ['o1', 'o2', 'o3', 'o4'] } } });
    assert.deepEqual(output, [
      { handled: 'o1', i: 0 },
      { handled: 'o2', i: 1 },
      { handled: 'o3', i: 2 },
      { handled: 'o4', i: 3 },
    ]);
    assert.deepEqual(state.steps.each?.results, output);
    assert.equal(state.steps.each?.total, 4);
    assert.equal(state.steps.each?.done, 4);
    assert.equal(p.peakInFlight(), 2);
    // o1 (4 s) and o2 (3 s) start at 0; o3 starts when o2 ends (3 s); o4 when o1 ends (4 s).
    assert.deepEqual(
      p.activities.map((r) => [r.call.stepPath, r.startedAt]),
      [
        ['each[0]/handle', 0],
        ['each[1]/handle', 0],
        ['each[2]/handle', 3000],
        ['each[3]/handle', 4000],
      ],
    );
    assert.equal(p.elapsed, 5000);
  });

  test('default max_concurrency is 1: one iteration after another', async () => {
    const plan = planOf([
      { id: 'each', type: 'for_each', items: ['o1', 'o2', 'o3'], steps: [skill('handle', 'handle', { inputs: { order: '${item}', i: '${index}' } })] },
    ]);
    const p = port(handle());
    await runToEnd(plan, p);
    assert.equal(p.peakInFlight(), 1);
    assert.equal(p.elapsed, 4000 + 3000 + 2000);
  });

  test('items as the seed bare reference form; the body may hold several steps; the output is each iteration\'s last output', async () => {
    const plan = planOf([
      skill('fetch-data', 'fetch', { outputs: ['data'] }),
      {
        id: 'each',
        type: 'for_each',
        items: 'fetch-data.data.items',
        steps: [
          skill('double', 'echo', { inputs: { v: '${item * 2}' } }),
          skill('label', 'echo', { inputs: { text: '#${index}: ${double.v}' } }),
        ],
      },
    ]);
    const p = port({ activities: { fetch: ok({ data: { items: [1, 2, 3] } }) } });
    const { output } = await runToEnd(plan, p);
    assert.deepEqual(output, [{ text: '#0: 2' }, { text: '#1: 4' }, { text: '#2: 6' }]);
  });

  test('items that are not a list fail the step with InvalidItems', async () => {
    const plan = planOf([{ id: 'each', type: 'for_each', items: '${input.orders}', steps: [skill('x')] }]);
    const error = await runToFailure(plan, port(), { ctx: { input: { orders: 'o1,o2' } } });
    assert.equal(error.state.steps.each?.error?.type, 'InvalidItems');
    assert.match(error.state.steps.each?.error?.message ?? '', /not a list/);
  });

  test('a failing iteration cancels the iterations in flight and fails the step', async () => {
    const plan = planOf([
      { id: 'each', type: 'for_each', items: [1, 2, 3, 4], max_concurrency: 3, steps: [skill('work', 'work', { inputs: { n: '${item}' } })] },
    ]);
    const p = port({
      activities: {
        work: {
          respond: (call) => {
            if ((call.input as { n: number }).n === 2) throw new StepCallError('bad item', 'BadItem');
            return 'ok';
          },
          delayMs: (call) => ((call.input as { n: number }).n === 2 ? 1000 : 5000),
        },
      },
    });
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.each?.status, 'failed');
    assert.deepEqual(error.state.error, { message: 'bad item', type: 'BadItem', step: 'work' });
    assert.deepEqual(
      p.activities.map((r) => [(r.call.input as { n: number }).n, r.outcome]),
      [
        [1, 'cancelled'],
        [2, 'failed'],
        [3, 'cancelled'],
      ],
      'item 4 never started',
    );
  });
});

describe('engine: loop', () => {
  test('a long run of pure steps yields the workflow task every PURE_STEPS_PER_TASK steps, and only then', async () => {
    const iterations = 12_000;
    const plan = planOf(
      [
        {
          id: 'count',
          type: 'loop',
          condition: `counter < ${iterations}`,
          max_iterations: iterations,
          steps: [{ id: 'inc', type: 'set', values: { counter: '${counter + 1}' } }],
        },
        skill('after'),
        { id: 'tail', type: 'set', values: { done: true } },
      ],
      { context: { mutable: { counter: 0, done: false } } },
    );
    const p = port();
    const { state } = await runToEnd(plan, p, { vars: { counter: 0, done: false } });
    assert.equal(state.vars.counter, iterations);
    // 12,001 pure steps (the loop and its iterations) before the activity: one yield. The activity
    // resets the count, so the two steps after it do not yield again.
    assert.equal(PURE_STEPS_PER_TASK, 10_000);
    assert.equal(p.yields, 1);
    assert.equal(p.activities.length, 1);
  });

  test('seed 002 loop: `counter < 5` with a set step runs five iterations and binds `iteration`', async () => {
    const plan = planOf(
      [
        {
          id: 'loop',
          type: 'loop',
          condition: 'counter < 5',
          max_iterations: 10,
          steps: [
            { id: 'inc', type: 'set', values: { counter: '${counter + 1}' } },
            skill('process', 'process-item', { inputs: { iteration: '${iteration}', counter: '${counter}' } }),
          ],
        },
      ],
      { context: { mutable: { counter: 0 } } },
    );
    const p = port();
    const { output, state } = await runToEnd(plan, p, { vars: { counter: 0 } });
    assert.deepEqual(
      p.activities.map((r) => r.call.input),
      [0, 1, 2, 3, 4].map((i) => ({ iteration: i, counter: i + 1 })),
    );
    assert.deepEqual(
      p.activities.map((r) => r.call.stepPath),
      [0, 1, 2, 3, 4].map((i) => `loop[${i}]/process`),
    );
    assert.deepEqual(output, { iteration: 4, counter: 5 });
    assert.equal(state.vars.counter, 5);
    assert.equal(state.steps.loop?.iteration, 5);
    assert.equal(state.steps.loop?.status, 'completed');
  });

  test('a condition that is false at once runs no iteration and outputs null', async () => {
    const plan = planOf([{ id: 'loop', type: 'loop', condition: 'input.go', max_iterations: 3, steps: [skill('x')] }]);
    const p = port();
    const { output, state } = await runToEnd(plan, p, { ctx: { input: { go: false } } });
    assert.equal(p.activities.length, 0);
    assert.equal(output, null);
    assert.equal(state.steps.loop?.iteration, 0);
  });

  test('reaching max_iterations while the condition holds fails with LoopLimitExceeded', async () => {
    const plan = planOf([{ id: 'loop', type: 'loop', condition: 'true', max_iterations: 3, steps: [skill('x')] }, skill('after')]);
    const p = port();
    const error = await runToFailure(plan, p);
    assert.equal(p.activities.length, 3);
    assert.equal(error.state.steps.loop?.error?.type, 'LoopLimitExceeded');
    assert.match(error.state.steps.loop?.error?.message ?? '', /max_iterations \(3\)/);
    assert.deepEqual(error.state.steps.after, { status: 'pending' });
  });

  test('the condition may read the body\'s steps (from the previous iteration)', async () => {
    const plan = planOf([
      {
        id: 'poll',
        type: 'loop',
        condition: 'iteration == 0 || check.status != "done"',
        max_iterations: 10,
        steps: [skill('check', 'status')],
      },
    ]);
    const p = port({ activities: { status: [ok({ status: 'pending' }), ok({ status: 'pending' }), ok({ status: 'done' })] } });
    const { output } = await runToEnd(plan, p);
    assert.equal(p.activities.length, 3);
    assert.deepEqual(output, { status: 'done' });
  });
});

describe('engine: conditional and switch', () => {
  test('seed 002 conditional: `fetch-data.status == 200` takes then, else otherwise', async () => {
    const steps = [
      skill('fetch-data', 'http-fetch'),
      {
        id: 'conditional',
        type: 'conditional',
        condition: 'fetch-data.status == 200',
        then: [skill('success', 'process')],
        else: [skill('failure', 'log-error')],
      },
    ];
    for (const [status, expected, branch] of [
      [200, 'process', 'then'],
      [500, 'log-error', 'else'],
    ] as const) {
      const p = port({ activities: { 'http-fetch': ok({ status }) } });
      const { state } = await runToEnd(planOf(steps), p);
      assert.deepEqual(p.names(), ['http-fetch', expected]);
      assert.equal(state.steps.conditional?.branch, branch);
      assert.equal(state.steps[branch === 'then' ? 'failure' : 'success'], undefined, 'the other branch never ran');
    }
  });

  test('a conditional without else whose condition is false outputs null', async () => {
    const plan = planOf([{ id: 'c', type: 'conditional', condition: 'input.flag', then: [skill('x')] }]);
    const p = port();
    const { output, state } = await runToEnd(plan, p, { ctx: { input: { flag: false } } });
    assert.equal(output, null);
    assert.equal(state.steps.c?.branch, 'else');
    assert.equal(p.activities.length, 0);
  });

  const switchPlan = () =>
    planOf([
      {
        id: 'route',
        type: 'switch',
        value: 'input.kind',
        cases: [
          { equals: 'bug', steps: [skill('bug', 'file-bug')] },
          { equals: { priority: 'high', team: 'ops' }, steps: [skill('page', 'page-ops')] },
          { when: 'input.score > 0.8', steps: [skill('vip', 'vip')] },
        ],
        default: [skill('fallback', 'triage')],
      },
    ]);

  test('switch: equals (deep equality), when, and default', async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ kind: 'bug', score: 1 }, 'file-bug', 'case:0'],
      [{ kind: { team: 'ops', priority: 'high' }, score: 0 }, 'page-ops', 'case:1'],
      [{ kind: 'question', score: 0.9 }, 'vip', 'case:2'],
      [{ kind: 'question', score: 0.1 }, 'triage', 'default'],
      [{ kind: { priority: 'high' }, score: 0 }, 'triage', 'default'],
    ];
    for (const [input, expected, branch] of cases) {
      const p = port();
      const { state } = await runToEnd(switchPlan(), p, { ctx: { input } });
      assert.deepEqual(p.names(), [expected], JSON.stringify(input));
      assert.equal(state.steps.route?.branch, branch, JSON.stringify(input));
    }
  });

  test('switch without default and no matching case takes no branch', async () => {
    const plan = planOf([{ id: 's', type: 'switch', value: 'input.n', cases: [{ equals: 1, steps: [skill('one')] }] }]);
    const p = port();
    const { state, output } = await runToEnd(plan, p, { ctx: { input: { n: 2 } } });
    assert.equal(state.steps.s?.branch, 'none');
    assert.equal(output, null);
    assert.equal(p.activities.length, 0);
  });
});

describe('engine: wait', () => {
  test('duration text such as "1h30m" sleeps that long on the run clock', async () => {
    const plan = planOf([{ id: 'w', type: 'wait', duration: '1h30m' }, skill('after')]);
    const p = port();
    await runToEnd(plan, p);
    assert.deepEqual(p.sleeps.map((s) => s.ms), [5_400_000]);
    assert.equal(p.activities[0]?.startedAt, 5_400_000);
  });

  test('a templated duration is computed when the step starts: seconds, duration text or ISO 8601; 0 does not sleep', async () => {
    const plan = planOf([{ id: 'w', type: 'wait', duration: '${input.delay}' }]);
    for (const [delay, ms] of [[90, [90_000]], ['1m30s', [90_000]], ['PT1M30S', [90_000]], ['P1DT1H', [90_000_000]], [0, []]] as const) {
      const p = port();
      await runToEnd(plan, p, { ctx: { input: { delay } } });
      assert.deepEqual(p.sleeps.map((s) => s.ms), ms, `delay ${JSON.stringify(delay)}`);
    }
    for (const delay of [-1, 'soon', 'P', 'PT', true]) {
      const error = await runToFailure(plan, port(), { ctx: { input: { delay } } });
      assert.equal(error.state.steps.w?.error?.type, 'InvalidDuration', `delay ${JSON.stringify(delay)}`);
    }
  });

  test('a numeric duration is seconds', async () => {
    const p = port();
    await runToEnd(planOf([{ id: 'w', type: 'wait', duration: 2.5 }]), p);
    assert.deepEqual(p.sleeps.map((s) => s.ms), [2500]);
  });

  test('until: sleeps until the timestamp (a template) by the run clock; a past timestamp does not sleep', async () => {
    const start = Date.UTC(2030, 0, 1, 12, 0, 0);
    const plan = planOf([{ id: 'w', type: 'wait', until: '${input.at}' }]);
    const p = port({ startMs: start });
    await runToEnd(plan, p, { ctx: { input: { at: '2030-01-01T12:10:00Z' } } });
    assert.deepEqual(p.sleeps.map((s) => s.ms), [600_000]);
    const past = port({ startMs: start });
    await runToEnd(plan, past, { ctx: { input: { at: '2029-12-31T00:00:00Z' } } });
    assert.deepEqual(past.sleeps, []);
  });

  test('until that is not a timestamp fails with InvalidTimestamp', async () => {
    const error = await runToFailure(planOf([{ id: 'w', type: 'wait', until: '${input.at}' }]), port(), { ctx: { input: { at: 'tomorrow-ish' } } });
    assert.equal(error.state.steps.w?.error?.type, 'InvalidTimestamp');
  });

  test('a step timeout shorter than the wait fails the step with Timeout at the deadline', async () => {
    const plan = planOf([{ id: 'w', type: 'wait', duration: '1m', timeout: 5 }]);
    const p = port();
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.w?.error?.type, 'Timeout');
    assert.equal(p.elapsed, 5000);
    assert.equal(p.sleeps.find((s) => s.ms === 60_000)?.outcome, 'cancelled');
  });
});

describe('engine: wait_for_event', () => {
  test('an event already buffered ends the wait at once; its payload is the output', async () => {
    const plan = planOf([{ id: 'approval', type: 'wait_for_event', event: 'approved' }, skill('next', 'echo', { inputs: { by: 'approval.by' } })]);
    const p = port();
    p.sendEvent('approved', { by: 'alice' });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(state.steps.approval?.output, { by: 'alice' });
    assert.deepEqual(output, { by: 'alice' });
    assert.equal(p.buffered.length, 0, 'the event was consumed');
  });

  test('filter: only events whose payload matches (with `event` bound) end the wait; others stay buffered', async () => {
    const plan = planOf([
      { id: 'wait', type: 'wait_for_event', event: 'order.paid', filter: 'event.order_id == input.order_id && event.amount >= 10' },
    ]);
    const p = port();
    p.sendEvent('order.paid', { order_id: 'other', amount: 50 });
    p.sendEventAt(1000, 'order.shipped', { order_id: 'o-1', amount: 50 });
    p.sendEventAt(2000, 'order.paid', { order_id: 'o-1', amount: 5 });
    p.sendEventAt(3000, 'order.paid', { order_id: 'o-1', amount: 20 });
    const { output } = await runToEnd(plan, p, { ctx: { input: { order_id: 'o-1' } } });
    assert.deepEqual(output, { order_id: 'o-1', amount: 20 });
    assert.equal(p.elapsed, 3000);
    assert.deepEqual(
      p.buffered.map((e) => e.name),
      ['order.paid', 'order.shipped', 'order.paid'],
    );
  });

  test('timeout: fails with Timeout by default', async () => {
    const plan = planOf([{ id: 'wait', type: 'wait_for_event', event: 'approved', timeout: 60 }, skill('after')]);
    const p = port();
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.wait?.error?.type, 'Timeout');
    assert.equal(p.elapsed, 60_000);
    assert.deepEqual(p.eventWaits.map((w) => [w.timeoutMs, w.outcome]), [[60_000, 'timeout']]);
  });

  test('timeout with on_timeout "continue": the output is null and the run goes on', async () => {
    const plan = planOf([
      { id: 'wait', type: 'wait_for_event', event: 'approved', timeout: 60, on_timeout: 'continue' },
      skill('after', 'echo', { inputs: { got: '${steps.wait.output}' } }),
    ]);
    const p = port();
    p.sendEventAt(120_000, 'approved', { late: true });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(output, { got: null });
    assert.equal(state.steps.wait?.status, 'completed');
    assert.equal(p.activities[0]?.startedAt, 60_000);
  });
});

describe('engine: set, sub_workflow, fail, succeed', () => {
  test('set writes variables (context.mutable) that later steps read bare or as vars.*; its output is what it wrote', async () => {
    const plan = planOf(
      [
        { id: 'init', type: 'set', values: { total: '${counter + 10}', label: 'run ${run.id}', list: ['${counter}', 2] } },
        skill('use', 'echo', { inputs: { total: '${total}', label: '${vars.label}', list: '${list}' } }),
      ],
      { context: { mutable: { counter: 1 } } },
    );
    const { output, state } = await runToEnd(plan, port(), { vars: { counter: 1 } });
    assert.deepEqual(state.steps.init?.output, { total: 11, label: 'run run-1', list: [1, 2] });
    assert.deepEqual(output, { total: 11, label: 'run run-1', list: [1, 2] });
    assert.deepEqual(state.vars, { counter: 1, total: 11, label: 'run run-1', list: [1, 2] });
  });

  test('uuid() and now(): ids from the run id and a counter in the state (kept across continue-as-new), the time from the port', async () => {
    const steps = [
      { id: 'ids', type: 'set', values: { first: '${uuid()}', second: '${uuid()}', at: '${now()}' } },
      skill('a', 'echo', { inputs: { v: 1 } }),
      { id: 'w', type: 'wait', duration: '5s' },
      { id: 'later', type: 'set', values: { third: '${uuid()}', after: '${now()}' } },
      skill('b', 'echo', { inputs: { ids: ['${first}', '${second}', '${third}'], at: '${at}', after: '${after}' } }),
    ];
    const straight = await runToEnd(planOf(steps), port());
    const continued = await runToEnd(planOf(steps), port({ continueAsNewAfterActivityCalls: 1 }));
    assert.ok(continued.carried.length > 0);
    const out = straight.output as { ids: string[]; at: string; after: string };
    assert.deepEqual(out.ids, [runUuid('run-1', 0), runUuid('run-1', 1), runUuid('run-1', 2)]);
    assert.deepEqual(continued.output, out, 'the same ids and times after continuing as new');
    assert.equal(straight.state.uuidsIssued, 3);
    assert.equal(Date.parse(out.after) - Date.parse(out.at), 5000, "now() moves with the run's clock, not the machine's");
    const other = await runToEnd(planOf(steps), port(), { ctx: { run: { id: 'run-2' } } });
    assert.notDeepEqual((other.output as { ids: string[] }).ids, out.ids);
  });

  test('block: its steps run in order as one step; its output is the last one\'s; later steps read the inner ones; one retry and one handler cover them all', async () => {
    const plan = planOf(
      [
        {
          id: 'group',
          type: 'block',
          retry: { max_attempts: 2, backoff: 'fixed', initial_interval: 1 },
          steps: [skill('first', 'echo', { inputs: { v: 1 } }), skill('second', 'flaky', { inputs: { v: '${first.v + 1}' }, retry: { max_attempts: 1 } })],
        },
        skill('after', 'echo', { inputs: { group: '${group}', first: '${steps.first.output.v}' } }),
        {
          id: 'guarded',
          type: 'block',
          steps: [skill('boom', 'broken', { retry: { max_attempts: 1 } }), skill('never')],
        },
      ],
      { error_handling: { per_step: { guarded: { strategy: 'custom', handler: [{ id: 'caught', type: 'set', values: { where: '${error.instance}', which: '${error.step}' } }] } } } },
    );
    const p = port({ activities: { flaky: [fail('down', 'NetworkError'), ok({ v: 2 })], broken: fail('no', 'Boom') } });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(p.activities.map((a) => a.call.stepId), ['first', 'second', 'first', 'second', 'after', 'boom'], 'the retried block starts over');
    assert.deepEqual(state.steps.after?.output, { group: { v: 2 }, first: 1 });
    assert.deepEqual(output, { where: '/steps/2/steps/0', which: 'boom' }, "the handled block's output is its handler's");
    assert.deepEqual(state.steps.guarded?.handled, true);
    assert.deepEqual([state.vars.where, state.vars.which], ['/steps/2/steps/0', 'boom']);
    assert.equal(state.steps.never, undefined, 'the step after the failure in the block never ran');
  });

  test('sub_workflow: runChild gets the pinned name, version, resolved input and step path', async () => {
    const plan = planOf([
      skill('prep', 'echo', { inputs: { id: 7 } }),
      { id: 'child', type: 'sub_workflow', definition: 'billing', version: '2.1.0', inputs: { customer: 'prep.id', note: 'x' } },
    ]);
    const p = port({ children: { 'billing@2.1.0': { respond: (call) => ({ invoiced: (call.input as { customer: number }).customer }) } } });
    const { output } = await runToEnd(plan, p);
    assert.deepEqual(p.children.map((c) => c.call), [
      { stepId: 'child', stepPath: 'child', definition: 'billing', version: '2.1.0', input: { customer: 7, note: 'x' } },
    ]);
    assert.deepEqual(output, { invoiced: 7 });
  });

  test('sub_workflow failure fails the step with the child error', async () => {
    const plan = planOf([{ id: 'child', type: 'sub_workflow', definition: 'billing', version: '1.0.0' }]);
    const p = port({ children: { 'billing@1.0.0': { error: new StepCallError('sub-workflow billing@1.0.0 failed: no', 'ChildRunFailed') } } });
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.child?.error?.type, 'ChildRunFailed');
  });

  test('fail: the run fails with the templated message and error_type; later steps stay pending', async () => {
    const plan = planOf([
      skill('check', 'echo', { inputs: { code: 42 } }),
      { id: 'stop', type: 'fail', error: 'bad code ${check.code}', error_type: 'BadCode', if: 'check.code != 0' },
      skill('never'),
    ]);
    const error = await runToFailure(plan, port());
    assert.equal(error.message, 'step "stop" failed: bad code 42');
    assert.deepEqual(error.state.error, { message: 'bad code 42', type: 'BadCode', step: 'stop' });
    assert.deepEqual(error.state.steps.never, { status: 'pending' });
    assert.equal(error.state.status, 'failed');
  });

  test('a templated error_type is computed when the step fails (a handler re-raises a caught error as it was)', async () => {
    const plan = planOf([{ id: 'boom', type: 'fail', error: 'disk full', error_type: 'DiskFull' }], {
      error_handling: {
        per_step: { boom: { strategy: 'custom', handler: [{ id: 'rethrow', type: 'fail', error: 'again: ${error.message}', error_type: '${error.type}' }] } },
      },
    });
    const error = await runToFailure(plan, port());
    assert.equal(error.state.error?.type, 'DiskFull');
    assert.equal(error.state.error?.message, 'again: disk full');
  });

  test('structured errors: fail gives status, title, detail and its JSON Pointer as instance; the run fails with them', async () => {
    const plan = planOf([
      skill('check', 'echo', { inputs: { code: 404 } }),
      { id: 'stop', type: 'fail', error_type: 'https://example.com/errors/not-found', status: '${check.code}', title: 'Not found', detail: 'order ${input.order} is gone' },
    ]);
    const error = await runToFailure(plan, port(), { ctx: { input: { order: 'A-7' } } });
    assert.deepEqual(error.state.error, {
      message: 'Not found',
      type: 'https://example.com/errors/not-found',
      status: 404,
      title: 'Not found',
      detail: 'order A-7 is gone',
      instance: '/steps/1',
      step: 'stop',
    });
  });

  test('structured errors: a handler sees {type, status, title, detail, instance} of the innermost failing step, and raise keeps them through re-raise', async () => {
    const plan = planOf(
      [
        {
          id: 'outer',
          type: 'conditional',
          condition: 'true',
          then: [{ id: 'inner', type: 'fail', error: 'quota', error_type: 'Quota', status: 429, title: 'Too many', detail: '5 of 5 used' }],
        },
        skill('plain', 'flaky'),
      ],
      {
        error_handling: {
          per_step: {
            outer: {
              strategy: 'custom',
              handler: [
                skill('seen', 'echo', { inputs: { caught: '${error}' } }),
                { id: 'again', type: 'fail', raise: '${error}', detail: 'still ${error.detail}' },
              ],
            },
          },
        },
      },
    );
    const p = port({ activities: { flaky: { error: new StepCallError('down', 'NetworkError') } } });
    const error = await runToFailure(plan, p);
    const seen = p.activities.find((a) => a.call.stepId === 'seen')?.call.input as { caught: unknown };
    assert.deepEqual(seen.caught, { message: 'quota', type: 'Quota', status: 429, title: 'Too many', detail: '5 of 5 used', instance: '/steps/0/then/0', step: 'inner' });
    // Raised again: the type, status, title and instance it had, the detail the handler gave.
    assert.deepEqual(error.state.error, { message: 'quota', type: 'Quota', status: 429, title: 'Too many', detail: 'still 5 of 5 used', instance: '/steps/0/then/0', step: 'again' });
  });

  test('structured errors: any caught failure has an instance, the failing step\'s JSON Pointer (a skill error here)', async () => {
    const plan = planOf([skill('call', 'flaky', { retry: { max_attempts: 1 } })], {
      error_handling: { per_step: { call: { strategy: 'custom', handler: [{ id: 'note', type: 'set', values: { where: '${error.instance}', why: '${error.type}' } }] } } },
    });
    const p = port({ activities: { flaky: { error: new StepCallError('down', 'NetworkError') } } });
    const { state } = await runToEnd(plan, p);
    assert.deepEqual([state.vars.where, state.vars.why], ['/steps/0', 'NetworkError']);
    assert.equal(state.steps.call?.error?.instance, undefined, "the step's recorded error keeps its shape; the handler's view adds the place");
  });

  test('structured errors: raise of something that is not an error object fails with InvalidRaise; a fail step needs a message', async () => {
    const error = await runToFailure(planOf([{ id: 'r', type: 'fail', raise: '${input}' }]), port(), { ctx: { input: 'text' } });
    assert.equal(error.state.error?.type, 'InvalidRaise');
    const { problems } = compileDefinition(definitionSchema.parse({ name: 'x', version: '1.0.0', steps: [{ id: 'f', type: 'fail', status: 500 }] }));
    assert.deepEqual(problems.map((pr) => [pr.pointer, pr.message]), [['/steps/0', 'a fail step needs a message: error, title, or raise (a caught error raised again)']]);
  });

  test('fail without error_type uses WorkflowFailed', async () => {
    const error = await runToFailure(planOf([{ id: 'stop', type: 'fail', error: 'no' }]), port());
    assert.equal(error.state.error?.type, 'WorkflowFailed');
  });

  test('succeed ends the run early with its output; later steps never run', async () => {
    const plan = planOf([
      skill('a', 'echo', { inputs: { n: 1 } }),
      { id: 'done', type: 'succeed', output: { n: '${a.n}', why: 'early' }, if: 'a.n == 1' },
      skill('never', 'never'),
    ]);
    const p = port();
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(output, { n: 1, why: 'early' });
    assert.deepEqual(state.output, output);
    assert.equal(state.status, 'completed');
    assert.deepEqual(p.names(), ['echo']);
    assert.deepEqual(state.steps.never, { status: 'pending' });
    assert.equal(state.steps.done?.status, 'completed');
  });

  test('succeed nested in a loop inside a conditional ends the whole run', async () => {
    const plan = planOf([
      {
        id: 'loop',
        type: 'loop',
        condition: 'true',
        max_iterations: 10,
        steps: [
          skill('work', 'work', { inputs: { i: '${iteration}' } }),
          { id: 'check', type: 'conditional', condition: 'iteration == 2', then: [{ id: 'stop', type: 'succeed', output: '${iteration}' }] },
        ],
      },
      skill('never', 'never'),
    ]);
    const p = port();
    const { output, state } = await runToEnd(plan, p);
    assert.equal(output, 2);
    assert.equal(p.activities.length, 3);
    assert.equal(state.status, 'completed');
    assert.equal(state.steps.loop?.status, 'completed');
  });

  test('succeed without output builds the definition output', async () => {
    const plan = planOf([skill('a', 'echo', { inputs: { n: 5 } }), { id: 'done', type: 'succeed' }], { output: { n: 'a.n' } });
    const { output } = await runToEnd(plan, port());
    assert.deepEqual(output, { n: 5 });
  });

  test('the definition output reads every step, keeps value types, and interpolates strings', async () => {
    const plan = planOf([skill('a', 'echo', { inputs: { n: 7, tags: ['x'] } }), skill('b', 'echo', { inputs: { summary: 'fine' } })], {
      output: { summary: '${steps.b.output.summary}', n: '${a.n}', label: 'n=${a.n} tags=${a.tags}', bare: 'a.tags', fixed: 'hello.world' },
    });
    const { output } = await runToEnd(plan, port());
    assert.deepEqual(output, { summary: 'fine', n: 7, label: 'n=7 tags=["x"]', bare: ['x'], fixed: 'hello.world' });
  });

  test('an output that cannot be built fails the run', async () => {
    const plan = planOf([skill('a', 'echo', { inputs: { n: 1 } })], { output: { x: '${steps.a.output.missing}' } });
    const error = await runToFailure(plan, port());
    assert.equal(error.state.status, 'failed');
    assert.equal(error.state.error?.type, 'ExpressionError');
    assert.equal(error.state.steps.a?.status, 'completed');
  });
});

describe('engine: error policies', () => {
  test('halt (the default): the run fails, later steps stay pending, the message counts attempts', async () => {
    const plan = planOf([skill('a'), skill('b', 'flaky'), skill('c')]);
    const p = port({ activities: { flaky: fail('GET answered 503', 'HttpStatus503', { attempts: 3 }) } });
    const error = await runToFailure(plan, p);
    assert.equal(error.message, 'step "b" failed after 3 attempt(s): GET answered 503');
    assert.deepEqual(error.state.error, { message: 'GET answered 503', type: 'HttpStatus503', attempts: 3, step: 'b' });
    assert.deepEqual(error.state.steps.b, { status: 'failed', error: { message: 'GET answered 503', type: 'HttpStatus503', attempts: 3 } });
    assert.deepEqual(error.state.steps.c, { status: 'pending' });
    assert.equal(error.state.currentStep, undefined);
  });

  test('per_step skip (seed 002 `strategy: skip, continue_on_error: true`): recorded, output null, the run goes on', async () => {
    const plan = planOf([skill('fetch-data', 'down'), skill('analyze', 'echo', { inputs: { status: '${steps.fetch-data.status}' } })], {
      error_handling: { default: 'halt', per_step: { 'fetch-data': { strategy: 'skip', continue_on_error: true } } },
    });
    const { output, state } = await runToEnd(plan, port({ activities: { down: fail('nope', 'Boom', { attempts: 1 }) } }));
    assert.equal(state.status, 'completed');
    assert.deepEqual(state.steps['fetch-data'], {
      status: 'failed',
      continued: true,
      output: null,
      error: { message: 'nope', type: 'Boom', attempts: 1 },
    });
    assert.deepEqual(output, { status: 'failed' });
    assert.equal(state.error, undefined);
  });

  test('continue_on_error on the step itself skips, even under default halt', async () => {
    const plan = planOf([skill('a', 'down', { continue_on_error: true }), skill('b', 'echo', { inputs: { v: 1 } })]);
    const { output, state } = await runToEnd(plan, port({ activities: { down: fail('x', 'X') } }));
    assert.equal(state.steps.a?.continued, true);
    assert.deepEqual(output, { v: 1 });
  });

  test('default skip: a failed last step leaves the run output at the failed step\'s null', async () => {
    const plan = planOf([skill('a', 'echo', { inputs: { v: 1 } }), skill('b', 'down')], { error_handling: { default: 'skip' } });
    const { output, state } = await runToEnd(plan, port({ activities: { down: fail('x', 'X') } }));
    assert.equal(state.status, 'completed');
    assert.equal(output, null);
  });

  test('a skipped failure inside a for_each iteration lets the other iterations finish', async () => {
    const plan = planOf(
      [{ id: 'each', type: 'for_each', items: [1, 2, 3], steps: [skill('work', 'work', { inputs: { n: '${item}' } })] }],
      { error_handling: { per_step: { work: { strategy: 'skip' } } } },
    );
    const p = port({
      activities: {
        work: (call) => {
          if ((call.input as { n: number }).n === 2) throw new StepCallError('bad', 'Bad');
          return (call.input as { n: number }).n * 10;
        },
      },
    });
    const { output } = await runToEnd(plan, p);
    assert.deepEqual(output, [10, null, 30]);
  });

  test('per_step retry hands attempts and backoff to the activity retry policy; the default applies after', async () => {
    const plan = planOf([skill('fetch-data', 'down')], {
      error_handling: { default: 'skip', per_step: { 'fetch-data': { strategy: 'retry', max_attempts: 5, backoff: 'fixed' } } },
    });
    const p = port({ activities: { down: fail('x', 'X', { attempts: 5 }) } });
    const { state } = await runToEnd(plan, p);
    assert.equal(p.activities.length, 1, 'exponential and fixed retries happen inside the activity call');
    assert.equal(p.activities[0]?.call.retry.maxAttempts, 5);
    assert.equal(p.activities[0]?.call.retry.backoffCoefficient, 1);
    assert.equal(state.steps['fetch-data']?.continued, true, 'after the retries the default (skip) applied');
  });

  test('linear backoff: the engine retries itself, one attempt per call, sleeping initial_interval × attempt', async () => {
    const plan = planOf([skill('a', 'flaky', { retry: { max_attempts: 4, backoff: 'linear', initial_interval: 2 } })]);
    const p = port({ activities: { flaky: [fail('1', 'Flaky'), fail('2', 'Flaky'), fail('3', 'Flaky'), ok('fine')] } });
    const { output, state } = await runToEnd(plan, p);
    assert.equal(output, 'fine');
    assert.deepEqual(p.activities.map((r) => r.call.retry.maxAttempts), [1, 1, 1, 1]);
    assert.deepEqual(p.sleeps.map((s) => s.ms), [2000, 4000, 6000]);
    assert.deepEqual(p.activities.map((r) => r.startedAt), [0, 2000, 6000, 12_000]);
    assert.equal(state.steps.a?.status, 'completed');
  });

  test('linear backoff is capped by max_interval and reports the attempts when it gives up', async () => {
    const plan = planOf([skill('a', 'flaky', { retry: { max_attempts: 4, backoff: 'linear', initial_interval: 2, max_interval: 3 } })]);
    const p = port({ activities: { flaky: fail('still down', 'Flaky') } });
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.sleeps.map((s) => s.ms), [2000, 3000, 3000]);
    assert.deepEqual(error.state.error, { message: 'still down', type: 'Flaky', attempts: 4, step: 'a' });
  });

  test('linear backoff stops at once on a non-retryable error type', async () => {
    const plan = planOf([skill('a', 'flaky', { retry: { max_attempts: 4, backoff: 'linear', non_retryable_errors: ['Fatal'] } })]);
    const p = port({ activities: { flaky: [fail('1', 'Flaky'), fail('2', 'Fatal'), ok('never')] } });
    const error = await runToFailure(plan, p);
    assert.equal(p.activities.length, 2);
    assert.deepEqual(p.sleeps.map((s) => s.ms), [1000]);
    assert.equal(error.state.error?.type, 'Fatal');
    assert.equal(error.state.error?.attempts, 2);
  });

  test('a composite step with retry starts over after an exponential backoff', async () => {
    const plan = planOf([
      {
        id: 'group',
        type: 'conditional',
        condition: 'true',
        retry: { max_attempts: 3 },
        then: [skill('one', 'one'), skill('two', 'two')],
      },
    ]);
    const p = port({ activities: { two: [fail('a', 'X'), fail('b', 'X'), ok('third time')] } });
    const { output } = await runToEnd(plan, p);
    assert.equal(output, 'third time');
    assert.deepEqual(p.names(), ['one', 'two', 'one', 'two', 'one', 'two']);
    assert.deepEqual(p.sleeps.map((s) => s.ms), [1000, 2000]);
  });

  test('custom handler (per_step): sees `error`, and its output replaces the step\'s', async () => {
    const plan = planOf([skill('fetch-data', 'down'), skill('next', 'echo', { inputs: { got: 'fetch-data.fallback' } })], {
      error_handling: {
        per_step: {
          'fetch-data': {
            strategy: 'custom',
            handler: [skill('recover', 'echo', { inputs: { fallback: 'cached', why: '${error.message}', type: '${error.type}', step: '${error.step}' } })],
          },
        },
      },
    });
    const p = port({ activities: { down: fail('timeout talking to upstream', 'Timeout') } });
    const { output, state } = await runToEnd(plan, p);
    assert.deepEqual(p.activities[1]?.call.input, { fallback: 'cached', why: 'timeout talking to upstream', type: 'Timeout', step: 'fetch-data' });
    assert.equal(state.steps['fetch-data']?.status, 'completed');
    assert.equal(state.steps['fetch-data']?.handled, true);
    assert.deepEqual(state.steps['fetch-data']?.output, { fallback: 'cached', why: 'timeout talking to upstream', type: 'Timeout', step: 'fetch-data' });
    assert.deepEqual(output, { got: 'cached' });
  });

  // BUG (interpreter/engine.ts, runStep's `custom` case): the handler's steps keep their
  // `completed` state after the first run, so later failures reuse the first handler output.
  test('custom handler for a step that fails in every loop iteration runs every time', async () => {
    const plan = planOf(
      [
        {
          id: 'loop',
          type: 'loop',
          condition: 'iteration < 3',
          max_iterations: 5,
          steps: [skill('work', 'down', { inputs: { i: '${iteration}' } })],
        },
      ],
      {
        error_handling: {
          per_step: { work: { strategy: 'custom', handler: [skill('recover', 'echo', { inputs: { failed: '${error.message}', i: '${iteration}' } })] } },
        },
      },
    );
    const p = port({ activities: { down: (call) => { throw new StepCallError(`failed ${(call.input as { i: number }).i}`, 'Down'); } } });
    const { output } = await runToEnd(plan, p);
    assert.deepEqual(
      p.activities.filter((r) => r.call.name === 'echo').map((r) => r.call.input),
      [
        { failed: 'failed 0', i: 0 },
        { failed: 'failed 1', i: 1 },
        { failed: 'failed 2', i: 2 },
      ],
    );
    assert.deepEqual(output, { failed: 'failed 2', i: 2 });
  });

  test('the shared handler (per_step "custom" without its own) runs for each failing step with that step\'s error', async () => {
    const plan = planOf([skill('a', 'down-a'), skill('b', 'down-b')], {
      error_handling: {
        per_step: { a: { strategy: 'custom' }, b: { strategy: 'custom' } },
        handler: [skill('recover', 'echo', { inputs: { step: '${error.step}', why: '${error.message}' } })],
      },
    });
    const p = port({ activities: { 'down-a': fail('a broke', 'A'), 'down-b': fail('b broke', 'B') } });
    const { state } = await runToEnd(plan, p);
    assert.deepEqual(state.steps.a?.output, { step: 'a', why: 'a broke' });
    assert.deepEqual(state.steps.b?.output, { step: 'b', why: 'b broke' });
  });

  // BUG (interpreter/engine.ts, runStep): when evaluating `if` throws, the step fails with a
  // StepFailure thrown straight from the `if` block, bypassing step.onError; the same error in a
  // loop condition does respect continue_on_error.
  test('an `if` that cannot be evaluated is a step failure under the step\'s error policy', async () => {
    const plan = planOf([skill('a', 'echo', { if: 'number(input.x) > 1', continue_on_error: true }), skill('b', 'echo', { inputs: { v: 1 } })]);
    const { state, output } = await runToEnd(plan, port(), { ctx: { input: { x: 'abc' } } });
    assert.equal(state.steps.a?.status, 'failed');
    assert.equal(state.steps.a?.continued, true);
    assert.equal(state.steps.a?.error?.type, 'ExpressionError');
    assert.deepEqual(output, { v: 1 });
  });

  test('a loop condition that cannot be evaluated is a step failure under the step\'s error policy', async () => {
    const plan = planOf([
      { id: 'l', type: 'loop', condition: 'number(input.x) > 1', max_iterations: 2, continue_on_error: true, steps: [skill('b')] },
      skill('c', 'echo', { inputs: { v: 1 } }),
    ]);
    const { state, output } = await runToEnd(plan, port(), { ctx: { input: { x: 'abc' } } });
    assert.equal(state.steps.l?.error?.type, 'ExpressionError');
    assert.equal(state.steps.l?.continued, true);
    assert.deepEqual(output, { v: 1 });
  });

  test('a failing custom handler fails the run', async () => {
    const plan = planOf([skill('a', 'down')], {
      error_handling: { per_step: { a: { strategy: 'custom', handler: [{ id: 'give-up', type: 'fail', error: 'handler gave up on ${error.message}' }] } } },
    });
    const error = await runToFailure(plan, port({ activities: { down: fail('boom', 'Boom') } }));
    assert.equal(error.state.error?.message, 'handler gave up on boom');
    assert.equal(error.state.error?.step, 'give-up');
  });
});

describe('engine: rollback', () => {
  const sagaSteps = (): Json[] => [
    skill('reserve', 'reserve', {
      inputs: { sku: 'x' },
      compensate: [skill('release', 'release', { inputs: { reservation: 'reserve.id', because: '${error.message}' } })],
    }),
    skill('charge', 'charge', {
      compensate: [skill('refund', 'refund', { inputs: { charge: '${steps.charge.output.id}', because: '${error.type}' } })],
    }),
    skill('ship', 'ship'),
  ];
  const sagaPort = (extra: FakePortOptions['activities'] = {}) =>
    port({ activities: { reserve: ok({ id: 'r-1' }), charge: ok({ id: 'c-1' }), ship: fail('no courier', 'NoCourier'), ...extra } });

  test('compensations run newest first with the step output and `error`, then rollback.steps (skill names), and the run fails with the original error', async () => {
    const plan = planOf(sagaSteps(), { error_handling: { rollback: { enabled: true, steps: ['cleanup'] } } });
    const p = sagaPort();
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.names(), ['reserve', 'charge', 'ship', 'refund', 'release', 'cleanup']);
    assert.deepEqual(p.activities[3]?.call.input, { charge: 'c-1', because: 'NoCourier' });
    assert.deepEqual(p.activities[4]?.call.input, { reservation: 'r-1', because: 'no courier' });
    assert.equal(p.activities[3]?.call.stepPath, 'charge/compensate/refund');
    assert.equal(p.activities[5]?.call.stepPath, 'rollback/rollback-1-cleanup');
    assert.deepEqual(error.state.error, { message: 'no courier', type: 'NoCourier', step: 'ship' });
    assert.equal(error.message, 'step "ship" failed: no courier (rolled back)');
    assert.deepEqual(error.state.rollback, { status: 'completed', compensated: ['charge', 'reserve'], errors: [] });
    assert.equal(error.state.steps.refund?.status, 'completed');
    assert.equal(error.state.status, 'failed');
  });

  test('rollback.steps may be full steps that read `error` and earlier outputs', async () => {
    const plan = planOf([skill('a', 'echo', { inputs: { v: 1 } }), skill('b', 'down')], {
      error_handling: { rollback: { enabled: true, steps: [skill('notify', 'notify', { inputs: { a: 'a.v', failed: '${error.step}' } })] } },
    });
    const p = port({ activities: { down: fail('x', 'X') } });
    await runToFailure(plan, p);
    assert.deepEqual(p.activities[2]?.call.input, { a: 1, failed: 'b' });
  });

  test('a failing compensation is recorded, the others still run, and the run fails with the original error', async () => {
    const plan = planOf(sagaSteps(), { error_handling: { rollback: { enabled: true, steps: ['cleanup'] } } });
    const p = sagaPort({ refund: fail('refund service down', 'RefundDown') });
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.names(), ['reserve', 'charge', 'ship', 'refund', 'release', 'cleanup']);
    assert.deepEqual(error.state.rollback, {
      status: 'failed',
      compensated: ['reserve'],
      errors: [{ message: 'refund service down', type: 'RefundDown', step: 'charge' }],
    });
    assert.deepEqual(error.state.error, { message: 'no courier', type: 'NoCourier', step: 'ship' });
    assert.equal(error.message, 'step "ship" failed: no courier (rolled back with errors)');
  });

  test('a per_step "rollback" strategy rolls back even though rollback is not enabled by default', async () => {
    const plan = planOf(sagaSteps(), { error_handling: { per_step: { ship: { strategy: 'rollback' } } } });
    const p = sagaPort();
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.names(), ['reserve', 'charge', 'ship', 'refund', 'release']);
    assert.equal(error.state.rollback?.status, 'completed');
  });

  test('a "rollback" failure is not swallowed by an outer skip policy', async () => {
    const plan = planOf(
      [
        skill('reserve', 'reserve', { compensate: [skill('release', 'release')] }),
        { id: 'group', type: 'conditional', condition: 'true', then: [skill('ship', 'ship')] },
        skill('after', 'after'),
      ],
      { error_handling: { per_step: { ship: { strategy: 'rollback' }, group: { strategy: 'skip' } } } },
    );
    const p = port({ activities: { ship: fail('no courier', 'NoCourier') } });
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.names(), ['reserve', 'ship', 'release']);
    assert.equal(error.state.steps.group?.status, 'failed');
    assert.equal(error.state.steps.group?.continued, undefined);
  });

  // BUG (interpreter/engine.ts, runParallel): a branch failure whose policy is "rollback" is
  // counted as one failed branch; with wait_for "any" or N another branch completing swallows it,
  // and the run completes without rolling back (elsewhere `error.rollback` is never swallowed).
  test('a "rollback" failure in a parallel branch is not swallowed by wait_for "any"', async () => {
    const plan = planOf(
      [
        skill('reserve', 'reserve', { compensate: [skill('release', 'release')] }),
        { id: 'p', type: 'parallel', wait_for: 'any', steps: [skill('a', 'down'), skill('b', 'slow')] },
        skill('after', 'after'),
      ],
      { error_handling: { per_step: { a: { strategy: 'rollback' } } } },
    );
    const p = port({ activities: { down: fail('x', 'X'), slow: ok(1, 1000) } });
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.names(), ['reserve', 'down', 'slow', 'release']);
    assert.equal(error.state.rollback?.status, 'completed');
  });

  test('a step that never completed is not compensated', async () => {
    const plan = planOf(
      [skill('a', 'echo', { compensate: [skill('undo-a', 'undo')] }), skill('b', 'down', { compensate: [skill('undo-b', 'undo')] })],
      { error_handling: { rollback: { enabled: true } } },
    );
    const p = port({ activities: { down: fail('x', 'X') } });
    const error = await runToFailure(plan, p);
    assert.deepEqual(p.stepIds(), ['a', 'b', 'undo-a']);
    assert.deepEqual(error.state.rollback?.compensated, ['a']);
  });

  // BUG (interpreter/engine.ts, rollback()): after the first record's compensation runs, its step
  // states are copied into the run's own state, so the next record of the same step (another
  // iteration) finds `unbook` completed and skips it, yet still counts as compensated.
  test('compensation of a for_each body step runs once per completed iteration, with its item bound', async () => {
    const plan = planOf(
      [
        {
          id: 'each',
          type: 'for_each',
          items: ['x', 'y'],
          steps: [skill('book', 'book', { inputs: { what: '${item}' }, compensate: [skill('unbook', 'unbook', { inputs: { what: '${item}', i: '${index}' } })] })],
        },
        skill('fail-now', 'down'),
      ],
      { error_handling: { rollback: { enabled: true } } },
    );
    const p = port({ activities: { down: fail('x', 'X') } });
    await runToFailure(plan, p);
    assert.deepEqual(
      p.activities.filter((r) => r.call.name === 'unbook').map((r) => [r.call.input, r.call.stepPath]),
      [
        [{ what: 'y', i: 1 }, 'each[1]/book/compensate/unbook'],
        [{ what: 'x', i: 0 }, 'each[0]/book/compensate/unbook'],
      ],
    );
  });

  test('compensation of a step in a loop runs for every completed iteration', async () => {
    const plan = planOf(
      [
        {
          id: 'loop',
          type: 'loop',
          condition: 'iteration < 3',
          max_iterations: 5,
          steps: [skill('book', 'book', { inputs: { n: '${iteration}' }, compensate: [skill('unbook', 'unbook', { inputs: { n: 'book.n' } })] })],
        },
        skill('fail-now', 'down'),
      ],
      { error_handling: { rollback: { enabled: true } } },
    );
    const p = port({ activities: { down: fail('x', 'X') } });
    const error = await runToFailure(plan, p);
    assert.deepEqual(
      p.activities.filter((r) => r.call.name === 'unbook').map((r) => r.call.input),
      [{ n: 2 }, { n: 1 }, { n: 0 }],
    );
    assert.deepEqual(error.state.rollback?.compensated, ['book', 'book', 'book']);
  });

  test('cancelling the run rolls back when rollback is enabled: compensations run shielded from the cancellation', async () => {
    const plan = planOf(
      [
        skill('reserve', 'reserve', { compensate: [skill('release', 'release'), { id: 'settle', type: 'wait', duration: '10s' }] }),
        skill('long', 'long'),
      ],
      { error_handling: { rollback: { enabled: true, steps: ['cleanup'] } } },
    );
    const p = port({ activities: { long: ok('never', 3_600_000), release: ok('released', 5000) } });
    p.cancelRunAt(60_000);
    const state = initialRunState(plan, {});
    await assert.rejects(
      executePlan(plan, { input: {}, signal: {}, context: { readonly: {} }, run: {} }, p, state),
      (error: unknown) => error instanceof FakeCancelled,
    );
    assert.deepEqual(p.names(), ['reserve', 'long', 'release', 'cleanup']);
    assert.deepEqual(p.activities.map((r) => r.outcome), ['completed', 'cancelled', 'completed', 'completed']);
    assert.deepEqual(p.activities.map((r) => r.shielded), [false, false, true, true]);
    assert.equal(p.sleeps.find((s) => s.ms === 10_000)?.outcome, 'fired', 'a wait inside compensation is not cancelled either');
    assert.equal(p.elapsed, 60_000 + 5000 + 10_000);
    assert.equal(state.status, 'cancelled');
    assert.equal(state.steps.long?.status, 'cancelled');
    assert.deepEqual(state.rollback, { status: 'completed', compensated: ['reserve'], errors: [] });
  });

  test('cancelling a run without rollback just cancels: nothing is compensated', async () => {
    const plan = planOf([skill('a', 'echo'), { id: 'w', type: 'wait', duration: '1h' }, skill('never')]);
    const p = port();
    p.cancelRunAt(1000);
    const state = initialRunState(plan, {});
    await assert.rejects(executePlan(plan, { input: {}, signal: {}, context: { readonly: {} }, run: {} }, p, state), FakeCancelled);
    assert.equal(state.status, 'cancelled');
    assert.deepEqual(state.steps.w, { status: 'cancelled', error: { message: 'cancelled', type: 'Cancelled' } });
    assert.deepEqual(state.steps.never, { status: 'pending' });
    assert.equal(state.rollback, undefined);
    assert.equal(p.sleeps[0]?.outcome, 'cancelled');
  });

  test('cancellation is never swallowed by a skip policy or a custom handler', async () => {
    for (const errorHandling of [
      { default: 'skip' },
      { per_step: { w: { strategy: 'custom', handler: [skill('h', 'handler')] } } },
    ]) {
      const plan = planOf([{ id: 'w', type: 'wait_for_event', event: 'go' }, skill('after')], { error_handling: errorHandling });
      const p = port();
      p.cancelRunAt(500);
      const state = initialRunState(plan, {});
      await assert.rejects(executePlan(plan, { input: {}, signal: {}, context: { readonly: {} }, run: {} }, p, state), FakeCancelled);
      assert.equal(state.status, 'cancelled', JSON.stringify(errorHandling));
      assert.equal(p.activities.length, 0, JSON.stringify(errorHandling));
      assert.equal(p.eventWaits[0]?.outcome, 'cancelled');
    }
  });
});

describe('engine: resource_limits.max_concurrent_steps', () => {
  test('caps activities in flight across parallel branches and for_each iterations', async () => {
    const plan = planOf(
      [
        {
          id: 'p',
          type: 'parallel',
          steps: [
            skill('a', 'work'),
            skill('b', 'work'),
            { id: 'each', type: 'for_each', items: [1, 2, 3], max_concurrency: 3, steps: [skill('c', 'work')] },
            { id: 'child', type: 'sub_workflow', definition: 'sub', version: '1.0.0' },
          ],
        },
      ],
      { resource_limits: { max_concurrent_steps: 2 } },
    );
    const p = port({ activities: { work: ok('done', 1000) } });
    await runToEnd(plan, p);
    assert.equal(p.activities.length, 5);
    assert.equal(p.peakInFlight(), 2);
    assert.ok(p.elapsed >= 3000, `five 1 s activities two at a time take at least 3 s (took ${p.elapsed})`);
  });

  test('without the limit the same activities all overlap', async () => {
    const plan = planOf([{ id: 'p', type: 'parallel', steps: ['a', 'b', 'c', 'd'].map((id) => skill(id, 'work')) }]);
    const p = port({ activities: { work: ok('done', 1000) } });
    await runToEnd(plan, p);
    assert.equal(p.peakInFlight(), 4);
    assert.equal(p.elapsed, 1000);
  });
});

describe('engine: more limits and control flow', () => {
  test('a timeout on a parallel step cancels its branches and fails with Timeout', async () => {
    const plan = planOf([{ id: 'p', type: 'parallel', timeout: 5, steps: [skill('a', 'slow'), skill('b', 'slow')] }]);
    const p = port({ activities: { slow: ok('late', 10_000) } });
    const error = await runToFailure(plan, p);
    assert.equal(error.state.steps.p?.error?.type, 'Timeout');
    assert.deepEqual(p.activities.map((r) => r.outcome), ['cancelled', 'cancelled']);
    assert.equal(error.state.steps.a?.status, 'cancelled');
    assert.equal(p.elapsed, 5000);
  });

  test('an output larger than the limit fails the step with OutputTooLarge', async () => {
    const plan = planOf([skill('big', 'big')]);
    const error = await runToFailure(plan, port({ activities: { big: ok('x'.repeat(LIMITS.maxStepOutputBytes + 1)) } }));
    assert.equal(error.state.steps.big?.error?.type, 'OutputTooLarge');
  });

  test('succeed in a parallel branch ends the run and cancels the other branches', async () => {
    const plan = planOf([{ id: 'p', type: 'parallel', steps: [{ id: 'won', type: 'succeed', output: 'won' }, skill('w', 'slow')] }, skill('never', 'never')]);
    const p = port({ activities: { slow: ok(1, 1000) } });
    const { output, state } = await runToEnd(plan, p);
    assert.equal(output, 'won');
    assert.deepEqual(p.activities.map((r) => [r.call.name, r.outcome]), [['slow', 'cancelled']]);
    assert.equal(state.steps.w?.status, 'cancelled');
    assert.deepEqual(state.steps.never, { status: 'pending' });
  });

  test('a retried for_each starts over with fresh results', async () => {
    const plan = planOf([{ id: 'e', type: 'for_each', items: [1, 2], retry: { max_attempts: 2 }, steps: [skill('w', 'flaky', { inputs: { i: '${item}' } })] }]);
    const p = port({ activities: { flaky: [ok('1a'), fail('x', 'X'), ok('1b'), ok('2b')] } });
    const { output } = await runToEnd(plan, p);
    assert.deepEqual(output, ['1b', '2b']);
    assert.deepEqual(p.sleeps.map((x) => x.ms), [1000]);
  });

  test('cancelling the run during a linear-backoff sleep cancels the step', async () => {
    const plan = planOf([skill('a', 'flaky', { retry: { max_attempts: 3, backoff: 'linear', initial_interval: 10 } })]);
    const p = port({ activities: { flaky: fail('x', 'X') } });
    p.cancelRunAt(5000);
    const state = initialRunState(plan, {});
    await assert.rejects(executePlan(plan, { input: {}, signal: {}, context: { readonly: {} }, run: {} }, p, state), FakeCancelled);
    assert.equal(state.steps.a?.status, 'cancelled');
    assert.equal(p.activities.length, 1);
    assert.equal(p.sleeps[0]?.outcome, 'cancelled');
  });

  test('a composite step with continue_on_error records the inner failure and the run goes on', async () => {
    const plan = planOf([
      { id: 'g', type: 'conditional', condition: 'true', continue_on_error: true, then: [skill('x', 'down')] },
      skill('after', 'echo', { inputs: { g: '${steps.g.status}', inner: '${steps.g.error.step}' } }),
    ]);
    const { output, state } = await runToEnd(plan, port({ activities: { down: fail('x', 'X') } }));
    assert.deepEqual(output, { g: 'failed', inner: 'x' });
    assert.deepEqual(state.steps.g?.error, { message: 'x', type: 'X', step: 'x' });
  });
});

describe('engine: continue-as-new', () => {
  /** Runs the plan once straight through and once continuing as new after every `n` activity calls. */
  async function compare(steps: Json[], n: number, extra: Json = {}, options: FakePortOptions = {}, vars: Record<string, unknown> = {}) {
    const plan = planOf(steps, extra);
    const straight = port(options);
    const expected = await runToEnd(plan, straight, { vars });
    assert.equal(expected.carried.length, 0);
    const continued = port({ ...options, continueAsNewAfterActivityCalls: n });
    const actual = await runToEnd(plan, continued, { vars });
    const calls = (p: FakePort) => p.activities.map((r) => [r.call.stepPath, r.call.input]);
    assert.deepEqual(actual.output, expected.output, 'same output');
    assert.deepEqual(calls(continued), calls(straight), 'the same calls, none repeated, none lost');
    assert.deepEqual(actual.state.vars, expected.state.vars);
    assert.equal(actual.state.continuedAsNew, actual.carried.length);
    assert.equal(continued.runs, actual.carried.length + 1);
    const strip = (s: RunState) => ({ ...s, continuedAsNew: 0 });
    assert.deepEqual(strip(actual.state), strip(expected.state), 'the same final state');
    return { plan, expected, actual, straight, continued };
  }

  test('a top-level sequence continues before the next step and resumes where it stopped', async () => {
    const steps = [
      skill('a', 'echo', { inputs: { v: 1 } }),
      skill('b', 'echo', { inputs: { v: '${a.v + 1}' } }),
      { id: 'w', type: 'wait', duration: '5s' },
      skill('c', 'echo', { inputs: { v: '${b.v + 1}' } }),
      skill('d', 'echo', { inputs: { all: ['a.v', 'b.v', 'c.v'] } }),
    ];
    const { actual, continued } = await compare(steps, 1);
    assert.equal(actual.carried.length, 3);
    assert.deepEqual(
      actual.carried.map((s) => Object.entries(s.steps).filter(([, st]) => st.status === 'completed').map(([id]) => id)),
      // After every activity call: before b, before w (b called one), before d. The wait made no call.
      [['a'], ['a', 'b'], ['a', 'b', 'w', 'c']],
    );
    assert.deepEqual(actual.output, { all: [1, 2, 3] });
    assert.equal(continued.elapsed, 5000);
  });

  test('inside a loop: resumes in the middle of an iteration with `iteration` and variables intact', async () => {
    const steps = [
      {
        id: 'loop',
        type: 'loop',
        condition: 'counter < 4',
        max_iterations: 10,
        steps: [
          skill('first', 'echo', { inputs: { i: '${iteration}', c: '${counter}' } }),
          { id: 'inc', type: 'set', values: { counter: '${counter + 1}' } },
          skill('second', 'echo', { inputs: { i: '${iteration}', c: '${counter}', prev: 'first.c' } }),
        ],
      },
      skill('after', 'echo', { inputs: { counter: '${counter}', last: '${steps.loop.output}' } }),
    ];
    for (const n of [1, 2, 3]) {
      const { actual } = await compare(steps, n, { context: { mutable: { counter: 0 } } }, {}, { counter: 0 });
      assert.ok(actual.carried.length > 0);
      assert.ok(
        actual.carried.some((s) => s.steps.loop?.status === 'running' && s.steps.loop.inIteration === true),
        'some continuation happened inside an iteration',
      );
      assert.deepEqual(actual.output, { counter: 4, last: { i: 3, c: 4, prev: 3 } });
    }
  });

  test('inside a sequential for_each: continues between iterations, carrying items, done and results', async () => {
    const steps = [
      {
        id: 'each',
        type: 'for_each',
        items: '${range(0, 6)}',
        steps: [skill('one', 'echo', { inputs: { n: '${item}' } }), skill('two', 'echo', { inputs: { sq: '${one.n * one.n}' } })],
      },
    ];
    for (const n of [1, 2, 5]) {
      const { actual } = await compare(steps, n);
      assert.deepEqual(actual.output, [0, 1, 4, 9, 16, 25].map((sq) => ({ sq })));
      const midway = actual.carried.filter((s) => s.steps.each?.status === 'running');
      assert.ok(midway.length > 0, 'continued while the for_each was under way');
      for (const s of midway) {
        assert.deepEqual(s.steps.each?.items, [0, 1, 2, 3, 4, 5]);
        assert.equal(s.steps.each?.results?.length, s.steps.each?.done);
      }
    }
  });

  test('a concurrent for_each drains its iterations in flight before continuing', async () => {
    const steps = [
      {
        id: 'each',
        type: 'for_each',
        items: [1, 2, 3, 4, 5, 6, 7],
        max_concurrency: 3,
        steps: [skill('work', 'work', { inputs: { n: '${item}' } })],
      },
    ];
    const options: FakePortOptions = { activities: { work: { respond: (call) => call.input, delayMs: (call) => 1000 * (8 - (call.input as { n: number }).n) } } };
    const plan = planOf(steps);
    const straight = port(options);
    const expected = await runToEnd(plan, straight);
    const continued = port({ ...options, continueAsNewAfterActivityCalls: 2 });
    const actual = await runToEnd(plan, continued);
    assert.deepEqual(actual.output, expected.output);
    assert.deepEqual(actual.output, [1, 2, 3, 4, 5, 6, 7].map((n) => ({ n })));
    assert.ok(actual.carried.length > 0);
    assert.deepEqual(
      continued.activities.map((r) => r.call.stepPath).sort(),
      straight.activities.map((r) => r.call.stepPath).sort(),
      'every item ran exactly once',
    );
    for (const s of actual.carried) {
      const each = s.steps.each;
      if (each?.status === 'running') assert.equal(each.results?.filter((r) => r !== undefined && r !== null).length, each.done);
    }
    assert.ok(continued.activities.every((r) => r.outcome === 'completed'), 'nothing was cut off');
  });

  test('never inside a parallel step: branches finish first, even when continue-as-new is due', async () => {
    const steps = [
      skill('before', 'echo', { inputs: { v: 0 } }),
      {
        id: 'par',
        type: 'parallel',
        steps: [
          { id: 'left', type: 'conditional', condition: 'true', then: [skill('l1', 'echo', { inputs: { v: 1 } }), skill('l2', 'echo', { inputs: { v: 2 } }), skill('l3', 'echo', { inputs: { v: 3 } })] },
          {
            id: 'right',
            type: 'loop',
            condition: 'iteration < 3',
            max_iterations: 5,
            steps: [skill('r', 'echo', { inputs: { i: '${iteration}' } })],
          },
          { id: 'inner', type: 'for_each', items: [1, 2, 3], steps: [skill('f', 'echo', { inputs: { n: '${item}' } })] },
        ],
      },
      skill('after', 'echo', { inputs: { v: 9 } }),
    ];
    const { actual, continued } = await compare(steps, 1);
    assert.ok(continued.continueAsNewRequests > 0);
    for (const s of actual.carried) {
      assert.notEqual(s.steps.par?.status, 'running', 'no continuation while the parallel step was under way');
      for (const id of ['left', 'right', 'inner', 'l1', 'l2', 'l3']) assert.notEqual(s.steps[id]?.status, 'running', id);
    }
    assert.deepEqual(
      actual.carried.map((s) => s.steps.par?.status),
      ['pending', 'completed'],
      'continued once before the parallel step and once after it',
    );
  });

  test('nested composites (a loop in a conditional in a loop, a switch, a for_each in a loop) resume exactly', async () => {
    const steps = [
      {
        id: 'outer',
        type: 'loop',
        condition: 'iteration < 3',
        max_iterations: 5,
        steps: [
          skill('o1', 'echo', { inputs: { i: '${iteration}' } }),
          {
            id: 'c',
            type: 'conditional',
            condition: 'iteration != 1',
            then: [
              {
                id: 'inner',
                type: 'loop',
                condition: 'iteration < 2',
                max_iterations: 3,
                steps: [skill('i1', 'echo', { inputs: { j: '${iteration}' } }), skill('i2', 'echo', { inputs: { j: '${iteration}' } })],
              },
            ],
          },
          {
            id: 'sw',
            type: 'switch',
            value: 'iteration',
            cases: [{ equals: 2, steps: [skill('two', 'echo', { inputs: { v: 2 } }), skill('two-b')] }],
            default: [skill('other', 'echo', { inputs: { v: 'o' } }), skill('other-b')],
          },
          { id: 'each', type: 'for_each', items: [1, 2], steps: [skill('w', 'echo', { inputs: { n: '${item}', i: '${iteration}' } })] },
        ],
      },
    ];
    for (const n of [1, 2, 3, 5]) {
      const { actual } = await compare(steps, n);
      assert.ok(actual.carried.length > 0, `n=${n}`);
    }
  });

  test('the carried state is plain JSON and survives a round trip unchanged', async () => {
    const plan = planOf([skill('a'), { id: 'loop', type: 'loop', condition: 'iteration < 2', max_iterations: 3, steps: [skill('b')] }]);
    const { carried } = await runToEnd(plan, port({ continueAsNewAfterActivityCalls: 1 }));
    assert.ok(carried.length >= 2);
    for (const s of carried) assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });

  test('completed steps in a resumed state are not run again', async () => {
    const plan = planOf([skill('a'), skill('b', 'echo', { inputs: { x: 'a.x' } })]);
    const state = initialRunState(plan, {});
    state.steps.a = { status: 'completed', output: { x: 'from before' } };
    const p = port();
    const { output } = await runToEnd(plan, p, { state });
    assert.deepEqual(p.stepIds(), ['b']);
    assert.deepEqual(output, { x: 'from before' });
  });
});

// ---------------------------------------------------------------------------------------------
// Approval steps: the fake port plays the approvers (judge + applyDecision, as the workflow's
// update and signal handlers do) at virtual times after each request.

/** One approver's attempt, `afterMs` after the approval was requested; `step` defaults to the step id. */
interface PlannedDecision {
  afterMs: number;
  principal: string;
  decision?: string;
  comment?: string;
  groups?: string[];
  step?: string;
  via?: 'api' | 'signal';
}

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const RUN = { id: 'run-approve', definition: 'engine-test', version: '1.0.0', startedBy: 'sam' };

/**
 * A FakePort that tracks the live run state (it changes identity at every continue-as-new) and,
 * when an approval is first requested, schedules the decisions `script` plans for it.
 */
class ApproverPort extends FakePort {
  state: RunState | undefined;
  readonly verdicts: Array<{ at: number; principal: string; verdict: Verdict }> = [];
  /** PendingApprovers values at every approvals-changed notice. */
  readonly keys: string[][] = [];
  private readonly scheduled = new Set<string>();

  constructor(
    options: FakePortOptions,
    private readonly script: (record: ApprovalRecord) => PlannedDecision[],
    private readonly directory: Directory = {},
  ) {
    super({ startMs: T0, ...options });
  }

  override onProgress(state: RunState): void {
    this.state = state;
    super.onProgress(state);
  }

  override onApprovalsChanged(state: RunState): void {
    this.state = state;
    super.onApprovalsChanged(state);
    this.keys.push(pendingApproverKeys(state.approvals));
    for (const record of Object.values(state.approvals)) {
      if (record.status !== 'pending' || this.scheduled.has(record.stepPath)) continue;
      this.scheduled.add(record.stepPath);
      for (const planned of this.script(record)) {
        this.at(planned.afterMs, () => this.decide({ ...planned, step: planned.step ?? record.stepId }));
      }
    }
  }

  /** An attempt now, on the current state, as the workflow's handlers make it. */
  decide(planned: Omit<PlannedDecision, 'afterMs'> & { step: string }): Verdict {
    const state = this.state;
    assert.ok(state, 'the run has started');
    const attempt: DecisionAttempt = {
      step: planned.step,
      principal: planned.principal,
      decision: planned.decision ?? 'approve',
      via: planned.via ?? 'api',
      ...(planned.comment ? { comment: planned.comment } : {}),
      ...(planned.groups ? { groups: planned.groups } : {}),
    };
    const verdict = judge(state.approvals, attempt, this.directory);
    if (verdict.ok && !verdict.duplicate) applyDecision(verdict.record, attempt, iso(this.now()));
    this.verdicts.push({ at: this.elapsed, principal: planned.principal, verdict });
    return verdict;
  }
}

const approval = (extra: Json = {}): Json => ({ id: 'sign-off', type: 'approval', approvers: { principals: ['ann', 'ben', 'cat'] }, ...extra });

/** Runs to the end with the approvers' script; the context names the definition and the starter. */
function approve(plan: Plan, script: (record: ApprovalRecord) => PlannedDecision[], options: FakePortOptions = {}, directory: Directory = {}) {
  const p = new ApproverPort(options, script, directory);
  return { p, done: runToEnd(plan, p, { ctx: { run: RUN, input: { amount: 120, vendor: 'ACME' } } }) };
}

function approveToFailure(plan: Plan, script: (record: ApprovalRecord) => PlannedDecision[], options: FakePortOptions = {}) {
  const p = new ApproverPort(options, script);
  return { p, failed: runToFailure(plan, p, { ctx: { run: RUN, input: { amount: 120, vendor: 'ACME' } } }) };
}

const verdictCodes = (p: ApproverPort) => p.verdicts.map((v) => [v.at, v.principal, v.verdict.ok ? (v.verdict.duplicate ? 'duplicate' : 'ok') : v.verdict.code]);

describe('engine: approval', () => {
  test('quorum 2: the first approval waits for a second; the output lists the decisions and the next step reads it', async () => {
    const plan = planOf([
      approval({ quorum: 2 }),
      skill('pay', 'echo', { inputs: { decision: '${steps.sign-off.output.decision}', by: '${steps.sign-off.output.deciders}' } }),
    ]);
    const { p, done } = approve(plan, () => [
      { afterMs: 1000, principal: 'ann', comment: 'invoice checked' },
      { afterMs: 2000, principal: 'ann' },
      { afterMs: 3000, principal: 'ben', via: 'signal' },
    ]);
    const { output, state } = await done;
    assert.deepEqual(output, { decision: 'approve', by: ['ann', 'ben'] });
    assert.equal(p.activities[0]?.startedAt, 3000, 'the next step started when the second approval arrived, not before');
    assert.deepEqual(verdictCodes(p), [[1000, 'ann', 'ok'], [2000, 'ann', 'duplicate'], [3000, 'ben', 'ok']]);
    assert.deepEqual(state.steps['sign-off']?.output, {
      decision: 'approve',
      approved: true,
      deciders: ['ann', 'ben'],
      decisions: [
        { principal: 'ann', decision: 'approve', comment: 'invoice checked', at: iso(T0 + 1000), via: 'api', stage: 0 },
        { principal: 'ben', decision: 'approve', at: iso(T0 + 3000), via: 'signal', stage: 0 },
      ],
      comments: [{ principal: 'ann', comment: 'invoice checked' }],
      timedOut: false,
      escalated: false,
    });
    assert.deepEqual(state.approvals, {
      'sign-off': {
        stepId: 'sign-off',
        stepPath: 'sign-off',
        summary: 'Approve step "sign-off" of engine-test',
        status: 'approved',
        stage: 0,
        approvers: { principals: ['ann', 'ben', 'cat'], groups: [] },
        quorum: 2,
        allowSelfApproval: false,
        startedBy: 'sam',
        requestedAt: iso(T0),
        decisions: (state.steps['sign-off']?.output as { decisions: unknown }).decisions,
      },
    });
    // Requested, then settled: the workflow updates PendingApprovers at each notice.
    assert.deepEqual(p.approvalNotices, [{ 'sign-off': 'pending' }, { 'sign-off': 'approved' }]);
    assert.deepEqual(p.keys, [['user:ann', 'user:ben', 'user:cat'], []]);
    // Waiting is a condition: no timer, no activity.
    assert.deepEqual(p.sleeps, []);
    assert.deepEqual(p.names(), ['echo']);
  });

  test('group approvers: through the attempt\'s groups (API) or the directory (signal); the starter is refused', async () => {
    const plan = planOf([approval({ approvers: { groups: ['finance'] }, quorum: 2 })]);
    const p = new ApproverPort(
      {},
      () => [
        { afterMs: 100, principal: 'sam', groups: ['finance'] },
        { afterMs: 200, principal: 'dave' },
        { afterMs: 300, principal: 'bob', groups: ['finance'] },
        { afterMs: 400, principal: 'carol', via: 'signal' },
      ],
      { finance: ['carol', 'sam'] },
    );
    const { output } = await runToEnd(plan, p, { ctx: { run: RUN } });
    assert.deepEqual(verdictCodes(p), [[100, 'sam', 'self_approval'], [200, 'dave', 'forbidden'], [300, 'bob', 'ok'], [400, 'carol', 'ok']]);
    assert.deepEqual((output as { deciders: string[] }).deciders, ['bob', 'carol']);
  });

  test('allow_self_approval lets the starter decide', async () => {
    const { p, done } = approve(planOf([approval({ approvers: { principals: ['sam'] }, allow_self_approval: true })]), () => [{ afterMs: 10, principal: 'sam' }]);
    const { state } = await done;
    assert.deepEqual(verdictCodes(p), [[10, 'sam', 'ok']]);
    assert.equal(state.approvals['sign-off']?.allowSelfApproval, true);
  });

  test('a rejection fails the run with ApprovalRejected, naming who rejected and why; nothing after it runs', async () => {
    const plan = planOf([approval({ quorum: 2 }), skill('pay')]);
    const { p, failed } = approveToFailure(plan, () => [
      { afterMs: 500, principal: 'ann' },
      { afterMs: 1000, principal: 'ben', decision: 'reject', comment: 'too expensive' },
      { afterMs: 1500, principal: 'cat' },
    ]);
    const error = await failed;
    assert.equal(error.message, 'step "sign-off" failed: approval "sign-off" was rejected by ben: too expensive');
    assert.deepEqual(error.state.steps['sign-off']?.error, { message: 'approval "sign-off" was rejected by ben: too expensive', type: 'ApprovalRejected' });
    assert.deepEqual(error.state.error, { message: 'approval "sign-off" was rejected by ben: too expensive', type: 'ApprovalRejected', step: 'sign-off' });
    assert.deepEqual(error.state.steps.pay, { status: 'pending' });
    assert.equal(p.activities.length, 0);
    assert.equal(error.state.approvals['sign-off']?.status, 'rejected');
    // cat came too late: the approval was settled (the fake clock runs on after the run failed).
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(verdictCodes(p), [[500, 'ann', 'ok'], [1000, 'ben', 'ok'], [1500, 'cat', 'conflict']]);
    assert.deepEqual(p.approvalNotices.at(-1), { 'sign-off': 'rejected' });
  });

  test('a rejection without a comment: "rejected by <principal>"', async () => {
    const { failed } = approveToFailure(planOf([approval()]), () => [{ afterMs: 1, principal: 'cat', decision: 'reject' }]);
    assert.equal((await failed).state.steps['sign-off']?.error?.message, 'approval "sign-off" was rejected by cat');
  });

  test('on_reject continue: the step completes with decision "reject" and a later step branches on it', async () => {
    const plan = planOf([
      approval({ on_reject: 'continue' }),
      {
        id: 'route',
        type: 'conditional',
        condition: "steps.sign-off.output.decision == 'approve'",
        then: [skill('pay', 'echo', { inputs: { paid: true } })],
        else: [skill('notify', 'echo', { inputs: { rejectedBy: '${steps.sign-off.output.deciders[0]}', approved: '${steps.sign-off.output.approved}' } })],
      },
    ]);
    const { done } = approve(plan, () => [{ afterMs: 100, principal: 'cat', decision: 'reject', comment: 'wrong vendor' }]);
    const { output, state } = await done;
    assert.deepEqual(output, { rejectedBy: 'cat', approved: false });
    assert.equal(state.steps['sign-off']?.status, 'completed');
    assert.equal(state.steps.route?.branch, 'else');
    const result = state.steps['sign-off']?.output as Record<string, unknown>;
    assert.deepEqual([result.decision, result.approved, result.comments], ['reject', false, [{ principal: 'cat', comment: 'wrong vendor' }]]);
  });

  test('the summary is a template over the input and earlier steps; the default names the step and the definition', async () => {
    const plan = planOf([
      skill('quote', 'echo', { inputs: { total: 99 } }),
      approval({ id: 'a1', summary: 'Pay ${input.amount} EUR to ${input.vendor} (quote ${quote.total})' }),
      approval({ id: 'a2', summary: '${input.amount}' }),
      approval({ id: 'a3' }),
    ]);
    const { done } = approve(plan, () => [{ afterMs: 1, principal: 'ann' }]);
    const { state } = await done;
    assert.deepEqual(
      Object.values(state.approvals).map((a) => [a.stepId, a.summary]),
      [
        ['a1', 'Pay 120 EUR to ACME (quote 99)'],
        ['a2', '120'],
        ['a3', 'Approve step "a3" of engine-test'],
      ],
    );
    // Without a definition name in the run context.
    const p = new ApproverPort({}, () => [{ afterMs: 1, principal: 'ann' }]);
    const { state: bare } = await runToEnd(planOf([approval()]), p);
    assert.equal(bare.approvals['sign-off']?.summary, 'Approve step "sign-off" of this run');
    assert.equal(bare.approvals['sign-off']?.startedBy, '');
  });

  test('the deadline is requestedAt + timeout on the run\'s clock', async () => {
    const plan = planOf([{ id: 'pause', type: 'wait', duration: '5s' }, approval({ timeout: 60, on_timeout: 'approve' })]);
    const seen: Array<{ requestedAt: string; deadline?: string | undefined; status: string }> = [];
    const p = new ApproverPort({}, (record) => {
      seen.push({ requestedAt: record.requestedAt, deadline: record.deadline, status: record.status });
      return [];
    });
    const { state } = await runToEnd(plan, p, { ctx: { run: RUN } });
    assert.deepEqual(seen, [{ requestedAt: '2030-01-01T00:00:05.000Z', deadline: '2030-01-01T00:01:05.000Z', status: 'pending' }]);
    assert.equal(p.elapsed, 65_000, 'the timeout fired at the deadline');
    assert.equal(state.approvals['sign-off']?.deadline, '2030-01-01T00:01:05.000Z');
    assert.equal(state.approvals['sign-off']?.requestedAt, '2030-01-01T00:00:05.000Z');
  });

  test('on_timeout reject: with on_reject continue the output says reject and timedOut; by default the run fails', async () => {
    const continuing = approve(planOf([approval({ timeout: 60, on_timeout: 'reject', on_reject: 'continue' })]), () => []);
    const { output, state } = await continuing.done;
    assert.deepEqual(output, { decision: 'reject', approved: false, deciders: [], decisions: [], comments: [], timedOut: true, escalated: false });
    assert.deepEqual([state.approvals['sign-off']?.status, state.approvals['sign-off']?.timedOut], ['rejected', true]);
    assert.equal(continuing.p.elapsed, 60_000);

    const failing = approveToFailure(planOf([approval({ quorum: 2, timeout: 60, on_timeout: 'reject' }), skill('after')]), () => [{ afterMs: 1000, principal: 'ann' }]);
    const error = await failing.failed;
    assert.deepEqual(error.state.steps['sign-off']?.error, { message: 'approval "sign-off" was rejected on timeout', type: 'ApprovalRejected' });
  });

  test('on_timeout approve: the approval settles as approved at the deadline, with the decisions made so far', async () => {
    const { p, done } = approve(planOf([approval({ quorum: 2, timeout: 30, on_timeout: 'approve' }), skill('after')]), () => [{ afterMs: 10_000, principal: 'ann' }]);
    const { state } = await done;
    const result = state.steps['sign-off']?.output as Record<string, unknown>;
    assert.deepEqual([result.decision, result.approved, result.deciders, result.timedOut], ['approve', true, ['ann'], true]);
    assert.equal(p.activities[0]?.startedAt, 30_000);
    assert.deepEqual(p.approvalNotices, [{ 'sign-off': 'pending' }, { 'sign-off': 'approved' }]);
  });

  test('on_timeout fail (and no on_timeout): ApprovalTimeout with the count of decisions; a late decision is a conflict', async () => {
    for (const extra of [{ on_timeout: 'fail' }, {}]) {
      const { p, failed } = approveToFailure(planOf([approval({ quorum: 2, timeout: 30, ...extra }), skill('after')]), () => [
        { afterMs: 10_000, principal: 'ann' },
        { afterMs: 40_000, principal: 'ben' },
      ]);
      const error = await failed;
      assert.deepEqual(error.state.steps['sign-off']?.error, { message: 'approval "sign-off" timed out with 1 of 2 approval(s)', type: 'ApprovalTimeout' });
      assert.equal(error.message, 'step "sign-off" failed: approval "sign-off" timed out with 1 of 2 approval(s)');
      const record = error.state.approvals['sign-off'];
      assert.deepEqual([record?.status, record?.timedOut], ['failed', true]);
      assert.deepEqual(p.approvalNotices.at(-1), { 'sign-off': 'failed' });
      assert.deepEqual(p.keys.at(-1), [], 'a failed approval is no longer pending anywhere');
      // The fake clock keeps running after the run failed: ben's attempt at 40s meets the timed-out record.
      await new Promise((r) => setTimeout(r, 20));
      const late = p.verdicts.find((v) => v.principal === 'ben')?.verdict;
      assert.ok(late && !late.ok);
      assert.equal(late.code, 'conflict');
      assert.equal(late.reason, 'approval "sign-off" timed out');
    }
  });

  test('an ApprovalTimeout follows the step\'s error policy (continue_on_error lets the run go on)', async () => {
    const { done } = approve(planOf([approval({ timeout: 5, continue_on_error: true }), skill('after', 'echo', { inputs: { v: 1 } })]), () => []);
    const { output, state } = await done;
    assert.deepEqual(output, { v: 1 });
    assert.deepEqual([state.steps['sign-off']?.status, state.steps['sign-off']?.continued, state.steps['sign-off']?.error?.type], ['failed', true, 'ApprovalTimeout']);
  });

  test('escalation: at the timeout the approver set, quorum and deadline are replaced; the old set may no longer decide', async () => {
    const plan = planOf([
      approval({
        approvers: { principals: ['ann', 'ben'] },
        timeout: 10,
        on_timeout: 'escalate',
        escalation: { approvers: { principals: ['cat', 'dan'], groups: ['leads'] }, quorum: 2, timeout: 20 },
      }),
      skill('after'),
    ]);
    const escalated: ApprovalRecord[] = [];
    const p = new ApproverPort(
      {
        onApprovalsChanged: (state) => {
          const r = state.approvals['sign-off'];
          if (r?.escalated && r.status === 'pending') escalated.push(structuredClone(r));
        },
      },
      () => [
        { afterMs: 5_000, principal: 'cat' },
        { afterMs: 12_000, principal: 'ann' },
        { afterMs: 13_000, principal: 'dan' },
        { afterMs: 15_000, principal: 'cat' },
      ],
    );
    const { state } = await runToEnd(plan, p, { ctx: { run: RUN } });
    assert.deepEqual(verdictCodes(p), [[5_000, 'cat', 'forbidden'], [12_000, 'ann', 'forbidden'], [13_000, 'dan', 'ok'], [15_000, 'cat', 'ok']]);
    assert.equal(escalated.length, 1);
    assert.deepEqual(
      [escalated[0]?.stage, escalated[0]?.approvers, escalated[0]?.quorum, escalated[0]?.deadline, escalated[0]?.requestedAt],
      [1, { principals: ['cat', 'dan'], groups: ['leads'] }, 2, iso(T0 + 30_000), iso(T0)],
    );
    assert.deepEqual(p.keys, [['user:ann', 'user:ben'], ['group:leads', 'user:cat', 'user:dan'], []]);
    assert.equal(p.activities[0]?.startedAt, 15_000);
    const result = state.steps['sign-off']?.output as Record<string, unknown>;
    assert.deepEqual([result.deciders, result.escalated, result.timedOut], [['dan', 'cat'], true, false]);
    assert.deepEqual([state.approvals['sign-off']?.stage, state.approvals['sign-off']?.escalated], [1, true]);
  });

  test('escalation: the new set decides afresh; someone of both sets who approved before approves again', async () => {
    const steps = (quorum: number) => [
      approval({
        approvers: { principals: ['ann', 'cat'] },
        quorum: 2,
        timeout: 10,
        on_timeout: 'escalate',
        escalation: { approvers: { principals: ['cat', 'dan'] }, quorum, timeout: 20 },
      }),
      skill('after'),
    ];
    const once = approve(planOf(steps(1)), () => [
      { afterMs: 2_000, principal: 'cat' },
      { afterMs: 12_000, principal: 'cat', comment: 'again, to the new set' },
    ]);
    const { state } = await once.done;
    assert.equal(once.p.activities[0]?.startedAt, 12_000, 'not approved at the escalation itself');
    assert.deepEqual(verdictCodes(once.p), [[2_000, 'cat', 'ok'], [12_000, 'cat', 'ok']]);
    assert.deepEqual(
      state.approvals['sign-off']?.decisions.map((d) => [d.principal, d.stage, d.at]),
      [['cat', 0, iso(T0 + 2_000)], ['cat', 1, iso(T0 + 12_000)]],
      'both decisions stay on record, each with its stage',
    );
    assert.deepEqual(once.p.approvalNotices, [{ 'sign-off': 'pending' }, { 'sign-off': 'pending' }, { 'sign-off': 'approved' }]);

    const twice = approve(planOf(steps(2)), () => [
      { afterMs: 2_000, principal: 'cat' },
      { afterMs: 14_000, principal: 'dan' },
      { afterMs: 16_000, principal: 'cat' },
    ]);
    const second = await twice.done;
    assert.equal(twice.p.activities[0]?.startedAt, 16_000);
    assert.deepEqual(second.state.approvals['sign-off']?.decisions.map((d) => [d.principal, d.stage]), [['cat', 0], ['dan', 1], ['cat', 1]]);
  });

  test(
    'escalation: an approval by someone of the old set only does not count towards the new quorum',
    async () => {
      const plan = planOf([
        approval({
          approvers: { principals: ['ann', 'ben'] },
          quorum: 2,
          timeout: 10,
          on_timeout: 'escalate',
          escalation: { approvers: { principals: ['cat', 'dan'] }, quorum: 2, timeout: 20 },
        }),
        skill('after'),
      ]);
      const { p, done } = approve(plan, () => [
        { afterMs: 1_000, principal: 'ann' },
        { afterMs: 12_000, principal: 'cat' },
        { afterMs: 14_000, principal: 'dan' },
      ]);
      const { state } = await done;
      // cat and dan (the new set) make the quorum at 14s; ann's approval (to the first set) does not count.
      assert.equal(p.activities[0]?.startedAt, 14_000);
      assert.equal(state.approvals['sign-off']?.status, 'approved');
    },
  );

  test(
    'escalation to a group: a member who approved the first set (through a group) approves again for the new one',
    async () => {
      const plan = planOf([
        approval({
          approvers: { groups: ['finance'] },
          quorum: 2,
          timeout: 10,
          on_timeout: 'escalate',
          escalation: { approvers: { groups: ['leads'] }, quorum: 1, timeout: 20 },
        }),
        skill('after'),
      ]);
      // bob is in finance and in leads (his credential says so); he approves before and after the escalation.
      const { p, done } = approve(plan, () => [
        { afterMs: 1_000, principal: 'bob', groups: ['finance', 'leads'] },
        { afterMs: 12_000, principal: 'bob', groups: ['finance', 'leads'] },
      ]);
      const result = await done.then(
        (r) => r,
        (error: unknown) => error as RunFailedError,
      );
      assert.ok(!(result instanceof RunFailedError), `the run failed: ${result instanceof RunFailedError ? result.message : ''}`);
      assert.equal(p.activities[0]?.startedAt, 12_000);
      assert.deepEqual(verdictCodes(p), [[1_000, 'bob', 'ok'], [12_000, 'bob', 'ok']]);
    },
  );

  test(
    'an escalation that times out counts only the new set\'s decisions in its message',
    async () => {
      const { failed } = approveToFailure(
        planOf([
          approval({
            approvers: { principals: ['ann', 'ben'] },
            quorum: 2,
            timeout: 10,
            on_timeout: 'escalate',
            escalation: { approvers: { principals: ['cat'] }, timeout: 20 },
          }),
        ]),
        () => [{ afterMs: 1_000, principal: 'ann' }],
      );
      const error = await failed;
      assert.equal(error.state.steps['sign-off']?.error?.message, 'approval "sign-off" timed out with 0 of 1 approval(s)');
    },
  );

  test('escalation that times out too follows the escalation\'s on_timeout (fail by default, or approve)', async () => {
    const steps = (onTimeout?: string) => [
      approval({
        approvers: { principals: ['ann'] },
        timeout: 10,
        on_timeout: 'escalate',
        escalation: { approvers: { principals: ['cat'] }, timeout: 20, ...(onTimeout ? { on_timeout: onTimeout } : {}) },
      }),
    ];
    const failing = approveToFailure(planOf(steps()), () => []);
    const error = await failing.failed;
    assert.deepEqual(error.state.steps['sign-off']?.error, { message: 'approval "sign-off" timed out with 0 of 1 approval(s)', type: 'ApprovalTimeout' });
    assert.equal(failing.p.elapsed, 30_000);
    assert.deepEqual([error.state.approvals['sign-off']?.stage, error.state.approvals['sign-off']?.escalated], [1, true]);

    const approving = approve(planOf(steps('approve')), () => []);
    const { output } = await approving.done;
    assert.deepEqual(
      [(output as Record<string, unknown>).decision, (output as Record<string, unknown>).timedOut, (output as Record<string, unknown>).escalated],
      ['approve', true, true],
    );
    assert.equal(approving.p.elapsed, 30_000);
  });

  test('the step\'s `timeout` is the approval\'s own deadline, never a generic step deadline', async () => {
    // A generic deadline would cancel the step at 10s with "Timeout"; the escalation decides instead.
    const escalating = approve(
      planOf([approval({ approvers: { principals: ['ann'] }, timeout: 10, on_timeout: 'escalate', escalation: { approvers: { principals: ['cat'] }, timeout: 60 } })]),
      () => [{ afterMs: 30_000, principal: 'cat' }],
    );
    const { state } = await escalating.done;
    assert.equal(state.steps['sign-off']?.status, 'completed');
    assert.equal((state.steps['sign-off']?.output as { decision: string }).decision, 'approve');
    assert.deepEqual(escalating.p.sleeps, [], 'no deadline timer was started');
    assert.equal(escalating.p.elapsed, 30_000);

    // With retries the engine takes its retry path; still no deadline, and the on_timeout settles it.
    const retried = approve(planOf([approval({ timeout: 5, on_timeout: 'approve', retry: { max_attempts: 3 } })]), () => []);
    const second = await retried.done;
    assert.equal((second.state.steps['sign-off']?.output as { timedOut: boolean }).timedOut, true);
    assert.deepEqual(retried.p.sleeps, []);
    assert.equal(retried.p.elapsed, 5_000);
  });

  test('cancelling the run closes a pending approval (status cancelled, PendingApprovers cleared)', async () => {
    const p = new ApproverPort({}, () => [{ afterMs: 10_000, principal: 'ann' }]);
    p.cancelRunAt(5_000);
    await assert.rejects(runToEnd(planOf([approval(), skill('after')]), p, { ctx: { run: RUN } }), FakeCancelled);
    assert.equal(p.state?.status, 'cancelled');
    assert.equal(p.state?.approvals['sign-off']?.status, 'cancelled');
    assert.equal(p.state?.steps['sign-off']?.status, 'cancelled');
    assert.deepEqual(p.approvalNotices, [{ 'sign-off': 'pending' }, { 'sign-off': 'cancelled' }]);
    assert.deepEqual(p.keys, [['user:ann', 'user:ben', 'user:cat'], []]);
    // ann comes too late.
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(verdictCodes(p), [[10_000, 'ann', 'conflict']]);
  });

  test('a parallel branch that loses the race closes its approval; the run goes on', async () => {
    const plan = planOf([
      { id: 'race', type: 'parallel', wait_for: 'any', steps: [approval(), skill('auto', 'slow', { inputs: { v: 1 } })] },
      skill('after', 'echo', { inputs: { winner: '${steps.race.output}' } }),
    ]);
    const { p, done } = approve(plan, () => [{ afterMs: 60_000, principal: 'ann' }], { activities: { slow: { respond: () => ({ auto: true }), delayMs: 1_000 } } });
    const { output, state } = await done;
    assert.deepEqual(output, { winner: { auto: { auto: true } } });
    assert.equal(state.approvals['sign-off']?.status, 'cancelled');
    assert.equal(state.steps['sign-off']?.status, 'cancelled');
    assert.deepEqual(p.keys.at(-1), []);
  });

  test('a skipped approval (if false) asks nobody', async () => {
    const { p, done } = approve(planOf([approval({ if: 'input.amount > 1000' }), skill('after')]), () => [{ afterMs: 1, principal: 'ann' }]);
    const { state } = await done;
    assert.equal(state.steps['sign-off']?.status, 'skipped');
    assert.deepEqual(state.approvals, {});
    assert.deepEqual(p.approvalNotices, []);
  });

  test('inside a loop: a record per iteration (step path with [i]), each decided by step id while it is the pending one', async () => {
    const plan = planOf([
      {
        id: 'rounds',
        type: 'loop',
        condition: 'iteration < 3',
        max_iterations: 5,
        steps: [approval({ summary: 'Round ${iteration}' }), skill('work', 'echo', { inputs: { round: '${iteration}', by: '${steps.sign-off.output.deciders[0]}' } })],
      },
    ]);
    const deciders = ['ann', 'ben', 'cat'];
    let round = 0;
    const { p, done } = approve(plan, () => [{ afterMs: 1000, principal: deciders[round++] ?? 'ann' }]);
    const { output, state } = await done;
    assert.deepEqual(output, { round: 2, by: 'cat' });
    assert.deepEqual(
      Object.values(state.approvals).map((a) => [a.stepPath, a.stepId, a.summary, a.status, a.requestedAt, a.decisions.map((d) => d.principal)]),
      [
        ['rounds[0]/sign-off', 'sign-off', 'Round 0', 'approved', iso(T0), ['ann']],
        ['rounds[1]/sign-off', 'sign-off', 'Round 1', 'approved', iso(T0 + 1000), ['ben']],
        ['rounds[2]/sign-off', 'sign-off', 'Round 2', 'approved', iso(T0 + 2000), ['cat']],
      ],
    );
    // Each attempt named the step id, and judge picked the pending iteration.
    assert.deepEqual(
      p.verdicts.map((v) => (v.verdict.ok ? v.verdict.record.stepPath : v.verdict.code)),
      ['rounds[0]/sign-off', 'rounds[1]/sign-off', 'rounds[2]/sign-off'],
    );
    assert.deepEqual(p.activities.map((r) => r.call.stepPath), ['rounds[0]/work', 'rounds[1]/work', 'rounds[2]/work']);
  });

  test('inside a concurrent for_each: one pending record per item at once, decided by path', async () => {
    const plan = planOf([{ id: 'each', type: 'for_each', items: ['x', 'y'], max_concurrency: 2, steps: [approval({ summary: 'Item ${item}' })] }]);
    const pendingAtOnce: string[][] = [];
    const { done } = approve(
      plan,
      (record) => [{ afterMs: record.stepPath === 'each[0]/sign-off' ? 2000 : 1000, principal: 'ann', step: record.stepPath }],
      {
        onApprovalsChanged: (state) => {
          pendingAtOnce.push(Object.values(state.approvals).filter((a) => a.status === 'pending').map((a) => a.stepPath));
        },
      },
    );
    const { output, state } = await done;
    assert.ok(pendingAtOnce.some((paths) => paths.length === 2), JSON.stringify(pendingAtOnce));
    assert.deepEqual(Object.keys(state.approvals).sort(), ['each[0]/sign-off', 'each[1]/sign-off']);
    assert.deepEqual((output as Array<{ decision: string }>).map((o) => o.decision), ['approve', 'approve']);
    assert.deepEqual(
      Object.values(state.approvals).map((a) => [a.stepPath, a.summary, a.decisions[0]?.at]).sort(),
      [
        ['each[0]/sign-off', 'Item x', iso(T0 + 2000)],
        ['each[1]/sign-off', 'Item y', iso(T0 + 1000)],
      ],
    );
  });

  test('continue-as-new in a loop of approvals: the records travel in the carried state; the result equals a straight run', async () => {
    const steps = [
      {
        id: 'batches',
        type: 'loop',
        condition: 'iteration < 4',
        max_iterations: 10,
        steps: [skill('work', 'echo', { inputs: { n: '${iteration}' } }), approval({ summary: 'Batch ${iteration}' }), skill('book', 'echo', { inputs: { n: '${iteration}', ok: '${steps.sign-off.output.approved}' } })],
      },
    ];
    const plan = planOf(steps);
    const script = () => [{ afterMs: 1000, principal: 'ann' }];
    const straight = approve(plan, script);
    const expected = await straight.done;
    const continued = approve(plan, script, { continueAsNewAfterActivityCalls: 1 });
    const actual = await continued.done;

    assert.ok(actual.carried.length >= 4, `continued ${actual.carried.length} times`);
    assert.equal(continued.p.runs, actual.carried.length + 1);
    assert.deepEqual(actual.output, expected.output);
    assert.deepEqual(actual.output, { n: 3, ok: true });
    const strip = (s: RunState) => ({ ...s, continuedAsNew: 0 });
    assert.deepEqual(strip(actual.state), strip(expected.state), 'the same final state, approvals included');
    assert.deepEqual(
      continued.p.activities.map((r) => r.call.stepPath),
      straight.p.activities.map((r) => r.call.stepPath),
      'no activity repeated or lost',
    );
    // Every carried state holds the approvals settled so far (plain JSON), never a half-made one.
    for (const carried of actual.carried) {
      for (const record of Object.values(carried.approvals)) assert.equal(record.status, 'approved');
    }
    assert.deepEqual(
      actual.carried.map((s) => Object.keys(s.approvals).length),
      actual.carried.map((s) => Object.keys(s.approvals).length).sort((a, b) => a - b),
    );
    assert.ok(actual.carried.some((s) => Object.keys(s.approvals).length >= 2), 'records crossed at least one continue-as-new');
    assert.deepEqual(
      Object.values(actual.state.approvals).map((a) => [a.stepPath, a.summary, a.decisions.map((d) => [d.principal, d.at])]),
      [0, 1, 2, 3].map((i) => [`batches[${i}]/sign-off`, `Batch ${i}`, [['ann', iso(T0 + (i + 1) * 1000)]]]),
    );
    // By step id, the one pending record is found among those carried from earlier runs.
    assert.deepEqual(continued.p.verdicts.map((v) => (v.verdict.ok ? v.verdict.record.stepPath : v.verdict.code)), [0, 1, 2, 3].map((i) => `batches[${i}]/sign-off`));
  });

  test('a carried pending approval resumes: same record, decisions made before still count, the deadline is not restarted', async () => {
    const plan = planOf([approval({ quorum: 2, timeout: 60, on_timeout: 'fail' }), skill('after')]);
    /** A state as continue-as-new would carry it (through JSON) while the approval waited 30s already. */
    const carriedState = (): RunState => {
      const state = initialRunState(plan, {});
      state.steps['sign-off'] = { status: 'running' };
      state.currentStep = 'sign-off';
      state.continuedAsNew = 1;
      state.approvals['sign-off'] = {
        stepId: 'sign-off',
        stepPath: 'sign-off',
        summary: 'carried',
        status: 'pending',
        stage: 0,
        approvers: { principals: ['ann', 'ben', 'cat'], groups: [] },
        quorum: 2,
        allowSelfApproval: false,
        startedBy: 'sam',
        requestedAt: iso(T0 - 30_000),
        deadline: iso(T0 + 30_000),
        decisions: [{ principal: 'ann', decision: 'approve', at: iso(T0 - 10_000), via: 'api' }],
      };
      return JSON.parse(JSON.stringify(state)) as RunState;
    };

    const decided = new ApproverPort({}, () => [{ afterMs: 10_000, principal: 'ben' }, { afterMs: 5_000, principal: 'ann' }]);
    const { state } = await runToEnd(plan, decided, { ctx: { run: RUN }, state: carriedState() });
    const record = state.approvals['sign-off'];
    assert.deepEqual([record?.summary, record?.requestedAt, record?.status], ['carried', iso(T0 - 30_000), 'approved']);
    assert.deepEqual(record?.decisions.map((d) => [d.principal, d.at]), [['ann', iso(T0 - 10_000)], ['ben', iso(T0 + 10_000)]]);
    assert.deepEqual(verdictCodes(decided), [[5_000, 'ann', 'duplicate'], [10_000, 'ben', 'ok']]);
    // The new run announces the pending approval again (PendingApprovers is set per run).
    assert.deepEqual(decided.approvalNotices[0], { 'sign-off': 'pending' });

    // Nobody else decides: it times out at the carried deadline, 30s into this run, not 60s.
    const silent = new ApproverPort({}, () => []);
    const timedOut = await runToEnd(plan, silent, { ctx: { run: RUN }, state: carriedState() }).then(
      () => assert.fail('expected a timeout'),
      (e: unknown) => e as RunFailedError,
    );
    assert.ok(timedOut instanceof RunFailedError);
    assert.equal(silent.elapsed, 30_000);
    assert.deepEqual(timedOut.state.steps['sign-off']?.error, { message: 'approval "sign-off" timed out with 1 of 2 approval(s)', type: 'ApprovalTimeout' });

    // A deadline that passed while the run was continuing settles at once.
    const late = carriedState();
    const lateRecord = late.approvals['sign-off'];
    assert.ok(lateRecord);
    lateRecord.deadline = iso(T0 - 1);
    const immediate = new ApproverPort({}, () => []);
    const failed = await runToEnd(plan, immediate, { ctx: { run: RUN }, state: late }).then(
      () => assert.fail('expected a timeout'),
      (e: unknown) => e as RunFailedError,
    );
    assert.equal(failed.state.steps['sign-off']?.error?.type, 'ApprovalTimeout');
    assert.equal(immediate.elapsed, 0);
  });
});

describe('engine: run state and progress', () => {
  test('initialRunState marks every top-level step pending and copies the variables', () => {
    const plan = planOf([skill('a'), { id: 'c', type: 'conditional', condition: 'true', then: [skill('inner')] }]);
    const vars = { counter: 0 };
    const state = initialRunState(plan, vars);
    assert.deepEqual(state, {
      status: 'running',
      order: ['a', 'c'],
      steps: { a: { status: 'pending' }, c: { status: 'pending' } },
      vars: { counter: 0 },
      compensations: [],
      approvals: {},
      continuedAsNew: 0,
    });
    state.vars.counter = 5;
    assert.equal(vars.counter, 0, 'the definition\'s variables are not shared with the run');
  });

  test('onProgress reports each step as it starts and the final status once, without a current step', async () => {
    const p = port();
    await runToEnd(planOf([skill('a'), skill('b')]), p);
    assert.deepEqual(p.progress, [
      { status: 'running', currentStep: 'a' },
      { status: 'running', currentStep: 'b' },
      { status: 'completed' },
    ]);
  });

  test('an unexpected error from the port fails the run with its name as the type', async () => {
    const error = await runToFailure(planOf([skill('a', 'weird')]), port({ activities: { weird: { error: new TypeError('kaput') } } }));
    assert.deepEqual(error.state.steps.a?.error, { message: 'kaput', type: 'TypeError' });
    assert.ok(error instanceof RunFailedError);
  });
});

describe('the fake port itself (test/support/fake-port.ts)', () => {
  const activityCall = (name: string): ActivityCall => ({
    family: 'skills',
    name,
    type: 'skill',
    stepId: 's',
    stepPath: 's',
    input: {},
    timeoutSeconds: 30,
    retry: { maxAttempts: 1, initialIntervalSeconds: 1, maxIntervalSeconds: 1, backoffCoefficient: 1, linear: false, nonRetryableErrorTypes: [] },
  });

  test('sleeps fire in virtual-time order and move the clock', async () => {
    const p = new FakePort({ startMs: 1000 });
    const fired: number[] = [];
    await Promise.all([p.sleep(300).then(() => fired.push(p.now())), p.sleep(100).then(() => fired.push(p.now()))]);
    assert.deepEqual(fired, [1100, 1300]);
    assert.equal(p.elapsed, 300);
  });

  test('cancelling a scope rejects what runs inside it, nested scopes included; nonCancellable shields', async () => {
    const p = new FakePort();
    const outer = p.cancellable(async () => {
      const inner = p.cancellable(() => p.sleep(1000));
      await inner.promise;
    });
    const shielded = p.cancellable(() => p.nonCancellable(() => p.sleep(2000)));
    outer.cancel();
    shielded.cancel();
    await assert.rejects(outer.promise, (error: unknown) => p.isCancellation(error));
    await shielded.promise;
    assert.deepEqual(p.sleeps.map((s) => s.outcome), ['cancelled', 'fired']);
  });

  test('cancelRun reaches everything not shielded; calls in a cancelled scope fail at once', async () => {
    const p = new FakePort({ activities: { slow: ok(1, 5000) } });
    const call = activityCall('slow');
    const running = p.runActivity(call);
    const waiting = p.waitForEvent(() => true);
    p.cancelRunAt(10);
    await assert.rejects(running, FakeCancelled);
    await assert.rejects(waiting, FakeCancelled);
    await assert.rejects(p.sleep(1), FakeCancelled);
    assert.equal(await p.nonCancellable(() => p.runActivity(call)), 1);
    assert.deepEqual(p.activities.map((r) => [r.outcome, r.shielded]), [['cancelled', false], ['completed', true]]);
  });

  test('events: buffered until accepted, predicate-matched, timeouts on the virtual clock', async () => {
    const p = new FakePort();
    p.sendEvent('a', 1);
    p.sendEvent('b', 2);
    assert.deepEqual(await p.waitForEvent((e) => e.name === 'b'), { name: 'b', payload: 2 });
    assert.deepEqual(p.buffered, [{ name: 'a', payload: 1 }]);
    assert.equal(await p.waitForEvent((e) => e.name === 'c', 50), undefined);
    assert.equal(p.elapsed, 50);
    p.sendEventAt(10, 'c', 3);
    assert.deepEqual(await p.waitForEvent((e) => e.name === 'c', 50), { name: 'c', payload: 3 });
  });

  test('scripts: lists are consumed call by call and the last answer repeats; continue-as-new after N calls per run', async () => {
    const p = new FakePort({ activities: { f: [ok('one'), fail('two', 'Two'), ok('three')] }, continueAsNewAfterActivityCalls: 2 });
    const call = activityCall('f');
    assert.equal(await p.runActivity(call), 'one');
    assert.equal(p.shouldContinueAsNew(), false);
    await assert.rejects(p.runActivity(call), (error: unknown) => error instanceof StepCallError && error.type === 'Two');
    assert.equal(p.shouldContinueAsNew(), true);
    p.startNewRun();
    assert.equal(p.shouldContinueAsNew(), false);
    assert.equal(await p.runActivity(call), 'three');
    assert.equal(await p.runActivity(call), 'three');
    assert.deepEqual(p.activities.map((r) => r.attempt), [1, 2, 3, 4]);
  });
});

// ---------------------------------------------------------------------------------------------
// Lifecycle hooks (the workflow turns them into workflow.step.* and workflow.approval.* events).

describe('engine: lifecycle hooks', () => {
  test('steps that do work report completion; pure steps do not; every failure is reported, with `continued` when the run goes on', async () => {
    const plan = planOf(
      [
        skill('a'),
        { id: 'v', type: 'set', values: { n: 1 } },
        { id: 'c', type: 'conditional', condition: 'true', then: [skill('b')] },
        skill('flaky', 'broken'),
        {
          id: 'loop',
          type: 'loop',
          condition: 'iteration < 2',
          max_iterations: 5,
          steps: [skill('inner')],
        },
        { id: 'w', type: 'wait', duration: '1s' },
      ],
      { error_handling: { per_step: { flaky: { strategy: 'skip' } } } },
    );
    const p = port({ activities: { broken: fail('kaput', 'Boom') } });
    await runToEnd(plan, p);
    const seen = p.settled.map((s) => `${s.stepPath}:${s.stepType}:${s.status}${s.continued ? ':continued' : ''}`);
    assert.deepEqual(seen, [
      'a:skill:completed',
      'b:skill:completed',
      'flaky:skill:failed:continued',
      'loop[0]/inner:skill:completed',
      'loop[1]/inner:skill:completed',
      'loop:loop:completed',
      'w:wait:completed',
    ]);
    const failed = p.settled.find((s) => s.status === 'failed');
    assert.equal(failed?.error?.type, 'Boom');
    assert.match(failed?.error?.message ?? '', /kaput/);
  });

  test('a halting failure is reported for the failing step and each enclosing step', async () => {
    const plan = planOf([{ id: 'par', type: 'parallel', steps: [skill('x', 'broken'), skill('y')] }]);
    const p = port({ activities: { broken: fail('kaput', 'Boom') } });
    await runToFailure(plan, p);
    const failed = p.settled.filter((s) => s.status === 'failed').map((s) => `${s.stepId}:${s.error?.type}`);
    assert.deepEqual(failed, ['x:Boom', 'par:Boom']);
  });

  test('approvals report requested (again on escalation) and decided', async () => {
    const plan = planOf([
      approval({
        timeout: 3600,
        on_timeout: 'escalate',
        escalation: { approvers: { principals: ['dan'] }, timeout: 3600, on_timeout: 'reject' },
      }),
    ]);
    // Nobody in the first set answers; dan (the escalation set) approves a second after it escalates.
    const { p, done } = approve(plan, () => [{ afterMs: 3_601_000, principal: 'dan' }]);
    await done;
    assert.deepEqual(p.approvalPhases, [
      ['requested', 'sign-off', 'pending'],
      ['requested', 'sign-off', 'pending'],
      ['decided', 'sign-off', 'approved'],
    ]);
    assert.deepEqual(p.settled.map((s) => `${s.stepId}:${s.status}`), ['sign-off:completed']);
  });
});

describe('engine: model steps', () => {
  test('a model step calls model.generate on the models family with seed 003\'s fields, templates resolved', async () => {
    const plan = planOf(
      [
        skill('fetch', 'echo', { inputs: { text: 'quarterly numbers' } }),
        {
          id: 'draft',
          type: 'model',
          model: 'local/qwen-14b',
          system_prompt: 'You are terse.',
          user_prompt: 'Summarise: ${steps.fetch.output.text}',
          max_tokens: 128,
          response_schema: { type: 'object', properties: { summary: { type: 'string', pattern: '^${x}$' } } },
          agent_id: 'grants-bot',
          calling_skill: 'summarise',
          callback: 'reports/latest',
          outputs: ['text'],
        },
      ],
      { priority: 'high' },
    );
    const p = port({ activities: { 'model.generate': ok({ text: 'ok', route: 'local/qwen-14b' }) } });
    const { output } = await runToEnd(plan, p);
    const call = p.activities[1]?.call;
    assert.equal(call?.family, 'models');
    assert.equal(call?.name, 'model.generate');
    assert.equal(call?.type, 'model');
    assert.deepEqual(call?.input, {
      model: 'local/qwen-14b',
      user_prompt: 'Summarise: quarterly numbers',
      system_prompt: 'You are terse.',
      max_tokens: 128,
      agent_id: 'grants-bot',
      calling_skill: 'summarise',
      priority: 'high',
      callback: 'reports/latest',
      // The schema is passed as written: its strings are never templates.
      response_schema: { type: 'object', properties: { summary: { type: 'string', pattern: '^${x}$' } } },
    });
    assert.deepEqual(call?.defaulted, { timeout: true, retry: true });
    assert.deepEqual(output, { text: 'ok', route: 'local/qwen-14b' });
  });
});
