import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { validateDefinition, type Problem, type ValidationContext } from '../../interpreter/validate.ts';

/**
 * Property tests of the validator (issue 12): whatever a client submits, random JSON or a real
 * definition with a mutation anywhere in it, `validateDefinition` answers instead of throwing,
 * and every problem it answers carries a JSON Pointer (RFC 6901) that locates it in the document
 * the client sent: its parent always exists there (the pointer names the node at fault, or the
 * missing member of an existing object), and a problem names a step only when the pointer is
 * inside one. The seed is fixed so CI is reproducible; FC_SEED / FC_RUNS widen a local search.
 */

const ctx: ValidationContext = {
  skills: new Set(['echo', 'http-fetch', 'log-error', 'cleanup']),
  integrations: new Set(['forum.post.create', 'crm.note']),
  agents: new Set(['data-analyzer']),
  lanes: ['prod-critical', 'experimental'],
  definitions: new Set(['billing@1.0.0']),
};

const seed = Number(process.env.FC_SEED ?? 20_261_204);
const numRuns = Number(process.env.FC_RUNS ?? 300);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The example definitions of docs/examples: valid documents using every step kind. */
const examples: Json[] = readdirSync(new URL('../../docs/examples/', import.meta.url))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(new URL(`../../docs/examples/${f}`, import.meta.url), 'utf8')) as Json);

/** Every JSON Pointer into a document, the root included. */
function pointers(doc: Json, prefix: string[] = []): string[][] {
  const out: string[][] = [prefix];
  if (Array.isArray(doc)) doc.forEach((v, i) => out.push(...pointers(v, [...prefix, String(i)])));
  else if (doc !== null && typeof doc === 'object') for (const [k, v] of Object.entries(doc)) out.push(...pointers(v, [...prefix, k]));
  return out;
}

function parsePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const segments = pointer.slice(1).split('/');
  // `~` only as `~0` or `~1`.
  if (segments.some((s) => /~(?![01])/.test(s))) return undefined;
  return segments.map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The node at the segments, or `missing`. Own members only, as JSON has no prototype. */
const missing = Symbol('missing');
function resolve(doc: unknown, segments: string[]): unknown {
  let node = doc;
  for (const segment of segments) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(segment) || Number(segment) >= node.length) return missing;
      node = node[Number(segment)];
    } else if (node !== null && typeof node === 'object' && Object.prototype.hasOwnProperty.call(node, segment)) {
      node = (node as Record<string, unknown>)[segment];
    } else {
      return missing;
    }
  }
  return node;
}

/** Applies the mutation at `at`: replace the node, delete it, or wrap it. */
function mutate(doc: Json, at: string[], kind: 'replace' | 'delete' | 'wrap' | 'duplicate', value: Json): Json {
  if (at.length === 0) return kind === 'wrap' ? [doc] : kind === 'delete' ? {} : value;
  const copy = structuredClone(doc);
  const parent = resolve(copy, at.slice(0, -1)) as Json;
  const last = at[at.length - 1]!;
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (kind === 'delete') parent.splice(i, 1);
    else if (kind === 'duplicate') parent.splice(i, 0, structuredClone(parent[i]!));
    else parent[i] = kind === 'wrap' ? [parent[i]!] : value;
  } else if (parent !== null && typeof parent === 'object') {
    if (kind === 'delete') delete parent[last];
    else if (kind === 'duplicate') parent[`${last}-copy`] = structuredClone(parent[last]!);
    else parent[last] = kind === 'wrap' ? [parent[last]!] : value;
  }
  return copy;
}

/** Values a careless or hostile client puts where something else belongs. */
const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.constantFrom<Json>('', ' ', '\t', '\u0000', '${', '${input.', '${steps.}', '$${x}', 'a'.repeat(5000), '__proto__', 'constructor', -1, 0, 1e308, -0, 2 ** 53, 0.5),
  fc.constantFrom<Json>({}, [], [[]], { id: 'x' }, { type: 'skill' }, { id: 'x', type: 'nope' }, { id: 'a', type: 'skill', skill: 'echo' }),
  fc.dictionary(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'id', 'type', 'steps', ''), fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>, {
    maxKeys: 3,
  }),
);

/** A real definition with one to three mutations anywhere in it. */
const mutatedDefinition: fc.Arbitrary<Json> = fc
  .tuple(
    fc.constantFrom(...examples),
    fc.array(fc.tuple(fc.nat(), fc.constantFrom('replace', 'delete', 'wrap', 'duplicate') as fc.Arbitrary<'replace' | 'delete' | 'wrap' | 'duplicate'>, hostileValue), {
      minLength: 1,
      maxLength: 3,
    }),
  )
  .map(([base, mutations]) => {
    let doc = base;
    for (const [pick, kind, value] of mutations) {
      const all = pointers(doc);
      doc = mutate(doc, all[pick % all.length]!, kind, value);
    }
    return doc;
  });

/** JSON parsed from a body may carry an own `__proto__` member; fast-check's objects do not. */
const withProtoKeys = mutatedDefinition.map((doc) => JSON.parse(JSON.stringify(doc).replace(/"(constructor|toString)":/g, '"__proto__":')) as Json);

function checkAnswer(submitted: unknown): void {
  let result: ReturnType<typeof validateDefinition>;
  try {
    result = validateDefinition(submitted, ctx);
  } catch (error) {
    throw new Error(`validateDefinition threw ${(error as Error).stack ?? String(error)}`);
  }
  if (result.ok) return;
  assert.ok(result.problems.length > 0, 'an invalid answer lists at least one problem');
  for (const problem of result.problems) checkProblem(submitted, problem);
}

function checkProblem(submitted: unknown, problem: Problem): void {
  const where = JSON.stringify(problem);
  assert.equal(typeof problem.message, 'string', where);
  assert.ok(problem.message.length > 0, `a problem says what is wrong: ${where}`);
  assert.equal(typeof problem.path, 'string', `every problem has a path: ${where}`);
  const segments = parsePointer(problem.path);
  assert.ok(segments, `the path is a JSON Pointer: ${where}`);
  // The node at fault, or a member missing from an object that is there.
  assert.notEqual(resolve(submitted, segments.slice(0, -1)), missing, `the path's parent exists in the submitted document: ${where}`);
  if (problem.stepId !== undefined) assert.equal(typeof problem.stepId, 'string', where);
}

test('the examples are valid (the mutations start from real definitions)', () => {
  assert.ok(examples.length >= 10);
  for (const doc of examples) {
    const result = validateDefinition(doc, ctx);
    assert.deepEqual(result.ok ? [] : result.problems.filter((p) => !/skill|integration|agent|definition "|model/.test(p.message)), []);
  }
});

test('random JSON: never throws, every problem has a JSON path into the document', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 6 }), checkAnswer), { seed, numRuns });
});

test('random objects shaped like definitions: never throws, every problem has its path', () => {
  const step = fc.record(
    {
      id: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('a', 'b', 'a b', 'A', '1', '')),
      type: fc.constantFrom('skill', 'integration', 'model', 'agent', 'approval', 'conditional', 'switch', 'parallel', 'for_each', 'loop', 'wait', 'set', 'fail', 'succeed', 'sub_workflow', 'directive', 'nope'),
      skill: fc.constantFrom('echo', 'nope'),
      inputs: fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.constantFrom('${input.x}', 'a.b', '${steps.a.output}'), fc.jsonValue({ maxDepth: 2 })) as fc.Arbitrary<Json>, { maxKeys: 3 }),
      condition: fc.constantFrom('input.x > 1', '${', 'steps.a.output', '!!!'),
      steps: fc.constant([{ id: 'inner', type: 'skill', skill: 'echo' }]),
      then: fc.constant([{ id: 'then-a', type: 'skill', skill: 'echo' }]),
      items: fc.constantFrom('input.list', 1),
      timeout: fc.oneof(fc.integer(), fc.double()),
    },
    { requiredKeys: ['id', 'type'] },
  ) as unknown as fc.Arbitrary<Json>;
  const definition = fc.record(
    {
      name: fc.oneof(fc.string({ maxLength: 10 }), fc.constant('ok-name')),
      version: fc.oneof(fc.string({ maxLength: 6 }), fc.constant('1.0.0')),
      steps: fc.array(step, { maxLength: 5 }),
      triggers: fc.array(fc.record({ type: fc.constantFrom('manual', 'schedule', 'event', 'x'), cron: fc.constantFrom('0 * * * *', 'nope'), event: fc.string() }, { requiredKeys: ['type'] })),
      error_handling: fc.jsonValue({ maxDepth: 3 }),
      context: fc.jsonValue({ maxDepth: 3 }),
    },
    { requiredKeys: ['steps'] },
  );
  fc.assert(fc.property(definition, checkAnswer), { seed, numRuns });
  fc.assert(fc.property(definition.map((d) => ({ workflow: d })), checkAnswer), { seed: seed + 1, numRuns: Math.ceil(numRuns / 3) });
});

test('mutated real definitions: never throws, every problem has its path', () => {
  fc.assert(fc.property(mutatedDefinition, checkAnswer), { seed, numRuns });
  fc.assert(fc.property(mutatedDefinition.map((d) => ({ workflow: d })), checkAnswer), { seed: seed + 2, numRuns: Math.ceil(numRuns / 3) });
});

test('mutated definitions with own __proto__ members (as JSON.parse makes them): never throws, paths hold', () => {
  fc.assert(fc.property(withProtoKeys, checkAnswer), { seed, numRuns: Math.ceil(numRuns / 2) });
});

test('found by the property test: a blank expression is a problem at its path, not a TypeError', () => {
  for (const blank of [' ', '\t', '  \n ']) {
    const result = validateDefinition(
      {
        name: 'blank',
        version: '1.0.0',
        steps: [
          { id: 'w', type: 'wait_for_event', event: 'order.approved', filter: blank, timeout: 60, on_timeout: 'continue' },
          { id: 'c', type: 'conditional', condition: blank, then: [{ id: 'x', type: 'skill', skill: 'echo' }] },
        ],
      },
      ctx,
    );
    assert.equal(result.ok, false);
    const problems = result.ok ? [] : result.problems;
    assert.ok(problems.some((p) => p.path === '/steps/0/filter' && /empty/.test(p.message) && p.stepId === 'w'), JSON.stringify(problems));
    assert.ok(problems.some((p) => p.path === '/steps/1/condition' && /empty/.test(p.message) && p.stepId === 'c'), JSON.stringify(problems));
  }
});
