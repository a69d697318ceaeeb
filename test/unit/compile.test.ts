import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { STEP_DEFAULTS, compileDefinition, type CompiledSkillStep } from '../../interpreter/compile.ts';
import { MAX_ATTEMPTS_CAP, type Definition, type SkillStep } from '../../interpreter/schema.ts';

function step(id: string, extra: Partial<SkillStep> = {}): SkillStep {
  return { id, type: 'skill', skill: 'echo', ...extra };
}

function definition(steps: SkillStep[], extra: Partial<Definition> = {}): Definition {
  return { name: 'compile-test', version: '1.0.0', steps, ...extra };
}

function compiledStep(def: Definition, id: string): CompiledSkillStep {
  const { plan, problems } = compileDefinition(def);
  assert.deepEqual(problems, []);
  const found = plan.steps.find((s) => s.id === id);
  assert.ok(found, `no compiled step ${id}`);
  return found;
}

describe('compileDefinition: defaults', () => {
  test('a bare step gets 30 s, 3 attempts, exponential backoff and halt', () => {
    const s = compiledStep(definition([step('a')]), 'a');
    assert.equal(s.kind, 'skill');
    assert.equal(s.pointer, '/steps/0');
    assert.equal(s.skill, 'echo');
    assert.equal(s.timeoutSeconds, 30);
    assert.deepEqual(s.retry, {
      maxAttempts: 3,
      initialIntervalSeconds: 1,
      maxIntervalSeconds: 30,
      backoffCoefficient: 2,
      nonRetryableErrorTypes: [],
    });
    assert.equal(s.onError, 'halt');
    assert.deepEqual(s.outputs, []);
    assert.deepEqual(s.inputs, { kind: 'object', entries: [] });
  });

  test('STEP_DEFAULTS says the same', () => {
    assert.equal(STEP_DEFAULTS.timeoutSeconds, 30);
    assert.equal(STEP_DEFAULTS.maxAttempts, 3);
  });

  test('pointers follow definition order', () => {
    const { plan } = compileDefinition(definition([step('a'), step('b'), step('c')]));
    assert.deepEqual(plan.steps.map((s) => [s.id, s.pointer]), [['a', '/steps/0'], ['b', '/steps/1'], ['c', '/steps/2']]);
    assert.equal(plan.output, undefined);
    assert.equal('output' in plan, false);
  });

  test('compiling is deterministic', () => {
    const def = definition([step('a', { inputs: { x: '${input.x}' } }), step('b', { inputs: { y: 'a.y' } })], {
      output: { z: '${steps.b.output}' },
    });
    assert.deepEqual(compileDefinition(def), compileDefinition(structuredClone(def)));
  });
});

describe('compileDefinition: step settings', () => {
  test('timeout and outputs are taken from the step', () => {
    const s = compiledStep(definition([step('a', { timeout: 120, outputs: ['data'] })]), 'a');
    assert.equal(s.timeoutSeconds, 120);
    assert.deepEqual(s.outputs, ['data']);
  });

  test('step.retry overrides every default', () => {
    const s = compiledStep(
      definition([
        step('a', {
          retry: { max_attempts: 5, backoff: 'fixed', initial_interval: 2, max_interval: 60, non_retryable_errors: ['BadInput'] },
        }),
      ]),
      'a',
    );
    assert.deepEqual(s.retry, {
      maxAttempts: 5,
      initialIntervalSeconds: 2,
      maxIntervalSeconds: 60,
      backoffCoefficient: 1,
      nonRetryableErrorTypes: ['BadInput'],
    });
  });

  test('backoff "fixed" gives coefficient 1, "exponential" the default 2', () => {
    assert.equal(compiledStep(definition([step('a', { retry: { backoff: 'fixed' } })]), 'a').retry.backoffCoefficient, 1);
    assert.equal(compiledStep(definition([step('a', { retry: { backoff: 'exponential' } })]), 'a').retry.backoffCoefficient, 2);
  });

  test('max_attempts is capped at MAX_ATTEMPTS_CAP even when the schema is bypassed', () => {
    const def = definition([step('a', { retry: { max_attempts: 50 } }), step('b')], {
      error_handling: { per_step: { b: { strategy: 'retry', max_attempts: 99 } } },
    });
    const { plan } = compileDefinition(def);
    assert.equal(MAX_ATTEMPTS_CAP, 10);
    assert.equal(plan.steps[0]!.retry.maxAttempts, MAX_ATTEMPTS_CAP);
    assert.equal(plan.steps[1]!.retry.maxAttempts, MAX_ATTEMPTS_CAP);
  });

  test('max_attempts at the cap is kept', () => {
    assert.equal(compiledStep(definition([step('a', { retry: { max_attempts: MAX_ATTEMPTS_CAP } })]), 'a').retry.maxAttempts, MAX_ATTEMPTS_CAP);
  });
});

describe('compileDefinition: error_handling', () => {
  test('per_step retry sets attempts and backoff; the run still halts after the last attempt', () => {
    const def = definition([step('fetch-data'), step('other')], {
      error_handling: { default: 'halt', per_step: { 'fetch-data': { strategy: 'retry', max_attempts: 7, backoff: 'fixed' } } },
    });
    const fetch = compiledStep(def, 'fetch-data');
    assert.equal(fetch.retry.maxAttempts, 7);
    assert.equal(fetch.retry.backoffCoefficient, 1);
    assert.equal(fetch.onError, 'halt');
    const other = compiledStep(def, 'other');
    assert.equal(other.retry.maxAttempts, 3);
    assert.equal(other.retry.backoffCoefficient, 2);
    assert.equal(other.onError, 'halt');
  });

  test('step.retry.max_attempts wins over the per_step policy', () => {
    const def = definition([step('a', { retry: { max_attempts: 2 } })], {
      error_handling: { per_step: { a: { strategy: 'retry', max_attempts: 8 } } },
    });
    assert.equal(compiledStep(def, 'a').retry.maxAttempts, 2);
  });

  test('per_step skip continues the run', () => {
    const def = definition([step('a'), step('b')], { error_handling: { per_step: { a: { strategy: 'skip' } } } });
    assert.equal(compiledStep(def, 'a').onError, 'skip');
    assert.equal(compiledStep(def, 'b').onError, 'halt');
  });

  test('continue_on_error turns any strategy into skip', () => {
    const def = definition([step('a'), step('b')], {
      error_handling: {
        per_step: {
          a: { strategy: 'retry', max_attempts: 4, continue_on_error: true },
          b: { strategy: 'halt', continue_on_error: true },
        },
      },
    });
    const a = compiledStep(def, 'a');
    assert.equal(a.onError, 'skip');
    assert.equal(a.retry.maxAttempts, 4);
    assert.equal(compiledStep(def, 'b').onError, 'skip');
  });

  test('continue_on_error: false keeps halt', () => {
    const def = definition([step('a')], { error_handling: { per_step: { a: { strategy: 'halt', continue_on_error: false } } } });
    assert.equal(compiledStep(def, 'a').onError, 'halt');
  });

  test('seed-002 analyze policy (skip + continue_on_error) skips', () => {
    const def = definition([step('analyze')], {
      error_handling: { default: 'halt', per_step: { analyze: { strategy: 'skip', continue_on_error: true } } },
    });
    assert.equal(compiledStep(def, 'analyze').onError, 'skip');
  });

  test('default "skip" applies to steps without a policy; a per_step policy overrides it', () => {
    const def = definition([step('a'), step('b')], {
      error_handling: { default: 'skip', per_step: { b: { strategy: 'halt' } } },
    });
    assert.equal(compiledStep(def, 'a').onError, 'skip');
    assert.equal(compiledStep(def, 'b').onError, 'halt');
  });

  test('default "retry" keeps the default attempts and halts after them', () => {
    const s = compiledStep(definition([step('a')], { error_handling: { default: 'retry' } }), 'a');
    assert.equal(s.retry.maxAttempts, STEP_DEFAULTS.maxAttempts);
    assert.equal(s.onError, 'halt');
  });

  test('a per_step entry for a missing step is a problem with an escaped pointer', () => {
    const { problems } = compileDefinition(
      definition([step('a')], { error_handling: { per_step: { ghost: { strategy: 'skip' }, 'x/y': { strategy: 'halt' } } } }),
    );
    assert.deepEqual(problems, [
      { pointer: '/error_handling/per_step/ghost', message: 'no step has the id "ghost"' },
      { pointer: '/error_handling/per_step/x~1y', message: 'no step has the id "x/y"' },
    ]);
  });
});

describe('compileDefinition: data flow', () => {
  test('inputs may read earlier steps only; problems point into the inputs', () => {
    const { problems } = compileDefinition(
      definition([step('a', { inputs: { x: '${steps.b.output}' } }), step('b', { inputs: { y: 'a.y' } })]),
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.pointer, '/steps/0/inputs/x');
    assert.match(problems[0]!.message, /does not run before this point/);
  });

  test('the definition output may read every step', () => {
    const { plan, problems } = compileDefinition(
      definition([step('a'), step('b')], { output: { first: '${steps.a.output}', second: 'b.value' } }),
    );
    assert.deepEqual(problems, []);
    assert.equal(plan.output?.kind, 'object');
  });

  test('the definition output naming an unknown step is a problem at /output', () => {
    const { problems } = compileDefinition(definition([step('a')], { output: { r: '${steps.z.output}' } }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.pointer, '/output/r');
    assert.match(problems[0]!.message, /does not exist/);
  });
});
