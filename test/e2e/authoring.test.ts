import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { LIFECYCLE_BATCH_EVENTS, historyCounts } from '../support/history.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { parseFlowchart } from '../support/mermaid.ts';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Authoring against the real platform (issue 15): declared outputs and reads of them checked at
 * registration, and the API refusing what the lane's workers cannot run. Only the HTTP API that
 * http-fetch calls is a loopback double.
 */

/** A skill the API's catalog has but the workers were deployed without. */
const apiOnlySkill = defineSkill({
  name: 'enrich',
  description: 'Only the API knows this one.',
  input: z.record(z.string(), z.unknown()),
  output: z.object({ score: z.number() }),
  sideEffects: false,
  async handler() {
    return { score: 1 };
  },
});

describe('authoring: outputs and catalog agreement', () => {
  let platform: TestPlatform;
  let remote: LoopbackHttp;

  before(async () => {
    remote = await startLoopbackHttp({ '/status': (_req, res) => json(res, 200, { healthy: true }) });
    platform = await startTestPlatform({
      database: 'pglite',
      env: { HTTP_FETCH_ALLOWED_HOSTS: remote.host },
      apiOnlyCatalog: { skills: [apiOnlySkill] },
    });
  });

  after(async () => {
    await platform?.stop();
    await remote?.close();
  });

  const fetchStatus = (outputs: string[]) => ({
    name: 'check-status',
    version: '1.0.0',
    steps: [
      { id: 'fetch', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/status` }, outputs },
      { id: 'report', type: 'skill', skill: 'echo', inputs: { code: '${fetch.status}', healthy: '${fetch.data.healthy}' } },
    ],
  });

  test("the issue's example: outputs [status, body] on http-fetch is refused at registration with the fields that exist", async () => {
    const refused = await platform.api('/v1/definitions', { method: 'POST', json: fetchStatus(['status', 'body']) });
    assert.equal(refused.status, 400);
    assert.deepEqual(
      refused.body.errors.map((e: { path: string }) => e.path),
      ['/steps/0/outputs/1'],
    );
    assert.match(refused.body.errors[0].message, /declares output "body", but skill "http-fetch" returns no such field; its output has: status, ok, headers, data/);
    const validated = await platform.api('/v1/definitions/validate', { method: 'POST', json: fetchStatus(['status', 'body']) });
    assert.equal(validated.body.valid, false);

    // Reading a field that does not exist is refused the same way.
    const base = fetchStatus(['status']);
    const reads = { ...base, steps: [base.steps[0], { id: 'report', type: 'skill', skill: 'echo', inputs: { body: '${fetch.body}' } }] };
    const readRefused = await platform.api('/v1/definitions', { method: 'POST', json: reads });
    assert.equal(readRefused.status, 400);
    assert.equal(readRefused.body.errors[0].path, '/steps/1/inputs/body');
    assert.match(readRefused.body.errors[0].message, /step "fetch": skill "http-fetch" returns no field "body"/);
  });

  test('with the fields that exist, it registers and the run gets what was declared', async () => {
    const created = await platform.api('/v1/definitions', { method: 'POST', json: fetchStatus(['status', 'data']) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'check-status', input: {} } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const run = await platform.waitForRun(started.body.runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.steps.find((s: { id: string }) => s.id === 'report').output, { code: 200, healthy: true });
  });

  test('a skill the API knows but the lane workers lack is refused at registration, naming the lane and what its workers run', async () => {
    const definition = { name: 'needs-enrich', version: '1.0.0', steps: [{ id: 'score', type: 'skill', skill: 'enrich', inputs: {} }] };
    const refused = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.equal(refused.status, 400);
    const [problem] = refused.body.errors;
    assert.equal(problem.path, '/steps/0/skill');
    assert.match(problem.message, new RegExp(`skill "enrich" is in the API's catalog, but the workers of lane "${platform.lanes[0]}" do not run it`));
    assert.match(problem.message, /echo, http-fetch/);
    const onOtherLane = await platform.api('/v1/definitions/validate', { method: 'POST', json: { ...definition, lane: platform.lanes[1] } });
    assert.equal(onOtherLane.body.valid, false);
    assert.match(onOtherLane.body.errors[0].message, new RegExp(`lane "${platform.lanes[1]}"`));
  });

  test('GET .../graph answers a Mermaid flowchart of a registered version, and of a run with each step coloured by its status', async () => {
    const definition = {
      name: 'graph-me',
      version: '1.0.0',
      steps: [
        { id: 'fetch', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/status` } },
        {
          id: 'healthy',
          type: 'conditional',
          condition: 'fetch.data.healthy == true',
          then: [{ id: 'fine', type: 'set', values: { verdict: 'ok' } }],
          else: [{ id: 'page', type: 'skill', skill: 'echo', inputs: { text: 'down' } }],
        },
      ],
    };
    assert.equal((await platform.api('/v1/definitions', { method: 'POST', json: definition })).status, 201);
    const graph = await platform.api('/v1/definitions/graph-me/versions/1.0.0/graph');
    assert.equal(graph.status, 200);
    assert.equal(graph.body.format, 'mermaid');
    const chart = await parseFlowchart(graph.body.mermaid);
    assert.equal(chart.vertices.get(graph.body.nodes.healthy)?.type, 'diamond');
    assert.deepEqual(
      chart.edges.filter((e) => e.start === graph.body.nodes.healthy).map((e) => e.text).sort(),
      ['else', 'then'],
    );
    assert.equal((await platform.api('/v1/definitions/graph-me/versions/9.9.9/graph')).status, 404);

    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'graph-me', input: {} } });
    const run = await platform.waitForRun(started.body.runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const runGraph = await platform.api(`/v1/runs/${encodeURIComponent(started.body.runId)}/graph`);
    assert.equal(runGraph.status, 200, JSON.stringify(runGraph.body));
    assert.deepEqual(runGraph.body.steps, { fetch: 'completed', healthy: 'completed', fine: 'completed' });
    const coloured = await parseFlowchart(runGraph.body.mermaid);
    assert.deepEqual(coloured.vertices.get(runGraph.body.nodes.fetch)?.classes, ['completed']);
    assert.deepEqual(coloured.vertices.get(runGraph.body.nodes.page)?.classes, []);
    assert.equal((await platform.api('/v1/runs/no-such-run/graph')).status, 404);
  });

  test('registration and validate report the history estimate; a run lands within ±10% of it; what must exceed the limit is refused', async () => {
    const steps = Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, type: 'skill', skill: 'echo', inputs: { i } }));
    const definition = { name: 'estimated', version: '1.0.0', steps };
    const validated = await platform.api('/v1/definitions/validate', { method: 'POST', json: definition });
    assert.equal(validated.body.valid, true);
    assert.equal(validated.body.estimate.limits.maxEvents, 51_200);
    const created = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.equal(created.status, 201);
    const { estimate } = created.body;
    assert.deepEqual(estimate, validated.body.estimate);
    assert.equal(estimate.steps.length, 10);
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'estimated', input: {} } });
    const run = await platform.waitForRun(started.body.runId);
    assert.equal(run.status, 'completed');
    // The estimate counts one lifecycle-event batch (no slow wait); a slow run on a loaded machine
    // flushes more of them (6 events each), which are not the definition's cost.
    const history = await historyCounts(started.body.runId, platform.config.TEMPORAL_NAMESPACE);
    const measured = history.events - (history.lifecycleBatches - 1) * LIFECYCLE_BATCH_EVENTS;
    const error = Math.abs(estimate.typical.events - measured) / measured;
    assert.ok(error <= 0.1, `estimated ${estimate.typical.events} events, the run has ${measured} with one lifecycle batch (${history.events} in all)`);

    const fan = {
      name: 'too-wide',
      version: '1.0.0',
      steps: [{ id: 'fan', type: 'parallel', steps: [{ id: 'each', type: 'for_each', items: Array.from({ length: 9000 }, (_, i) => i), steps: [{ id: 'one', type: 'skill', skill: 'echo' }] }] }],
    };
    const refused = await platform.api('/v1/definitions', { method: 'POST', json: fan });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.errors[0].path, '/steps/0');
    assert.match(refused.body.errors[0].message, /step "fan" needs at least \d+ history events with no point where the run can continue as new/);
  });
});
