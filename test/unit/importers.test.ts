import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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

  test('listen for one event becomes a wait_for_event step: type as the event, attributes and the data expression as its filter; the output is the list of the one event', () => {
    const result = sw({ listen: { to: { one: { with: { type: 'com.shop.order.paid', source: 'psp', data: '${ .amount > 10 }' } } } } });
    assert.deepEqual(result.refused, []);
    const steps = result.definition?.steps as Array<Record<string, any>>;
    const wait = steps.find((st) => st.type === 'wait_for_event');
    assert.equal(wait?.event, 'com.shop.order.paid');
    assert.equal(wait?.filter, 'get(event, "source") == "psp" && ((get(get(event, "data"), "amount") > 10))');
    const out = steps.find((st) => st.id === 't-out');
    assert.equal(out?.values._r0, `\${[get(steps["${wait?.id}"].output, "data")]}`, 'read: data (the default) gives the data of each event, in a list');
    assert.ok(validateDefinition(result.definition, ctx).ok, JSON.stringify(validateDefinition(result.definition, ctx)));
    const envelope = sw({ listen: { to: { one: { with: { type: 'x.y' } } }, read: 'envelope' } });
    assert.match(String((envelope.definition?.steps as Array<Record<string, any>>).find((st) => st.id === 't-out')?.values._r0), /^\$\{\[steps\["t-listen"\]\.output\]\}$/);
    for (const [listen, path] of [
      [{ to: { all: [{ with: { type: 'a' } }] } }, '/do/0/t/listen/to/all'],
      [{ to: { any: [{ with: { type: 'a' } }] } }, '/do/0/t/listen/to/any'],
      [{ to: { one: { with: { type: 'a' }, correlate: { k: { from: '.k' } } } } }, '/do/0/t/listen/to/one/correlate'],
      [{ to: { one: { with: { type: '${ .t }' } } } }, '/do/0/t/listen/to/one/with/type'],
      [{ to: { one: { with: { type: 'a', data: { amount: 1 } } } } }, '/do/0/t/listen/to/one/with/data'],
      [{ to: { one: { with: { type: 'a' } } }, foreach: { item: 'e' } }, '/do/0/t/listen/foreach'],
      [{ to: { one: { with: { type: 'a' } } }, read: 'raw' }, '/do/0/t/listen/read'],
    ] as const) {
      assert.deepEqual(sw({ listen }).refused.map((r) => r.path), [path], JSON.stringify(listen));
    }
  });

  test('run: workflow becomes a sub_workflow step on the registered definition of that name and version, with its input', () => {
    const result = sw({ run: { workflow: { namespace: 'test', name: 'register-customer', version: '0.1.0', input: { customer: '${ .user }' } } } });
    assert.deepEqual(result.refused, []);
    const steps = result.definition?.steps as Array<Record<string, any>>;
    const child = steps.find((st) => st.type === 'sub_workflow');
    assert.equal(child?.definition, 'register-customer');
    assert.equal(child?.version, '0.1.0');
    assert.deepEqual(child?.inputs, { customer: '${get(_in0, "user")}' });
    assert.equal(steps.find((st) => st.id === 't-out')?.values._r0, '${steps["t-run"].output}', "the child's output is the task's raw output");
    assert.equal(validateDefinition(result.definition, ctx).ok, false, 'the child must be registered first');
    assert.ok(validateDefinition(result.definition, { ...ctx, definitions: new Set(['register-customer@0.1.0']) }).ok);
    for (const [run, path] of [
      [{ container: { image: 'x' } }, '/do/0/t/run/container'],
      [{ shell: { command: 'ls' } }, '/do/0/t/run/shell'],
      [{ workflow: { name: 'c', version: '1.0.0' }, await: false }, '/do/0/t/run/await'],
      [{ workflow: { name: 'Has Spaces', version: '1.0.0' } }, '/do/0/t/run/workflow/name'],
      [{ workflow: { name: 'c', version: 'latest' } }, '/do/0/t/run/workflow/version'],
    ] as const) {
      assert.deepEqual(sw({ run }).refused.map((r) => r.path), [path], JSON.stringify(run));
    }
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

/** An ASL Pass state whose Parameters field r.$ is `call`, imported, then its native expression evaluated over `doc`. */
function intrinsic(call: string, doc: unknown = {}): unknown {
  const result = importAsl({ StartAt: 'A', States: { A: { Type: 'Pass', Parameters: { 'r.$': call }, End: true } } }, { name: 'intrinsic' });
  assert.deepEqual(result.refused, [], call);
  const check = validateDefinition(result.definition, ctx);
  assert.ok(check.ok, JSON.stringify(!check.ok && check.problems));
  const step = (result.definition?.steps as Array<Record<string, any>>).find((st) => st.id === 'A');
  const template = step?.values._r0.r as string;
  assert.match(template, /^\$\{.*\}$/);
  const problems: CompileProblem[] = [];
  const scope: NameScope = { steps: new Set(), allSteps: new Set(), variables: new Set(['_in0']), readonly: new Set(), bindings: new Set() };
  const compiled = compileExpression(template.slice(2, -1), scope, '/x', problems);
  assert.deepEqual(problems, [], template);
  let issued = 0;
  return evaluate(compiled as CompiledExpression, {
    input: {},
    context: { readonly: {}, mutable: { _in0: doc } },
    steps: {},
    run: {},
    signal: undefined,
    bindings: {},
    clock: { now: () => 0, uuid: () => `uuid-${++issued}` },
  });
}

const refusalOf = (call: string) => importAsl({ StartAt: 'A', States: { A: { Type: 'Pass', Parameters: { 'r.$': call }, End: true } } }).refused;

describe('ASL intrinsic functions mapped onto native expressions', () => {
  test('States.Format: {} holes, escaped braces and quotes, values as AWS writes them', () => {
    assert.equal(intrinsic("States.Format('Hello, my name is {}.', $.name)", { name: 'Arnav' }), 'Hello, my name is Arnav.');
    assert.equal(intrinsic("States.Format($.template, $.name)", { name: 'Arnav', template: 'Hi {}' }), 'Hi Arnav');
    assert.equal(intrinsic("States.Format('\\{{}\\} it\\'s \"{}\" {} {}', $.n, $.l, $.o, $.b)", { n: 1.5, l: [1, 'a'], o: { k: null }, b: true }), "{1.5} it's \"[1, a]\" {k=null} true");
  });
  test('States.StringToJson, JsonToString, Array and nesting', () => {
    assert.deepEqual(intrinsic('States.StringToJson($.s)', { s: '{"a":[1,{"b":null}]}' }), { a: [1, { b: null }] });
    assert.equal(intrinsic('States.JsonToString($.o)', { o: { a: 1, b: 'x' } }), '{"a":1,"b":"x"}');
    assert.deepEqual(intrinsic("States.Array('a', 1, -2.5, true, $.n)", { n: { x: 1 } }), ['a', 1, -2.5, true, { x: 1 }]);
    assert.equal(intrinsic('States.JsonToString(States.Array(1, States.MathAdd($.n, 1)))', { n: 2 }), '[1,3]');
  });
  test('the array functions: Partition, Contains, Range, GetItem, Length, Unique', () => {
    assert.deepEqual(intrinsic('States.ArrayPartition($.l, 2)', { l: [1, 2, 3, 4, 5] }), [[1, 2], [3, 4], [5]]);
    assert.equal(intrinsic('States.ArrayContains($.l, $.v)', { l: [1, { a: [2] }], v: { a: [2] } }), true);
    assert.equal(intrinsic('States.ArrayContains($.l, 3)', { l: [1, 2] }), false);
    assert.deepEqual(intrinsic('States.ArrayRange(1, 9, 2)', {}), [1, 3, 5, 7, 9], 'the last value is included, as on AWS');
    assert.deepEqual(intrinsic('States.ArrayRange(1, 10, 2)', {}), [1, 3, 5, 7, 9]);
    assert.deepEqual(intrinsic('States.ArrayRange($.a, 0, -2)', { a: 4 }), [4, 2, 0]);
    assert.equal(intrinsic('States.ArrayGetItem($.l, 1)', { l: ['a', 'b'] }), 'b');
    assert.equal(intrinsic('States.ArrayLength($.l)', { l: [1, 2, 3] }), 3);
    assert.deepEqual(intrinsic('States.ArrayUnique($.l)', { l: [1, 2, 1, { a: 1 }, { a: 1 }] }), [1, 2, { a: 1 }]);
  });
  test('Base64Encode/Decode, JsonMerge (shallow), MathAdd (integers only), StringSplit, UUID', () => {
    assert.equal(intrinsic('States.Base64Encode($.s)', { s: 'Data to encode' }), 'RGF0YSB0byBlbmNvZGU=');
    assert.equal(intrinsic("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')"), 'Data to encode');
    assert.deepEqual(intrinsic('States.JsonMerge($.a, $.b, false)', { a: { x: 1, n: { p: 1 } }, b: { y: 2, n: { q: 2 } } }), { x: 1, y: 2, n: { q: 2 } });
    assert.equal(intrinsic('States.MathAdd($.n, -1)', { n: 111 }), 110);
    assert.throws(() => intrinsic('States.MathAdd($.n, 1)', { n: '1' }), /is not a whole number/);
    assert.deepEqual(intrinsic('States.StringSplit($.s, $.d)', { s: 'This.is+a,test=string', d: '.+,=' }), ['This', 'is', 'a', 'test', 'string']);
    assert.deepEqual(intrinsic("States.StringSplit('1,2,,3', ',')"), ['1', '2', '3']);
    assert.deepEqual(intrinsic("States.StringSplit('a\\\\b\\\\c', '\\\\')"), ['a', 'b', 'c'], 'backslashes survive the native literal');
    assert.equal(intrinsic('States.UUID()'), 'uuid-1', 'the run\'s deterministic uuid()');
    for (const [alg, node] of [['MD5', 'md5'], ['SHA-1', 'sha1'], ['SHA-256', 'sha256'], ['SHA-384', 'sha384'], ['SHA-512', 'sha512']]) {
      assert.equal(intrinsic(`States.Hash($.s, '${alg}')`, { s: 'Input data ✓' }), createHash(node as string).update('Input data ✓').digest('hex'), `${alg}, as node:crypto computes it`);
    }
    assert.equal(intrinsic('States.Hash($.s, $.alg)', { s: 'abc', alg: 'SHA-256' }), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  test('MathRandom, an unknown hash algorithm, a deep JsonMerge, unknown functions and bad calls are refused with the reason', () => {
    assert.match(refusalOf("States.Hash($.s, 'SHA-3')")[0]?.detail ?? '', /MD5, SHA-1, SHA-256, SHA-384 or SHA-512/);
    assert.match(refusalOf('States.MathRandom(1, 10)')[0]?.detail ?? '', /no deterministic equivalent/);
    assert.match(refusalOf('States.JsonMerge($.a, $.b, true)')[0]?.detail ?? '', /only the shallow merge/);
    assert.match(refusalOf('States.Shout($.a)')[0]?.detail ?? '', /does not exist/);
    assert.match(refusalOf('States.ArrayLength($.a, 2)')[0]?.detail ?? '', /takes 1 argument/);
    assert.match(refusalOf("States.Format('x', $.a")[0]?.detail ?? '', /cannot parse/);
    assert.deepEqual(refusalOf("States.Format('{}', $.items[*].id)").map((r) => r.construct), ['path']);
  });
  test('one Assign evaluates all its values before it assigns any: a swap goes through temporaries', () => {
    const result = importAsl({ StartAt: 'A', States: { A: { Type: 'Pass', Assign: { x: 1, y: 2 }, Next: 'B' }, B: { Type: 'Pass', Assign: { 'x.$': '$y', 'y.$': '$x', z: 3 }, End: true } } });
    assert.deepEqual(result.refused, []);
    const steps = result.definition?.steps as Array<Record<string, any>>;
    const assigned = (id: string) => Object.entries(steps.find((st) => st.id === id)?.values).filter(([key]) => /^(v|_a)_/.test(key));
    assert.deepEqual(assigned('A'), [['v_x', 1], ['v_y', 2]], 'no variable read: assigned directly');
    assert.deepEqual(assigned('B'), [['_a_x', '${v_y}'], ['_a_y', '${v_x}'], ['_a_z', 3], ['v_x', '${_a_x}'], ['v_y', '${_a_y}'], ['v_z', '${_a_z}']]);
    assert.ok(validateDefinition(result.definition, ctx).ok);
  });
  test('intrinsics in Assign and ResultSelector too', () => {
    const result = importAsl({ StartAt: 'A', States: { A: { Type: 'Pass', Result: { l: [3, 1] }, ResultSelector: { 'n.$': 'States.ArrayLength($.l)' }, Assign: { 'first.$': 'States.ArrayGetItem($.l, 0)' }, End: true } } });
    assert.deepEqual(result.refused.map((r) => r.path), ['/States/A/ResultSelector'], 'a Pass state has no ResultSelector');
    const assigned = importAsl({ StartAt: 'A', States: { A: { Type: 'Pass', Assign: { 'first.$': 'States.ArrayGetItem($.l, 0)' }, End: true } } });
    assert.deepEqual(assigned.refused, []);
    assert.ok(JSON.stringify(assigned.definition).includes('get(get(_r0, \\"l\\"), integer(0))'), JSON.stringify(assigned.definition));
  });
});
