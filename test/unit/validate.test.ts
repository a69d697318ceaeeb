import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LIMITS, MAX_ATTEMPTS_CAP } from '../../interpreter/schema.ts';
import { toPointer, validateDefinition, type Problem, type ValidationContext } from '../../interpreter/validate.ts';

const ctx: ValidationContext = { skills: new Set(['echo', 'http-fetch']), lanes: ['prod-critical', 'experimental'] };

type Json = Record<string, unknown>;

function loadSeed(): Json {
  return JSON.parse(readFileSync(new URL('../fixtures/definitions/seed-002-sequential.json', import.meta.url), 'utf8')) as Json;
}

const fetchStep = {
  id: 'fetch-data',
  type: 'skill',
  skill: 'http-fetch',
  inputs: { url: 'https://api.example.com/data' },
  outputs: ['data'],
  async: false,
  timeout: 30,
};

function minimal(extra: Json = {}): Json {
  return { name: 'workflow-name', version: '1.0.0', steps: [structuredClone(fetchStep)], ...extra };
}

function problemsOf(raw: unknown): Problem[] {
  const result = validateDefinition(raw, ctx);
  assert.equal(result.ok, false, 'expected the definition to be invalid');
  return result.ok ? [] : result.problems;
}

function findProblem(problems: Problem[], path: string, message: RegExp): Problem {
  const found = problems.find((p) => p.path === path && message.test(p.message));
  assert.ok(found, `no problem at ${path} matching ${message}; got ${JSON.stringify(problems, null, 2)}`);
  return found;
}

describe('validateDefinition: valid definitions (seed 002 format)', () => {
  test('the seed-002 sequential fixture is valid and compiles to a plan', () => {
    const result = validateDefinition(loadSeed(), ctx);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.problems));
    assert.deepEqual(result.plan.steps.map((s) => s.id), ['fetch-data', 'report']);
    const report = result.plan.steps[1]!;
    assert.equal(report.skill, 'echo');
    // The bare "fetch-data.data" form became a reference, not a literal.
    assert.equal(report.inputs.kind, 'object');
    const data = report.inputs.kind === 'object' ? report.inputs.entries.find(([k]) => k === 'data')?.[1] : undefined;
    assert.equal(data?.kind, 'ref');
    assert.deepEqual(data?.kind === 'ref' && data.ref.path, ['fetch-data', 'output', 'data']);
  });

  test('the skill step exactly as the seed writes it is valid', () => {
    const result = validateDefinition(minimal(), ctx);
    assert.ok(result.ok);
    assert.equal(result.definition.steps[0]!.timeout, 30);
    assert.equal(result.plan.steps[0]!.timeoutSeconds, 30);
  });

  test('triggers: manual and schedule with cron and timezone', () => {
    const result = validateDefinition(
      minimal({
        triggers: [
          { type: 'manual', description: 'User-initiated' },
          { type: 'schedule', cron: '0 9 * * *', timezone: 'UTC' },
        ],
      }),
      ctx,
    );
    assert.ok(result.ok);
    assert.equal(result.definition.triggers?.length, 2);
  });

  test('context readonly and mutable', () => {
    const result = validateDefinition(
      minimal({ context: { readonly: { environment: 'production', user: 'alice' }, mutable: { counter: 0 } } }),
      ctx,
    );
    assert.ok(result.ok);
    assert.deepEqual(result.definition.context?.mutable, { counter: 0 });
  });

  test('resource_limits as in the seed', () => {
    const limits = { max_memory_mb: 512, max_cpu_percent: 50, max_execution_time: 3600, max_concurrent_steps: 5 };
    const result = validateDefinition(minimal({ resource_limits: limits }), ctx);
    assert.ok(result.ok);
    assert.deepEqual(result.definition.resource_limits, limits);
  });

  test('a configured lane is accepted', () => {
    assert.equal(validateDefinition(minimal({ lane: 'experimental' }), ctx).ok, true);
  });

  test('definition output may read any step', () => {
    assert.equal(validateDefinition(minimal({ output: { result: '${steps.fetch-data.output.data}' } }), ctx).ok, true);
  });
});

describe('validateDefinition: invalid definitions', () => {
  test('duplicate step ids', () => {
    const problems = problemsOf(minimal({ steps: [fetchStep, { ...fetchStep }] }));
    const p = findProblem(problems, '/steps/1/id', /duplicate step id "fetch-data" \(first used at \/steps\/0\)/);
    assert.equal(p.stepId, 'fetch-data');
  });

  test('unknown skill, at /steps/N/skill, listing the available skills', () => {
    const problems = problemsOf(minimal({ steps: [fetchStep, { id: 'x', type: 'skill', skill: 'summarize' }] }));
    const p = findProblem(problems, '/steps/1/skill', /unknown skill "summarize"; available: echo, http-fetch/);
    assert.equal(p.stepId, 'x');
  });

  test('unknown lane at /lane', () => {
    const problems = problemsOf(minimal({ lane: 'gpu' }));
    const p = findProblem(problems, '/lane', /unknown lane "gpu"; configured lanes: prod-critical, experimental/);
    assert.equal(p.stepId, undefined);
  });

  test('a typo\'d field is an unknown field at /steps/N', () => {
    const problems = problemsOf(minimal({ steps: [fetchStep, { id: 'typo', type: 'skill', skil: 'echo' }] }));
    const p = findProblem(problems, '/steps/1', /unknown field: "skil"/);
    assert.equal(p.stepId, 'typo');
  });

  test('unknown top-level fields are reported too', () => {
    findProblem(problemsOf(minimal({ stepz: [] })), '', /unknown field: "stepz"/);
  });

  test('a reference to a later step', () => {
    const problems = problemsOf(
      minimal({
        steps: [
          { id: 'first', type: 'skill', skill: 'echo', inputs: { data: 'fetch-data.data' } },
          fetchStep,
        ],
      }),
    );
    const p = findProblem(problems, '/steps/0/inputs/data', /refers to step "fetch-data", which does not run before this point/);
    assert.equal(p.stepId, 'first');
  });

  test('a step cannot read its own output', () => {
    const problems = problemsOf(
      minimal({ steps: [{ id: 'self', type: 'skill', skill: 'echo', inputs: { x: '${steps.self.output}' } }] }),
    );
    findProblem(problems, '/steps/0/inputs/x', /does not run before this point/);
  });

  test('a per_step policy for a missing step id', () => {
    const problems = problemsOf(minimal({ error_handling: { per_step: { analyze: { strategy: 'skip' } } } }));
    findProblem(problems, '/error_handling/per_step/analyze', /no step has the id "analyze"/);
  });

  test('bad version "1.0"', () => {
    findProblem(problemsOf(minimal({ version: '1.0' })), '/version', /semantic versions/);
  });

  test('max_attempts above the cap, in step.retry and in per_step', () => {
    const problems = problemsOf(
      minimal({
        steps: [{ ...fetchStep, retry: { max_attempts: MAX_ATTEMPTS_CAP + 1 } }],
        error_handling: { per_step: { 'fetch-data': { strategy: 'retry', max_attempts: 50 } } },
      }),
    );
    const p = findProblem(problems, '/steps/0/retry/max_attempts', new RegExp(`<=\\s*${MAX_ATTEMPTS_CAP}`));
    assert.equal(p.stepId, 'fetch-data');
    findProblem(problems, '/error_handling/per_step/fetch-data/max_attempts', new RegExp(`<=\\s*${MAX_ATTEMPTS_CAP}`));
  });

  test('an unsupported step type is refused with a message listing the supported types', () => {
    const agent = {
      id: 'analyze',
      type: 'agent',
      agent: 'data-analyzer',
      inputs: { data: 'fetch-data.data' },
      outputs: ['analysis'],
      async: true,
    };
    const problems = problemsOf(minimal({ steps: [fetchStep, agent] }));
    const p = findProblem(problems, '/steps/1/type', /unsupported step type; supported types: skill/);
    assert.equal(p.stepId, 'analyze');
  });

  test('parallel, conditional and loop steps are refused the same way', () => {
    for (const type of ['parallel', 'conditional', 'loop']) {
      const problems = problemsOf(minimal({ steps: [{ id: 'ctl', type }] }));
      findProblem(problems, '/steps/0/type', /supported types: skill/);
    }
  });

  test('"async": true is refused', () => {
    findProblem(problemsOf(minimal({ steps: [{ ...fetchStep, async: true }] })), '/steps/0/async', /not supported/);
  });

  test('empty steps', () => {
    findProblem(problemsOf(minimal({ steps: [] })), '/steps', /at least one step/);
  });

  test('a bad step id', () => {
    findProblem(problemsOf(minimal({ steps: [{ ...fetchStep, id: '1-bad id' }] })), '/steps/0/id', /step ids start with a letter/);
  });

  test('too many steps', () => {
    const steps = Array.from({ length: LIMITS.maxSteps + 1 }, (_, i) => ({ id: `s${i}`, type: 'skill', skill: 'echo' }));
    findProblem(problemsOf(minimal({ steps })), '/steps', /<=\s*500|500/);
  });

  test('an oversize definition is refused before parsing', () => {
    const problems = problemsOf(minimal({ context: { readonly: { blob: 'x'.repeat(LIMITS.maxDefinitionBytes) } } }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.path, '');
    assert.match(problems[0]!.message, new RegExp(`the limit is ${LIMITS.maxDefinitionBytes}`));
  });

  test('the size limit counts UTF-8 bytes, not characters', () => {
    // 150 000 two-byte characters: under the limit in characters, over it in bytes.
    const blob = 'é'.repeat(150_000);
    assert.ok(blob.length < LIMITS.maxDefinitionBytes);
    const problems = problemsOf(minimal({ context: { readonly: { blob } } }));
    assert.match(problems[0]!.message, /bytes; the limit is/);
  });

  test('non-object input gives a problem, not an exception', () => {
    for (const raw of [null, undefined, 42, 'text', []]) {
      const problems = problemsOf(raw);
      assert.ok(problems.length >= 1);
    }
  });

  test('every problem is returned at once, schema and whole-document problems together', () => {
    const raw = {
      name: 'workflow-name',
      version: '1.0',
      lane: 'gpu',
      steps: [
        { id: 'fetch-data', type: 'skill', skill: 'http-fetch', inputs: { next: 'report.data' } },
        { id: 'fetch-data', type: 'skill', skill: 'nosuch' },
        { id: 'typo', type: 'skil', skil: 'echo' },
        { id: 'typo2', type: 'skill', skil: 'echo' },
        { id: 'analyze', type: 'agent', agent: 'data-analyzer' },
        { id: 'report', type: 'skill', skill: 'echo', retry: { max_attempts: 99 }, inputs: { x: '${steps.nope.output}' } },
      ],
      error_handling: { per_step: { ghost: { strategy: 'skip' } } },
    };
    const problems = problemsOf(raw);
    const expected: Array<[string, RegExp, string | undefined]> = [
      ['/version', /semantic versions/, undefined],
      ['/lane', /unknown lane "gpu"/, undefined],
      ['/steps/0/inputs/next', /"report", which does not run before this point/, 'fetch-data'],
      ['/steps/1/id', /duplicate step id "fetch-data"/, 'fetch-data'],
      ['/steps/1/skill', /unknown skill "nosuch"/, 'fetch-data'],
      ['/steps/2/type', /unsupported step type/, 'typo'],
      ['/steps/3', /unknown field: "skil"/, 'typo2'],
      ['/steps/4/type', /unsupported step type; supported types: skill/, 'analyze'],
      ['/steps/5/retry/max_attempts', /<=\s*10/, 'report'],
      ['/steps/5/inputs/x', /"nope", which does not exist/, 'report'],
      ['/error_handling/per_step/ghost', /no step has the id "ghost"/, undefined],
    ];
    for (const [path, message, stepId] of expected) {
      assert.equal(findProblem(problems, path, message).stepId, stepId, path);
    }
  });

  test('a schema problem is not reported twice by the whole-document checks', () => {
    const problems = problemsOf(minimal({ steps: [{ id: 'a', type: 'skill', skill: '' }] }));
    assert.equal(problems.filter((p) => p.path === '/steps/0/skill').length, 1);
  });

  test('toPointer escapes path segments', () => {
    assert.equal(toPointer(['error_handling', 'per_step', 'a/b~c', 0]), '/error_handling/per_step/a~1b~0c/0');
    assert.equal(toPointer([]), '');
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

type GenInput =
  | { kind: 'literal'; value: unknown }
  | { kind: 'bare'; target: string }
  | { kind: 'template'; target: string; whole: boolean };

interface GenStep {
  id: string;
  shape: 'skill' | 'typo' | 'agent';
  skill: string;
  inputs: Record<string, GenInput>;
}

interface Generated {
  raw: Json;
  /** Paths of the problems the oracle expects, sorted. */
  expected: string[];
}

function generate(rand: () => number): Generated {
  const pick = <T,>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
  const stepCount = 1 + Math.floor(rand() * 5);
  const steps: GenStep[] = [];
  for (let i = 0; i < stepCount; i += 1) {
    const inputs: Record<string, GenInput> = {};
    const inputCount = Math.floor(rand() * 3);
    for (let k = 0; k < inputCount; k += 1) {
      const r = rand();
      inputs[`in${k}`] =
        r < 0.25
          ? { kind: 'literal', value: pick([1, true, null, 'https://api.example.com/data', 'hello.world', 'v1.2.3', '${input.city}']) }
          : r < 0.6
            ? { kind: 'bare', target: pick(REF_POOL) }
            : { kind: 'template', target: pick(REF_POOL), whole: rand() < 0.5 };
    }
    const shapeRoll = rand();
    steps.push({
      id: pick(ID_POOL),
      shape: shapeRoll < 0.06 ? 'typo' : shapeRoll < 0.1 ? 'agent' : 'skill',
      skill: pick(SKILL_POOL),
      inputs,
    });
  }
  const perStep = rand() < 0.3 ? [pick(REF_POOL)] : [];

  const rawSteps = steps.map((s) => {
    const inputs = Object.fromEntries(
      Object.entries(s.inputs).map(([k, v]) => [
        k,
        v.kind === 'literal'
          ? v.value
          : v.kind === 'bare'
            ? `${v.target}.data`
            : v.whole
              ? `\${steps.${v.target}.output}`
              : `got \${steps.${v.target}.output.data}!`,
      ]),
    );
    if (s.shape === 'typo') return { id: s.id, type: 'skill', skil: s.skill, inputs };
    if (s.shape === 'agent') return { id: s.id, type: 'agent', agent: 'data-analyzer', inputs };
    return { id: s.id, type: 'skill', skill: s.skill, inputs };
  });
  const raw: Json = { name: 'generated', version: '1.0.0', steps: rawSteps };
  if (perStep.length > 0) raw.error_handling = { per_step: Object.fromEntries(perStep.map((id) => [id, { strategy: 'skip' }])) };

  // The oracle, written from the rules rather than from the implementation.
  const expected: string[] = [];
  const allIds = new Set(steps.map((s) => s.id));
  const seen = new Set<string>();
  steps.forEach((s, i) => {
    if (s.shape === 'typo') expected.push(`/steps/${i}`, `/steps/${i}/skill`);
    if (s.shape === 'agent') expected.push(`/steps/${i}/type`);
    if (seen.has(s.id)) expected.push(`/steps/${i}/id`);
    if (s.shape === 'skill' && !ctx.skills.has(s.skill)) expected.push(`/steps/${i}/skill`);
    const earlier = new Set(steps.slice(0, i).map((e) => e.id));
    for (const [key, v] of Object.entries(s.inputs)) {
      if (v.kind === 'literal') continue;
      const ok = earlier.has(v.target) || (v.kind === 'bare' && !allIds.has(v.target));
      if (!ok) expected.push(`/steps/${i}/inputs/${key}`);
    }
    seen.add(s.id);
  });
  for (const id of perStep) if (!allIds.has(id)) expected.push(`/error_handling/per_step/${id}`);
  return { raw, expected: expected.sort() };
}

describe('validateDefinition: property test against an oracle', () => {
  test('200 random definitions: never throws, ok iff the oracle says valid, same problem paths', () => {
    const rand = prng(0x5eed002);
    let valid = 0;
    let invalid = 0;
    for (let n = 0; n < 200; n += 1) {
      const { raw, expected } = generate(rand);
      let result: ReturnType<typeof validateDefinition>;
      try {
        result = validateDefinition(raw, ctx);
      } catch (error) {
        assert.fail(`validation threw for ${JSON.stringify(raw)}: ${String(error)}`);
      }
      const label = `case ${n}: ${JSON.stringify(raw)}`;
      assert.equal(result.ok, expected.length === 0, `${label}\nexpected problems at ${JSON.stringify(expected)}\ngot ${JSON.stringify(!result.ok && result.problems)}`);
      if (result.ok) {
        valid += 1;
        assert.deepEqual(result.plan.steps.map((s) => s.id), (raw.steps as Array<{ id: string }>).map((s) => s.id), label);
      } else {
        invalid += 1;
        assert.deepEqual(result.problems.map((p) => p.path).sort(), expected, label);
        const rawSteps = raw.steps as Array<{ id: string }>;
        for (const p of result.problems) {
          assert.ok(p.message.length > 0, label);
          const m = /^\/steps\/(\d+)/.exec(p.path);
          assert.equal(p.stepId, m ? rawSteps[Number(m[1])]!.id : undefined, `${label}: stepId of ${p.path}`);
        }
      }
    }
    // The generator must exercise both sides, or the property says little.
    assert.ok(valid >= 20, `only ${valid} valid cases`);
    assert.ok(invalid >= 20, `only ${invalid} invalid cases`);
  });
});
