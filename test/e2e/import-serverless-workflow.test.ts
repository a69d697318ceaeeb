import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { AstBuilder, GherkinClassicTokenMatcher, Parser } from '@cucumber/gherkin';
import { IdGenerator } from '@cucumber/messages';
import { parse as parseYaml } from 'yaml';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Serverless Workflow 1.0 conformance: the specification's own conformance kit (the CTK's Gherkin
 * features in ../shared/corpus/open-workflow-specification/ctk/features) parsed with the Gherkin
 * library; each scenario's definition imported through POST /v1/definitions/import, registered,
 * run on the real workers with the scenario's input, and checked with the scenario's own Then
 * steps. The public pet store the HTTP scenarios call is a loopback server answering the same JSON.
 * A scenario the importer refuses must be one of KNOWN_REFUSED, for the reason docs/importers.md gives.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORPUS = [process.env.CORPUS_DIR, join(ROOT, '..', 'shared', 'corpus'), '/work/shared/corpus'].find(
  (dir): dir is string => dir !== undefined && existsSync(join(dir, 'open-workflow-specification', 'ctk', 'features')),
);
const FEATURES = CORPUS ? join(CORPUS, 'open-workflow-specification', 'ctk', 'features') : '';

/** Scenario name → the construct the importer refuses (docs/importers.md says why). */
const KNOWN_REFUSED: Record<string, string> = {
  'Emit Task': 'emit',
};

/**
 * The operations of the public pet store's Swagger 2.0 document (https://petstore.swagger.io/v2/swagger.json)
 * the scenarios call, as it declares them; passed to the import as `openapi` (the importer fetches nothing).
 */
const PETSTORE_SWAGGER = {
  swagger: '2.0',
  info: { title: 'Swagger Petstore', version: '1.0.7' },
  host: 'petstore.swagger.io',
  basePath: '/v2',
  schemes: ['https', 'http'],
  paths: {
    '/pet/findByStatus': {
      get: { operationId: 'findPetsByStatus', parameters: [{ name: 'status', in: 'query', required: true, type: 'array', items: { type: 'string' } }] },
    },
    '/pet/{petId}': {
      get: { operationId: 'getPetById', parameters: [{ name: 'petId', in: 'path', required: true, type: 'integer' }] },
      post: { operationId: 'updatePetWithForm', parameters: [{ name: 'petId', in: 'path', required: true, type: 'integer' }] },
      delete: { operationId: 'deletePet', parameters: [{ name: 'api_key', in: 'header', type: 'string' }, { name: 'petId', in: 'path', required: true, type: 'integer' }] },
    },
  },
};

/** httpbin's /basic-auth/{user}/{password}: 200 when the Authorization header carries exactly those, else 401. */
function basicAuth(req: { url?: string; headers: Record<string, unknown> }, res: Parameters<typeof json>[0]): void {
  const [user, password] = (req.url ?? '').split('/').slice(2).map(decodeURIComponent);
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  if (req.headers.authorization === expected) json(res, 200, { authenticated: true, user });
  else json(res, 401, { authenticated: false });
}

interface Scenario {
  feature: string;
  name: string;
  steps: Array<{ text: string; doc?: string }>;
}

function scenarios(): Scenario[] {
  if (!CORPUS) return [];
  const out: Scenario[] = [];
  for (const file of readdirSync(FEATURES).filter((f) => f.endsWith('.feature')).sort()) {
    const parser = new Parser(new AstBuilder(IdGenerator.incrementing()), new GherkinClassicTokenMatcher());
    const doc = parser.parse(readFileSync(join(FEATURES, file), 'utf8'));
    for (const child of doc.feature?.children ?? []) {
      if (!child.scenario) continue;
      out.push({ feature: file, name: child.scenario.name, steps: child.scenario.steps.map((s) => ({ text: s.text, ...(s.docString ? { doc: s.docString.content } : {}) })) });
    }
  }
  return out;
}

/** `a.b.c` of a value; undefined when absent. */
function at(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, key) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined), value);
}

const PETS = [
  { id: 1, name: 'doggie', status: 'available', category: { id: 1, name: 'Dogs' }, photoUrls: [], tags: [] },
  { id: 2, name: 'kitty', status: 'available', category: { id: 2, name: 'Cats' }, photoUrls: [], tags: [] },
];

describe('Serverless Workflow importer: the specification conformance kit', { skip: CORPUS === undefined ? 'the shared corpus is not on this machine (set CORPUS_DIR)' : false }, () => {
  let platform: TestPlatform;
  let petstore: LoopbackHttp;
  const tally = { scenarios: 0, passed: 0, refusedAsDocumented: 0 };

  before(async () => {
    petstore = await startLoopbackHttp({
      '/v2/pet/findByStatus': (req, res) => json(res, 200, PETS.filter((p) => new URL(req.url ?? '', 'http://x').searchParams.get('status') === p.status)),
      '/v2/pet/1': (_req, res) => json(res, 200, PETS[0]),
      '/v2/pet/2': (_req, res) => json(res, 200, PETS[1]),
      '/basic-auth/serverless-workflow/conformance-test': basicAuth,
    });
    platform = await startTestPlatform({ database: 'pglite', env: { HTTP_FETCH_ALLOWED_HOSTS: petstore.host } });
  });

  after(async () => {
    await platform?.stop();
    await petstore?.close();
    console.log(`Serverless Workflow CTK: ${tally.passed}/${tally.scenarios} scenarios pass; ${tally.refusedAsDocumented} refused as documented`);
  });

  let n = 0;
  for (const scenario of scenarios()) {
    const name = `sw-${++n}`;
    test(`${scenario.feature}: ${scenario.name}`, async () => {
      tally.scenarios++;
      const definitionStep = scenario.steps.find((s) => s.text.startsWith('a workflow with definition'));
      assert.ok(definitionStep?.doc, 'the scenario gives a definition');
      const source = definitionStep.doc;
      const imported = await platform.api('/v1/definitions/import', {
        method: 'POST',
        json: {
          format: 'serverless-workflow',
          source,
          name,
          register: true,
          baseUrls: { 'https://petstore.swagger.io': petstore.url, 'https://httpbin.org': petstore.url },
          openapi: { 'https://petstore.swagger.io/v2/swagger.json': PETSTORE_SWAGGER },
        },
      });
      const refusal = KNOWN_REFUSED[scenario.name];
      if (refusal !== undefined) {
        assert.equal(imported.status, 422, JSON.stringify(imported.body));
        assert.ok((imported.body.errors as Array<{ message: string }>).some((e) => e.message.startsWith(`${refusal}:`)), JSON.stringify(imported.body.errors));
        tally.refusedAsDocumented++;
        return;
      }
      assert.equal(imported.status, 201, JSON.stringify(imported.body));
      const inputStep = scenario.steps.find((s) => s.text.startsWith('given the workflow input is'));
      const input = inputStep?.doc ? parseYaml(inputStep.doc) : {};
      const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input } });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const run = await platform.waitForRun(started.body.runId as string, 60_000);
      const seen = JSON.stringify({ status: run.status, output: run.output, error: run.error });
      // The tasks in the order they ran, as the import records them in the run's `_ran` variable.
      const ran = (run.variables?._ran ?? []) as string[];
      for (const step of scenario.steps) {
        const text = step.text;
        let m: RegExpExecArray | null;
        if (text === 'the workflow should complete with output:') {
          assert.equal(run.status, 'completed', seen);
          assert.deepEqual(run.output, parseYaml(step.doc ?? ''), seen);
        } else if (text === 'the workflow should complete') {
          assert.equal(run.status, 'completed', seen);
        } else if (text === 'the workflow should fault') {
          assert.equal(run.status, 'failed', seen);
        } else if (text === 'the workflow should fault with error:') {
          assert.equal(run.status, 'failed', seen);
          const problem = parseYaml(step.doc ?? '') as Record<string, unknown>;
          // The whole problem (status and instance too) is the run's structured error.
          const fields = ['type', 'status', 'title', 'detail', 'instance'].filter((f) => run.error?.[f] !== undefined);
          assert.deepEqual(Object.fromEntries(fields.map((f) => [f, run.error[f]])), problem, seen);
        } else if ((m = /^the workflow output should have properties (.+)$/.exec(text))) {
          for (const p of [...(m[1] as string).matchAll(/'([^']+)'/g)].map((x) => x[1] as string)) assert.notEqual(at(run.output, p), undefined, `output.${p}: ${seen}`);
        } else if ((m = /^the workflow output should have a '([^']+)' property with value:$/.exec(text))) {
          assert.deepEqual(at(run.output, m[1] as string), parseYaml(step.doc ?? ''), seen);
        } else if ((m = /^the workflow output should have a '([^']+)' property containing (\d+) items$/.exec(text))) {
          const list = at(run.output, m[1] as string);
          assert.ok(Array.isArray(list) && list.length === Number(m[2]), seen);
        } else if ((m = /^(\w+) should run first$/.exec(text))) {
          assert.equal(ran[0], m[1], `ran: ${ran.join(', ')}`);
        } else if ((m = /^(\w+) should run last$/.exec(text))) {
          assert.equal(ran.at(-1), m[1], `ran: ${ran.join(', ')}`);
        } else if ((m = /^(\w+) should run after (\w+)$/.exec(text))) {
          assert.ok(ran.indexOf(m[1] as string) > ran.indexOf(m[2] as string) && ran.indexOf(m[2] as string) >= 0, `ran: ${ran.join(', ')}`);
        } else {
          assert.ok(/^(a workflow with definition|given the workflow input is|the workflow is executed)/.test(text), `a Then step the test knows: ${text}`);
        }
      }
      tally.passed++;
    });
  }
});

describe('Serverless Workflow importer: listen and run: workflow on the real platform', () => {
  let platform: TestPlatform;
  before(async () => {
    platform = await startTestPlatform({ database: 'pglite' });
  });
  after(async () => {
    await platform?.stop();
  });

  /** Sends the event until the API reports it signalled the run (the run list it reads lags a little behind a start). */
  async function deliver(runId: string, event: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const sent = await platform.api('/v1/events', { method: 'POST', json: event });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      if ((sent.body.delivered as Array<{ runId: string }>).some((d) => d.runId === runId)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.fail(`the event ${String(event.id)} never reached ${runId}`);
  }

  test('a listen task waits for its CloudEvent (filtered on source and data), then run: workflow runs the imported child with the event data', async () => {
    const child = `
document: { dsl: '1.0.0', namespace: test, name: sw-double, version: '0.1.0' }
do:
  - double:
      set:
        doubled: \${ .amount * 2 }
        who: \${ .who }
`;
    const parent = `
document: { dsl: '1.0.0', namespace: test, name: sw-await-payment, version: '0.1.0' }
do:
  - awaitPayment:
      listen:
        to:
          one:
            with:
              type: com.shop.payment.received
              source: psp
              data: \${ .amount > 10 }
  - doubleIt:
      run:
        workflow:
          namespace: test
          name: sw-double
          version: '0.1.0'
          input:
            amount: \${ .[0].amount }
            who: \${ $workflow.input.customer }
`;
    for (const source of [child, parent]) {
      const imported = await platform.api('/v1/definitions/import', { method: 'POST', json: { format: 'serverless-workflow', source, register: true } });
      assert.equal(imported.status, 201, JSON.stringify(imported.body));
    }
    const started = await platform.api('/v1/runs', { method: 'POST', headers: { 'X-Correlation-Id': 'sw-order-1' }, json: { definition: 'sw-await-payment', input: { customer: 'ada' } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const runId = started.body.runId as string;
    // Too small, then from another source: both kept but neither ends the wait; the third does.
    await deliver(runId, { id: 'pay-1', type: 'com.shop.payment.received', source: 'psp', correlationId: 'sw-order-1', data: { amount: 5 } });
    await deliver(runId, { id: 'pay-2', type: 'com.shop.payment.received', source: 'other', correlationId: 'sw-order-1', data: { amount: 50 } });
    const waiting = await platform.api(`/v1/runs/${runId}`);
    assert.equal(waiting.body.status, 'running', JSON.stringify(waiting.body));
    await deliver(runId, { id: 'pay-3', type: 'com.shop.payment.received', source: 'psp', correlationId: 'sw-order-1', data: { amount: 21 } });
    const run = await platform.waitForRun(runId, 60_000);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.output, { doubled: 42, who: 'ada' });
  });
});
