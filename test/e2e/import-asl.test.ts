import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Amazon States Language conformance: every Step Functions template of the shared corpus
 * (../shared/corpus/localstack-sfn, LocalStack's templates with outcomes recorded on real AWS in
 * EXPECTED.json) is imported through POST /v1/definitions/import, registered, and run with each
 * recorded input on the real workers and dev server; the run's status, output or error type and
 * cause must be AWS's. A template the importer refuses must be one of KNOWN_REFUSED, with its
 * reason, as docs/importers.md lists them.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORPUS = [process.env.CORPUS_DIR, join(ROOT, '..', 'shared', 'corpus'), '/work/shared/corpus'].find(
  (dir): dir is string => dir !== undefined && existsSync(join(dir, 'localstack-sfn', 'EXPECTED.json')),
);

/** Refused on purpose (docs/importers.md): template → the refusal's construct. */
const KNOWN_REFUSED: Record<string, string> = {
  'scenarios/statemachines/map_state_item_selector_jsonata.json5': 'JSONata',
};

interface RecordedCase {
  input: unknown;
  status: 'ExecutionSucceeded' | 'ExecutionFailed';
  output?: unknown;
  error?: string;
  cause?: string;
}

/** AWS names the history event the failing state was entered at; a Temporal history has other ids. */
const normalizeCause = (cause: string | undefined) => cause?.replace(/ \(entered at the event id #\d+\)/, '');

describe('ASL importer: the recorded Step Functions corpus', { skip: CORPUS === undefined ? 'the shared corpus is not on this machine (set CORPUS_DIR)' : false }, () => {
  let platform: TestPlatform;
  const expected: Record<string, { recorded_cases: RecordedCase[] }> = CORPUS ? JSON.parse(readFileSync(join(CORPUS, 'localstack-sfn', 'EXPECTED.json'), 'utf8')) : {};
  const tally = { templates: 0, imported: 0, refusedAsDocumented: 0, cases: 0, passed: 0 };

  before(async () => {
    platform = await startTestPlatform({ database: 'pglite' });
  });

  after(async () => {
    await platform?.stop();
    // The pass counts, in the test output (and the closing note).
    console.log(
      `ASL corpus: ${tally.imported}/${tally.templates} templates imported (${tally.refusedAsDocumented} refused as documented); ${tally.passed}/${tally.cases} recorded cases pass`,
    );
  });

  let n = 0;
  for (const [file, entry] of Object.entries(expected)) {
    const name = `asl-${++n}-${file.split('/').pop()?.replace(/\.json5$/, '').replace(/_/g, '-')}`;
    test(`${file}: ${entry.recorded_cases.length} recorded case(s)`, async (t) => {
      tally.templates++;
      const source = readFileSync(join(CORPUS as string, 'localstack-sfn', file), 'utf8');
      const imported = await platform.api('/v1/definitions/import', { method: 'POST', json: { format: 'asl', source, name, register: true } });
      if (file in KNOWN_REFUSED) {
        assert.equal(imported.status, 422, JSON.stringify(imported.body));
        assert.ok(
          (imported.body.errors as Array<{ path: string; message: string }>).some((e) => e.message.startsWith(`${KNOWN_REFUSED[file]}:`) && e.path.startsWith('/source')),
          `refused for the documented reason: ${JSON.stringify(imported.body.errors)}`,
        );
        tally.refusedAsDocumented++;
        return;
      }
      assert.equal(imported.status, 201, JSON.stringify(imported.body));
      assert.equal(imported.body.registered, true);
      assert.deepEqual(imported.body.report.refused, []);
      tally.imported++;
      for (const [i, recorded] of entry.recorded_cases.entries()) {
        tally.cases++;
        const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: recorded.input } });
        assert.equal(started.status, 201, JSON.stringify(started.body));
        const run = await platform.waitForRun(started.body.runId as string, 60_000);
        const what = `case ${i} (input ${JSON.stringify(recorded.input)}): ${JSON.stringify({ status: run.status, output: run.output, error: run.error })}`;
        if (recorded.status === 'ExecutionSucceeded') {
          assert.equal(run.status, 'completed', what);
          assert.deepEqual(run.output, recorded.output, what);
        } else {
          assert.equal(run.status, 'failed', what);
          assert.equal(run.error?.type, recorded.error, what);
          assert.ok(String(run.error?.message).includes(String(normalizeCause(recorded.cause))), `cause: ${what}`);
        }
        tally.passed++;
        t.diagnostic(`case ${i}: ${recorded.status} as recorded`);
      }
    });
  }
});

describe('ASL importer: answers for bad sources', () => {
  let platform: TestPlatform;
  before(async () => {
    platform = await startTestPlatform({ database: 'pglite' });
  });
  after(async () => {
    await platform?.stop();
  });

  test('every unmappable construct is listed with its path; nothing is registered', async () => {
    const source = {
      StartAt: 'A',
      States: {
        A: { Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', Next: 'B' },
        B: { Type: 'Pass', Parameters: { 'x.$': '$.items[*].id' }, Next: 'C' },
        C: { Type: 'Choice', Choices: [{ Variable: '$.t', TimestampEquals: '2020-01-01T00:00:00Z', Next: 'A' }], Default: 'D' },
        D: { Type: 'Pass', Shiny: true, End: true },
      },
    };
    const { status, body } = await platform.api('/v1/definitions/import', { method: 'POST', json: { format: 'asl', source, name: 'bad-asl', register: true } });
    assert.equal(status, 422, JSON.stringify(body));
    const paths = (body.errors as Array<{ path: string }>).map((e) => e.path).sort();
    assert.deepEqual(paths, ['/source/States/A/Resource', '/source/States/B/Parameters/x.$', '/source/States/C/Choices/0/TimestampEquals', '/source/States/D/Shiny']);
    assert.equal((await platform.api('/v1/definitions/bad-asl')).status, 404);
  });

  test('intrinsic functions run as native expressions: Format, arrays, JSON, base64, Hash, MathAdd, StringSplit, UUID in Parameters, ResultSelector and Assign', async () => {
    const source = {
      Comment: 'intrinsics',
      StartAt: 'Build',
      States: {
        Build: {
          Type: 'Pass',
          Parameters: {
            'greeting.$': "States.Format('Hello, {}! You have {} items: {}', $.name, States.ArrayLength($.items), $.items)",
            'pages.$': 'States.ArrayPartition($.items, 2)',
            'evens.$': 'States.ArrayRange(0, $.n, 2)',
            'hasTwo.$': 'States.ArrayContains($.items, 2)',
            'second.$': 'States.ArrayGetItem($.items, 1)',
            'distinct.$': 'States.ArrayUnique($.items)',
            'words.$': "States.StringSplit($.csv, ',;')",
            'merged.$': 'States.JsonMerge($.a, $.b, false)',
            'text.$': 'States.JsonToString($.a)',
            'parsed.$': "States.StringToJson('{\"k\":[1]}')",
            'encoded.$': 'States.Base64Encode($.name)',
            'id.$': 'States.UUID()',
            'digest.$': "States.Hash($.name, 'SHA-256')",
            'pair.$': "States.Array('x', States.MathAdd($.n, -1))",
          },
          // Assign reads the state's result (the Parameters above), as on AWS.
          Assign: { 'total.$': 'States.MathAdd($.pair[1], 100)' },
          Next: 'Decode',
        },
        Decode: {
          Type: 'Task',
          Resource: 'arn:aws:lambda:eu-west-1:1:function:echo',
          Parameters: { 'decoded.$': 'States.Base64Decode($.encoded)', 'total.$': '$total' },
          ResultSelector: { 'both.$': "States.Format('{}/{}', $.decoded, $.total)" },
          ResultPath: '$.task',
          End: true,
        },
      },
    };
    const imported = await platform.api('/v1/definitions/import', {
      method: 'POST',
      json: { format: 'asl', source, name: 'asl-intrinsics', resources: { 'arn:aws:lambda:eu-west-1:1:function:*': 'echo' }, register: true },
    });
    assert.equal(imported.status, 201, JSON.stringify(imported.body));
    assert.ok((imported.body.report.mapped as Array<{ construct: string }>).filter((e) => e.construct === 'intrinsic function').length >= 15);
    const input = { name: 'Ada', items: [1, 2, 2, 3], n: 6, csv: 'a,b;;c', a: { x: 1 }, b: { y: 2 } };
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'asl-intrinsics', input } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const run = await platform.waitForRun(started.body.runId as string);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const out = run.output as Record<string, unknown>;
    assert.match(String(out.id), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUID from the run (v5)');
    delete out.id;
    assert.deepEqual(out, {
      greeting: 'Hello, Ada! You have 4 items: [1, 2, 2, 3]',
      pages: [[1, 2], [2, 3]],
      evens: [0, 2, 4, 6],
      hasTwo: true,
      second: 2,
      distinct: [1, 2, 3],
      words: ['a', 'b', 'c'],
      merged: { x: 1, y: 2 },
      text: '{"x":1}',
      parsed: { k: [1] },
      encoded: 'QWRh',
      digest: '99a563ab2f6e21e96998f9fddd2a2bab82b70ac019579502b8d7fc0032ff62bb',
      pair: ['x', 5],
      task: { both: 'Ada/105' },
    });
  });

  test('Assign: variables live across states, and one Assign reads the values from before it (a swap swaps)', async () => {
    const source = {
      StartAt: 'Init',
      States: {
        Init: { Type: 'Pass', Assign: { x: 1, 'y.$': '$.start' }, Next: 'Swap' },
        Swap: { Type: 'Pass', Assign: { 'x.$': '$y', 'y.$': '$x', 'sum.$': 'States.MathAdd($x, $y)' }, Next: 'Show' },
        Show: { Type: 'Pass', Parameters: { 'x.$': '$x', 'y.$': '$y', 'sum.$': '$sum' }, End: true },
      },
    };
    const imported = await platform.api('/v1/definitions/import', { method: 'POST', json: { format: 'asl', source, name: 'asl-assign', register: true } });
    assert.equal(imported.status, 201, JSON.stringify(imported.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'asl-assign', input: { start: 10 } } });
    const run = await platform.waitForRun(started.body.runId as string);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.output, { x: 10, y: 1, sum: 11 });
  });

  test('a Task runs the skill its resource is mapped to; text that is neither JSON5 nor YAML is a 400', async () => {
    const source = `{
      // JSON5, as LocalStack writes its templates
      StartAt: "Greet",
      States: {
        Greet: { Type: "Task", Resource: "arn:aws:lambda:eu-west-1:1:function:echo", Parameters: { "who.$": "$.name", greeting: "hi" }, ResultPath: "$.said", End: true, },
      },
    }`;
    const converted = await platform.api('/v1/definitions/import', {
      method: 'POST',
      json: { format: 'asl', source, name: 'asl-task', resources: { 'arn:aws:lambda:eu-west-1:1:function:*': 'echo' }, register: true },
    });
    assert.equal(converted.status, 201, JSON.stringify(converted.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'asl-task', input: { name: 'Ada' } } });
    const run = await platform.waitForRun(started.body.runId as string);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.output, { name: 'Ada', said: { who: 'Ada', greeting: 'hi' } });

    const broken = await platform.api('/v1/definitions/import', { method: 'POST', json: { format: 'asl', source: '{ StartAt: ' } });
    assert.equal(broken.status, 400, JSON.stringify(broken.body));
    assert.equal(broken.body.errors[0].path, '/source');
    const unknown = await platform.api('/v1/definitions/import', { method: 'POST', json: { format: 'bpmn', source: {} } });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.errors[0].path, '/format');
  });
});
