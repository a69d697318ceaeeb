import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LIMITS, MAX_ATTEMPTS_CAP, RESERVED_STEP_TYPES, STEP_TYPES } from '../../interpreter/schema.ts';
import { subWorkflowReferences, toPointer, validateDefinition, type Problem, type ValidationContext } from '../../interpreter/validate.ts';
import { FakePort, runToEnd } from '../support/fake-port.ts';

type Json = Record<string, unknown>;

const ctx: ValidationContext = {
  skills: new Set(['echo', 'http-fetch', 'process-a', 'process-b', 'process', 'log-error', 'process-item', 'cleanup']),
  integrations: new Set(['forum.post.create', 'crm.note']),
  agents: new Set(['data-analyzer', 'forum_summary_agent']),
  lanes: ['prod-critical', 'experimental'],
  definitions: new Set(['billing@1.0.0']),
};

function fixture(path: string): Json {
  return JSON.parse(readFileSync(new URL(`../fixtures/${path}`, import.meta.url), 'utf8')) as Json;
}

const skill = (id: string, extra: Json = {}): Json => ({ id, type: 'skill', skill: 'echo', ...extra });

function minimal(extra: Json = {}): Json {
  return { name: 'workflow-name', version: '1.0.0', steps: [skill('a')], ...extra };
}

function problemsOf(raw: unknown, context: ValidationContext = ctx): Problem[] {
  const result = validateDefinition(raw, context);
  assert.equal(result.ok, false, 'expected the definition to be invalid');
  return result.ok ? [] : result.problems;
}

function assertValid(raw: unknown, context: ValidationContext = ctx) {
  const result = validateDefinition(raw, context);
  assert.deepEqual(result.ok ? [] : result.problems, []);
  assert.ok(result.ok);
  return result;
}

function findProblem(problems: Problem[], path: string, message: RegExp, stepId?: string): Problem {
  const found = problems.find((p) => p.path === path && message.test(p.message));
  assert.ok(found, `no problem at ${path} matching ${message}; got ${JSON.stringify(problems, null, 2)}`);
  assert.equal(found.stepId, stepId, `stepId of the problem at ${path}`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// The seeds as written.

const seed002 = fixture('seeds/seed-002-fragments.json');

/** The seed-002 fragments composed into one definition, in the seed's order. */
function seed002Definition(): Json {
  const wrap = (key: string) => (seed002[key] as Json)[key];
  return {
    name: 'workflow-name',
    version: '1.0.0',
    description: 'Workflow description',
    triggers: wrap('triggers'),
    context: wrap('context'),
    steps: [seed002.skill_step, seed002.agent_step, seed002.parallel_group, seed002.conditional_step, seed002.loop_step],
    error_handling: wrap('error_handling'),
    resource_limits: wrap('resource_limits'),
  };
}

describe('validateDefinition: the seeds as written', () => {
  test('seed 002: every fragment composed into one definition is valid', () => {
    const { plan, definition } = assertValid(seed002Definition());
    assert.deepEqual(plan.steps.map((s) => [s.id, s.kind]), [
      ['fetch-data', 'activity'],
      ['analyze', 'activity'],
      ['parallel-tasks', 'parallel'],
      ['conditional', 'conditional'],
      ['loop', 'loop'],
    ]);
    assert.equal(definition.resource_limits?.max_concurrent_steps, 5);
    assert.equal(plan.maxConcurrentSteps, 5);
    assert.deepEqual(plan.rollback.steps.map((s) => s.kind === 'activity' && s.name), ['cleanup']);
    assert.deepEqual(plan.byId.get('analyze')?.onError, { action: 'skip' });
    assert.equal(plan.byId.get('fetch-data')?.retry.maxAttempts, 3);
    // The agent's bare "fetch-data.data" is a reference, not a literal.
    const analyze = plan.byId.get('analyze');
    assert.ok(analyze?.kind === 'activity' && analyze.inputs.kind === 'object');
    assert.equal(analyze.inputs.kind === 'object' && analyze.inputs.entries[0]?.[1].kind, 'expr');
  });

  test('seed 002: each step fragment is valid on its own where it reads nothing earlier', () => {
    for (const key of ['skill_step', 'parallel_group', 'loop_step']) {
      assertValid({ name: 'fragment', version: '1.0.0', context: { mutable: { counter: 0 } }, steps: [seed002[key]] });
    }
  });

  test('seed 002: alone, the agent fragment\'s "fetch-data.data" is a literal (no such step); the conditional\'s condition is a problem', () => {
    const agent = assertValid({ name: 'fragment', version: '1.0.0', steps: [seed002.agent_step] });
    const analyze = agent.plan.byId.get('analyze');
    assert.ok(analyze?.kind === 'activity');
    assert.deepEqual(analyze.inputs, { kind: 'object', entries: [['data', { kind: 'literal', value: 'fetch-data.data' }]] });
    const problems = problemsOf({ name: 'fragment', version: '1.0.0', steps: [seed002.conditional_step] });
    findProblem(problems, '/steps/0/condition', /"fetch-data" is not a step id; to subtract, put spaces around "-"/, 'conditional');
  });

  test('seed 002: the sequential fixture is valid', () => {
    const { plan } = assertValid(fixture('definitions/seed-002-sequential.json'));
    assert.deepEqual(plan.steps.map((s) => s.id), ['fetch-data', 'report']);
  });

  test('seed 004: the {"workflow": {...}} document is valid as written and unwraps', () => {
    const { definition, plan } = assertValid(fixture('seeds/seed-004-workflow.json'));
    assert.equal(definition.name, 'Forum new-thread triage');
    assert.deepEqual(definition.trigger, { signal: 'forum.thread.created' });
    const summarize = plan.byId.get('summarize');
    assert.ok(summarize?.kind === 'activity');
    assert.deepEqual([summarize.family, summarize.name, summarize.fromSignal], ['agents', 'forum_summary_agent', true]);
  });

  test('seed 004: runs as written: the agent gets the signal, the directive gets the summary and thread id', async () => {
    const { plan } = assertValid(fixture('seeds/seed-004-workflow.json'));
    const signal = { type: 'forum.thread.created', subject: { id: 'th_42' } };
    const port = new FakePort({ activities: { forum_summary_agent: { output: { summary: 'Asks about retries' } } } });
    await runToEnd(plan, port, { ctx: { signal } });
    assert.deepEqual(
      port.activities.map((r) => [r.call.family, r.call.name, r.call.input]),
      [
        ['agents', 'forum_summary_agent', signal],
        ['integrations', 'forum.post.create', { thread_id: 'th_42', content: 'Asks about retries' }],
      ],
    );
  });

  test('seed 004: problems inside the wrapper are reported under /workflow', () => {
    const doc = fixture('seeds/seed-004-workflow.json');
    const workflow = doc.workflow as { steps: Json[] };
    workflow.steps[0] = { ...workflow.steps[0], agent_ref: { slug: 'nobody' } };
    workflow.steps.push({ id: 'typo', type: 'directive', directiv: 'x' });
    const problems = problemsOf(doc);
    findProblem(problems, '/workflow/steps/0/agent_ref/slug', /unknown agent "nobody"; available: data-analyzer, forum_summary_agent/, 'summarize');
    findProblem(problems, '/workflow/steps/2', /unknown field: "directiv"/, 'typo');
    for (const p of problems) assert.match(p.path, /^\/workflow\//);
  });
});

// ---------------------------------------------------------------------------------------------

describe('validateDefinition: valid definitions', () => {
  test('every step kind together', () => {
    assertValid({
      name: 'all kinds',
      version: '2.0.0-beta.1',
      lane: 'experimental',
      priority: 'high',
      context: { mutable: { counter: 0 }, readonly: { environment: 'production' } },
      steps: [
        skill('fetch-data', { skill: 'http-fetch', inputs: { url: '${input.url}' } }),
        { id: 'note', type: 'integration', integration: 'crm.note', inputs: { text: 'fetch-data.status' } },
        { id: 'post', type: 'directive', directive: 'forum.post.create', payload: { id: '${signal.subject.id}' } },
        { id: 'think', type: 'agent', agent_ref: { slug: 'forum_summary_agent' }, input: { from_signal: true } },
        { id: 'p', type: 'parallel', wait_for: 'any', steps: [skill('l'), skill('r')] },
        { id: 'each', type: 'for_each', items: '${input.list}', max_concurrency: 3, steps: [skill('one', { inputs: { v: '${item}' } })] },
        { id: 'loop', type: 'loop', condition: 'counter < 5', max_iterations: 10, steps: [{ id: 'inc', type: 'set', values: { counter: '${counter + 1}' } }] },
        { id: 'c', type: 'conditional', condition: 'fetch-data.status == 200', then: [skill('ok')], else: [skill('ko')] },
        { id: 's', type: 'switch', value: 'input.kind', cases: [{ equals: 'x', steps: [skill('sx')] }, { when: 'counter > 2', steps: [skill('sy')] }], default: [skill('sz')] },
        { id: 'w', type: 'wait', duration: '1h30m' },
        { id: 'until', type: 'wait', until: '2030-01-01T00:00:00Z' },
        { id: 'evt', type: 'wait_for_event', event: 'approved', filter: 'event.by == environment', timeout: 60, on_timeout: 'continue' },
        { id: 'sub', type: 'sub_workflow', definition: 'billing', version: '1.0.0', inputs: { total: '${counter}' } },
        { id: 'early', type: 'succeed', if: 'counter > 100', output: { n: '${counter}' } },
        { id: 'stop', type: 'fail', error: 'gave up after ${counter}', error_type: 'GaveUp' },
      ],
    });
  });

  test('the definition output may read every top-level step', () => {
    assertValid(minimal({ steps: [skill('fetch-data'), skill('b')], output: { result: '${steps.fetch-data.output.data}', b: 'b.x' } }));
  });
});

describe('validateDefinition: problems', () => {
  test('duplicate step ids, top-level, nested and in handlers', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          skill('a'),
          { id: 'c', type: 'conditional', condition: 'true', then: [skill('a')], else: [skill('b')] },
          { id: 'p', type: 'parallel', steps: [skill('b')] },
        ],
        error_handling: { per_step: { c: { strategy: 'custom', handler: [skill('p')] } } },
      }),
    );
    findProblem(problems, '/steps/1/then/0/id', /duplicate step id "a" \(first used at \/steps\/0\)/, 'a');
    findProblem(problems, '/steps/2/steps/0/id', /duplicate step id "b" \(first used at \/steps\/1\/else\/0\)/, 'b');
    findProblem(problems, '/error_handling/per_step/c/handler/0/id', /duplicate step id "p" \(first used at \/steps\/2\)/, 'p');
  });

  test('references to later steps, in templates, bare references and conditions, with step id and pointer', () => {
    const problems = problemsOf(minimal({ steps: [skill('a', { if: 'b.ok', inputs: { x: '${steps.b.output}', y: 'b.data' } }), skill('b')] }));
    findProblem(problems, '/steps/0/if', /step "b" does not run before this point \(in "b\.ok"\)/, 'a');
    findProblem(problems, '/steps/0/inputs/x', /step "b" does not run before this point/, 'a');
    findProblem(problems, '/steps/0/inputs/y', /"b\.data" reads step "b", but step "b" does not run before this point/, 'a');
  });

  test('references into parallel siblings and for_each internals', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          { id: 'p', type: 'parallel', steps: [skill('left'), skill('right', { inputs: { x: 'left.data' } })] },
          { id: 'each', type: 'for_each', items: [1], steps: [skill('inner')] },
          skill('after', { inputs: { x: '${steps.inner.output}', ok: 'left.data' } }),
        ],
      }),
    );
    assert.equal(problems.length, 2, JSON.stringify(problems));
    findProblem(problems, '/steps/0/steps/1/inputs/x', /step "left" runs in a parallel branch of "p" and is not ordered with this one/, 'right');
    findProblem(problems, '/steps/2/inputs/x', /step "inner" does not run before this point/, 'after');
  });

  test('unknown skills, integrations, directives, agents (both spellings) and sub-workflow definitions', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          skill('s', { skill: 'summarize' }),
          { id: 'i', type: 'integration', integration: 'slack.post' },
          { id: 'd', type: 'directive', directive: 'forum.post.delete' },
          { id: 'g', type: 'agent', agent: 'ghost' },
          { id: 'r', type: 'agent', agent_ref: { slug: 'phantom' } },
          { id: 'w', type: 'sub_workflow', definition: 'billing', version: '2.0.0' },
        ],
      }),
    );
    findProblem(problems, '/steps/0/skill', /unknown skill "summarize"; available: cleanup, echo, http-fetch/, 's');
    findProblem(problems, '/steps/1/integration', /unknown integration "slack\.post"; available: crm\.note, forum\.post\.create/, 'i');
    findProblem(problems, '/steps/2/directive', /unknown integration "forum\.post\.delete"/, 'd');
    findProblem(problems, '/steps/3/agent', /unknown agent "ghost"/, 'g');
    findProblem(problems, '/steps/4/agent_ref/slug', /unknown agent "phantom"/, 'r');
    findProblem(problems, '/steps/5/definition', /no registered definition "billing" version "2\.0\.0"/, 'w');
    assert.equal(problems.length, 6);
  });

  test('an empty catalog says "(none)"', () => {
    const problems = problemsOf(minimal(), { ...ctx, skills: new Set() });
    findProblem(problems, '/steps/0/skill', /available: \(none\)/, 'a');
  });

  test('a loop without max_iterations', () => {
    findProblem(
      problemsOf(minimal({ steps: [{ id: 'l', type: 'loop', condition: 'true', steps: [skill('b')] }] })),
      '/steps/0/max_iterations',
      /a loop needs "max_iterations" \(every loop is bounded\)/,
      'l',
    );
  });

  test('unreachable steps after fail and succeed, at any depth', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          skill('a'),
          { id: 'stop', type: 'fail', error: 'x' },
          skill('b'),
          { id: 'c', type: 'conditional', condition: 'true', then: [{ id: 'ok', type: 'succeed' }, skill('d')] },
        ],
      }),
    );
    findProblem(problems, '/steps/2', /step "b" is unreachable: step "stop" \(fail\) always ends the run before it/, 'b');
    findProblem(problems, '/steps/3/then/1', /step "d" is unreachable: step "ok" \(succeed\)/, 'd');
  });

  test('nesting deeper than the limit', () => {
    const nest = (depth: number): Json => (depth === 1 ? skill('leaf') : { id: `c${depth}`, type: 'conditional', condition: 'true', then: [nest(depth - 1)] });
    assertValid(minimal({ steps: [nest(LIMITS.maxNestingDepth)] }));
    const problems = problemsOf(minimal({ steps: [nest(LIMITS.maxNestingDepth + 1)] }));
    assert.equal(problems.length, 1);
    const path = `/steps/0${'/then/0'.repeat(LIMITS.maxNestingDepth)}`;
    findProblem(problems, path, new RegExp(`steps nest ${LIMITS.maxNestingDepth + 1} levels deep here; the limit is ${LIMITS.maxNestingDepth}`), 'leaf');
  });

  test('more steps than the limit, nested ones counted', () => {
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `c${i}`, type: 'conditional', condition: 'true', then: [skill(`s${i}`)] }));
    assertValid(minimal({ steps: pairs(LIMITS.maxSteps / 2) }));
    const problems = problemsOf(minimal({ steps: pairs(LIMITS.maxSteps / 2 + 1) }));
    findProblem(problems, '/steps', new RegExp(`the definition has ${LIMITS.maxSteps + 2} steps \\(nested ones included\\); the limit is ${LIMITS.maxSteps}`));
  });

  test('unknown step types list the types; nothing is reserved any longer', () => {
    assert.deepEqual(RESERVED_STEP_TYPES, {});
    const problems = problemsOf(minimal({ steps: [{ id: 'z', type: 'zzz' }] }));
    findProblem(problems, '/steps/0/type', new RegExp(`unknown step type "zzz"; step types: ${STEP_TYPES.join(', ')}`), 'z');
  });

  test('model steps: the model must be a configured route or alias; prompts may read earlier steps', () => {
    const withModels: ValidationContext = { ...ctx, models: new Set(['local/qwen-14b', 'default']) };
    const def = minimal({
      steps: [
        skill('fetch'),
        { id: 'draft', type: 'model', model: 'local/qwen-14b', user_prompt: 'Summarise ${steps.fetch.output}', max_tokens: 200, response_schema: { type: 'object' } },
        { id: 'bad', type: 'model', model: 'local/gpt-9', user_prompt: '${steps.later.output}' },
        skill('later'),
      ],
    });
    const problems = validateDefinition(def, withModels);
    assert.equal(problems.ok, false);
    if (problems.ok) return;
    findProblem(problems.problems, '/steps/2/model', /unknown model "local\/gpt-9"; routes and aliases: default, local\/qwen-14b/, 'bad');
    findProblem(problems.problems, '/steps/2/user_prompt', /later/, 'bad');
    assert.equal(problems.problems.filter((p) => p.stepId === 'draft').length, 0);
    findProblem(problemsOf(minimal({ steps: [{ id: 'm', type: 'model', model: 'x' }] })), '/steps/0/user_prompt', /./, 'm');
  });

  test('compensation without rollback', () => {
    findProblem(
      problemsOf(minimal({ steps: [skill('a', { compensate: [skill('undo')] })] })),
      '/steps/0/compensate',
      /declares compensation, but nothing in this definition rolls back/,
      'a',
    );
  });

  test('unknown names and syntax errors in expressions, with step id and pointer', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          skill('a', { if: 'nosuch > 1' }),
          skill('b', { inputs: { x: '${1 +}' } }),
          { id: 'c', type: 'conditional', condition: 'counter-1 > 0', then: [skill('d', { inputs: { i: '${iteration}' } })] },
          { id: 'e', type: 'for_each', items: 'ghost.items', steps: [skill('f')] },
        ],
      }),
    );
    findProblem(problems, '/steps/0/if', /unknown name "nosuch"/, 'a');
    findProblem(problems, '/steps/1/inputs/x', /syntax error/, 'b');
    findProblem(problems, '/steps/2/condition', /"counter-1" is not a step id; to subtract, put spaces around "-"/, 'c');
    findProblem(problems, '/steps/2/then/0/inputs/i', /"iteration" is only available inside a loop step/, 'd');
    findProblem(problems, '/steps/3/items', /unknown name "ghost"/, 'e');
  });

  // #19 B3: the HTTP client dropped user info from a URL without a word.
  test('credentials in an http(s) URL are refused wherever a step passes them, with the pointer and the secret-reference way', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          skill('fetch', { skill: 'http-fetch', inputs: { url: 'https://ada:s3cret@api.example.com/v1' } }),
          { id: 'post', type: 'integration', integration: 'crm.note', inputs: { request: { urls: ['http://ok.example.com/', 'HTTP://bot@hooks.example.com/x?a=b'] } } },
          { id: 'tell', type: 'directive', directive: 'forum.post.create', payload: { text: 'see https://${input.user}:${input.pass}@files.example.com/' } },
          { id: 'think', type: 'agent', agent: 'data-analyzer', input: { source: 'https://u:p@data.example.com' } },
          { id: 'child', type: 'sub_workflow', definition: 'billing', version: '1.0.0', inputs: { hook: 'https://k:v@hook.example.com' } },
          {
            id: 'p',
            type: 'parallel',
            steps: [skill('deep', { inputs: { nested: { 'a/b': ['x', 'https://me:pw@deep.example.com/'] } } })],
          },
        ],
        error_handling: { default: 'halt', handler: [skill('alert', { inputs: { url: 'https://op:pw@alerts.example.com/' } })] },
      }),
    );
    const found = (path: string, stepId: string) => findProblem(problems, path, /the URL carries credentials/, stepId);
    const first = found('/steps/0/inputs/url', 'fetch');
    assert.match(first.message, /\("ada:…@"\)/);
    assert.doesNotMatch(first.message, /s3cret/, 'the password is not echoed back');
    assert.match(first.message, /\{"secret": "API_TOKEN", "prefix": "Bearer "\}.*docs\/integrations\.md/);
    assert.match(found('/steps/1/inputs/request/urls/1', 'post').message, /\("bot@"\)/);
    found('/steps/2/payload/text', 'tell');
    found('/steps/3/input/source', 'think');
    found('/steps/4/inputs/hook', 'child');
    found('/steps/5/steps/0/inputs/nested/a~1b/1', 'deep');
    found('/error_handling/handler/0/inputs/url', 'alert');
    assert.equal(problems.filter((p) => /credentials/.test(p.message)).length, 7, JSON.stringify(problems, null, 2));
  });

  test('URLs without credentials pass: an "@" in the path, query or fragment, or outside a URL, is not user info', () => {
    assertValid(
      minimal({
        steps: [
          skill('a', {
            skill: 'http-fetch',
            inputs: { url: 'https://api.example.com/users/@ada?mail=ada@example.com#@top', headers: { from: 'ada@example.com' } },
          }),
          skill('b', { inputs: { note: 'mail ops@example.com or see ftp://anon:x@files.example.com', empty: 'https://@host.example.com/' } }),
        ],
      }),
    );
  });

  test('forbidden properties are refused at validation', () => {
    for (const condition of ['input.__proto__', 'input["constructor"]', 'input.prototype']) {
      const problems = problemsOf(minimal({ steps: [{ id: 'c', type: 'conditional', condition, then: [skill('d')] }] }));
      assert.equal(problems[0]?.path, '/steps/0/condition', condition);
      assert.equal(problems[0]?.stepId, 'c');
    }
  });

  test('agent steps name the agent exactly once and use inputs or input, not both', () => {
    findProblem(problemsOf(minimal({ steps: [{ id: 'g', type: 'agent' }] })), '/steps/0/agent', /exactly one of "agent" or "agent_ref"/, 'g');
    findProblem(
      problemsOf(minimal({ steps: [{ id: 'g', type: 'agent', agent: 'data-analyzer', agent_ref: { slug: 'data-analyzer' } }] })),
      '/steps/0/agent',
      /exactly one of "agent" or "agent_ref"/,
      'g',
    );
    findProblem(
      problemsOf(minimal({ steps: [{ id: 'g', type: 'agent', agent: 'data-analyzer', inputs: {}, input: {} }] })),
      '/steps/0/input',
      /use "inputs" or "input", not both/,
      'g',
    );
  });

  test('wait needs exactly one of duration and until; switch equals needs a value; parallel wait_for fits its branches', () => {
    findProblem(problemsOf(minimal({ steps: [{ id: 'w', type: 'wait' }] })), '/steps/0', /exactly one of "duration" or "until"/, 'w');
    findProblem(problemsOf(minimal({ steps: [{ id: 'w', type: 'wait', duration: 'soon' }] })), '/steps/0/duration', /durations are seconds or text/, 'w');
    findProblem(
      problemsOf(minimal({ steps: [{ id: 's', type: 'switch', cases: [{ equals: 1, steps: [skill('x')] }] }] })),
      '/steps/0/value',
      /"equals" cases need the switch's "value"/,
      's',
    );
    findProblem(problemsOf(minimal({ steps: [{ id: 'p', type: 'parallel', wait_for: 3, steps: [skill('x'), skill('y')] }] })), '/steps/0/wait_for', /wait_for is 3/, 'p');
  });

  test('per_step entries for missing steps; custom without a handler; rollback skill names checked', () => {
    const problems = problemsOf(
      minimal({
        error_handling: {
          per_step: { ghost: { strategy: 'skip' }, a: { strategy: 'custom' } },
          rollback: { enabled: true, steps: ['nope-cleanup', 'cleanup'] },
        },
      }),
    );
    findProblem(problems, '/error_handling/per_step/ghost', /no step has the id "ghost"/);
    findProblem(problems, '/error_handling/per_step/a/handler', /needs handler steps/);
    findProblem(problems, '/error_handling/rollback/steps/0', /unknown skill "nope-cleanup"/);
    assert.equal(problems.length, 3);
  });

  test('reserved and ambiguous step ids', () => {
    const problems = problemsOf(minimal({ steps: [skill('input'), skill('counter')], context: { mutable: { counter: 0 } } }));
    findProblem(problems, '/steps/0/id', /"input" is a reserved name/, 'input');
    findProblem(problems, '/steps/1/id', /both a step id and a variable name/, 'counter');
  });

  test('schema problems: unknown fields, bad version and ids, caps, empty steps, unknown lane', () => {
    findProblem(problemsOf(minimal({ steps: [skill('typo', { skil: 'echo' })] })), '/steps/0', /unknown field: "skil"/, 'typo');
    findProblem(problemsOf(minimal({ stepz: [] })), '', /unknown field: "stepz"/);
    findProblem(problemsOf(minimal({ version: '1.0' })), '/version', /semantic versions/);
    findProblem(problemsOf(minimal({ steps: [skill('1-bad id')] })), '/steps/0/id', /step ids start with a letter/, '1-bad id');
    findProblem(problemsOf(minimal({ steps: [] })), '/steps', /at least one step/);
    findProblem(problemsOf(minimal({ lane: 'gpu' })), '/lane', /unknown lane "gpu"; configured lanes: prod-critical, experimental/);
    findProblem(
      problemsOf(minimal({ steps: [skill('a', { retry: { max_attempts: MAX_ATTEMPTS_CAP + 1 } })] })),
      '/steps/0/retry/max_attempts',
      new RegExp(`<=\\s*${MAX_ATTEMPTS_CAP}`),
      'a',
    );
    findProblem(
      problemsOf(minimal({ steps: [{ id: 'v', type: 'sub_workflow', definition: 'billing', version: 'latest' }] })),
      '/steps/0/version',
      /pin a semantic version/,
      'v',
    );
  });

  test('an oversize definition is refused before parsing, counting UTF-8 bytes', () => {
    const problems = problemsOf(minimal({ context: { readonly: { blob: 'é'.repeat(LIMITS.maxDefinitionBytes / 2 + 10) } } }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, '');
    assert.match(problems[0]?.message ?? '', new RegExp(`bytes; the limit is ${LIMITS.maxDefinitionBytes}`));
  });

  test('non-object input gives problems, never an exception', () => {
    for (const raw of [null, undefined, 42, 'text', [], { workflow: null }]) {
      assert.ok(problemsOf(raw).length >= 1, JSON.stringify(raw));
    }
  });

  test('every problem is returned at once: schema and whole-document problems together', () => {
    const problems = problemsOf({
      name: 'workflow-name',
      version: '1.0',
      lane: 'gpu',
      steps: [
        skill('fetch-data', { skill: 'http-fetch', inputs: { next: 'report.data' } }),
        skill('fetch-data', { skill: 'nosuch' }),
        { id: 'typo', type: 'skil', skil: 'echo' },
        skill('typo2', { skil: 'echo' }),
        { id: 'analyze', type: 'agent', agent: 'ghost-agent' },
        { id: 'm', type: 'model', model: 'local/qwen-14b' },
        skill('report', { retry: { max_attempts: 99 } }),
        skill('reader', { inputs: { x: '${steps.nope.output}' } }),
        { id: 'l', type: 'loop', condition: 'true', steps: [skill('inner')] },
      ],
      error_handling: { per_step: { ghost: { strategy: 'skip' } } },
    });
    const expected: Array<[string, RegExp, string | undefined]> = [
      ['/version', /semantic versions/, undefined],
      ['/lane', /unknown lane "gpu"/, undefined],
      ['/steps/0/inputs/next', /"report\.data" reads step "report", but step "report" does not run before this point/, 'fetch-data'],
      ['/steps/1/id', /duplicate step id "fetch-data"/, 'fetch-data'],
      ['/steps/1/skill', /unknown skill "nosuch"/, 'fetch-data'],
      ['/steps/2/type', /unknown step type "skil"/, 'typo'],
      ['/steps/3', /unknown field: "skil"/, 'typo2'],
      ['/steps/4/agent', /unknown agent "ghost-agent"/, 'analyze'],
      ['/steps/5/user_prompt', /expected string/, 'm'],
      ['/steps/6/retry/max_attempts', /<=\s*10/, 'report'],
      ['/steps/7/inputs/x', /there is no step "nope"/, 'reader'],
      ['/steps/8/max_iterations', /a loop needs "max_iterations"/, 'l'],
      ['/error_handling/per_step/ghost', /no step has the id "ghost"/, undefined],
    ];
    for (const [path, message, stepId] of expected) findProblem(problems, path, message, stepId);
  });

  test('a schema problem is not reported twice by the whole-document checks', () => {
    const problems = problemsOf(minimal({ steps: [{ id: 'a', type: 'skill', skill: '' }] }));
    assert.equal(problems.filter((p) => p.path === '/steps/0/skill').length, 1);
  });

  // When the schema fails, the document is repaired (bad parts cut out) and the whole-document
  // checks still run on everything else, nested steps included.
  test('whole-document problems inside a step that also has a schema problem are reported', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          skill('a'),
          skill('a', { skil: 'echo' }),
          skill('reader', { retry: { max_attempts: 99 }, inputs: { x: '${steps.nope.output}' } }),
          { id: 'l', type: 'loop', condition: 'true', steps: [skill('inner', { skill: 'summarize' })] },
        ],
      }),
    );
    findProblem(problems, '/steps/1', /unknown field: "skil"/, 'a');
    findProblem(problems, '/steps/1/id', /duplicate step id "a"/, 'a');
    findProblem(problems, '/steps/2/retry/max_attempts', /<=\s*10/, 'reader');
    findProblem(problems, '/steps/2/inputs/x', /there is no step "nope"/, 'reader');
    findProblem(problems, '/steps/3/max_iterations', /a loop needs "max_iterations"/, 'l');
    findProblem(problems, '/steps/3/steps/0/skill', /unknown skill "summarize"/, 'inner');
  });

  // BUG (interpreter/compile.ts, onErrorFor): see compile.test.ts; here it surfaces as an
  // exception out of validateDefinition instead of a list of problems.
  test('validation never throws on a handler step whose own policy is "custom"', () => {
    for (const errorHandling of [
      { default: 'custom', handler: [skill('h')] },
      { per_step: { a: { strategy: 'custom', handler: [skill('a')] } } },
    ]) {
      let result: ReturnType<typeof validateDefinition> | undefined;
      assert.doesNotThrow(() => {
        result = validateDefinition(minimal({ error_handling: errorHandling }), ctx);
      }, JSON.stringify(errorHandling));
      assert.ok(result);
    }
  });
});

describe('validate helpers', () => {
  test('toPointer escapes path segments', () => {
    assert.equal(toPointer(['error_handling', 'per_step', 'a/b~c', 0]), '/error_handling/per_step/a~1b~0c/0');
    assert.equal(toPointer([]), '');
  });

  test('subWorkflowReferences finds every sub_workflow, nested and wrapped', () => {
    const refs = subWorkflowReferences({
      workflow: minimal({
        steps: [
          { id: 'x', type: 'sub_workflow', definition: 'billing', version: '1.0.0' },
          { id: 'c', type: 'conditional', condition: 'true', then: [{ id: 'y', type: 'sub_workflow', definition: 'ship', version: '2.0.0' }] },
        ],
      }),
    });
    assert.deepEqual(refs, [
      { definition: 'billing', version: '1.0.0' },
      { definition: 'ship', version: '2.0.0' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property-style test: random definitions against an independent oracle.

/** mulberry32: a tiny seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ID_POOL = ['a', 'b', 'fetch-data', 'c_1', 'step-4'];
const REF_POOL = [...ID_POOL, 'ghost'];
const SKILL_POOL = ['echo', 'http-fetch', 'echo', 'http-fetch', 'summarize'];
const AGENT_POOL = ['data-analyzer', 'data-analyzer', 'ghost-agent'];

type GenInput = { kind: 'literal'; value: unknown } | { kind: 'bare'; target: string } | { kind: 'template'; target: string; whole: boolean };

interface GenStep {
  id: string;
  shape: 'skill' | 'agent' | 'typo';
  name: string;
  /** Wrapped in a conditional (readable after) or a for_each (not readable after). */
  wrap: 'none' | 'conditional' | 'for_each';
  inputs: Record<string, GenInput>;
}

function generate(rand: () => number): { raw: Json; expected: Array<[string, string | undefined]>; wrapped: boolean } {
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const steps: GenStep[] = [];
  const count = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < count; i += 1) {
    const inputs: Record<string, GenInput> = {};
    for (let k = 0; k < Math.floor(rand() * 3); k += 1) {
      const r = rand();
      inputs[`in${k}`] =
        r < 0.25
          ? { kind: 'literal', value: pick([1, true, null, 'https://api.example.com/data', 'hello.world', 'v1.2.3', '${input.city}']) }
          : r < 0.6
            ? { kind: 'bare', target: pick(REF_POOL) }
            : { kind: 'template', target: pick(REF_POOL), whole: rand() < 0.5 };
    }
    const roll = rand();
    const shape = roll < 0.08 ? 'typo' : roll < 0.25 ? 'agent' : 'skill';
    steps.push({
      // A typo'd step gets a unique id and no inputs worth checking (see the todo test above:
      // nothing inside a schema-invalid step is checked today).
      id: shape === 'typo' ? `typo${i}` : pick(ID_POOL),
      shape,
      name: shape === 'agent' ? pick(AGENT_POOL) : pick(SKILL_POOL),
      wrap: shape === 'typo' ? 'none' : pick(['none', 'none', 'none', 'conditional', 'for_each'] as const),
      inputs: shape === 'typo' ? {} : inputs,
    });
  }
  const perStep = rand() < 0.3 ? [pick(REF_POOL)] : [];
  const wrapped = rand() < 0.3;

  const rawSteps = steps.map((s, i) => {
    const inputs = Object.fromEntries(
      Object.entries(s.inputs).map(([k, v]) => [
        k,
        v.kind === 'literal' ? v.value : v.kind === 'bare' ? `${v.target}.data` : v.whole ? `\${steps.${v.target}.output}` : `got \${steps.${v.target}.output.data}!`,
      ]),
    );
    const step =
      s.shape === 'typo'
        ? { id: s.id, type: 'skill', skil: s.name, inputs }
        : s.shape === 'agent'
          ? { id: s.id, type: 'agent', agent: s.name, inputs }
          : { id: s.id, type: 'skill', skill: s.name, inputs };
    if (s.wrap === 'conditional') return { id: `cond${i}`, type: 'conditional', condition: 'true', then: [step] };
    if (s.wrap === 'for_each') return { id: `each${i}`, type: 'for_each', items: [1, 2], steps: [step] };
    return step;
  });
  const definition: Json = { name: 'generated', version: '1.0.0', steps: rawSteps };
  if (perStep.length > 0) definition.error_handling = { per_step: Object.fromEntries(perStep.map((id) => [id, { strategy: 'skip' }])) };

  // The oracle, written from the rules rather than from the implementation.
  const expected: Array<[string, string | undefined]> = [];
  const allIds = new Set(steps.map((s) => s.id));
  const seen = new Set<string>();
  const readable = new Set<string>();
  steps.forEach((s, i) => {
    const at = s.wrap === 'conditional' ? `/steps/${i}/then/0` : s.wrap === 'for_each' ? `/steps/${i}/steps/0` : `/steps/${i}`;
    if (s.shape === 'typo') {
      expected.push([at, s.id], [`${at}/skill`, s.id]);
    } else {
      if (seen.has(s.id)) expected.push([`${at}/id`, s.id]);
      if (s.shape === 'skill' && !ctx.skills.has(s.name)) expected.push([`${at}/skill`, s.id]);
      if (s.shape === 'agent' && !ctx.agents.has(s.name)) expected.push([`${at}/agent`, s.id]);
      for (const [key, v] of Object.entries(s.inputs)) {
        if (v.kind === 'literal') continue;
        const fine = readable.has(v.target) || (v.kind === 'bare' && !allIds.has(v.target));
        if (!fine) expected.push([`${at}/inputs/${key}`, s.id]);
      }
    }
    seen.add(s.id);
    if (s.wrap !== 'for_each') readable.add(s.id);
  });
  for (const id of perStep) if (!allIds.has(id)) expected.push([`/error_handling/per_step/${id}`, undefined]);
  const prefix = wrapped ? '/workflow' : '';
  return {
    raw: wrapped ? { workflow: definition } : definition,
    expected: expected.map(([path, stepId]) => [`${prefix}${path}`, stepId] as [string, string | undefined]).sort(),
    wrapped,
  };
}

describe('validateDefinition: property test against an oracle', () => {
  test('300 random definitions: never throws, ok iff the oracle says valid, same problem paths and step ids', () => {
    const rand = prng(0x5eed002);
    let valid = 0;
    let invalid = 0;
    let wrappedCount = 0;
    for (let n = 0; n < 300; n += 1) {
      const { raw, expected, wrapped } = generate(rand);
      if (wrapped) wrappedCount += 1;
      let result: ReturnType<typeof validateDefinition>;
      try {
        result = validateDefinition(raw, ctx);
      } catch (error) {
        assert.fail(`validation threw for ${JSON.stringify(raw)}: ${String(error)}`);
      }
      const label = `case ${n}: ${JSON.stringify(raw)}`;
      const got = result.ok ? [] : result.problems.map((p): [string, string | undefined] => [p.path, p.stepId]).sort();
      assert.deepEqual(got, expected, `${label}\ngot ${JSON.stringify(!result.ok && result.problems, null, 1)}`);
      if (result.ok) {
        valid += 1;
        const steps = ((wrapped ? (raw.workflow as Json) : raw).steps as Array<{ id: string }>).map((s) => s.id);
        assert.deepEqual(result.plan.steps.map((s) => s.id), steps, label);
      } else {
        invalid += 1;
        for (const p of result.problems) assert.ok(p.message.length > 0, label);
      }
    }
    // The generator must exercise both sides, or the property says little.
    assert.ok(valid >= 30, `only ${valid} valid cases`);
    assert.ok(invalid >= 30, `only ${invalid} invalid cases`);
    assert.ok(wrappedCount >= 30, `only ${wrappedCount} wrapped cases`);
  });
});

describe('validateDefinition: unreachable steps', () => {
  const ctx = { skills: new Set(['echo']), integrations: new Set<string>(), agents: new Set<string>(), lanes: ['prod-critical'] };
  const steps = (failExtra: Record<string, unknown>) => [
    { id: 'stop', type: 'fail', error: 'no', ...failExtra },
    { id: 'next', type: 'skill', skill: 'echo' },
  ];
  test('a fail step that halts makes the next step unreachable', () => {
    const result = validateDefinition({ name: 'u', version: '1.0.0', steps: steps({}) }, ctx);
    assert.equal(result.ok, false);
    assert.match(JSON.stringify(!result.ok && result.problems), /step \\"next\\" is unreachable/);
  });
  test('a fail step whose policy continues (continue_on_error, skip, custom) does not', () => {
    for (const definition of [
      { name: 'u', version: '1.0.0', steps: steps({ continue_on_error: true }) },
      { name: 'u', version: '1.0.0', steps: steps({}), error_handling: { per_step: { stop: { strategy: 'skip' } } } },
      { name: 'u', version: '1.0.0', steps: steps({}), error_handling: { per_step: { stop: { strategy: 'custom', handler: [{ id: 'h', type: 'skill', skill: 'echo' }] } } } },
    ]) {
      const result = validateDefinition(definition, ctx);
      assert.deepEqual(result.ok ? [] : result.problems, []);
    }
  });
});

describe('validateDefinition: approval steps', () => {
  const approval = (extra: Json = {}): Json => ({ id: 'sign-off', type: 'approval', approvers: { principals: ['ann', 'ben'] }, ...extra });

  test('"approval" is a step type, and a definition using every approval field is valid', () => {
    assert.ok((STEP_TYPES as readonly string[]).includes('approval'));
    const { plan } = assertValid(
      minimal({
        steps: [
          skill('quote'),
          approval({
            name: 'Finance sign-off',
            approvers: { principals: ['ann'], groups: ['finance'] },
            quorum: 2,
            allow_self_approval: true,
            summary: 'Pay ${input.amount} (quote ${quote.total})',
            timeout: 3600,
            on_timeout: 'escalate',
            escalation: { approvers: { groups: ['cfo'] }, quorum: 1, timeout: 86_400, on_timeout: 'approve' },
            on_reject: 'continue',
          }),
          { id: 'route', type: 'conditional', condition: "steps.sign-off.output.decision == 'approve'", then: [skill('pay')] },
          { id: 'rounds', type: 'loop', condition: 'iteration < 2', max_iterations: 2, steps: [approval({ id: 'again', timeout: 60, on_timeout: 'reject' })] },
        ],
      }),
    );
    const step = plan.byId.get('sign-off');
    assert.equal(step?.kind, 'approval');
    if (step?.kind !== 'approval') return;
    assert.deepEqual(step.stages, [
      { approvers: { principals: ['ann'], groups: ['finance'] }, quorum: 2, timeoutMs: 3_600_000, onTimeout: 'escalate' },
      { approvers: { principals: [], groups: ['cfo'] }, quorum: 1, timeoutMs: 86_400_000, onTimeout: 'approve' },
    ]);
    assert.deepEqual([step.allowSelfApproval, step.onReject], [true, 'continue']);
    // Defaults: quorum 1, no timeout, fail on timeout and on rejection, no self-approval.
    const { plan: plain } = assertValid(minimal({ steps: [approval()] }));
    const defaults = plain.byId.get('sign-off');
    assert.ok(defaults?.kind === 'approval');
    assert.deepEqual(defaults.stages, [{ approvers: { principals: ['ann', 'ben'], groups: [] }, quorum: 1, onTimeout: 'fail' }]);
    assert.deepEqual([defaults.allowSelfApproval, defaults.onReject, defaults.summary], [false, 'fail', undefined]);
  });

  test('an unknown step type lists approval among the step types', () => {
    findProblem(problemsOf(minimal({ steps: [{ id: 'x', type: 'approve' }] })), '/steps/0/type', /step types: .*\bapproval\b/, 'x');
  });

  test('escalation goes with on_timeout "escalate", and the other way round', () => {
    const message = /"escalation" goes with "on_timeout": "escalate", and needs it/;
    const escalation = { approvers: { principals: ['cfo'] }, timeout: 60 };
    findProblem(problemsOf(minimal({ steps: [approval({ timeout: 60, escalation })] })), '/steps/0/escalation', message, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ timeout: 60, on_timeout: 'reject', escalation })] })), '/steps/0/escalation', message, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ timeout: 60, on_timeout: 'escalate' })] })), '/steps/0/escalation', message, 'sign-off');
    assertValid(minimal({ steps: [approval({ timeout: 60, on_timeout: 'escalate', escalation })] }));
    // An escalation does not escalate again, and needs its own timeout.
    findProblem(
      problemsOf(minimal({ steps: [approval({ timeout: 60, on_timeout: 'escalate', escalation: { ...escalation, on_timeout: 'escalate' } })] })),
      '/steps/0/escalation/on_timeout',
      /expected one of "reject"\|"approve"\|"fail"/,
      'sign-off',
    );
    findProblem(
      problemsOf(minimal({ steps: [approval({ timeout: 60, on_timeout: 'escalate', escalation: { approvers: { principals: ['cfo'] } } })] })),
      '/steps/0/escalation/timeout',
      /./,
      'sign-off',
    );
  });

  test('on_timeout needs a timeout', () => {
    for (const onTimeout of ['reject', 'approve', 'fail']) {
      findProblem(problemsOf(minimal({ steps: [approval({ on_timeout: onTimeout })] })), '/steps/0/on_timeout', /"on_timeout" needs a "timeout"/, 'sign-off');
      assertValid(minimal({ steps: [approval({ on_timeout: onTimeout, timeout: 1 })] }));
    }
    // A timeout alone is fine (it fails the step by default).
    assertValid(minimal({ steps: [approval({ timeout: 1 })] }));
  });

  test('approvers must name someone', () => {
    for (const approvers of [{}, { principals: [] }, { groups: [] }, { principals: [], groups: [] }]) {
      findProblem(problemsOf(minimal({ steps: [approval({ approvers })] })), '/steps/0/approvers', /name at least one principal or group/, 'sign-off');
    }
    findProblem(
      problemsOf(minimal({ steps: [approval({ timeout: 5, on_timeout: 'escalate', escalation: { approvers: {}, timeout: 5 } })] })),
      '/steps/0/escalation/approvers',
      /name at least one principal or group/,
      'sign-off',
    );
    findProblem(problemsOf(minimal({ steps: [approval({ approvers: { principals: [''] } })] })), '/steps/0/approvers/principals/0', /./, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ approvers: { users: ['ann'] } })] })), '/steps/0/approvers', /unknown field: "users"/, 'sign-off');
  });

  test('a quorum above the principals named is refused when no group can supply more approvers', () => {
    findProblem(problemsOf(minimal({ steps: [approval({ quorum: 3 })] })), '/steps/0/quorum', /quorum 3 is more than the 2 distinct approver\(s\) named/, 'sign-off');
    findProblem(
      problemsOf(minimal({ steps: [approval({ timeout: 5, on_timeout: 'escalate', escalation: { approvers: { principals: ['cfo'] }, quorum: 2, timeout: 5 } })] })),
      '/steps/0/escalation/quorum',
      /quorum 2 is more than the 1 distinct approver\(s\) named/,
      'sign-off',
    );
    // Inside composites too.
    findProblem(
      problemsOf(minimal({ steps: [{ id: 'c', type: 'conditional', condition: 'true', then: [approval({ quorum: 5 })] }] })),
      '/steps/0/then/0/quorum',
      /quorum 5 is more than the 2/,
      'sign-off',
    );
    assertValid(minimal({ steps: [approval({ quorum: 2 })] }));
    // A group may hold any number of members.
    assertValid(minimal({ steps: [approval({ quorum: 5, approvers: { principals: ['ann'], groups: ['finance'] } })] }));
    assertValid(minimal({ steps: [approval({ quorum: 5, approvers: { groups: ['finance'] } })] }));
    findProblem(problemsOf(minimal({ steps: [approval({ quorum: 0 })] })), '/steps/0/quorum', /./, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ quorum: 1.5 })] })), '/steps/0/quorum', /./, 'sign-off');
  });

  test(
    'a quorum counts distinct principals: the same name twice is one approver',
    () => {
      findProblem(
        problemsOf(minimal({ steps: [approval({ approvers: { principals: ['ann', 'ann'] }, quorum: 2 })] })),
        '/steps/0/quorum',
        /quorum 2 is more than the 1 distinct approver\(s\) named/,
        'sign-off',
      );
      assertValid(minimal({ steps: [approval({ approvers: { principals: ['ann', 'ann', 'ben'] }, quorum: 2 })] }));
    },
  );

  test('strict fields, enums and the summary template are checked', () => {
    findProblem(problemsOf(minimal({ steps: [approval({ approver: 'ann' })] })), '/steps/0', /unknown field: "approver"/, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ on_reject: 'skip' })] })), '/steps/0/on_reject', /expected one of "fail"\|"continue"/, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ timeout: 5, on_timeout: 'ignore' })] })), '/steps/0/on_timeout', /./, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ summary: 'Pay ${steps.ghost.output}' })] })), '/steps/0/summary', /there is no step "ghost"/, 'sign-off');
    findProblem(problemsOf(minimal({ steps: [approval({ summary: '' })] })), '/steps/0/summary', /./, 'sign-off');
  });
});

describe('validateDefinition: schedule triggers', () => {
  const ctx = { skills: new Set(['echo']), integrations: new Set<string>(), agents: new Set<string>(), lanes: ['prod-critical'] };
  const withTrigger = (trigger: Record<string, unknown>) => ({
    name: 't',
    version: '1.0.0',
    triggers: [{ type: 'schedule', ...trigger }],
    steps: [{ id: 'a', type: 'skill', skill: 'echo' }],
  });
  test('cron fields are checked against their ranges, names and steps', () => {
    for (const cron of ['0 9 * * *', '*/15 0-23 1,15 JAN-MAR MON-FRI', '30 2 * * 7']) {
      const result = validateDefinition(withTrigger({ cron }), ctx);
      assert.deepEqual(result.ok ? [] : result.problems, [], cron);
    }
    for (const [cron, message] of [
      ['99 * * * *', 'the minute field "99" is out of range (0-59)'],
      ['0 25 * * *', 'the hour field "25" is out of range (0-23)'],
      ['5-1 * * * *', 'the minute range "5-1" runs backwards'],
      ['*/0 * * * *', 'the minute field "*/0" has an invalid step "/0"'],
      ['0 9 * FOO *', 'the month field "FOO" is out of range (1-12)'],
    ] as const) {
      const result = validateDefinition(withTrigger({ cron }), ctx);
      assert.deepEqual(result.ok ? [] : result.problems, [{ path: '/triggers/0/cron', message }], cron);
    }
  });
  test('time zones are IANA names; exactly one of cron or interval', () => {
    const zone = validateDefinition(withTrigger({ cron: '0 9 * * *', timezone: 'Mars/Olympus' }), ctx);
    assert.deepEqual(zone.ok ? [] : zone.problems.map((p) => p.path), ['/triggers/0/timezone']);
    const both = validateDefinition(withTrigger({ cron: '0 9 * * *', interval: 60 }), ctx);
    assert.equal(both.ok, false);
  });
});
