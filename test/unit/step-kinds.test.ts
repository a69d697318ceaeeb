import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { compileDefinition } from '../../interpreter/compile.ts';
import type { StepBase } from '../../interpreter/plan.ts';
import { compileValue, resolveValue, type CompiledValue } from '../../interpreter/references.ts';
import { stepUnionOf, STEP_TYPES, type Definition } from '../../interpreter/schema.ts';
import type { StepKind } from '../../interpreter/steps/kind.ts';
import { common, compensable } from '../../interpreter/steps/parts.ts';
import { BUILT_IN_STEP_KINDS, executorOf, registerStepKind, stepKindOf } from '../../interpreter/steps/registry.ts';
import { walkSteps } from '../../interpreter/walk.ts';
import { renderStepDocs, STEP_DOCS_FILE } from '../../scripts/write-step-docs.ts';
import { FakePort, runToEnd, runToFailure } from '../support/fake-port.ts';

/**
 * A toy step kind, written the way docs/architecture.md ("Adding a step kind") says: `repeat`
 * concatenates `text` (a template) `times` times. The engine and the compiler have never heard of
 * it; registering it is all it takes to compile and run it.
 */
const repeatSchema = z.strictObject({
  ...common,
  type: z.literal('repeat'),
  text: z.string().min(1),
  times: z.number().int().min(1).max(10),
  ...compensable,
});
type RepeatStep = z.infer<typeof repeatSchema>;
interface CompiledRepeatStep extends StepBase {
  kind: 'repeat';
  text: CompiledValue;
  times: number;
}
const repeatKind: StepKind<RepeatStep, CompiledRepeatStep> = {
  type: 'repeat',
  kind: 'repeat',
  schema: repeatSchema,
  doc: 'Repeats `text` `times` times.',
  compile(step, base, cx) {
    if (step.times > 5 && cx.catalog) cx.problems.push({ pointer: `${cx.pointer}/times`, message: 'more than 5 repeats needs no catalog' });
    return { ...base, kind: 'repeat', text: compileValue(step.text, cx.scope, `${cx.pointer}/text`, cx.problems), times: step.times };
  },
  executor: {
    reportsSettle: true,
    execute(step, { frame, runner }) {
      const text = resolveValue(step.text, runner.data(frame));
      if (typeof text !== 'string') throw new Error(`"text" is ${typeof text}, not text`);
      return { text: text.repeat(step.times) };
    },
  },
};
registerStepKind(repeatKind);

/** A definition with the toy step; parsed by the union of the built-in kinds and the toy one. */
function toyDefinition(text: string, extra: Record<string, unknown> = {}): Definition {
  const step = stepUnionOf([...BUILT_IN_STEP_KINDS, repeatKind]).parse({ id: 'shout', type: 'repeat', text, times: 3 });
  return {
    name: 'toy',
    version: '1.0.0',
    steps: [
      { id: 'greet', type: 'set', values: { word: 'ho' } },
      step as unknown as Definition['steps'][number],
      { id: 'after', type: 'skill', skill: 'echo', inputs: { said: '${steps.shout.output.text}' } },
    ],
    ...extra,
  };
}

describe('step kinds: the registry', () => {
  test('every built-in type has a kind with a schema for that type, a doc line and an executor', () => {
    assert.deepEqual([...STEP_TYPES], BUILT_IN_STEP_KINDS.map((k) => k.type));
    for (const kind of BUILT_IN_STEP_KINDS) {
      assert.equal(stepKindOf(kind.type), kind);
      assert.ok(kind.doc.length > 20, `${kind.type} has a doc line`);
      assert.equal((kind.schema as unknown as { shape: { type: z.ZodLiteral } }).shape.type.value, kind.type);
      assert.equal(executorOf({ kind: kind.kind } as never), kind.executor);
    }
  });

  test('a type registered twice is refused', () => {
    assert.throws(() => registerStepKind(repeatKind), /already registered/);
  });

  test('the step reference in docs/definition-language.md is the registry\'s (run `npm run docs:steps`)', () => {
    assert.equal(readFileSync(STEP_DOCS_FILE, 'utf8'), renderStepDocs());
  });
});

describe('step kinds: a toy kind registered from a test file', () => {
  test('its schema piece joins the union; an unknown field is refused with its path', () => {
    const union = stepUnionOf([...BUILT_IN_STEP_KINDS, repeatKind]);
    const bad = union.safeParse({ id: 'x', type: 'repeat', text: 'a', times: 2, tims: 1 });
    assert.equal(bad.success, false);
    assert.ok(bad.error?.issues.some((i) => i.code === 'unrecognized_keys'));
    const unknown = union.safeParse({ id: 'x', type: 'nope' });
    assert.match(unknown.error?.issues[0]?.message ?? '', /step types: .*repeat/);
  });

  test('it compiles (expressions checked in its scope) and runs between built-in steps', async () => {
    const { plan, problems } = compileDefinition(toyDefinition('${context.mutable.word}!'));
    assert.deepEqual(problems, []);
    const port = new FakePort();
    const { output, state } = await runToEnd(plan, port);
    assert.deepEqual(state.steps.shout, { status: 'completed', output: { text: 'ho!ho!ho!' } });
    assert.deepEqual(port.activities.map((r) => r.call.input), [{ said: 'ho!ho!ho!' }]);
    assert.deepEqual(output, { said: 'ho!ho!ho!' });
    assert.deepEqual(port.settled.map((s) => [s.stepId, s.stepType, s.status]), [
      ['shout', 'repeat', 'completed'],
      ['after', 'skill', 'completed'],
    ]);
  });

  test('a bad reference in its template is a compile problem at its pointer', () => {
    const { problems } = compileDefinition(toyDefinition('${steps.after.output}'));
    assert.equal(problems[0]?.pointer, '/steps/1/text');
  });

  test('the generic policies apply to it: a failure under continue_on_error lets the run go on', async () => {
    const definition = toyDefinition('${context.mutable.missing}');
    (definition.steps[1] as { continue_on_error?: boolean }).continue_on_error = true;
    const { plan, problems } = compileDefinition({ ...definition, steps: definition.steps.slice(0, 2) });
    assert.deepEqual(problems, []);
    const { state } = await runToEnd(plan, new FakePort());
    assert.equal(state.steps.shout?.status, 'failed');
    assert.equal(state.steps.shout?.continued, true);
    assert.equal(state.status, 'completed');
  });

  test('without a policy its failure fails the run with the step named', async () => {
    const definition = toyDefinition('${context.mutable.missing}');
    const { plan } = compileDefinition({ ...definition, steps: definition.steps.slice(0, 2) });
    const failure = await runToFailure(plan, new FakePort());
    assert.equal(failure.state.error?.step, 'shout');
  });

  test('walking a definition visits it (it has no nested lists)', () => {
    const ids: string[] = [];
    walkSteps(toyDefinition('x').steps, '', (s) => ids.push(s.id));
    assert.deepEqual(ids, ['greet', 'shout', 'after']);
  });
});
