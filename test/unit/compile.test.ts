import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  STEP_DEFAULTS,
  childLists,
  compileDefinition,
  durationMs,
  walkSteps,
  type CompiledStep,
  type Plan,
} from '../../interpreter/compile.ts';
import type { CompileProblem } from '../../interpreter/expressions.ts';
import { MAX_ATTEMPTS_CAP, definitionSchema, type Definition } from '../../interpreter/schema.ts';

type Json = Record<string, unknown>;

const skill = (id: string, extra: Json = {}): Json => ({ id, type: 'skill', skill: 'echo', ...extra });

function definition(steps: Json[], extra: Json = {}): Definition {
  return definitionSchema.parse({ name: 'compile-test', version: '1.0.0', steps, ...extra });
}

function compile(steps: Json[], extra: Json = {}): { plan: Plan; problems: CompileProblem[] } {
  return compileDefinition(definition(steps, extra));
}

function planOf(steps: Json[], extra: Json = {}): Plan {
  const { plan, problems } = compile(steps, extra);
  assert.deepEqual(problems, []);
  return plan;
}

function stepOf<K extends CompiledStep['kind']>(plan: Plan, id: string, kind: K): Extract<CompiledStep, { kind: K }> {
  const step = plan.byId.get(id);
  assert.ok(step, `no compiled step ${id}`);
  assert.equal(step.kind, kind);
  return step as Extract<CompiledStep, { kind: K }>;
}

function findProblem(problems: CompileProblem[], pointer: string, message: RegExp): CompileProblem {
  const found = problems.find((p) => p.pointer === pointer && message.test(p.message));
  assert.ok(found, `no problem at ${pointer} matching ${message}; got ${JSON.stringify(problems, null, 2)}`);
  return found;
}

describe('compileDefinition: activity steps and defaults', () => {
  test('a bare skill step: 30 s, 3 attempts, exponential backoff, halt', () => {
    const plan = planOf([skill('a')]);
    const a = stepOf(plan, 'a', 'activity');
    assert.equal(a.pointer, '/steps/0');
    assert.equal(a.family, 'skills');
    assert.equal(a.name, 'echo');
    assert.equal(a.type, 'skill');
    assert.equal(a.timeoutSeconds, STEP_DEFAULTS.timeoutSeconds);
    assert.deepEqual(a.retry, {
      maxAttempts: 3,
      initialIntervalSeconds: 1,
      maxIntervalSeconds: 30,
      backoffCoefficient: 2,
      linear: false,
      nonRetryableErrorTypes: [],
    });
    assert.deepEqual(a.onError, { action: 'halt' });
    assert.deepEqual(a.outputs, []);
    assert.equal(a.fromSignal, false);
    assert.deepEqual(a.inputs, { kind: 'object', entries: [] });
    assert.equal(a.if, undefined);
    assert.equal(a.compensate, undefined);
  });

  test('families: skill → skills, integration and directive → integrations, agent → agents', () => {
    const plan = planOf([
      skill('s'),
      { id: 'i', type: 'integration', integration: 'crm.note' },
      { id: 'd', type: 'directive', directive: 'forum.post.create', payload: { x: 1 } },
      { id: 'g', type: 'agent', agent: 'data-analyzer', guardrails: { max_iterations: 3 } },
      { id: 'r', type: 'agent', agent_ref: { slug: 'forum_summary_agent' }, input: { from_signal: true } },
    ]);
    assert.deepEqual(
      plan.steps.map((s) => (s.kind === 'activity' ? [s.id, s.family, s.name, s.type] : [])),
      [
        ['s', 'skills', 'echo', 'skill'],
        ['i', 'integrations', 'crm.note', 'integration'],
        ['d', 'integrations', 'forum.post.create', 'directive'],
        ['g', 'agents', 'data-analyzer', 'agent'],
        ['r', 'agents', 'forum_summary_agent', 'agent'],
      ],
    );
    assert.deepEqual(stepOf(plan, 'd', 'activity').inputs, { kind: 'object', entries: [['x', { kind: 'literal', value: 1 }]] });
    assert.deepEqual(stepOf(plan, 'g', 'activity').guardrails, { max_iterations: 3 });
    assert.equal(stepOf(plan, 'r', 'activity').fromSignal, true);
    assert.equal(stepOf(plan, 'g', 'activity').fromSignal, false);
  });

  test('{from_signal: true} only counts when it is the whole input', () => {
    const plan = planOf([{ id: 'r', type: 'agent', agent: 'x', inputs: { from_signal: true, extra: 1 } }]);
    assert.equal(stepOf(plan, 'r', 'activity').fromSignal, false);
  });

  test('timeout and outputs come from the step; non-activity steps get no default timeout', () => {
    const plan = planOf([skill('a', { timeout: 120, outputs: ['data'] }), { id: 'w', type: 'wait', duration: 1 }, { id: 'w2', type: 'wait', duration: 1, timeout: 9 }]);
    assert.equal(stepOf(plan, 'a', 'activity').timeoutSeconds, 120);
    assert.deepEqual(stepOf(plan, 'a', 'activity').outputs, ['data']);
    assert.equal(stepOf(plan, 'w', 'wait').timeoutSeconds, undefined);
    assert.equal(stepOf(plan, 'w2', 'wait').timeoutSeconds, 9);
  });
});

describe('compileDefinition: retry policies', () => {
  test('the step\'s retry overrides every default', () => {
    const plan = planOf([skill('a', { retry: { max_attempts: 5, backoff: 'fixed', initial_interval: 2, max_interval: 60, non_retryable_errors: ['BadInput'] } })]);
    assert.deepEqual(stepOf(plan, 'a', 'activity').retry, {
      maxAttempts: 5,
      initialIntervalSeconds: 2,
      maxIntervalSeconds: 60,
      backoffCoefficient: 1,
      linear: false,
      nonRetryableErrorTypes: ['BadInput'],
    });
  });

  test('backoff: exponential → coefficient 2, fixed → 1, linear → 1 and engine-spaced', () => {
    const backoff = (b: string) => stepOf(planOf([skill('a', { retry: { backoff: b } })]), 'a', 'activity').retry;
    assert.deepEqual([backoff('exponential').backoffCoefficient, backoff('exponential').linear], [2, false]);
    assert.deepEqual([backoff('fixed').backoffCoefficient, backoff('fixed').linear], [1, false]);
    assert.deepEqual([backoff('linear').backoffCoefficient, backoff('linear').linear], [1, true]);
  });

  test('precedence: step retry, then the per_step policy, then the defaults', () => {
    const plan = planOf([skill('a', { retry: { max_attempts: 2 } }), skill('b'), skill('c')], {
      error_handling: {
        per_step: {
          a: { strategy: 'retry', max_attempts: 7, backoff: 'fixed' },
          b: { strategy: 'retry', max_attempts: 6, backoff: 'linear', initial_interval: 4, max_interval: 8, non_retryable_errors: ['Fatal'] },
        },
      },
    });
    const a = stepOf(plan, 'a', 'activity').retry;
    assert.equal(a.maxAttempts, 2, 'the step\'s own retry wins');
    assert.equal(a.backoffCoefficient, 1, 'what the step does not say comes from per_step');
    assert.deepEqual(stepOf(plan, 'b', 'activity').retry, {
      maxAttempts: 6,
      initialIntervalSeconds: 4,
      maxIntervalSeconds: 8,
      backoffCoefficient: 1,
      linear: true,
      nonRetryableErrorTypes: ['Fatal'],
    });
    assert.equal(stepOf(plan, 'c', 'activity').retry.maxAttempts, STEP_DEFAULTS.maxAttempts);
  });

  test('max_attempts is capped even when the schema is bypassed', () => {
    const raw = definition([skill('a'), skill('b')]);
    (raw.steps[0] as { retry?: unknown }).retry = { max_attempts: 50 };
    raw.error_handling = { per_step: { b: { strategy: 'retry', max_attempts: 99 } } };
    const { plan } = compileDefinition(raw);
    assert.equal(stepOf(plan, 'a', 'activity').retry.maxAttempts, MAX_ATTEMPTS_CAP);
    assert.equal(stepOf(plan, 'b', 'activity').retry.maxAttempts, MAX_ATTEMPTS_CAP);
  });

  test('non-activity steps run once unless they ask for retries', () => {
    const plan = planOf([
      { id: 'c', type: 'conditional', condition: 'true', then: [skill('x')] },
      { id: 'c2', type: 'conditional', condition: 'true', then: [skill('y')], retry: { max_attempts: 4 } },
    ]);
    assert.equal(stepOf(plan, 'c', 'conditional').retry.maxAttempts, 1);
    assert.equal(stepOf(plan, 'c2', 'conditional').retry.maxAttempts, 4);
  });
});

describe('compileDefinition: error policies', () => {
  const onError = (extra: Json, id = 'a', steps: Json[] = [skill('a'), skill('b')]) => compile(steps, extra).plan.byId.get(id)?.onError;

  test('default halt; default skip; per_step overrides the default', () => {
    assert.deepEqual(onError({}), { action: 'halt' });
    assert.deepEqual(onError({ error_handling: { default: 'skip' } }), { action: 'skip' });
    assert.deepEqual(onError({ error_handling: { default: 'skip', per_step: { a: { strategy: 'halt' } } } }), { action: 'halt' });
    assert.deepEqual(onError({ error_handling: { default: 'skip', per_step: { a: { strategy: 'halt' } } } }, 'b'), { action: 'skip' });
  });

  test('"retry" only sets the retries: afterwards the default applies (and a default "retry" halts)', () => {
    assert.deepEqual(onError({ error_handling: { default: 'skip', per_step: { a: { strategy: 'retry' } } } }), { action: 'skip' });
    assert.deepEqual(onError({ error_handling: { per_step: { a: { strategy: 'retry' } } } }), { action: 'halt' });
    assert.deepEqual(onError({ error_handling: { default: 'retry' } }), { action: 'halt' });
  });

  test('continue_on_error, on the step or in its policy, means skip whatever the strategy', () => {
    assert.deepEqual(onError({}, 'a', [skill('a', { continue_on_error: true })]), { action: 'skip' });
    assert.deepEqual(onError({ error_handling: { per_step: { a: { strategy: 'halt', continue_on_error: true } } } }), { action: 'skip' });
    assert.deepEqual(onError({ error_handling: { per_step: { a: { strategy: 'skip', continue_on_error: true } } } }), { action: 'skip' });
  });

  test('rollback: a per_step or default "rollback" strategy; rollback.enabled; rollsBackOnCancel', () => {
    const perStep = compile([skill('a')], { error_handling: { per_step: { a: { strategy: 'rollback' } } } }).plan;
    assert.deepEqual(perStep.byId.get('a')?.onError, { action: 'rollback' });
    assert.equal(perStep.rollback.enabled, false, 'only the policy rolls back, not every failure');
    assert.equal(perStep.rollsBackOnCancel, true);
    const byDefault = compile([skill('a')], { error_handling: { default: 'rollback' } }).plan;
    assert.equal(byDefault.rollback.enabled, true);
    assert.equal(byDefault.rollsBackOnCancel, true);
    const enabled = compile([skill('a')], { error_handling: { rollback: { enabled: true } } }).plan;
    assert.deepEqual(enabled.byId.get('a')?.onError, { action: 'halt' });
    assert.equal(enabled.rollback.enabled, true);
    assert.equal(enabled.rollsBackOnCancel, true);
    const none = compile([skill('a')]).plan;
    assert.equal(none.rollback.enabled, false);
    assert.equal(none.rollsBackOnCancel, false);
  });

  test('custom: a step\'s own handler; the shared handler is compiled once and reused', () => {
    const plan = planOf([skill('z'), skill('a'), skill('b'), skill('c')], {
      error_handling: {
        per_step: {
          // A step's own handler sees what the step sees (here: z), plus `error`.
          a: { strategy: 'custom', handler: [skill('own', { inputs: { e: '${error.message}', earlier: '${steps.z.status}' } })] },
          b: { strategy: 'custom' },
          c: { strategy: 'custom' },
        },
        handler: [skill('shared', { inputs: { e: '${error.type}' } })],
      },
    });
    const a = plan.byId.get('a')?.onError;
    const b = plan.byId.get('b')?.onError;
    const c = plan.byId.get('c')?.onError;
    assert.equal(a?.action, 'custom');
    assert.deepEqual(a?.action === 'custom' && a.handler.map((s) => [s.id, s.pointer]), [['own', '/error_handling/per_step/a/handler/0']]);
    assert.deepEqual(b?.action === 'custom' && b.handler.map((s) => [s.id, s.pointer]), [['shared', '/error_handling/handler/0']]);
    assert.ok(b?.action === 'custom' && c?.action === 'custom' && b.handler === c.handler, 'one compiled shared handler');
  });

  test('custom without handler steps is a problem and falls back to halt', () => {
    const { plan, problems } = compile([skill('a')], { error_handling: { per_step: { a: { strategy: 'custom' } } } });
    findProblem(problems, '/error_handling/per_step/a/handler', /the "custom" strategy for step "a" needs handler steps/);
    assert.deepEqual(plan.byId.get('a')?.onError, { action: 'halt' });
    const byDefault = compile([skill('a')], { error_handling: { default: 'custom' } }).problems;
    findProblem(byDefault, '/error_handling/handler', /needs handler steps/);
  });

  // BUG (interpreter/compile.ts, onErrorFor): compiling the shared handler compiles its steps,
  // whose own policy is the default "custom" again, which compiles the shared handler again
  // before `sharedHandler` is set: unbounded recursion ("Maximum call stack size exceeded").
  test('default "custom" with error_handling.handler compiles', () => {
    let result: ReturnType<typeof compile> | undefined;
    assert.doesNotThrow(() => {
      result = compile([skill('a'), skill('b')], { error_handling: { default: 'custom', handler: [skill('recover', { inputs: { e: '${error.message}' } })] } });
    });
    assert.deepEqual(result?.problems, []);
    const onErr = result?.plan.byId.get('a')?.onError;
    assert.equal(onErr?.action, 'custom');
  });

  test('handler steps under a non-custom policy and per_step entries for missing steps are problems', () => {
    const { problems } = compile([skill('a')], {
      error_handling: { per_step: { a: { strategy: 'skip', handler: [skill('h')] }, ghost: { strategy: 'skip' } } },
    });
    findProblem(problems, '/error_handling/per_step/a/handler', /handler steps run only with the "custom" strategy \(this policy is "skip"\)/);
    findProblem(problems, '/error_handling/per_step/ghost', /no step has the id "ghost"/);
  });

  test('rollback steps: a string is a skill step with a generated id; full steps keep theirs', () => {
    const plan = planOf([skill('a')], { error_handling: { rollback: { enabled: true, steps: ['cleanup', skill('notify', { inputs: { a: 'a.x', why: '${error.message}' } })] } } });
    assert.deepEqual(
      plan.rollback.steps.map((s) => [s.id, s.pointer, s.kind === 'activity' ? s.name : s.kind]),
      [
        ['rollback-1-cleanup', '/error_handling/rollback/steps/0', 'cleanup'],
        ['notify', '/error_handling/rollback/steps/1', 'echo'],
      ],
    );
  });

  test('compensation without anything that rolls back is dead code, reported at the compensate field', () => {
    const { problems } = compile([skill('a', { compensate: [skill('undo')] })]);
    findProblem(problems, '/steps/0/compensate', /step "a" declares compensation, but nothing in this definition rolls back/);
    assert.deepEqual(compile([skill('a', { compensate: [skill('undo')] })], { error_handling: { rollback: { enabled: true } } }).problems, []);
    assert.deepEqual(compile([skill('a', { compensate: [skill('undo')] }), skill('b')], { error_handling: { per_step: { b: { strategy: 'rollback' } } } }).problems, []);
  });
});

describe('compileDefinition: composite steps', () => {
  test('parallel: wait_for defaults to all, max_concurrency to the branch count', () => {
    const plan = planOf([
      { id: 'p', type: 'parallel', steps: [skill('a'), skill('b'), skill('c')] },
      { id: 'q', type: 'parallel', wait_for: 2, max_concurrency: 1, steps: [skill('d'), skill('e')] },
    ]);
    const p = stepOf(plan, 'p', 'parallel');
    assert.equal(p.waitFor, 'all');
    assert.equal(p.maxConcurrency, 3);
    assert.deepEqual(p.branches.map((b) => [b.id, b.pointer]), [['a', '/steps/0/steps/0'], ['b', '/steps/0/steps/1'], ['c', '/steps/0/steps/2']]);
    const q = stepOf(plan, 'q', 'parallel');
    assert.equal(q.waitFor, 2);
    assert.equal(q.maxConcurrency, 1);
  });

  test('parallel: wait_for above the branch count is a problem', () => {
    findProblem(compile([{ id: 'p', type: 'parallel', wait_for: 3, steps: [skill('a'), skill('b')] }]).problems, '/steps/0/wait_for', /wait_for is 3 but the step has 2 branch\(es\)/);
  });

  test('for_each: max_concurrency defaults to 1; string items are an expression with or without ${}', () => {
    const plan = planOf([
      skill('fetch-data'),
      { id: 'f1', type: 'for_each', items: 'fetch-data.items', steps: [skill('x', { inputs: { v: '${item}', i: '${index}' } })] },
      { id: 'f2', type: 'for_each', items: '${input.list}', max_concurrency: 4, steps: [skill('y')] },
      { id: 'f3', type: 'for_each', items: [1, 2], steps: [skill('z')] },
    ]);
    const f1 = stepOf(plan, 'f1', 'for_each');
    assert.equal(f1.maxConcurrency, 1);
    assert.equal(f1.items.kind, 'expr');
    assert.equal(f1.items.kind === 'expr' && f1.items.expr.text, 'steps["fetch-data"].output.items');
    assert.equal(stepOf(plan, 'f2', 'for_each').maxConcurrency, 4);
    assert.deepEqual(stepOf(plan, 'f3', 'for_each').items, { kind: 'array', items: [{ kind: 'literal', value: 1 }, { kind: 'literal', value: 2 }] });
  });

  test('loop, conditional, switch, wait, wait_for_event, set, sub_workflow, fail, succeed', () => {
    const plan = planOf(
      [
        { id: 'l', type: 'loop', condition: 'counter < 5', max_iterations: 10, steps: [skill('body')] },
        { id: 'c', type: 'conditional', condition: 'counter > 1', then: [skill('t')] },
        { id: 's', type: 'switch', value: 'input.kind', cases: [{ equals: 'a', steps: [skill('sa')] }, { when: 'counter == 2', steps: [skill('sb')] }], default: [skill('sd')] },
        { id: 'w', type: 'wait', duration: '1h30m' },
        { id: 'u', type: 'wait', until: '${input.at}' },
        { id: 'e', type: 'wait_for_event', event: 'approved', filter: 'event.ok' },
        { id: 'e2', type: 'wait_for_event', event: 'x', on_timeout: 'continue', timeout: 5 },
        { id: 'v', type: 'set', values: { total: '${counter + 1}' } },
        { id: 'sub', type: 'sub_workflow', definition: 'billing', version: '1.2.3', inputs: { x: '${total}' } },
        { id: 'ok', type: 'succeed', output: { t: '${total}' }, if: 'total > 100' },
        { id: 'no', type: 'fail', error: 'total is ${total}' },
      ],
      { context: { mutable: { counter: 0 } } },
    );
    const l = stepOf(plan, 'l', 'loop');
    assert.equal(l.maxIterations, 10);
    assert.equal(l.condition.source, 'counter < 5');
    assert.deepEqual(l.steps.map((s) => s.id), ['body']);
    const c = stepOf(plan, 'c', 'conditional');
    assert.deepEqual([c.then.map((s) => s.id), c.else], [['t'], []]);
    const s = stepOf(plan, 's', 'switch');
    assert.equal(s.value?.source, 'input.kind');
    assert.deepEqual(s.cases.map((k) => [k.equals, k.when?.source, k.steps.map((x) => x.id)]), [['a', undefined, ['sa']], [undefined, 'counter == 2', ['sb']]]);
    assert.deepEqual(s.default.map((x) => x.id), ['sd']);
    assert.equal(stepOf(plan, 'w', 'wait').durationMs, 5_400_000);
    assert.equal(stepOf(plan, 'u', 'wait').until?.kind, 'expr');
    const e = stepOf(plan, 'e', 'wait_for_event');
    assert.deepEqual([e.event, e.filter?.source, e.onTimeout], ['approved', 'event.ok', 'fail']);
    assert.equal(stepOf(plan, 'e2', 'wait_for_event').onTimeout, 'continue');
    assert.deepEqual(stepOf(plan, 'v', 'set').values.map(([k, v]) => [k, v.kind]), [['total', 'expr']]);
    const sub = stepOf(plan, 'sub', 'sub_workflow');
    assert.deepEqual([sub.definition, sub.version, sub.inputs.kind], ['billing', '1.2.3', 'object']);
    assert.equal(stepOf(plan, 'no', 'fail').errorType, 'WorkflowFailed');
    assert.equal(stepOf(plan, 'ok', 'succeed').output?.kind, 'object');
    assert.equal(stepOf(plan, 'ok', 'succeed').if?.source, 'total > 100');
  });

  test('byId holds every step, nested, handler and compensation ones included; descendants list what resets on retry', () => {
    const plan = planOf(
      [
        skill('a', { compensate: [skill('undo-a')] }),
        { id: 'l', type: 'loop', condition: 'true', max_iterations: 2, steps: [skill('x'), { id: 'f', type: 'for_each', items: [1], steps: [skill('y')] }] },
      ],
      { error_handling: { rollback: { enabled: true, steps: ['cleanup'] }, per_step: { x: { strategy: 'custom', handler: [skill('h')] } } } },
    );
    assert.deepEqual([...plan.byId.keys()].sort(), ['a', 'f', 'h', 'l', 'rollback-1-cleanup', 'undo-a', 'x', 'y']);
    assert.deepEqual(plan.descendants.get('l'), ['x', 'f', 'y']);
    assert.deepEqual(plan.descendants.get('f'), ['y']);
    assert.equal(plan.descendants.has('x'), false);
    assert.deepEqual(stepOf(plan, 'a', 'activity').compensate?.map((s) => [s.id, s.pointer]), [['undo-a', '/steps/0/compensate/0']]);
  });

  test('resource_limits.max_concurrent_steps becomes plan.maxConcurrentSteps', () => {
    assert.equal(planOf([skill('a')], { resource_limits: { max_concurrent_steps: 5, max_memory_mb: 512 } }).maxConcurrentSteps, 5);
    assert.equal('maxConcurrentSteps' in planOf([skill('a')]), false);
  });

  test('the definition output compiles against every top-level step', () => {
    const plan = planOf([skill('a'), skill('b')], { output: { x: 'a.data', y: '${steps.b.output}', z: 'literal.text' } });
    assert.equal(plan.output?.kind, 'object');
    assert.equal('output' in planOf([skill('a')]), false);
  });
});

describe('compileDefinition: visibility of steps', () => {
  const problemsOf = (steps: Json[], extra: Json = {}) => compile(steps, extra).problems;

  test('a step reads steps that ran before it, never itself or later ones', () => {
    assert.deepEqual(problemsOf([skill('a'), skill('b', { inputs: { x: 'a.x' } })]), []);
    findProblem(problemsOf([skill('a', { inputs: { x: '${steps.a.output}' } })]), '/steps/0/inputs/x', /step "a" does not run before this point/);
    findProblem(problemsOf([skill('a', { inputs: { x: 'b.x' } }), skill('b')]), '/steps/0/inputs/x', /"b\.x" reads step "b", but step "b" does not run before this point/);
  });

  test('conditional and switch branch steps are readable after the step (they may not have run)', () => {
    assert.deepEqual(
      problemsOf([
        { id: 'c', type: 'conditional', condition: 'true', then: [skill('t')], else: [skill('e')] },
        { id: 's', type: 'switch', value: 'input.k', cases: [{ equals: 1, steps: [skill('one')] }], default: [skill('other')] },
        skill('after', { inputs: { t: '${steps.t.status}', e: '${steps.e.status}', one: '${steps.one.status}', other: '${steps.other.status}' } }),
      ]),
      [],
    );
  });

  test('a branch never sees its sibling branches; after the parallel step every branch is readable', () => {
    const problems = problemsOf([
      { id: 'p', type: 'parallel', steps: [skill('l'), { id: 'r', type: 'conditional', condition: 'l.ok', then: [skill('r1', { inputs: { x: '${steps.l.output}' } })] }] },
      skill('after', { inputs: { l: 'l.x', r1: 'r1.x' } }),
    ]);
    assert.deepEqual(
      problems.map((p) => p.pointer),
      ['/steps/0/steps/1/condition', '/steps/0/steps/1/then/0/inputs/x'],
    );
    for (const p of problems) assert.match(p.message, /step "l" runs in a parallel branch of "p" and is not ordered with this one/);
  });

  test('steps inside a for_each are not readable after it; the for_each\'s own output is', () => {
    const problems = problemsOf([
      { id: 'each', type: 'for_each', items: [1], steps: [skill('inner'), skill('inner2', { inputs: { x: 'inner.x', i: '${item}' } })] },
      skill('after', { inputs: { bad: 'inner.x', good: '${steps.each.output[0]}' } }),
    ]);
    assert.deepEqual(problems.map((p) => p.pointer), ['/steps/1/inputs/bad']);
  });

  test('a loop\'s condition may read its body; the body is readable after the loop', () => {
    assert.deepEqual(
      problemsOf([
        { id: 'l', type: 'loop', condition: 'iteration == 0 || check.status != "done"', max_iterations: 5, steps: [skill('check')] },
        skill('after', { inputs: { last: 'check.status' } }),
      ]),
      [],
    );
  });

  test('compensation sees the step it undoes and `error`; handlers see `error`', () => {
    assert.deepEqual(
      problemsOf([skill('a', { compensate: [skill('undo', { inputs: { out: 'a.id', why: '${error.message}' } })] })], {
        error_handling: { rollback: { enabled: true } },
      }),
      [],
    );
    findProblem(problemsOf([skill('a', { inputs: { e: '${error}' } })]), '/steps/0/inputs/e', /"error" is only available in error handlers and compensation steps/);
  });

  test('the shared handler may run anywhere, so it cannot read steps', () => {
    const problems = problemsOf([skill('a'), skill('b')], {
      error_handling: { per_step: { b: { strategy: 'custom' } }, handler: [skill('h', { inputs: { a: '${steps.a.output}' } })] },
    });
    findProblem(problems, '/error_handling/handler/0/inputs/a', /step "a" does not run before this point/);
  });

  test('rollback steps read every top-level step and `error`', () => {
    assert.deepEqual(problemsOf([skill('a'), skill('b')], { error_handling: { rollback: { enabled: true, steps: [skill('r', { inputs: { a: 'a.x', b: '${steps.b.status}', e: '${error.step}' } })] } } }), []);
  });

  test('variables: context.mutable keys and every set step\'s keys, anywhere in the definition', () => {
    assert.deepEqual(
      problemsOf([skill('a', { inputs: { x: '${later_var|default(0)}', c: '${counter}' } }), { id: 's', type: 'set', values: { later_var: 1 } }], {
        context: { mutable: { counter: 0 } },
      }),
      [],
    );
  });
});

describe('compileDefinition: definition-wide checks', () => {
  test('step ids that are expression root or binding names are reserved', () => {
    const { problems } = compile([skill('input'), skill('item'), skill('vars')]);
    for (const [i, id] of ['input', 'item', 'vars'].entries()) findProblem(problems, `/steps/${i}/id`, new RegExp(`"${id}" is a reserved name in expressions`));
  });

  test('a step id that is also a variable name is ambiguous', () => {
    findProblem(compile([skill('counter')], { context: { mutable: { counter: 0 } } }).problems, '/steps/0/id', /"counter" is both a step id and a variable name/);
    findProblem(compile([skill('total'), { id: 's', type: 'set', values: { total: 1 } }]).problems, '/steps/0/id', /both a step id and a variable name/);
  });

  test('steps after an unconditional fail or succeed are unreachable; after a conditional one they are not', () => {
    const { problems } = compile([
      skill('a'),
      { id: 'stop', type: 'fail', error: 'x' },
      skill('b'),
      { id: 'c', type: 'conditional', condition: 'true', then: [{ id: 'ok', type: 'succeed' }, skill('d')] },
    ]);
    findProblem(problems, '/steps/2', /step "b" is unreachable: step "stop" \(fail\) always ends the run before it/);
    findProblem(problems, '/steps/3/then/1', /step "d" is unreachable: step "ok" \(succeed\) always ends the run before it/);
    assert.deepEqual(compile([{ id: 'stop', type: 'fail', error: 'x', if: 'input.bad' }, skill('b')]).problems, []);
  });

  test('compiling is deterministic and does not change the definition', () => {
    const def = definition([skill('a', { inputs: { x: '${input.x}' } }), skill('b', { inputs: { y: 'a.y' } })], { output: { z: '${steps.b.output}' } });
    const copy = structuredClone(def);
    const first = compileDefinition(def);
    const second = compileDefinition(structuredClone(def));
    assert.deepEqual(def, copy);
    assert.deepEqual(first.problems, second.problems);
    const shape = (p: Plan) => JSON.stringify(p.steps, (key, value: unknown) => (key === 'expression' ? undefined : value));
    assert.equal(shape(first.plan), shape(second.plan));
  });
});

describe('compile helpers', () => {
  test('durationMs: seconds as numbers, text with units, combined parts', () => {
    assert.equal(durationMs(1.5), 1500);
    assert.equal(durationMs('90s'), 90_000);
    assert.equal(durationMs('5m'), 300_000);
    assert.equal(durationMs('1h30m'), 5_400_000);
    assert.equal(durationMs('2d'), 172_800_000);
    assert.equal(durationMs('250ms'), 250);
    assert.equal(durationMs('1.5s'), 1500);
    assert.equal(durationMs('1m 30s'), 90_000);
  });

  test('walkSteps visits every nested list with its pointer and depth; childLists names the fields', () => {
    const def = definition([
      { id: 'sw', type: 'switch', value: 'input.k', cases: [{ equals: 1, steps: [skill('a')] }], default: [skill('b', { compensate: [skill('c')] })] },
    ], { error_handling: { rollback: { enabled: true } } });
    const seen: Array<[string, string, number]> = [];
    walkSteps(def.steps, '/steps', (step, pointer, depth) => seen.push([step.id, pointer, depth]));
    assert.deepEqual(seen, [
      ['sw', '/steps/0', 1],
      ['a', '/steps/0/cases/0/steps/0', 2],
      ['b', '/steps/0/default/0', 2],
      ['c', '/steps/0/default/0/compensate/0', 3],
    ]);
    assert.deepEqual(childLists(def.steps[0]!).map(([field]) => field), ['cases/0/steps', 'default']);
  });
});
