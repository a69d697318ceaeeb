import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { catalogNames, createActivityCatalog } from '../../activities/catalog.ts';
import { inputChecker } from '../../activities/input-check.ts';
import { validateDefinition, type Problem, type ValidationContext } from '../../interpreter/validate.ts';

/** Registration-time checks of skill and integration inputs against the real registry's schemas. */
const catalog = createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] });
const ctx: ValidationContext = { ...catalogNames(catalog), lanes: ['prod-critical'], extraChecks: inputChecker(catalog) };

type Json = Record<string, unknown>;
const def = (...steps: Json[]): Json => ({ name: 'input-check', version: '1.0.0', steps });
const fetchStep = (id: string, inputs: Json | undefined, extra: Json = {}): Json => ({ id, type: 'skill', skill: 'http-fetch', ...(inputs ? { inputs } : {}), ...extra });

function problemsOf(raw: unknown): Problem[] {
  const result = validateDefinition(raw, ctx);
  return result.ok ? [] : result.problems;
}

function expectProblem(problems: Problem[], path: string, message: RegExp, stepId?: string): void {
  const found = problems.find((p) => p.path === path && message.test(p.message));
  assert.ok(found, `expected a problem at ${path} matching ${message}; got ${JSON.stringify(problems, null, 2)}`);
  if (stepId !== undefined) assert.equal(found.stepId, stepId);
}

describe('registration-time input checks', () => {
  test('a missing required field is reported at its pointer', () => {
    const problems = problemsOf(def(fetchStep('get', {})));
    expectProblem(problems, '/steps/0/inputs/url', /missing required field "url" for http-fetch/, 'get');
    // No inputs at all: the same pointer, under the (absent) inputs.
    expectProblem(problemsOf(def(fetchStep('get', undefined))), '/steps/0/inputs/url', /missing required field "url"/);
  });

  test('an unknown field of a strict schema is reported', () => {
    const problems = problemsOf(def(fetchStep('get', { url: 'https://api.example.com/', retries: 3 })));
    expectProblem(problems, '/steps/0/inputs/retries', /unknown field "retries" for http-fetch/, 'get');
    assert.equal(problems.length, 1, JSON.stringify(problems));
  });

  test('wrong literal types and shapes are reported', () => {
    const problems = problemsOf(def(fetchStep('get', { url: 'not a url', method: 'FETCH', timeout: 'fast', headers: { a: 1 } })));
    expectProblem(problems, '/steps/0/inputs/url', /url|URL/);
    expectProblem(problems, '/steps/0/inputs/method', /GET/);
    expectProblem(problems, '/steps/0/inputs/timeout', /expected number/);
    expectProblem(problems, '/steps/0/inputs/headers/a', /expected string/);
  });

  test('templates, bare references and secret references are left to run time', () => {
    const result = validateDefinition(
      def(
        fetchStep('first', { url: '${input.url}', timeout: '${input.timeout}' }),
        fetchStep('second', { url: 'first.data.next', headers: { authorization: { secret: 'CRM_TOKEN', prefix: 'Bearer ' } } }),
        fetchStep('third', { url: 'https://api.example.com/items/${steps.first.output.data.id}', method: 'POST', body: { any: ['thing'] } }),
      ),
      ctx,
    );
    assert.deepEqual(result.ok ? [] : result.problems, []);
  });

  test('a literal beside a template in the same object is still judged', () => {
    const problems = problemsOf(def(fetchStep('get', { url: '${input.url}', timeout: 'fast' })));
    expectProblem(problems, '/steps/0/inputs/timeout', /expected number/);
    assert.equal(problems.length, 1, JSON.stringify(problems));
  });

  test('nested steps, integrations and seed 004 directives (payload) are checked', () => {
    const problems = problemsOf(
      def(
        { id: 'branches', type: 'parallel', steps: [fetchStep('inner', { url: 'https://a.example.com/', bogus: true })] },
        { id: 'call', type: 'integration', integration: 'http.request', inputs: { method: 'POST' } },
        { id: 'directive', type: 'directive', directive: 'http.request', payload: { url: 'https://a.example.com/', timeout: -1 } },
      ),
    );
    expectProblem(problems, '/steps/0/steps/0/inputs/bogus', /unknown field "bogus"/, 'inner');
    expectProblem(problems, '/steps/1/inputs/url', /missing required field "url" for http.request/, 'call');
    expectProblem(problems, '/steps/2/payload/timeout', /too small|>0/i, 'directive');
  });

  test('secret inputs must be references, and reference names must be valid', () => {
    const webhook = (inputs: Json): Json => ({ id: 'notify', type: 'skill', skill: 'notify-webhook', inputs: { url: 'https://hooks.example.com/x', message: { text: 'hi' }, ...inputs } });
    expectProblem(problemsOf(def(webhook({ signing_secret: 'literal-key' }))), '/steps/0/inputs/signing_secret', /must be a secret reference/);
    expectProblem(problemsOf(def(webhook({ signing_secret: '${input.key}' }))), '/steps/0/inputs/signing_secret', /must be a secret reference/);
    expectProblem(problemsOf(def(webhook({ signing_secret: { secret: '../etc/passwd' } }))), '/steps/0/inputs/signing_secret/secret', /not a valid secret name/);
    assert.deepEqual(problemsOf(def(webhook({ signing_secret: { secret: 'HOOK_KEY' } }))), []);
  });

  test('transform and delay inputs', () => {
    expectProblem(problemsOf(def({ id: 't', type: 'skill', skill: 'transform', inputs: { data: {} } })), '/steps/0/inputs/expression', /missing required field/);
    expectProblem(problemsOf(def({ id: 'd', type: 'skill', skill: 'delay', inputs: { seconds: 99999 } })), '/steps/0/inputs/seconds', /too big|<=3600/i);
  });

  test('unknown skills are the validator\'s problem, reported once', () => {
    const problems = problemsOf(def({ id: 'x', type: 'skill', skill: 'no-such-skill', inputs: { a: 1 } }));
    assert.equal(problems.length, 1, JSON.stringify(problems));
    expectProblem(problems, '/steps/0/skill', /unknown skill/);
  });

  test('without the hook, inputs are not checked (interpreter/validate.ts stays catalog-agnostic)', () => {
    const { extraChecks: _unused, ...plain } = ctx;
    assert.equal(validateDefinition(def(fetchStep('get', {})), plain).ok, true);
  });

  test('problems in seed 004 wrapped documents point under /workflow', () => {
    const problems = problemsOf({ workflow: def(fetchStep('get', { url: 5 })) });
    expectProblem(problems, '/workflow/steps/0/inputs/url', /expected string/);
  });
});
