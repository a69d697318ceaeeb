import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileDefinition, type Plan } from '../../interpreter/compile.ts';
import {
  RunFailedError,
  StepCallError,
  executePlan,
  initialRunState,
  type InterpreterPort,
  type RunContext,
  type RunState,
  type SkillCall,
} from '../../interpreter/engine.ts';
import type { Definition, SkillStep } from '../../interpreter/schema.ts';

/** The fake port's own cancellation error, standing in for Temporal's CancelledFailure. */
class FakeCancelled extends Error {
  override name = 'FakeCancelled';
}

type Behaviour = unknown | ((call: SkillCall) => unknown);

interface FakePort extends InterpreterPort {
  calls: SkillCall[];
  progress: Array<{ status: string; currentStep: string | undefined; steps: Record<string, string> }>;
}

/** A port whose runSkill answers per step id: a canned output, or a function that may throw. */
function fakePort(behaviours: Record<string, Behaviour>): FakePort {
  const calls: SkillCall[] = [];
  const progress: FakePort['progress'] = [];
  return {
    calls,
    progress,
    async runSkill(call) {
      calls.push(structuredClone(call));
      if (!(call.stepId in behaviours)) throw new Error(`fake port: no behaviour for step ${call.stepId}`);
      const b = behaviours[call.stepId];
      return typeof b === 'function' ? (b as (c: SkillCall) => unknown)(call) : structuredClone(b);
    },
    isCancellation: (error) => error instanceof FakeCancelled,
    onProgress(state) {
      progress.push({
        status: state.status,
        currentStep: state.currentStep,
        steps: Object.fromEntries(Object.entries(state.steps).map(([id, s]) => [id, s.status])),
      });
    },
  };
}

function step(id: string, extra: Partial<SkillStep> = {}): SkillStep {
  return { id, type: 'skill', skill: 'echo', ...extra };
}

function planOf(steps: SkillStep[], extra: Partial<Definition> = {}): Plan {
  const { plan, problems } = compileDefinition({ name: 'engine-test', version: '1.0.0', steps, ...extra });
  assert.deepEqual(problems, [], 'the test definition must compile');
  return plan;
}

const runCtx: RunContext = {
  input: { url: 'https://api.example.com/data', n: 2 },
  context: { readonly: { environment: 'production' }, mutable: { counter: 0 } },
  run: { id: 'run-42' },
};

async function run(plan: Plan, port: InterpreterPort, state: RunState = initialRunState(plan)) {
  const output = await executePlan(plan, runCtx, port, state);
  return { output, state };
}

async function runFailing(plan: Plan, port: InterpreterPort): Promise<RunFailedError> {
  const state = initialRunState(plan);
  let caught: unknown;
  try {
    await executePlan(plan, runCtx, port, state);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof RunFailedError, `expected RunFailedError, got ${String(caught)}`);
  assert.equal(caught.state, state, 'the error carries the live state');
  return caught;
}

describe('executePlan: sequential runs', () => {
  test('runs steps in order and resolves inputs from earlier outputs', async () => {
    const plan = planOf([
      step('fetch-data', { skill: 'http-fetch', inputs: { url: '${input.url}' }, outputs: ['data'], timeout: 45 }),
      step('analyze', {
        inputs: { data: 'fetch-data.data', env: '${context.readonly.environment}', run: '${run.id}', n: '${input.n}' },
      }),
      step('report', { inputs: { text: 'items=${steps.analyze.output.count}', raw: '${steps.fetch-data.output}' } }),
    ]);
    const port = fakePort({
      'fetch-data': { data: { items: [1, 2, 3] }, status: 200 },
      analyze: { count: 3 },
      report: { done: true },
    });
    const { output, state } = await run(plan, port);

    assert.deepEqual(port.calls.map((c) => c.stepId), ['fetch-data', 'analyze', 'report']);
    assert.deepEqual(port.calls.map((c) => c.skill), ['http-fetch', 'echo', 'echo']);
    assert.deepEqual(port.calls[0]!.input, { url: 'https://api.example.com/data' });
    assert.deepEqual(port.calls[1]!.input, { data: { items: [1, 2, 3] }, env: 'production', run: 'run-42', n: 2 });
    assert.deepEqual(port.calls[2]!.input, { text: 'items=3', raw: { data: { items: [1, 2, 3] }, status: 200 } });
    assert.equal(port.calls[0]!.stepPath, 'fetch-data');
    assert.equal(port.calls[0]!.timeoutSeconds, 45);
    assert.equal(port.calls[1]!.timeoutSeconds, 30);
    assert.equal(port.calls[0]!.retry.maxAttempts, 3);

    // Without an output template the run's output is the last step's output.
    assert.deepEqual(output, { done: true });
    assert.equal(state.status, 'completed');
    assert.deepEqual(state.output, { done: true });
    assert.equal(state.currentStep, undefined);
    assert.deepEqual(state.order, ['fetch-data', 'analyze', 'report']);
    for (const id of state.order) assert.equal(state.steps[id]!.status, 'completed', id);
    assert.deepEqual(state.steps.analyze!.output, { count: 3 });
  });

  test('initialRunState marks every step pending', () => {
    const state = initialRunState(planOf([step('a'), step('b')]));
    assert.deepEqual(state, { status: 'running', order: ['a', 'b'], steps: { a: { status: 'pending' }, b: { status: 'pending' } } });
  });

  test('the definition output template builds the run output', async () => {
    const plan = planOf([step('a'), step('b')], {
      output: { summary: '${steps.b.output.summary}', count: '${steps.a.output.n}', label: 'n=${steps.a.output.n}', fixed: 'hello.world' },
    });
    const { output, state } = await run(plan, fakePort({ a: { n: 7 }, b: { summary: 'fine', extra: 1 } }));
    assert.deepEqual(output, { summary: 'fine', count: 7, label: 'n=7', fixed: 'hello.world' });
    assert.deepEqual(state.output, output);
  });

  test('an output template that cannot be resolved fails the run', async () => {
    const plan = planOf([step('a')], { output: { x: '${steps.a.output.missing}' } });
    const error = await runFailing(plan, fakePort({ a: { present: 1 } }));
    assert.match(error.message, /"output" could not be built/);
    assert.match(error.message, /"missing"/);
    assert.equal(error.state.status, 'failed');
    assert.equal(error.state.error?.type, 'ReferenceError');
    assert.equal(error.state.steps.a!.status, 'completed');
  });

  test('onProgress is called when each step starts and when the run completes', async () => {
    const port = fakePort({ a: { x: 1 }, b: { y: 2 } });
    await run(planOf([step('a'), step('b', { inputs: { x: 'a.x' } })]), port);
    assert.deepEqual(port.progress, [
      { status: 'running', currentStep: 'a', steps: { a: 'running', b: 'pending' } },
      { status: 'running', currentStep: 'b', steps: { a: 'completed', b: 'running' } },
      { status: 'completed', currentStep: undefined, steps: { a: 'completed', b: 'completed' } },
    ]);
  });

  test('completed steps of a resumed state are not run again', async () => {
    const plan = planOf([step('a'), step('b', { inputs: { x: 'a.x' } })]);
    const state = initialRunState(plan);
    state.steps.a = { status: 'completed', output: { x: 'from before' } };
    const port = fakePort({ b: { ok: true } });
    await run(plan, port, state);
    assert.deepEqual(port.calls.map((c) => c.stepId), ['b']);
    assert.deepEqual(port.calls[0]!.input, { x: 'from before' });
  });
});

describe('executePlan: failures', () => {
  test('a declared output the skill did not return fails the run with MissingOutput', async () => {
    const plan = planOf([step('fetch-data', { outputs: ['data', 'status'] }), step('next')]);
    const port = fakePort({ 'fetch-data': { status: 200 }, next: {} });
    const error = await runFailing(plan, port);
    const failed = error.state.steps['fetch-data']!;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.type, 'MissingOutput');
    assert.match(failed.error?.message ?? '', /"data"/);
    assert.doesNotMatch(failed.error?.message ?? '', /"status"/);
    assert.equal(error.state.steps.next!.status, 'pending');
    assert.deepEqual(port.calls.map((c) => c.stepId), ['fetch-data']);
  });

  test('a non-object output cannot satisfy declared outputs', async () => {
    for (const value of [null, 'text', 42]) {
      const error = await runFailing(planOf([step('a', { outputs: ['data'] })]), fakePort({ a: value }));
      assert.equal(error.state.steps.a!.error?.type, 'MissingOutput', String(value));
    }
  });

  test('halt: the run fails, the step records its attempts, later steps stay pending', async () => {
    const plan = planOf([step('a'), step('b'), step('c')]);
    const port = fakePort({
      a: { ok: 1 },
      b: () => {
        throw new StepCallError('GET https://api.example.com/data answered 503', 'HttpStatus503', 3);
      },
      c: { never: true },
    });
    const error = await runFailing(plan, port);
    assert.equal(error.message, 'step "b" failed after 3 attempt(s): GET https://api.example.com/data answered 503');
    const { state } = error;
    assert.equal(state.status, 'failed');
    assert.equal(state.currentStep, undefined);
    assert.deepEqual(state.error, { message: 'GET https://api.example.com/data answered 503', type: 'HttpStatus503', attempts: 3, step: 'b' });
    assert.equal(state.steps.a!.status, 'completed');
    assert.deepEqual(state.steps.b, {
      status: 'failed',
      error: { message: 'GET https://api.example.com/data answered 503', type: 'HttpStatus503', attempts: 3 },
    });
    assert.deepEqual(state.steps.c, { status: 'pending' });
    assert.deepEqual(port.calls.map((c) => c.stepId), ['a', 'b']);
  });

  test('an error without an attempt count fails the run and the message omits attempts', async () => {
    const error = await runFailing(
      planOf([step('a')]),
      fakePort({
        a: () => {
          throw new StepCallError('bad input', 'BadInput');
        },
      }),
    );
    assert.equal(error.message, 'step "a" failed: bad input');
    assert.equal('attempts' in error.state.steps.a!.error!, false);
  });

  test('a plain Error from the port is recorded with its name as type', async () => {
    const error = await runFailing(
      planOf([step('a')]),
      fakePort({
        a: () => {
          throw new TypeError('kaput');
        },
      }),
    );
    assert.deepEqual(error.state.steps.a!.error, { message: 'kaput', type: 'TypeError' });
  });

  test('skip policy: the run continues and the failed step is marked continued', async () => {
    const plan = planOf([step('a'), step('b'), step('c', { inputs: { x: 'a.x' } })], {
      error_handling: { default: 'halt', per_step: { b: { strategy: 'skip', continue_on_error: true } } },
    });
    const port = fakePort({
      a: { x: 1 },
      b: () => {
        throw new StepCallError('nope', 'Boom', 1);
      },
      c: { done: true },
    });
    const { output, state } = await run(plan, port);
    assert.equal(state.status, 'completed');
    assert.deepEqual(output, { done: true });
    assert.equal(state.steps.b!.status, 'failed');
    assert.equal(state.steps.b!.continued, true);
    assert.deepEqual(state.steps.b!.error, { message: 'nope', type: 'Boom', attempts: 1 });
    assert.equal(state.steps.c!.status, 'completed');
    assert.deepEqual(port.calls[2]!.input, { x: 1 });
    assert.equal(state.error, undefined);
  });

  test('default "skip" with the last step failing keeps the previous output', async () => {
    const plan = planOf([step('a'), step('b')], { error_handling: { default: 'skip' } });
    const { output, state } = await run(
      plan,
      fakePort({
        a: { x: 1 },
        b: () => {
          throw new StepCallError('x', 'X');
        },
      }),
    );
    assert.deepEqual(output, { x: 1 });
    assert.equal(state.status, 'completed');
  });

  test('reading the output of a skipped step fails the reading step with ReferenceError, before any call', async () => {
    const plan = planOf([step('a'), step('b', { inputs: { v: 'a.value' } })], {
      error_handling: { per_step: { a: { strategy: 'skip' } } },
    });
    const port = fakePort({
      a: () => {
        throw new StepCallError('down', 'Down');
      },
      b: { never: true },
    });
    const error = await runFailing(plan, port);
    assert.equal(error.state.steps.b!.error?.type, 'ReferenceError');
    assert.match(error.state.steps.b!.error?.message ?? '', /has no "output"/);
    assert.deepEqual(port.calls.map((c) => c.stepId), ['a']);
  });

  test('cancellation propagates untouched and marks the run cancelled', async () => {
    const cancel = new FakeCancelled('run cancelled');
    const plan = planOf([step('a'), step('b'), step('c')]);
    const port = fakePort({
      a: { x: 1 },
      b: () => {
        throw cancel;
      },
      c: { never: true },
    });
    const state = initialRunState(plan);
    await assert.rejects(executePlan(plan, runCtx, port, state), (error: unknown) => {
      assert.equal(error, cancel, 'the very same error object');
      return true;
    });
    assert.equal(state.status, 'cancelled');
    assert.equal(state.steps.a!.status, 'completed');
    assert.equal(state.steps.b!.status, 'failed');
    assert.equal(state.steps.b!.error?.type, 'Cancelled');
    assert.deepEqual(state.steps.c, { status: 'pending' });
    assert.deepEqual(port.calls.map((c) => c.stepId), ['a', 'b']);
  });

  test('cancellation is never swallowed by a skip policy', async () => {
    const cancel = new FakeCancelled('run cancelled');
    const plan = planOf([step('a'), step('b')], { error_handling: { default: 'skip' } });
    const port = fakePort({
      a: () => {
        throw cancel;
      },
      b: { never: true },
    });
    const state = initialRunState(plan);
    await assert.rejects(executePlan(plan, runCtx, port, state), (error: unknown) => error === cancel);
    assert.equal(state.status, 'cancelled');
    assert.equal(state.steps.a!.continued, undefined);
    assert.deepEqual(port.calls.map((c) => c.stepId), ['a']);
  });
});
