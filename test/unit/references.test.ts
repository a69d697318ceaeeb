import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ReferenceResolutionError,
  compileValue,
  parsePath,
  pointerSegment,
  resolveValue,
  type CompileProblem,
  type CompileScope,
  type CompiledValue,
  type EvaluationScope,
} from '../../interpreter/references.ts';

/** Scope for a value compiled in the inputs of a step that runs after `earlier` and before `later`. */
function scopeOf(earlier: string[], later: string[] = []): CompileScope {
  return { earlierSteps: new Set(earlier), allSteps: new Set([...earlier, ...later]) };
}

function compile(value: unknown, scope: CompileScope = scopeOf([])): { compiled: CompiledValue; problems: CompileProblem[] } {
  const problems: CompileProblem[] = [];
  const compiled = compileValue(value, scope, '/steps/1/inputs', problems);
  return { compiled, problems };
}

const evalScope: EvaluationScope = {
  input: { city: 'Paris', count: 3, tags: ['a', 'b'] },
  context: { readonly: { environment: 'production', user: 'alice' }, mutable: { counter: 0 } },
  steps: {
    'fetch-data': { status: 'completed', output: { data: { items: [10, 20, 30], 'odd key': 'x' }, status: 200 } },
    summarize: { status: 'completed', output: { summary: 'short', score: 0.5 } },
    broken: { status: 'failed' },
  },
  run: { id: 'run-1' },
};

describe('parsePath', () => {
  test('splits dotted names', () => {
    assert.deepEqual(parsePath('steps.summarize.output.summary'), ['steps', 'summarize', 'output', 'summary']);
  });

  test('reads numeric indexes as numbers', () => {
    assert.deepEqual(parsePath('input.items[0].name'), ['input', 'items', 0, 'name']);
    assert.deepEqual(parsePath('input.m[12][3]'), ['input', 'm', 12, 3]);
  });

  test('reads quoted keys, double and single, with escapes', () => {
    assert.deepEqual(parsePath('steps["fetch data"].output'), ['steps', 'fetch data', 'output']);
    assert.deepEqual(parsePath("input['a.b']"), ['input', 'a.b']);
    assert.deepEqual(parsePath('input["say \\"hi\\""]'), ['input', 'say "hi"']);
  });

  test('keeps hyphenated names whole', () => {
    assert.deepEqual(parsePath('steps.fetch-data.output.data'), ['steps', 'fetch-data', 'output', 'data']);
  });

  test('ignores surrounding whitespace', () => {
    assert.deepEqual(parsePath('  input.city '), ['input', 'city']);
  });

  test('refuses operators with a message saying they are not supported', () => {
    const result = parsePath('a + b');
    assert.equal(typeof result, 'string');
    assert.match(result as string, /operators and functions are not supported/);
    assert.match(result as string, /"\+"|" "/);
  });

  test('refuses comparisons and calls', () => {
    assert.equal(typeof parsePath('fetch-data.status == 200'), 'string');
    assert.equal(typeof parsePath('upper(input.city)'), 'string');
  });

  test('refuses empty text, a trailing dot and malformed brackets', () => {
    assert.match(parsePath('') as string, /must start with a name/);
    assert.match(parsePath('1abc') as string, /must start with a name/);
    assert.match(parsePath('input.') as string, /expected a name after "\."/);
    assert.match(parsePath('input[abc]') as string, /expected \[number\] or \["key"\]/);
    assert.match(parsePath('input["open') as string, /expected \[number\] or \["key"\]/);
  });
});

describe('compileValue', () => {
  test('a string that is exactly one template becomes a reference', () => {
    const { compiled, problems } = compile('${steps.summarize.output.summary}', scopeOf(['summarize']));
    assert.deepEqual(problems, []);
    assert.equal(compiled.kind, 'ref');
    assert.deepEqual(compiled.kind === 'ref' && compiled.ref.path, ['summarize', 'output', 'summary']);
    assert.equal(compiled.kind === 'ref' && compiled.ref.root, 'steps');
  });

  test('templates inside longer text interpolate', () => {
    const { compiled, problems } = compile('Hello ${input.city}!', scopeOf([]));
    assert.deepEqual(problems, []);
    assert.equal(compiled.kind, 'interpolate');
  });

  test('every reference root is accepted', () => {
    for (const text of ['${input}', '${context.readonly.user}', '${run.id}', '${steps.a.status}']) {
      const { problems } = compile(text, scopeOf(['a']));
      assert.deepEqual(problems, [], text);
    }
  });

  test('bare "step.path" form becomes a reference to an earlier step\'s output', () => {
    const { compiled, problems } = compile('fetch-data.data', scopeOf(['fetch-data']));
    assert.deepEqual(problems, []);
    assert.equal(compiled.kind, 'ref');
    if (compiled.kind !== 'ref') return;
    assert.equal(compiled.ref.root, 'steps');
    assert.deepEqual(compiled.ref.path, ['fetch-data', 'output', 'data']);
    assert.equal(compiled.ref.source, 'fetch-data.data');
  });

  test('bare form with an index', () => {
    const { compiled } = compile('fetch-data.data.items[1]', scopeOf(['fetch-data']));
    assert.equal(compiled.kind, 'ref');
    assert.deepEqual(compiled.kind === 'ref' && compiled.ref.path, ['fetch-data', 'output', 'data', 'items', 1]);
  });

  test('bare form naming a later step is a problem, not a literal', () => {
    const { problems } = compile('fetch-data.data', scopeOf(['other'], ['fetch-data']));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /does not run before this point/);
    assert.equal(problems[0]!.pointer, '/steps/1/inputs');
  });

  test('template naming a later step is a problem', () => {
    const { problems } = compile('${steps.later.output}', scopeOf([], ['later']));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /"later", which does not run before this point/);
  });

  test('template naming an unknown step says it does not exist', () => {
    const { problems } = compile('${steps.nope.output}', scopeOf(['a']));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /"nope", which does not exist/);
  });

  test('a step exposes only output and status', () => {
    const { problems } = compile('${steps.a.result}', scopeOf(['a']));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /"output" and "status"/);
  });

  test('URLs and dotted words that name no step stay literal', () => {
    for (const text of ['https://api.example.com/data', 'hello.world', 'v1.2.3', 'plain text', '']) {
      const { compiled, problems } = compile(text, scopeOf(['fetch-data']));
      assert.deepEqual(problems, [], text);
      assert.deepEqual(compiled, { kind: 'literal', value: text }, text);
    }
  });

  test('unknown roots are rejected and the message lists the roots', () => {
    const { problems } = compile('${secrets.token}');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /input, context, steps, run/);
  });

  test('operators inside a template are rejected', () => {
    const { problems } = compile('${input.a + input.b}');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /operators and functions are not supported/);
  });

  test('an unterminated "${" is reported', () => {
    const { problems } = compile('value: ${input.city');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /unterminated "\$\{"/);
  });

  test('an unterminated "${" after a complete template is still reported, once', () => {
    const { problems } = compile('${input.city} and ${input.count', scopeOf([]));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /unterminated/);
  });

  test('a rejected template is reported once, not also as unterminated', () => {
    const { problems } = compile('${steps.nope.output}', scopeOf([]));
    assert.deepEqual(problems.map((p) => p.message), ['"steps.nope.output" refers to step "nope", which does not exist']);
  });

  test('problems carry JSON Pointers into nested arrays and objects, with escaping', () => {
    const { problems } = compile({ list: ['ok', '${nope.x}'], 'a/b': { 'c~d': '${bad.y}' } });
    assert.deepEqual(
      problems.map((p) => p.pointer),
      ['/steps/1/inputs/list/1', '/steps/1/inputs/a~1b/c~0d'],
    );
  });

  test('all problems are collected, none thrown', () => {
    const { problems } = compile(['${steps.nope.output}', '${x.y}', 'a ${input', '${input.a == 1}']);
    assert.equal(problems.length, 4);
  });

  test('non-string scalars are literals', () => {
    for (const value of [1, 0, true, false, null]) {
      assert.deepEqual(compile(value).compiled, { kind: 'literal', value });
    }
  });

  test('pointerSegment escapes "~" and "/" per RFC 6901', () => {
    assert.equal(pointerSegment('a~b/c'), 'a~0b~1c');
    assert.equal(pointerSegment(3), '3');
  });
});

describe('resolveValue', () => {
  const resolve = (value: unknown, earlier = ['fetch-data', 'summarize', 'broken']) => {
    const { compiled, problems } = compile(value, scopeOf(earlier));
    assert.deepEqual(problems, []);
    return resolveValue(compiled, evalScope);
  };

  test('a whole-string template keeps an object\'s type', () => {
    assert.deepEqual(resolve('${steps.fetch-data.output.data}'), { items: [10, 20, 30], 'odd key': 'x' });
  });

  test('a whole-string template keeps a number\'s type', () => {
    assert.equal(resolve('${steps.fetch-data.output.status}'), 200);
    assert.equal(resolve('${input.count}'), 3);
    assert.equal(resolve('${context.mutable.counter}'), 0);
  });

  test('interpolation stringifies numbers and objects', () => {
    assert.equal(resolve('status=${steps.fetch-data.output.status}'), 'status=200');
    assert.equal(resolve('tags: ${input.tags}'), 'tags: ["a","b"]');
    assert.equal(resolve('${input.city}, ${context.readonly.user}'), 'Paris, alice');
  });

  test('bare reference resolves to steps[id].output.path', () => {
    assert.deepEqual(resolve('fetch-data.data'), { items: [10, 20, 30], 'odd key': 'x' });
    assert.equal(resolve('fetch-data.data.items[2]'), 30);
  });

  test('quoted keys and indexes resolve', () => {
    assert.equal(resolve('${steps.fetch-data.output.data["odd key"]}'), 'x');
    assert.equal(resolve('${input.tags[1]}'), 'b');
  });

  test('objects and arrays resolve recursively; literals are untouched', () => {
    assert.deepEqual(resolve({ a: ['${input.city}', 1, null], b: { c: 'hello.world', d: '${run.id}' } }), {
      a: ['Paris', 1, null],
      b: { c: 'hello.world', d: 'run-1' },
    });
  });

  test('a missing key raises ReferenceResolutionError naming the key', () => {
    assert.throws(
      () => resolve('${steps.summarize.output.missing}'),
      (error: unknown) => {
        assert.ok(error instanceof ReferenceResolutionError);
        assert.equal(error.reference, 'steps.summarize.output.missing');
        assert.match(error.message, /"missing"/);
        assert.match(error.message, /steps\.summarize\.output has no/);
        return true;
      },
    );
  });

  test('walking through a scalar names the scalar and the key', () => {
    assert.throws(() => resolve('${input.city.length}'), (error: unknown) => {
      assert.ok(error instanceof ReferenceResolutionError);
      assert.match(error.message, /input\.city is string, so it has no "length"/);
      return true;
    });
  });

  test('an index past the end of an array raises', () => {
    assert.throws(() => resolve('${input.tags[5]}'), /has no "5"/);
  });

  test('a failed step has no output to read', () => {
    assert.throws(() => resolve('${steps.broken.output.x}'), (error: unknown) => {
      assert.ok(error instanceof ReferenceResolutionError);
      assert.match(error.message, /has no "output"/);
      return true;
    });
  });

  test('inherited properties are not readable', () => {
    assert.throws(() => resolve('${input.constructor}'), ReferenceResolutionError);
    assert.throws(() => resolve('${input.toString}'), ReferenceResolutionError);
  });

  test('interpolation errors also raise', () => {
    assert.throws(() => resolve('x ${input.nope} y'), /has no "nope"/);
  });
});
