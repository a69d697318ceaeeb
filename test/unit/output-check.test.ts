import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { catalogNames, createActivityCatalog, outputContracts } from '../../activities/catalog.ts';
import type { AgentDefinition } from '../../activities/agents/types.ts';
import { validateDefinition, type Problem, type ValidationContext } from '../../interpreter/validate.ts';

/** Declared outputs and reads of step outputs, checked against the real registry's output schemas. */
const catalog = createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] });
const triage: AgentDefinition = {
  name: 'triage',
  description: 'sorts tickets',
  model: 'default',
  system_prompt: 'sort',
  tools: [],
  guardrails: { max_iterations: 2 },
  output_schema: { type: 'object', additionalProperties: false, properties: { label: { type: 'string' } } },
};
const names = catalogNames(catalog);
const ctx: ValidationContext = {
  ...names,
  agents: new Set([...names.agents, 'triage']),
  lanes: ['prod-critical'],
  outputs: outputContracts(catalog, [triage]),
};

type Json = Record<string, unknown>;
const def = (...steps: Json[]): Json => ({ name: 'output-check', version: '1.0.0', steps });
const fetchStep = (extra: Json = {}): Json => ({ id: 'fetch', type: 'skill', skill: 'http-fetch', inputs: { url: 'https://example.com/' }, ...extra });
const echo = (id: string, inputs: Json): Json => ({ id, type: 'skill', skill: 'echo', inputs });

function problemsOf(raw: unknown, context: ValidationContext = ctx): Problem[] {
  const result = validateDefinition(raw, context);
  return result.ok ? [] : result.problems;
}

function expectOne(problems: Problem[], path: string, message: RegExp): void {
  assert.equal(problems.length, 1, JSON.stringify(problems, null, 2));
  const [found] = problems;
  assert.equal(found?.path, path);
  assert.match(found?.message ?? '', message);
}

describe('declared outputs against the output schema', () => {
  test("the issue's example: http-fetch declares status and body; body does not exist", () => {
    const problems = problemsOf(def(fetchStep({ outputs: ['status', 'body'] })));
    expectOne(problems, '/steps/0/outputs/1', /declares output "body", but skill "http-fetch" returns no such field; its output has: status, ok, headers, data/);
    assert.equal(problems[0]?.stepId, 'fetch');
  });

  test('fields the schema has are accepted', () => {
    assert.deepEqual(problemsOf(def(fetchStep({ outputs: ['status', 'ok', 'headers', 'data'] }))), []);
  });

  test('without output contracts (an installation that gives none) nothing is judged', () => {
    const { outputs: _none, ...plain } = ctx;
    assert.deepEqual(problemsOf(def(fetchStep({ outputs: ['body'] })), plain), []);
  });
});

describe('references to step outputs', () => {
  test('every reference form reports the unknown field with its JSON path and the fields that exist', () => {
    const problems = problemsOf(
      def(
        fetchStep(),
        echo('use', {
          template: '${fetch.body}',
          long: '${steps.fetch.output.body}',
          bracket: '${steps["fetch"].output.body}',
          bare: 'fetch.body',
          interpolated: 'status ${fetch.status}, text ${fetch.text}',
        }),
      ),
    );
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['/steps/1/inputs/bare', '/steps/1/inputs/bracket', '/steps/1/inputs/interpolated', '/steps/1/inputs/long', '/steps/1/inputs/template']);
    for (const p of problems) {
      assert.match(p.message, /step "fetch": skill "http-fetch" returns no field "(body|text)"; its output has: status, ok, headers, data/);
      assert.equal(p.stepId, 'use');
    }
  });

  test('conditions, hyphenated ids and nested fields are checked too', () => {
    const problems = problemsOf(
      def(
        { ...fetchStep(), id: 'fetch-data' },
        { id: 'gate', type: 'conditional', condition: 'fetch-data.code == 200', then: [echo('ok', { h: '${fetch-data.headers.etag}' })] },
      ),
    );
    expectOne(problems, '/steps/1/condition', /step "fetch-data": skill "http-fetch" returns no field "code"/);
  });

  test('open parts (data: unknown, headers: a record) and computed keys are not judged', () => {
    assert.deepEqual(
      problemsOf(
        def(
          fetchStep(),
          echo('use', {
            a: '${fetch.data.items[0].name}',
            b: '${fetch.headers["content-type"]}',
            c: '${fetch[input.field]}',
            d: '${fetch.status == 200 ? fetch.data : 0}',
            e: '${steps.fetch.status}',
          }),
        ),
      ),
      [],
    );
  });

  test('a missing field inside a conditional expression, a function argument and a transform is found', () => {
    const problems = problemsOf(def(fetchStep(), echo('use', { a: '${length(fetch.rows)}', b: '${fetch.ok ? fetch.rows : 0}', c: '${fetch.rows|default(0)}' })));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['/steps/1/inputs/a', '/steps/1/inputs/b', '/steps/1/inputs/c']);
  });

  test('echo returns an open object, so any field may be read', () => {
    assert.deepEqual(problemsOf(def(echo('first', { x: 1 }), echo('second', { y: '${first.anything}' }))), []);
  });

  test("a model step's json follows its response_schema; its other fields follow the model result", () => {
    const model = {
      id: 'ask',
      type: 'model',
      model: 'default',
      user_prompt: 'hi',
      response_schema: { type: 'object', additionalProperties: false, properties: { verdict: { type: 'string' } } },
    };
    const problems = problemsOf(def(model, echo('use', { a: '${ask.json.verdict}', b: '${ask.json.score}', c: '${ask.tokens}' })), { ...ctx, models: new Set(['default']) });
    assert.deepEqual(
      problems.map((p) => [p.path, /returns no field "(\w+)"/.exec(p.message)?.[1]]),
      [
        ['/steps/1/inputs/b', 'score'],
        ['/steps/1/inputs/c', 'tokens'],
      ],
    );
    assert.match(problems[0]?.message ?? '', /its output's "json" has: verdict/);
  });

  test("a registry agent's result and its output_schema", () => {
    const step = { id: 'sort', type: 'agent', agent: 'triage', inputs: { ticket: 'x' } };
    const problems = problemsOf(def(step, echo('use', { a: '${sort.output.label}', b: '${sort.output.priority}', c: '${sort.answer}' })));
    assert.deepEqual(problems.map((p) => p.path), ['/steps/1/inputs/b', '/steps/1/inputs/c']);
    assert.match(problems[1]?.message ?? '', /agent "triage" returns no field "answer"; its output has: output, text, iterations, toolCalls, usage, routes/);
  });
});

describe('where the output may be something else', () => {
  test("a step with a custom error handler may carry the handler's output, so reads of it are not judged", () => {
    const raw: Json = {
      ...def(fetchStep(), echo('use', { source: "${fetch.source|default('live')}" })),
      error_handling: { per_step: { fetch: { strategy: 'custom', handler: [echo('fallback', { source: 'fallback' })] } } },
    };
    assert.deepEqual(problemsOf(raw), []);
    // Its declared outputs describe the skill's own result, so those are still checked.
    const declared = { ...raw, steps: [fetchStep({ outputs: ['source'] }), (raw.steps as Json[])[1]] };
    expectOne(problemsOf(declared), '/steps/0/outputs/0', /declares output "source"/);
  });
});
