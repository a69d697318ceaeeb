import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { PRIORITY_KEYS, activityTaskQueue, platformTaskQueue, workflowTaskQueue } from '../../common/constants.ts';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Lanes end to end (functional, not timed; bench/flood.ts times it): with every lane's skills
 * limited to one task at a time (LANE_LIMITS), a long experimental activity holding experimental's
 * only slot leaves the next experimental run queued while a prod-critical run completes; each run
 * uses its own lane's queues; the definition's priority reaches Temporal as the priority key, and
 * its activities inherit it (a queued urgent activity overtakes an earlier low one in the lane).
 */

/** `hold`: enters (recording its key), then waits until the test releases that key. */
function holdSkill() {
  const entered: string[] = [];
  const gates = new Map<string, () => void>();
  const waiting = new Map<string, Promise<void>>();
  const gate = (key: string) => {
    if (!waiting.has(key)) waiting.set(key, new Promise<void>((resolve) => gates.set(key, resolve)));
    return waiting.get(key) as Promise<void>;
  };
  const spec = defineSkill({
    name: 'hold',
    description: 'test: holds its worker slot until released',
    input: z.object({ key: z.string() }),
    output: z.object({ key: z.string() }),
    sideEffects: false,
    async handler(input, ctx) {
      entered.push(input.key);
      await Promise.race([
        gate(input.key),
        new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true })),
      ]);
      return { key: input.key };
    },
  });
  return {
    spec,
    entered,
    release(key: string) {
      void gate(key);
      gates.get(key)?.();
    },
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('worker --kinds', () => {
  test('a worker process serves only the kinds it is given, with no workflow bundle', async () => {
    const lane = `kinds-${randomBytes(3).toString('hex')}`;
    const cli = fileURLToPath(new URL('../../cli/platform.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'worker', '--lane', lane, '--kinds', 'skills,integrations'], {
      env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress(), LANES: lane, LANE_LIMITS: JSON.stringify({ [lane]: { skills: 3 } }), WORKFLOW_BUNDLE_PATH: '', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const connection = await Connection.connect({ address: temporalAddress() });
    try {
      const pollers = async (queue: string, type: 1 | 2) =>
        (await connection.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: queue, kind: 1 }, taskQueueType: type })).pollers ?? [];
      const identity = `${lane}@${child.pid}`;
      await until('the skills poller', async () => ((await pollers(activityTaskQueue(lane, 'skills'), 2)).some((p) => p.identity === identity) ? true : undefined), 60_000);
      // Each kind's worker starts polling on its own: the integrations poller may show a moment later.
      await until('the integrations poller', async () => ((await pollers(activityTaskQueue(lane, 'integrations'), 2)).some((p) => p.identity === identity) ? true : undefined), 60_000);
      assert.deepEqual(await pollers(workflowTaskQueue(lane), 1), []);
      assert.deepEqual(await pollers(platformTaskQueue(lane), 2), []);
      const polling = output.split('\n').find((l) => l.includes('lane workers polling'));
      assert.ok(polling, output);
      const logged = JSON.parse(polling) as { taskQueues: string[]; limits: Record<string, number> };
      assert.deepEqual(logged.taskQueues, [activityTaskQueue(lane, 'skills'), activityTaskQueue(lane, 'integrations')]);
      assert.deepEqual(logged.limits, { skills: 3, integrations: 50 });
      assert.doesNotMatch(output, /bundle/i);
    } finally {
      child.kill('SIGTERM');
      await connection.close();
    }
    assert.equal(await exited, 0, output);
  });
});

describe('lanes', () => {
  let platform: TestPlatform;
  let client: Client;
  let prod: string;
  let experimental: string;
  const hold = holdSkill();

  before(async () => {
    platform = await startTestPlatform({
      database: 'postgres',
      // The test lanes get random suffixes, so "*" (every lane) carries the limit.
      env: { LANE_LIMITS: JSON.stringify({ '*': { skills: 1 } }) },
      catalog: { skills: [hold.spec] },
    });
    [prod, experimental] = platform.lanes as [string, string];
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    // Whatever a failed assertion left held must not keep runs open.
    for (const key of hold.entered) hold.release(key);
    await client?.connection.close();
    await platform?.stop();
  });

  async function register(definition: Record<string, unknown>): Promise<void> {
    const { status, body } = await platform.api('/v1/definitions', { method: 'POST', json: definition });
    assert.ok(status === 201 || status === 200, `register ${String(definition.name)}: ${status} ${JSON.stringify(body)}`);
  }

  async function start(definition: string, input: unknown = {}): Promise<string> {
    const { status, body } = await platform.api('/v1/runs', { method: 'POST', json: { definition, input } });
    assert.equal(status, 201, JSON.stringify(body));
    return body.runId as string;
  }

  const describeRun = (runId: string) => client.workflow.getHandle(runId).describe();

  /** The state of the run's one pending activity (SCHEDULED = queued, STARTED = running). */
  async function pendingState(runId: string): Promise<string | undefined> {
    const pending = (await describeRun(runId)).raw.pendingActivities ?? [];
    if (pending.length === 0) return undefined;
    const state = pending[0]?.state;
    return state === 1 ? 'SCHEDULED' : state === 2 ? 'STARTED' : String(state);
  }

  const holdDefinition = (name: string, lane: string, priority: keyof typeof PRIORITY_KEYS) => ({
    name,
    version: '1.0.0',
    lane,
    priority,
    steps: [{ id: 'hold', type: 'skill', skill: 'hold', inputs: { key: '${input.key}' }, timeout: 120 }],
  });

  test('a prod-critical run completes while experimental is saturated; runs use their lane queues and priority keys', async () => {
    await register(holdDefinition('exp-hold', experimental, 'low'));
    await register({
      name: 'prod-quick',
      version: '1.0.0',
      lane: prod,
      priority: 'high',
      steps: [
        { id: 'a', type: 'skill', skill: 'echo', inputs: { n: 1 } },
        { id: 'b', type: 'skill', skill: 'echo', inputs: { n: 2 } },
      ],
    });

    const holding = await start('exp-hold', { key: 'holding' });
    await until('the holding activity to run', async () => (hold.entered.includes('holding') ? true : undefined));
    const queued = await start('exp-hold', { key: 'queued' });
    await until('the queued run to schedule its activity', async () => ((await pendingState(queued)) ? true : undefined));
    assert.equal(await pendingState(holding), 'STARTED');

    const quick = await start('prod-quick');
    const view = await platform.waitForRun(quick, 20_000);
    assert.equal(view.status, 'completed', JSON.stringify(view));

    // Experimental's only slot is still held: its second run waits in its own queue.
    assert.equal(await pendingState(queued), 'SCHEDULED');
    assert.deepEqual(hold.entered, ['holding']);

    // Queues and priority keys, from the histories and describe.
    const quickHistory = await client.workflow.getHandle(quick).fetchHistory();
    const started = quickHistory.events?.[0]?.workflowExecutionStartedEventAttributes;
    assert.equal(started?.taskQueue?.name, workflowTaskQueue(prod));
    assert.equal(started?.priority?.priorityKey, PRIORITY_KEYS.high);
    const scheduled = (quickHistory.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
    const echoes = scheduled.filter((s) => s.activityType?.name === 'echo');
    assert.equal(echoes.length, 2);
    for (const s of echoes) assert.equal(s.taskQueue?.name, activityTaskQueue(prod, 'skills'));
    // Every other activity (the platform's own) stays in the lane too.
    for (const s of scheduled) assert.ok(s.taskQueue?.name?.startsWith(`${prod}.`), `${s.activityType?.name} on ${s.taskQueue?.name}`);
    const workflowTasks = (quickHistory.events ?? []).flatMap((e) => (e.workflowTaskScheduledEventAttributes ? [e.workflowTaskScheduledEventAttributes] : []));
    assert.ok(workflowTasks.length > 0);
    // The first workflow task goes to the lane's queue, later ones may go to the worker's sticky queue.
    assert.equal(workflowTasks[0]?.taskQueue?.name, workflowTaskQueue(prod));
    assert.equal((await describeRun(quick)).raw.workflowExecutionInfo?.priority?.priorityKey, PRIORITY_KEYS.high);

    const held = await describeRun(holding);
    assert.equal(held.raw.workflowExecutionInfo?.priority?.priorityKey, PRIORITY_KEYS.low);
    assert.equal(held.taskQueue, workflowTaskQueue(experimental));
    const heldHistory = await client.workflow.getHandle(holding).fetchHistory();
    const heldScheduled = heldHistory.events?.find((e) => e.activityTaskScheduledEventAttributes)?.activityTaskScheduledEventAttributes;
    assert.equal(heldScheduled?.taskQueue?.name, activityTaskQueue(experimental, 'skills'));

    // Releasing the slot lets the queued run through.
    hold.release('holding');
    assert.equal((await platform.waitForRun(holding, 20_000)).status, 'completed');
    await until('the queued run to get the slot', async () => (hold.entered.includes('queued') ? true : undefined));
    hold.release('queued');
    assert.equal((await platform.waitForRun(queued, 20_000)).status, 'completed');
  });

  test('within a lane, a queued urgent activity overtakes earlier low ones (activities inherit the run priority)', async () => {
    await register(holdDefinition('exp-hold-low', experimental, 'low'));
    await register(holdDefinition('exp-hold-urgent', experimental, 'urgent'));

    const blocker = await start('exp-hold-low', { key: 'blocker' });
    await until('the blocker to hold the slot', async () => (hold.entered.includes('blocker') ? true : undefined));
    // Queued one after the other: low-1, low-2, then urgent.
    const lows: string[] = [];
    for (const key of ['low-1', 'low-2']) {
      const run = await start('exp-hold-low', { key });
      await until(`${key} to queue its activity`, async () => ((await pendingState(run)) ? true : undefined));
      lows.push(run);
    }
    const urgent = await start('exp-hold-urgent', { key: 'urgent' });
    await until('the urgent run to queue its activity', async () => ((await pendingState(urgent)) ? true : undefined));
    assert.equal((await describeRun(urgent)).raw.workflowExecutionInfo?.priority?.priorityKey, PRIORITY_KEYS.urgent);
    for (const run of lows) assert.equal(await pendingState(run), 'SCHEDULED');

    // Release the slot holder each time and note who the single slot goes to next.
    const order = ['blocker'];
    for (let i = 0; i < 3; i += 1) {
      const seen = hold.entered.length;
      hold.release(order[order.length - 1] as string);
      order.push(await until('the next activity to get the slot', async () => (hold.entered.length > seen ? hold.entered[seen] : undefined)));
    }
    hold.release(order[order.length - 1] as string);
    assert.deepEqual(order, ['blocker', 'urgent', 'low-1', 'low-2']);
    for (const run of [blocker, urgent, ...lows]) assert.equal((await platform.waitForRun(run, 20_000)).status, 'completed');
  });
});
