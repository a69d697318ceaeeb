import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allowedMethods, routeTemplates, tooDeepAt, unstorableTextAt } from '../../api/edge.ts';
import { echo } from '../../api/error-handler.ts';
import { buildOpenApiDocument } from '../../api/openapi.ts';
import { LIMITS } from '../../interpreter/schema.ts';
import { validateDefinition } from '../../interpreter/validate.ts';

const bytes = (text: string) => Buffer.from(text, 'utf8');

describe('tooDeepAt', () => {
  test('finds where nesting first goes past the limit, as a path', () => {
    assert.equal(tooDeepAt(bytes('[[1]]'), 2), undefined);
    assert.deepEqual(tooDeepAt(bytes('[[[1]]]'), 2), [0, 0]);
    assert.deepEqual(tooDeepAt(bytes('{"a":1,"b":[2,{"c":{"d":[]}}]}'), 3), ['b', 1, 'c']);
    assert.deepEqual(tooDeepAt(bytes('{"a":{"x":1},"b":{"c":{}}}'), 2), ['b', 'c']);
  });

  test('brackets, quotes and escapes inside strings do not count', () => {
    assert.equal(tooDeepAt(bytes('{"[[[[": "{{{{\\"[[[["}'), 1), undefined);
    assert.deepEqual(tooDeepAt(bytes('{"k\\"ey": [[]]}'), 2), ['k"ey', 0]);
    assert.equal(tooDeepAt(bytes('["\\\\", []]'), 2), undefined);
    assert.deepEqual(tooDeepAt(bytes('{"é": {"ü": []}}'), 2), ['é', 'ü']);
  });

  test('a 400,000-deep body is one linear pass', () => {
    const deep = bytes(`${'['.repeat(400_000)}${']'.repeat(400_000)}`);
    assert.equal(tooDeepAt(deep, 64)?.length, 64);
  });

  test('the deepest definition the validator accepts stays well inside the default limit', () => {
    let steps: unknown[] = [{ id: 'leaf', type: 'skill', skill: 'echo', inputs: { a: { b: { c: [1] } } } }];
    // A switch case is the deepest nesting per level: step → cases → case → steps → step.
    for (let i = 1; i < LIMITS.maxNestingDepth; i += 1) steps = [{ id: `s${i}`, type: 'switch', value: '${input}', cases: [{ equals: 1, steps }] }];
    const definition = { name: 'deep', version: '1.0.0', steps };
    const validation = validateDefinition(definition, { skills: new Set(['echo']), integrations: new Set(), agents: new Set(), lanes: ['l'] });
    assert.equal(validation.ok, true, JSON.stringify(!validation.ok && validation.problems));
    const text = bytes(JSON.stringify({ workflow: definition }));
    assert.equal(tooDeepAt(text, 36), undefined);
    assert.notEqual(tooDeepAt(text, 35), undefined, 'docs/OPERATIONS.md says about 35 levels');
  });
});

describe('unstorableTextAt', () => {
  test('finds NUL and lone surrogates in values and keys, with their path', () => {
    assert.equal(unstorableTextAt({ a: ['ok', 1, null, true, { b: 'fine 😀' }] }), undefined);
    assert.deepEqual(unstorableTextAt({ a: [1, 'x\u0000'] })?.path, ['a', 1]);
    assert.deepEqual(unstorableTextAt({ a: { 'k\u0000': 1 } })?.path, ['a', 'k\u0000']);
    assert.match(unstorableTextAt(['\ud800'])?.message ?? '', /surrogate/);
    assert.match(unstorableTextAt('\udc00x')?.message ?? '', /surrogate/);
    assert.equal(unstorableTextAt('\ud83d\ude00'), undefined);
  });
});

describe('route templates', () => {
  const templates = routeTemplates(buildOpenApiDocument().paths as Record<string, Record<string, unknown>>);

  test('the methods a path supports, across every template that matches it', () => {
    assert.deepEqual(allowedMethods(templates, '/v1/runs').sort(), ['GET', 'HEAD', 'POST']);
    assert.deepEqual(allowedMethods(templates, '/v1/runs/abc/').sort(), ['GET', 'HEAD']);
    // `validate` is also a `{name}`: both templates answer.
    assert.deepEqual(allowedMethods(templates, '/v1/definitions/validate').sort(), ['GET', 'HEAD', 'POST']);
    assert.deepEqual(allowedMethods(templates, '/v1/nowhere'), []);
    assert.deepEqual(allowedMethods(templates, '/v1/runs/a/b/c'), []);
  });
});

describe('echo', () => {
  test('spells out control characters, replaces lone surrogates and cuts long text', () => {
    assert.equal(echo('a\u0000b\nc'), 'a\\u0000b\\u000ac');
    assert.equal(echo('x\ud800'), 'x\ufffd');
    const long = echo('r'.repeat(15_000));
    assert.equal(long.length, 300);
    assert.ok(long.endsWith('…'));
  });
});
