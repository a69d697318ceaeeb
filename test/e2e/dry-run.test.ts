import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LIFECYCLE_BATCH_EVENTS, historyCounts } from '../support/history.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Dry runs against the real platform (issue 15): POST /v1/definitions/dry-run runs a definition
 * through the real interpreter with every effect simulated. The loopback HTTP server below is
 * what the definitions' http-fetch and notify-webhook steps point at: it must receive nothing,
 * and no run may appear in Temporal.
 */

describe('dry run', () => {
  let platform: TestPlatform;
  let remote: LoopbackHttp;

  before(async () => {
    remote = await startLoopbackHttp({
      '/orders': (_req, res) => json(res, 200, { total: 1 }),
      '/hook': (_req, res) => json(res, 200, {}),
    });
    platform = await startTestPlatform({ database: 'pglite', env: { HTTP_FETCH_ALLOWED_HOSTS: remote.host, WEBHOOK_ALLOWED_HOSTS: remote.host } });
  });

  after(async () => {
    await platform?.stop();
    await remote?.close();
  });

  const order = () => ({
    name: 'order-flow',
    version: '1.0.0',
    steps: [
      { id: 'fetch', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/orders` }, outputs: ['status', 'data'] },
      {
        id: 'big',
        type: 'conditional',
        condition: '${fetch.data.total > 100}',
        then: [
          { id: 'sign-off', type: 'approval', approvers: { groups: ['finance'] }, quorum: 1, timeout: 3600, on_timeout: 'reject', on_reject: 'continue' },
          { id: 'cool-off', type: 'wait', duration: '2h' },
        ],
        else: [{ id: 'small', type: 'set', values: { tier: 'small' } }],
      },
      { id: 'lines', type: 'for_each', items: '${fetch.data.lines}', steps: [{ id: 'line', type: 'skill', skill: 'transform', inputs: { expression: 'x * 2', data: { x: '${item}' } } }] },
      { id: 'paid', type: 'wait_for_event', event: 'payment', timeout: 86400, on_timeout: 'continue' },
      { id: 'notify', type: 'skill', skill: 'notify-webhook', inputs: { url: `${remote.url}/hook`, message: { total: '${fetch.data.total}' } } },
    ],
    output: { total: '${fetch.data.total}', paid: '${paid}' },
  });

  test('an inline definition runs every step kind in simulated time, and nothing real is touched', async () => {
    const answer = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: {
        definition: order(),
        input: {},
        mocks: {
          fetch: [
            { error: { type: 'NetworkError', message: 'connection reset' }, durationSeconds: 2 },
            { output: { status: 200, ok: true, headers: {}, data: { total: 250, lines: [1, 2, 3] } }, durationSeconds: 1 },
          ],
        },
        approvals: { 'sign-off': [{ decision: 'approve', by: 'dave', afterSeconds: 60 }, { decision: 'approve', by: 'bob', afterSeconds: 600, comment: 'ok' }] },
        events: [{ name: 'payment', payload: { amount: 250 }, afterSeconds: 3 * 3600 }],
      },
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const report = answer.body;
    assert.equal(report.status, 'completed', JSON.stringify(report));
    assert.deepEqual(report.output, { total: 250, paid: { amount: 250 } });
    assert.deepEqual(report.definition, { name: 'order-flow', version: '1.0.0', source: 'inline' });

    // The path taken: the then-branch, its approval and cool-off, three items, the event, notify.
    assert.deepEqual(
      report.path.map((p: { step: string }) => p.step),
      ['fetch', 'big', 'sign-off', 'cool-off', 'lines', 'line', 'line', 'line', 'paid', 'notify'],
    );
    const steps = Object.fromEntries(report.steps.map((s: { id: string }) => [s.id, s]));
    assert.equal(steps.fetch.attempts, 2, 'the NetworkError was retried under the default policy');
    assert.equal(steps.fetch.source, 'mock');
    assert.deepEqual(steps.fetch.input, { url: `${remote.url}/orders` });
    assert.equal(steps.big.branch, 'then');
    assert.equal(steps.small.status, 'not reached');
    assert.equal(steps.lines.items, 3);
    assert.equal(steps.lines.output.length, 3);
    assert.equal(steps.line.calls, 3);
    // transform and notify-webhook were not mocked: their outputs are samples of the registered output schemas.
    assert.equal(steps.notify.source, 'generated');
    assert.deepEqual(Object.keys(steps.notify.output).sort(), ['delivered', 'status']);
    assert.deepEqual(steps.paid.output, { amount: 250 });

    // The approval: dave is no approver of the finance group and is refused; bob approves.
    const approval = report.approvals[0];
    assert.equal(approval.status, 'approved');
    assert.deepEqual(approval.decisions.map((d: { principal: string }) => d.principal), ['bob']);
    assert.equal(approval.refused[0].principal, 'dave');
    assert.equal(approval.refused[0].code, 'forbidden');

    // Simulated time: 2 s failed attempt + 1 s backoff + 1 s attempt, 600 s to bob, 2 h cool-off, then the 3 h event.
    assert.equal(report.simulatedSeconds, 3 * 3600);
    assert.ok(report.predicted.events > 30, JSON.stringify(report.predicted));
    assert.equal(report.predicted.runs, 1);
    assert.ok(report.predicted.payloadBytes > 0);

    // Nothing real: the loopback API saw no request and Temporal has no run.
    assert.equal(remote.requests.length, 0, JSON.stringify(remote.requests));
    const runs = await platform.api('/v1/runs');
    assert.equal(runs.status, 200);
    assert.equal(runs.body.runs.length, 0, JSON.stringify(runs.body));
  });

  test('scripted failures: a rejection, an exhausted retry with the custom policy, an approval left to time out', async () => {
    const definition = order();
    const rejected = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: {
        definition: { ...definition, steps: definition.steps.map((s) => (s.id === 'big' ? { ...s, then: [{ ...(s.then as object[])[0], on_reject: 'fail' }] } : s)) },
        mocks: { fetch: { output: { status: 200, ok: true, headers: {}, data: { total: 500, lines: [] } } } },
        approvals: { 'sign-off': { decision: 'reject', by: 'carol', comment: 'too big' } },
      },
    });
    assert.equal(rejected.status, 200, JSON.stringify(rejected.body));
    assert.equal(rejected.body.status, 'failed');
    assert.equal(rejected.body.error.type, 'ApprovalRejected');
    assert.match(rejected.body.error.message, /sign-off/);
    assert.deepEqual(rejected.body.path.map((p: { step: string }) => p.step), ['fetch', 'big', 'sign-off']);

    const exhausted = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: { definition, mocks: { fetch: { error: { type: 'HttpError', message: '503 from upstream' } } } },
    });
    assert.equal(exhausted.body.status, 'failed');
    assert.equal(exhausted.body.error.type, 'HttpError');
    // http-fetch's registered retry policy (5 attempts, 1 s doubling) applies, as in a real run.
    assert.equal(exhausted.body.calls[0].attempts, 5);
    assert.equal(exhausted.body.simulatedSeconds, 1 + 2 + 4 + 8);

    const timedOut = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: {
        definition,
        mocks: { fetch: { output: { status: 200, ok: true, headers: {}, data: { total: 500, lines: [] } } } },
        approvals: { 'sign-off': { decision: 'timeout' } },
      },
    });
    assert.equal(timedOut.body.status, 'completed', JSON.stringify(timedOut.body));
    assert.equal(timedOut.body.approvals[0].status, 'rejected');
    assert.equal(timedOut.body.approvals[0].timedOut, true);
    // The 1 h approval deadline, the 2 h cool-off, then the 24 h wait for a payment that never came.
    assert.equal(timedOut.body.simulatedSeconds, 3600 + 7200 + 86400);
    assert.equal(timedOut.body.output.paid, null);
    assert.equal(remote.requests.length, 0);
  });

  test('a run that waits for something nobody scripted is reported blocked, with what it waits for', async () => {
    const answer = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: { definition: { name: 'stuck', version: '1.0.0', steps: [{ id: 'hold', type: 'wait_for_event', event: 'go' }] } },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'blocked');
    assert.match(answer.body.blocked.waitingFor[0], /event "go" for step hold/);
  });

  test('a registered version by name, and its predicted history against a real run of it', async (t) => {
    const definition = {
      name: 'predict-me',
      version: '1.0.0',
      steps: [
        { id: 'a', type: 'skill', skill: 'echo', inputs: { n: '${input.n}' } },
        { id: 'pause', type: 'wait', duration: 1 },
        { id: 'b', type: 'skill', skill: 'transform', inputs: { expression: 'n', data: { n: '${a.n}' } } },
        { id: 'many', type: 'for_each', items: '${input.items}', steps: [{ id: 'each', type: 'skill', skill: 'echo', inputs: { i: '${item}' } }] },
      ],
      output: { value: '${b.value}' },
    };
    const created = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const input = { n: 7, items: [1, 2, 3, 4] };
    const dry = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: { name: 'predict-me', version: '1.0.0', input, mocks: { a: { output: { n: 7 } }, b: { output: { value: 7 } }, each: { output: { i: 1 } } } },
    });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.definition.source, 'registered');
    assert.deepEqual(dry.body.output, { value: 7 });
    const latest = await platform.api('/v1/definitions/dry-run', { method: 'POST', json: { name: 'predict-me', input, mocks: { a: { output: { n: 7 } } } } });
    assert.equal(latest.body.definition.version, '1.0.0');

    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'predict-me', input } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const run = await platform.waitForRun(started.body.runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.output, dry.body.output);
    const predicted = dry.body.predicted.events;
    // The prediction counts one lifecycle-event batch (no slow wait); a slow run on a loaded
    // machine flushes more of them, each 6 events: those extra ones are not the path's cost.
    const history = await historyCounts(started.body.runId, platform.config.TEMPORAL_NAMESPACE);
    assert.equal(history.events, run.historyLength);
    const measured = history.events - (history.lifecycleBatches - 1) * LIFECYCLE_BATCH_EVENTS;
    t.diagnostic(`predicted ${predicted} history events; the real run has ${history.events} (${history.lifecycleBatches} lifecycle batches), ${measured} with one`);
    assert.ok(Math.abs(predicted - measured) / measured <= 0.1, `predicted ${predicted} events, the real run has ${measured} with one lifecycle batch (${history.events} in all)`);
  });

  test('a sub_workflow step dry-runs its pinned child in the same simulated time, unless it is mocked', async () => {
    const child = {
      name: 'dry-child',
      version: '1.0.0',
      steps: [
        { id: 'nap', type: 'wait', duration: 30 },
        { id: 'inner', type: 'skill', skill: 'echo', inputs: { got: '${input.n}' } },
      ],
      output: { got: '${inner.got}' },
    };
    assert.equal((await platform.api('/v1/definitions', { method: 'POST', json: child })).status, 201);
    const parent = {
      name: 'dry-parent',
      version: '1.0.0',
      steps: [{ id: 'call', type: 'sub_workflow', definition: 'dry-child', version: '1.0.0', inputs: { n: 3 } }],
      output: { child: '${call}' },
    };
    const simulated = await platform.api('/v1/definitions/dry-run', { method: 'POST', json: { definition: parent, mocks: { inner: { output: { got: 3 } } } } });
    assert.equal(simulated.status, 200, JSON.stringify(simulated.body));
    assert.equal(simulated.body.status, 'completed', JSON.stringify(simulated.body));
    assert.deepEqual(simulated.body.output, { child: { got: 3 } });
    assert.deepEqual(simulated.body.path.map((p: { run: string; step: string }) => `${p.run}:${p.step}`), [':call', 'call:nap', 'call:inner']);
    assert.equal(simulated.body.simulatedSeconds, 30);
    assert.equal(simulated.body.calls.find((c: { stepId: string }) => c.stepId === 'inner').stepPath, 'call/inner');

    const mocked = await platform.api('/v1/definitions/dry-run', { method: 'POST', json: { definition: parent, mocks: { call: { error: { type: 'Boom', message: 'child broke' } } } } });
    assert.equal(mocked.body.status, 'failed');
    assert.equal(mocked.body.error.type, 'ChildRunFailed');
    assert.match(mocked.body.error.message, /child broke/);
  });

  test('bad requests are 4xx problems with the path at fault', async () => {
    const both = await platform.api('/v1/definitions/dry-run', { method: 'POST', json: { name: 'x', definition: order() } });
    assert.equal(both.status, 400);
    assert.equal(both.body.errors[0].path, '/definition');

    const unknown = await platform.api('/v1/definitions/dry-run', { method: 'POST', json: { name: 'no-such' } });
    assert.equal(unknown.status, 404);

    const invalid = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: { definition: { name: 'bad', version: '1.0.0', steps: [{ id: 'x', type: 'skill', skill: 'no-such-skill' }] } },
    });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errors[0].path, '/definition/steps/0/skill');

    const badMocks = await platform.api('/v1/definitions/dry-run', {
      method: 'POST',
      json: { definition: order(), mocks: { nope: { output: 1 }, paid: { output: 1 } }, approvals: { fetch: { decision: 'approve' } } },
    });
    assert.equal(badMocks.status, 400);
    assert.deepEqual(badMocks.body.errors.map((e: { path: string }) => e.path), ['/mocks/nope', '/mocks/paid', '/approvals/fetch']);
    assert.match(badMocks.body.errors[1].message, /wait_for_event step: deliver its event under "events"/);

    const badShape = await platform.api('/v1/definitions/dry-run', { method: 'POST', json: { definition: order(), mocks: { fetch: { outptu: 1 } } } });
    assert.equal(badShape.status, 400);
    assert.match(badShape.body.errors[0].path, /^\/mocks\/fetch/);

    const approverOnly = await platform.api('/v1/definitions/dry-run', { method: 'POST', key: KEYS.approver, json: { definition: order() } });
    assert.equal(approverOnly.status, 403);
    assert.equal(remote.requests.length, 0);
  });
});
