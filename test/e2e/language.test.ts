import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';
import { seedCatalog, type SeedCatalog } from '../support/seed-catalog.ts';
import { runUuid } from '../../interpreter/expressions.ts';

/**
 * Every step kind of the definition language, end to end: registered through the REST API, run
 * by real workers on the real dev server, observed through GET /v1/runs/{id} and the Temporal
 * history. The seed documents' examples run as written, with their skills, agents and
 * integrations registered under their names (test/support/seed-catalog.ts).
 */
describe('definition language end to end', () => {
  let platform: TestPlatform;
  let remote: LoopbackHttp;
  let seeds: SeedCatalog;
  let client: Client;

  before(async () => {
    remote = await startLoopbackHttp({ '/data': (_req, res) => json(res, 200, { items: [3, 1, 2] }) });
    seeds = seedCatalog();
    platform = await startTestPlatform({ database: 'postgres', env: { HTTP_FETCH_ALLOWED_HOSTS: remote.host }, catalog: seeds.catalog });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    await client?.connection.close();
    await platform?.stop();
    await remote?.close();
  });

  async function register(definition: unknown): Promise<void> {
    const { status, body } = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.ok(status === 201 || status === 200, `register: ${status} ${JSON.stringify(body)}`);
  }

  async function start(definition: string, input: unknown = {}): Promise<string> {
    const { status, body } = await platform.api('/v1/runs', { method: 'POST', json: { definition, input } });
    assert.equal(status, 201, JSON.stringify(body));
    return body.runId as string;
  }

  async function run(definition: { name: string; [key: string]: unknown }, input: unknown = {}, timeoutMs = 30_000): Promise<any> {
    await register(definition);
    return platform.waitForRun(await start(definition.name, input), timeoutMs);
  }

  const step = (view: any, id: string) => {
    const found = (view.steps as any[]).find((s) => s.id === id);
    assert.ok(found, `step ${id} is in the run view: ${JSON.stringify(view.steps)}`);
    return found;
  };

  const callsFor = (runId: string) => seeds.calls.filter((c) => c.idempotencyKey.startsWith(`${runId}/`));

  test("seed 002's steps run as written: skill, agent, parallel, conditional, context, triggers, error handling", async () => {
    const definition = {
      name: 'seed-002-workflow',
      version: '1.0.0',
      description: 'Workflow description',
      triggers: [
        { type: 'manual', description: 'User-initiated' },
        { type: 'schedule', cron: '0 9 * * *', timezone: 'UTC' },
      ],
      context: { readonly: { environment: 'production', user: 'alice' }, mutable: { counter: 0 } },
      steps: [
        // The seed's URL is https://api.example.com/data; there is no internet here, so it points at a loopback server.
        { id: 'fetch-data', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/data` }, outputs: ['data'], async: false, timeout: 30 },
        {
          id: 'analyze',
          type: 'agent',
          agent: 'data-analyzer',
          inputs: { data: 'fetch-data.data' },
          outputs: ['analysis'],
          async: true,
          guardrails: { max_iterations: 10, allowed_tools: ['fs_read', 'execute_bash'] },
        },
        {
          id: 'parallel-tasks',
          type: 'parallel',
          steps: [
            { id: 'task1', type: 'skill', skill: 'process-a' },
            { id: 'task2', type: 'skill', skill: 'process-b' },
          ],
          wait_for: 'all',
        },
        {
          id: 'conditional',
          type: 'conditional',
          condition: 'fetch-data.status == 200',
          then: [{ id: 'success', type: 'skill', skill: 'process' }],
          else: [{ id: 'failure', type: 'skill', skill: 'log-error' }],
        },
      ],
      error_handling: {
        default: 'halt',
        per_step: {
          'fetch-data': { strategy: 'retry', max_attempts: 3, backoff: 'exponential' },
          analyze: { strategy: 'skip', continue_on_error: true },
        },
        rollback: { enabled: true, steps: ['cleanup'] },
      },
      resource_limits: { max_memory_mb: 512, max_cpu_percent: 50, max_execution_time: 3600, max_concurrent_steps: 5 },
    };
    const view = await run(definition);
    assert.equal(view.status, 'completed', JSON.stringify(view));
    assert.deepEqual(step(view, 'fetch-data').output.data, { items: [3, 1, 2] });
    assert.match(step(view, 'analyze').output.analysis, /"items":\[3,1,2\]/);
    assert.deepEqual(step(view, 'parallel-tasks').output, { task1: { processed: 'a', input: {} }, task2: { processed: 'b', input: {} } });
    assert.equal(step(view, 'conditional').branch, 'then');
    assert.equal(step(view, 'success').status, 'completed');
    assert.equal(view.steps.some((s: any) => s.id === 'failure'), false, 'the else branch never ran');
    assert.deepEqual(view.output, { ok: true });
    // The agent ran on the lane's agents queue with the step's guardrails in its metadata.
    const history = await client.workflow.getHandle(view.runId).fetchHistory();
    // (The run's lifecycle-event writes go to the lane's platform queue; they are not steps.)
    const queues = (history.events ?? [])
      .filter((e) => e.activityTaskScheduledEventAttributes && e.activityTaskScheduledEventAttributes.activityType?.name !== 'recordRunEvents')
      .map((e) => [e.activityTaskScheduledEventAttributes?.activityType?.name, e.activityTaskScheduledEventAttributes?.taskQueue?.name]);
    assert.ok((history.events ?? []).some((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name === `${platform.lanes[0]}.platform`));
    assert.deepEqual(queues, [
      ['http-fetch', `${platform.lanes[0]}.skills`],
      ['data-analyzer', `${platform.lanes[0]}.agents`],
      ['process-a', `${platform.lanes[0]}.skills`],
      ['process-b', `${platform.lanes[0]}.skills`],
      ['process', `${platform.lanes[0]}.skills`],
    ]);
  });

  test("seed 002's loop as written never changes counter: it stops at max_iterations and fails visibly", async () => {
    const view = await run({
      name: 'seed-002-loop',
      version: '1.0.0',
      context: { mutable: { counter: 0 } },
      steps: [{ id: 'loop', type: 'loop', condition: 'counter < 5', steps: [{ id: 'process', type: 'skill', skill: 'process-item' }], max_iterations: 10 }],
    });
    assert.equal(view.status, 'failed');
    assert.equal(view.error.type, 'LoopLimitExceeded');
    assert.equal(view.error.step, 'loop');
    assert.match(view.error.message, /max_iterations \(10\).*counter < 5/);
    assert.equal(step(view, 'loop').iteration, 10);
    assert.equal(callsFor(view.runId).length, 10);
  });

  test('the same loop with a set step ends when its condition does, and iterations have their own idempotency keys', async () => {
    const view = await run({
      name: 'loop-with-set',
      version: '1.0.0',
      context: { mutable: { counter: 0 } },
      steps: [
        {
          id: 'loop',
          type: 'loop',
          condition: 'counter < 5',
          max_iterations: 10,
          steps: [
            { id: 'process', type: 'skill', skill: 'process-item', inputs: { n: '${iteration}' } },
            { id: 'bump', type: 'set', values: { counter: '${counter + 1}' } },
          ],
        },
      ],
      output: { counter: '${counter}', last: '${steps.process.output.item.n}' },
    });
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { counter: 5, last: 4 });
    assert.deepEqual(view.variables, { counter: 5 });
    assert.deepEqual(
      callsFor(view.runId).map((c) => c.idempotencyKey),
      [0, 1, 2, 3, 4].map((i) => `${view.runId}/loop[${i}]/process`),
    );
  });

  test("seed 004 runs as written: wrapper, signal trigger, agent_ref from the signal, directive with a ${...} payload", async () => {
    const definition = {
      workflow: {
        name: 'Forum new-thread triage',
        version: '1.0.0',
        trigger: { signal: 'forum.thread.created' },
        steps: [
          { id: 'summarize', type: 'agent', agent_ref: { slug: 'forum_summary_agent' }, input: { from_signal: true } },
          {
            id: 'post_summary',
            type: 'directive',
            directive: 'forum.post.create',
            payload: { thread_id: '${signal.subject.id}', content: '${steps.summarize.output.summary}' },
          },
        ],
      },
    };
    await register(definition);
    const runId = await start('Forum new-thread triage', { subject: { id: 'thread-7', title: 'Hello' } });
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { post_id: 'post-thread-7', content: 'summary of Hello', idempotencyKey: `${runId}/post_summary` });
    const directive = callsFor(runId).find((c) => c.name === 'forum.post.create');
    assert.deepEqual(directive?.input, { thread_id: 'thread-7', content: 'summary of Hello' });
  });

  test('for_each maps in order under a concurrency cap; switch, set, if and succeed shape the output', async () => {
    const view = await run(
      {
        name: 'map-and-route',
        version: '1.0.0',
        context: { mutable: { total: 0 } },
        steps: [
          {
            id: 'each',
            type: 'for_each',
            items: '${input.orders}',
            max_concurrency: 3,
            steps: [
              { id: 'price', type: 'skill', skill: 'echo', inputs: { id: '${item.id}', amount: '${item.qty * 10}', position: '${index}' } },
            ],
          },
          { id: 'sum', type: 'set', values: { total: '${sum(steps.each.output|map_amounts)}' }, if: 'false' },
          { id: 'sum2', type: 'set', values: { total: '${steps.each.output[0].amount + steps.each.output[1].amount + steps.each.output[2].amount}' } },
          {
            id: 'route',
            type: 'switch',
            cases: [
              { when: 'total > 1000', steps: [{ id: 'big', type: 'set', values: { tier: 'big' } }] },
              { when: 'total > 50', steps: [{ id: 'medium', type: 'set', values: { tier: 'medium' } }] },
            ],
            default: [{ id: 'small', type: 'set', values: { tier: 'small' } }],
          },
          { id: 'done', type: 'succeed', output: { tier: '${tier}', total: '${total}', ids: '${steps.each.output|pluck_ids}' }, if: 'false' },
          { id: 'finish', type: 'succeed', output: { tier: '${tier}', total: '${total}', first: '${steps.each.output[0].id}' } },
        ],
      },
      { orders: [{ id: 'a', qty: 1 }, { id: 'b', qty: 5 }, { id: 'c', qty: 2 }] },
    ).catch((error: unknown) => error);
    // Unknown transforms are refused at registration, with the step id and the path.
    assert.ok(view instanceof Error, 'registration must fail');
    assert.match(view.message, /register: 400/);
    assert.match(view.message, /unknown function \\"map_amounts\\"/);
    assert.match(view.message, /"stepId":"sum"/);
    assert.match(view.message, /"path":"\/steps\/1\/values\/total"/);

    const fixed = await run(
      {
        name: 'map-and-route-fixed',
        version: '1.0.0',
        context: { mutable: { total: 0 } },
        steps: [
          {
            id: 'each',
            type: 'for_each',
            items: '${input.orders}',
            max_concurrency: 3,
            steps: [
              { id: 'price', type: 'skill', skill: 'echo', inputs: { id: '${item.id}', amount: '${item.qty * 10}', position: '${index}' } },
            ],
          },
          { id: 'sum', type: 'set', values: { total: '${steps.each.output[0].amount + steps.each.output[1].amount + steps.each.output[2].amount}' } },
          {
            id: 'route',
            type: 'switch',
            cases: [
              { when: 'total > 1000', steps: [{ id: 'big', type: 'set', values: { tier: 'big' } }] },
              { when: 'total > 50', steps: [{ id: 'medium', type: 'set', values: { tier: 'medium' } }] },
            ],
            default: [{ id: 'small', type: 'set', values: { tier: 'small' } }],
          },
          { id: 'skipped-step', type: 'skill', skill: 'process', if: 'tier == "small"' },
          { id: 'finish', type: 'succeed', output: { tier: '${tier}', total: '${total}', first: '${steps.each.output[0].id}' } },
        ],
      },
      { orders: [{ id: 'a', qty: 1 }, { id: 'b', qty: 5 }, { id: 'c', qty: 2 }] },
    );
    assert.equal(fixed.status, 'completed', JSON.stringify(fixed.error));
    assert.deepEqual(step(fixed, 'each').output, [
      { id: 'a', amount: 10, position: 0 },
      { id: 'b', amount: 50, position: 1 },
      { id: 'c', amount: 20, position: 2 },
    ]);
    assert.equal(step(fixed, 'route').branch, 'case:1');
    assert.equal(step(fixed, 'skipped-step').status, 'skipped');
    assert.deepEqual(fixed.output, { tier: 'medium', total: 80, first: 'a' });
  });

  test('parallel wait_for any cancels the slower branch; fail ends the run with its message and type', async () => {
    const view = await run({
      name: 'race',
      version: '1.0.0',
      steps: [
        {
          id: 'race',
          type: 'parallel',
          wait_for: 'any',
          steps: [
            { id: 'fast', type: 'skill', skill: 'echo', inputs: { winner: true } },
            { id: 'slow-branch', type: 'skill', skill: 'slow', inputs: { ms: 20000 } },
          ],
        },
        { id: 'check', type: 'fail', error: 'winner was ${steps.race.output.fast.winner}', error_type: 'RaceOver', if: 'steps.race.output.fast.winner' },
      ],
    });
    assert.equal(view.status, 'failed');
    assert.deepEqual(step(view, 'race').output, { fast: { winner: true } });
    assert.equal(step(view, 'slow-branch').status, 'cancelled');
    assert.deepEqual(
      { type: view.error.type, step: view.error.step, message: view.error.message },
      { type: 'RaceOver', step: 'check', message: 'step "check" failed: winner was true' },
    );
  });

  // #19 B2: branches finishing in the same workflow task all ran and were all kept. Set branches
  // always finish together; echo branches do when their results reach the worker together, which
  // three concurrent runs make likely but cannot force: every run must show exactly one winner.
  test('parallel wait_for any keeps exactly one winner of three set branches and of three echo branches', async () => {
    const definition = {
      name: 'same-task-race',
      version: '1.0.0',
      context: { mutable: { winner: null } },
      steps: [
        { id: 'sets', type: 'parallel', wait_for: 'any', steps: ['a', 'b', 'c'].map((id) => ({ id: `set-${id}`, type: 'set', values: { winner: id } })) },
        { id: 'echoes', type: 'parallel', wait_for: 'any', steps: ['a', 'b', 'c'].map((id) => ({ id: `echo-${id}`, type: 'skill', skill: 'echo', inputs: { v: id } })) },
      ],
      output: { sets: '${sets}', winner: '${winner}', echoes: '${echoes}' },
    };
    await register(definition);
    const runIds = await Promise.all([1, 2, 3].map(() => start(definition.name)));
    for (const runId of runIds) {
      const view = await platform.waitForRun(runId, 60_000);
      assert.equal(view.status, 'completed', JSON.stringify(view.error));
      assert.deepEqual(view.output.sets, { 'set-a': { winner: 'a' } }, 'the first set branch wins alone');
      assert.equal(view.output.winner, 'a', 'the losing set branches never wrote');
      const echoWinners = Object.keys(view.output.echoes);
      assert.equal(echoWinners.length, 1, `one echo winner: ${JSON.stringify(view.output.echoes)}`);
      const [echoWinner] = echoWinners;
      assert.deepEqual(view.output.echoes[echoWinner as string], { v: (echoWinner as string).slice('echo-'.length) });
      const statuses = (prefix: string) => ['a', 'b', 'c'].map((id) => step(view, `${prefix}-${id}`).status);
      assert.deepEqual(statuses('set'), ['completed', 'cancelled', 'cancelled']);
      assert.deepEqual(
        statuses('echo').sort(),
        ['cancelled', 'cancelled', 'completed'],
        `only the winner completed: ${JSON.stringify(statuses('echo'))}`,
      );
      assert.equal(step(view, echoWinner as string).status, 'completed');
      // The new behaviour is gated with patched(): one patch marker in the run's history, besides
      // the one every new run records for decision proofs (approval-decision-proofs).
      const events = (await client.workflow.getHandle(runId).fetchHistory()).events ?? [];
      const patchIds = events
        .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
        .map((e) => Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) => (d.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString('utf8'))).join(' '));
      assert.equal(patchIds.filter((id) => !id.includes('approval-decision-proofs')).length, 1, `one patch marker of its own: ${JSON.stringify(patchIds)}`);
    }
  });

  // #19 B1: Jexl lexed "-" after a comma as subtraction, so these were refused at registration.
  test('negative numbers after a comma: function arguments, list items, transform arguments', async () => {
    const view = await run({
      name: 'negative-arguments',
      version: '1.0.0',
      steps: [{ id: 'noop', type: 'set', values: { unused: true } }],
      output: {
        sliced: '${slice(input.list, 0, -1)}',
        list: '${[1, -2, - 3]}',
        max: '${max(3, -4)}',
        piped: '${input.list|slice(-3, -1)}',
      },
    }, { list: [1, 2, 3] });
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { sliced: [1, 2], list: [1, -2, -3], max: 3, piped: [1, 2] });
  });

  test('uuid(), now() and base64 in the workflow sandbox: ids from the run id and a counter, the workflow clock, UTF-8 text', async () => {
    const before = Date.now();
    const view = await run({
      name: 'deterministic-functions',
      version: '1.0.0',
      steps: [
        { id: 'first', type: 'set', values: { a: '${uuid()}', at: '${now()}', token: '${base64Encode(input.user + ":" + input.pass)}' } },
        { id: 'pause', type: 'wait', duration: '1s' },
        { id: 'second', type: 'set', values: { b: '${uuid()}', after: '${now()}' } },
      ],
      output: { ids: ['${a}', '${b}'], at: '${at}', after: '${after}', token: '${token}', back: '${base64Decode(token)}' },
    }, { user: 'zoë', pass: 's3cret' });
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output.ids, [runUuid(view.runId, 0), runUuid(view.runId, 1)]);
    assert.equal(view.output.token, Buffer.from('zoë:s3cret').toString('base64'));
    assert.equal(view.output.back, 'zoë:s3cret');
    const [at, after] = [Date.parse(view.output.at), Date.parse(view.output.after)];
    assert.ok(at >= before - 1000 && after <= Date.now() + 1000, `${view.output.at} .. ${view.output.after} lies in the run`);
    assert.ok(after - at >= 1000, 'now() after the 1 s timer is at least 1 s later');
  });

  test('wait and wait_for_event: a timer, then a signal that passes the filter (non-matching ones are kept waiting)', async () => {
    await register({
      name: 'await-payment',
      version: '1.0.0',
      steps: [
        { id: 'pause', type: 'wait', duration: '1s' },
        { id: 'paid', type: 'wait_for_event', event: 'order.paid', filter: 'event.orderId == input.orderId', timeout: 60 },
        { id: 'maybe', type: 'wait_for_event', event: 'order.shipped', timeout: 1, on_timeout: 'continue' },
      ],
      output: { paid: '${steps.paid.output}', shipped: '${steps.maybe.output}' },
    });
    const runId = await start('await-payment', { orderId: 'o-42' });
    const handle = client.workflow.getHandle(runId);
    // Exactly what `temporal workflow signal --name order.paid --input '{"orderId":"o-41"}'` sends.
    await handle.signal('order.paid', { orderId: 'o-41', amount: 1 });
    await handle.signal('order.paid', { orderId: 'o-42', amount: 99 });
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { paid: { orderId: 'o-42', amount: 99 }, shipped: null });
    const history = await handle.fetchHistory();
    // The wait and the second step's timeout are timers. The matching signal arrived during the
    // wait, so the first wait_for_event found it buffered and never needed its timeout timer.
    assert.equal((history.events ?? []).filter((e) => e.timerStartedEventAttributes).length, 2);
    assert.equal((history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length, 2);
  });

  test('sub_workflow runs another registered definition as a child run pinned to its version', async () => {
    await register({ name: 'child-def', version: '2.0.0', steps: [{ id: 'hello', type: 'skill', skill: 'echo', inputs: { greeting: 'hi ${input.who}' } }] });
    const view = await run({
      name: 'parent-def',
      version: '1.0.0',
      steps: [{ id: 'call-child', type: 'sub_workflow', definition: 'child-def', version: '2.0.0', inputs: { who: '${input.name}' } }],
    }, { name: 'ada' });
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { greeting: 'hi ada' });
    const child = await client.workflow.getHandle(`${view.runId}/call-child`).describe();
    assert.equal(child.status.name, 'COMPLETED');
    assert.equal(child.parentExecution?.workflowId, view.runId);

    const missing = await platform.api('/v1/definitions/validate', {
      method: 'POST',
      json: { name: 'parent-2', version: '1.0.0', steps: [{ id: 'c', type: 'sub_workflow', definition: 'child-def', version: '9.9.9' }] },
    });
    assert.deepEqual(missing.body.errors, [{ path: '/steps/0/definition', message: 'no registered definition "child-def" version "9.9.9"', stepId: 'c' }]);
  });

  test('retry recovers a flaky step; custom handlers see the error; skip continues', async () => {
    const view = await run({
      name: 'error-policies',
      version: '1.0.0',
      steps: [
        { id: 'flaky', type: 'skill', skill: 'boom', inputs: { times: 2 } },
        { id: 'broken', type: 'skill', skill: 'boom', inputs: { nonRetryable: true } },
        { id: 'ignored', type: 'skill', skill: 'boom', inputs: { nonRetryable: true } },
      ],
      output: { flaky: '${steps.flaky.output}', broken: '${steps.broken.output}', ignored: '${steps.ignored.status}' },
      error_handling: {
        per_step: {
          flaky: { strategy: 'retry', max_attempts: 3, backoff: 'fixed', initial_interval: 0.1 },
          broken: { strategy: 'custom', handler: [{ id: 'explain', type: 'skill', skill: 'echo', inputs: { handled: '${error.type}: ${error.message}' } }] },
          ignored: { strategy: 'skip' },
        },
      },
    });
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { flaky: { recovered: true, attempts: 3 }, broken: { handled: 'Boom: boom #1' }, ignored: 'failed' });
    assert.equal(step(view, 'broken').handled, true);
    assert.equal(step(view, 'ignored').continued, true);
  });

  test('rollback runs compensations newest first, then the rollback steps, and the run fails with the original error', async () => {
    const view = await run({
      name: 'saga',
      version: '1.0.0',
      steps: [
        { id: 'reserve', type: 'skill', skill: 'record', inputs: { action: 'reserve' }, compensate: [{ id: 'release', type: 'skill', skill: 'record', inputs: { undo: '${steps.reserve.output.recorded.action}' } }] },
        { id: 'charge', type: 'skill', skill: 'record', inputs: { action: 'charge' }, compensate: [{ id: 'refund', type: 'skill', skill: 'record', inputs: { undo: 'charge', why: '${error.message}' } }] },
        { id: 'ship', type: 'skill', skill: 'boom', inputs: { nonRetryable: true } },
      ],
      error_handling: { rollback: { enabled: true, steps: ['cleanup'] } },
    });
    assert.equal(view.status, 'failed');
    assert.equal(view.error.step, 'ship');
    assert.match(view.error.message, /step "ship" failed.*boom #1.*rolled back/);
    assert.deepEqual(view.rollback, { status: 'completed', compensated: ['charge', 'reserve'], errors: [] });
    assert.deepEqual(
      callsFor(view.runId).map((c) => [c.name, c.input]),
      [
        ['record', { action: 'reserve' }],
        ['record', { action: 'charge' }],
        ['boom', { nonRetryable: true }],
        ['record', { undo: 'charge', why: 'boom #1' }],
        ['record', { undo: 'reserve' }],
        ['cleanup', {}],
      ],
    );
  });

  test('cancelling a run rolls it back too, where the cancellation cannot reach the compensation', async () => {
    await register({
      name: 'saga-cancel',
      version: '1.0.0',
      steps: [
        { id: 'reserve', type: 'skill', skill: 'record', inputs: { action: 'reserve' }, compensate: [{ id: 'release', type: 'skill', skill: 'record', inputs: { undo: 'reserve' } }] },
        { id: 'wait-long', type: 'skill', skill: 'slow', inputs: { ms: 60000 } },
      ],
      error_handling: { rollback: { enabled: true } },
    });
    const runId = await start('saga-cancel');
    for (let i = 0; i < 100 && !seeds.calls.some((c) => c.idempotencyKey === `${runId}/wait-long`); i += 1) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await platform.api(`/v1/runs/${runId}/cancel`, { method: 'POST' })).status, 202);
    const view = await platform.waitForRun(runId);
    assert.equal(view.status, 'cancelled');
    assert.deepEqual(view.rollback, { status: 'completed', compensated: ['reserve'], errors: [] });
    assert.deepEqual(callsFor(runId).at(-1)?.input, { undo: 'reserve' });
  });

  test('a 10,000-iteration loop of pure steps completes with no activity, only a short yield every 10,000 steps', async () => {
    const view = await run(
      {
        name: 'ten-thousand',
        version: '1.0.0',
        context: { mutable: { counter: 0, evens: 0 } },
        steps: [
          {
            id: 'count',
            type: 'loop',
            condition: 'counter < 10000',
            max_iterations: 10000,
            steps: [
              { id: 'inc', type: 'set', values: { counter: '${counter + 1}' } },
              { id: 'even', type: 'conditional', condition: 'counter % 2 == 0', then: [{ id: 'tally', type: 'set', values: { evens: '${evens + 1}' } }] },
            ],
          },
        ],
        output: { counter: '${counter}', evens: '${evens}' },
      },
      {},
      60_000,
    );
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.output, { counter: 10000, evens: 5000 });
    // Bookkeeping schedules nothing (invariant 5); the engine only ends the workflow task every
    // 10,000 pure steps (a 1 ms timer: TimerStarted, TimerFired and a workflow task, 5 events) so no
    // task runs long enough to trip Temporal's deadlock detector. 25,001 steps: 2 yields. The only
    // activity is the write of the run's lifecycle events (started, loop completed, completed):
    // one batch, or two when the yields made the first event older than the batching delay.
    const history = await client.workflow.getHandle(view.runId).fetchHistory();
    const events = history.events ?? [];
    const activities = events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name);
    assert.ok(activities.length >= 1 && activities.length <= 2 && activities.every((a) => a === 'recordRunEvents'), JSON.stringify(activities));
    assert.equal(events.filter((e) => e.timerStartedEventAttributes).length, 2);
    assert.ok(view.historyLength <= 5 + 2 * 5 + 2 + activities.length * 6, `history length ${view.historyLength}`);
  });
});
