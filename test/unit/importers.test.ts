import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { importAsl } from '../../importers/asl.ts';
import { ImportSourceError, parseSource } from '../../importers/index.ts';
import { JqUnsupported, translateJq } from '../../importers/jq.ts';
import { importServerlessWorkflow } from '../../importers/serverless-workflow.ts';
import { compileExpression, evaluate, type CompileProblem, type CompiledExpression, type NameScope } from '../../interpreter/expressions.ts';
import { validateDefinition } from '../../interpreter/validate.ts';

const ctx = { skills: new Set(['echo', 'http-fetch']), integrations: new Set<string>(), agents: new Set<string>(), lanes: ['prod-critical'] };

/** Translates jq over `d` and evaluates it with the platform's own expression engine. */
function jq(source: string, d: unknown, vars: Record<string, unknown> = {}): unknown {
  const expr = translateJq(source, { dot: 'd', variable: (name) => (name in vars ? `v_${name}` : undefined) });
  const problems: CompileProblem[] = [];
  const names = new Set(['d', '_null', ...Object.keys(vars).map((k) => `v_${k}`)]);
  const scope: NameScope = { steps: new Set(), allSteps: new Set(), variables: names, readonly: new Set(), bindings: new Set() };
  const compiled = compileExpression(expr, scope, '/x', problems);
  assert.deepEqual(problems, [], expr);
  const mutable = { d, _null: null, ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [`v_${k}`, v])) };
  return evaluate(compiled as CompiledExpression, { input: {}, context: { readonly: {}, mutable }, steps: {}, run: {}, signal: undefined, bindings: {} });
}

describe('jq subset translated to native expressions', () => {
  test('paths, jq addition, literals, interpolation, pipes and filters give jq results', () => {
    assert.deepEqual(jq('.colors + ["red"]', {}), ['red'], 'null + list is the list');
    assert.deepEqual(jq('.colors + ["red"]', { colors: ['blue'] }), ['blue', 'red']);
    assert.deepEqual(jq('{ colors: (.p.colors + [ $c ]), n: .n }', { n: 2 }, { c: 'x' }), { colors: ['x'], n: 2 });
    assert.equal(jq('"Hello \\(.user.first) \\(.user.last)!"', { user: { first: 'A', last: 'B' } }), 'Hello A B!');
    assert.equal(jq('.[0].id', [{ id: 7 }]), 7);
    assert.equal(jq('. | length', [1, 2, 3]), 3);
    assert.equal(jq('.a.b.c', {}), undefined, 'a missing path has no value, it does not throw');
    assert.equal(jq('.n == "1"', { n: 1 }), false, 'equality is strict');
    assert.equal(jq('.x // "fallback"', { x: false }), 'fallback');
    assert.equal(jq('.x // "fallback"', { x: 0 }), 0, '0 is not null or false');
  });
  test('constructs outside the subset are refused by name', () => {
    for (const [source, what] of [['.items[]', 'index'], ['map(.id)', 'map'], ['..', 'recursive'], ['.a?', 'optional'], ['$secret', 'variable']] as const) {
      assert.throws(() => translateJq(source, { dot: 'd', variable: () => undefined }), (e: unknown) => e instanceof JqUnsupported && e.message.includes(what), source);
    }
  });
});

describe('importers offline', () => {
  test('sources parse as JSON5 or YAML; anything else is an ImportSourceError', () => {
    assert.deepEqual(parseSource('{a: 1,}'), { a: 1 });
    assert.deepEqual(parseSource('a: 1\nb: [x]'), { a: 1, b: ['x'] });
    assert.throws(() => parseSource('{ a: '), ImportSourceError);
  });
  test('an ASL machine with a backward jump runs as a bounded loop and validates', () => {
    const result = importAsl({ StartAt: 'A', States: { A: { Type: 'Pass', Next: 'B' }, B: { Type: 'Choice', Choices: [{ Variable: '$.n', NumericLessThan: 3, Next: 'A' }], Default: 'C' }, C: { Type: 'Succeed' } } }, { name: 'loop' });
    assert.deepEqual(result.refused, []);
    const check = validateDefinition(result.definition, ctx);
    assert.ok(check.ok, JSON.stringify(!check.ok && check.problems));
    assert.equal((result.definition?.steps as Array<{ type: string }>)[1]?.type, 'loop');
  });
  test('every refusal of a Serverless Workflow document is reported with its path', () => {
    const result = importServerlessWorkflow({
      document: { dsl: '1.0.0', namespace: 'x', name: 'bad', version: '1.0.0' },
      do: [{ a: { emit: { event: {} } } }, { b: { set: { x: '${ .items | map(.id) }' } } }, { c: { call: 'openapi', with: {} } }],
    });
    assert.equal(result.definition, undefined);
    assert.deepEqual(result.refused.map((r) => r.path), ['/do/0/a/emit', '/do/1/b/set/x', '/do/2/c/with/document']);
  });

  const sw = (task: unknown, options = {}) =>
    importServerlessWorkflow({ document: { dsl: '1.0.0', namespace: 'x', name: 'calls', version: '1.0.0' }, do: [{ t: task }] }, options);
  const callOf = (result: ReturnType<typeof sw>) => (result.definition?.steps as Array<Record<string, any>>).find((st) => st.skill === 'http-fetch');

  test('basic authentication becomes an Authorization header from the input; credentials written in the document are refused', () => {
    const ok = sw({ call: 'http', with: { method: 'get', endpoint: { uri: 'https://h.example/x', authentication: { basic: { username: '${ .u }', password: '${ .p }' } } } } });
    assert.deepEqual(ok.refused, []);
    const auth = callOf(ok)?.inputs.headers.Authorization as string;
    assert.match(auth, /^Basic \$\{base64Encode\(/);
    assert.ok(validateDefinition(ok.definition, ctx).ok);
    const literal = sw({ call: 'http', with: { endpoint: { uri: 'https://h.example/x', authentication: { basic: { username: 'ada', password: 'secret' } } } } });
    assert.deepEqual(literal.refused.map((r) => r.path), ['/do/0/t/with/endpoint/authentication/basic/username']);
    assert.match(literal.refused[0]?.detail ?? '', /in clear/);
    const digest = sw({ call: 'http', with: { endpoint: { uri: 'https://h.example/x', authentication: { digest: { username: '${ .u }', password: '${ .p }' } } } } });
    assert.deepEqual(digest.refused.map((r) => r.construct), ['authentication.digest']);
  });

  test('call: openapi resolves the operationId in the document given under openapi: method, server, path, query and header parameters', () => {
    const doc = {
      swagger: '2.0',
      host: 'pets.example',
      basePath: '/v2',
      schemes: ['https'],
      paths: { '/pet/{petId}': { delete: { operationId: 'deletePet', parameters: [{ name: 'petId', in: 'path' }, { name: 'api_key', in: 'header' }, { name: 'hard', in: 'query' }] } } },
    };
    const task = { call: 'openapi', with: { document: { endpoint: 'https://pets.example/swagger.json' }, operationId: 'deletePet', parameters: { petId: '${ .id }', api_key: 'k', hard: 'a b' } } };
    const result = sw(task, { openapi: { 'https://pets.example/swagger.json': doc }, baseUrls: { 'https://pets.example': 'http://127.0.0.1:9' } });
    assert.deepEqual(result.refused, []);
    const call = callOf(result);
    assert.equal(call?.inputs.method, 'DELETE');
    assert.deepEqual(call?.inputs.headers, { api_key: 'k' });
    const prep = (result.definition?.steps as Array<Record<string, any>>).find((st) => st.values && Object.keys(st.values).some((k) => k.startsWith('_url')));
    const url = Object.entries(prep?.values ?? {}).find(([k]) => k.startsWith('_url'))?.[1];
    assert.match(String(url), /^http:\/\/127\.0\.0\.1:9\/v2\/pet\/\$\{.+\|string\}\?hard=a%20b$/);
    assert.ok(validateDefinition(result.definition, ctx).ok);
    assert.deepEqual(sw({ ...task, with: { ...task.with, operationId: 'nope' } }, { openapi: { 'https://pets.example/swagger.json': doc } }).refused.map((r) => r.detail), ['the document https://pets.example/swagger.json has no operation "nope"']);
    assert.match(sw(task).refused[0]?.detail ?? '', /was not given: pass it under "openapi"/);
  });
});
