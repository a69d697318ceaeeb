import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { z } from 'zod';
import { defineSkill } from '../../activities/skills/skill.ts';
import { activityTaskQueue } from '../../common/constants.ts';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * The lane yield (workers/lane-yield.ts) end to end, on the real dev server: while a protected
 * lane has a task waiting, the deferrable lane's admitted runs still all complete, but its workers
 * begin at most LANE_YIELD_RATE tasks a second; once the protected lane is quiet they run at full
 * speed again. Functional, not timed: the assertion is on the spacing the rate limit enforces
 * (bench/flood.ts measures what it buys prod-critical).
 */

const YIELD_RATE = 2;

function skills() {
  const gates = new Map<string, () => void>();
  const entered: string[] = [];
  const stamps: number[] = [];
  const hold = defineSkill({
    name: 'hold',
    description: 'test: holds its worker slot until released',
    input: z.object({ key: z.string() }),
    output: z.object({ key: z.string() }),
    sideEffects: false,
    async handler(input, ctx) {
      entered.push(input.key);
      await Promise.race([
        new Promise<void>((resolve) => gates.set(input.key, resolve)),
        new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true })),
      ]);
      return { key: input.key };
    },
  });
  const stamp = defineSkill({
    name: 'stamp',
    description: 'test: records when it began',
    input: z.object({}),
    output: z.object({ at: z.number() }),
    sideEffects: false,
    async handler() {
      const at = performance.now();
      stamps.push(at);
      return { at };
    },
  });
  return { specs: [hold, stamp], entered, stamps, release: (key: string) => gates.get(key)?.() };
}

const gaps = (times: number[]) => [...times].sort((a, b) => a - b).flatMap((t, i, all) => (i === 0 ? [] : [t - all[i - 1]!]));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('lane yield', () => {
  let platform: TestPlatform;
  let client: Client;
  let prod: string;
  let experimental: string;
  const s = skills();

  before(async () => {
    platform = await startTestPlatform({
      database: 'postgres',
      env: ([p, e]) => ({
        ADMISSION_DEFERRABLE_LANES: e!,
        // Starts are admitted whatever prod-critical's queues hold (as a schedule's fires are):
        // what is under test is the workers' yield, not the admission stage.
        ADMISSION_PROTECTED_BACKLOG_MAX: '100000',
        ADMISSION_PROTECTED_BACKLOG_AGE_MS: '100000000',
        ADMISSION_START_RATE: '1000',
        ADMISSION_START_BURST: '1000',
        LANE_YIELD_RATE: String(YIELD_RATE),
        LANE_YIELD_PROBE_MS: '100',
        // Only a waiting task makes prod-critical busy here, so the test decides when it is quiet.
        LANE_YIELD_BUSY_RATE: '1000000',
        LANE_LIMITS: JSON.stringify({ [p!]: { skills: 1 } }),
      }),
      catalog: { skills: s.specs },
    });
    [prod, experimental] = platform.lanes as [string, string];
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
    for (const [name, lane, skill] of [
      ['prod-hold', prod, 'hold'],
      ['exp-stamp', experimental, 'stamp'],
    ] as const) {
      const steps = [{ id: 'a', type: 'skill', skill, inputs: skill === 'hold' ? { key: '${input.key}' } : {}, timeout: 120 }];
      const { status, body } = await platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', lane, steps } });
      assert.ok(status === 201 || status === 200, JSON.stringify(body));
    }
  });

  after(async () => {
    for (const key of s.entered) s.release(key);
    await client?.connection.close();
    await platform?.stop();
  });

  async function start(definition: string, input: unknown = {}): Promise<string> {
    const { status, body } = await platform.api('/v1/runs', { method: 'POST', json: { definition, input } });
    assert.equal(status, 201, JSON.stringify(body));
    return body.runId as string;
  }

  const backlog = async (queue: string) =>
    Number(
      (await client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: queue, kind: 1 }, taskQueueType: 2, reportStats: true })).stats
        ?.approximateBacklogCount ?? 0,
    );

  test('while prod-critical has a task waiting, experimental runs all complete at a trickle; once it is quiet, at full speed', async () => {
    // prod-critical's only skills slot is held, and a second task waits behind it: busy.
    const holding = await start('prod-hold', { key: 'p1' });
    await until('the held prod-critical task', async () => (s.entered.includes('p1') ? true : undefined));
    const waiting = await start('prod-hold', { key: 'p2' });
    await until('a waiting prod-critical task', async () => ((await backlog(activityTaskQueue(prod, 'skills'))) > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 500)); // a few of the workers' probes (every 100 ms)

    const yielding = await Promise.all(Array.from({ length: 5 }, () => start('exp-stamp')));
    for (const runId of yielding) assert.equal((await platform.waitForRun(runId, 60_000)).status, 'completed', runId);
    const slow = gaps(s.stamps.splice(0));
    assert.equal(slow.length, 4);
    // No sooner than 1/rate after the last began (timer slack allowed). The first two may begin
    // together: slots reserved for polls while prod-critical was quiet (at most two) carry over.
    for (const gap of slow.slice(1)) assert.ok(gap >= 1000 / YIELD_RATE - 100, `tasks began ${slow.map(Math.round).join(', ')} ms apart while prod-critical was busy`);

    s.release('p1');
    await until('the waiting prod-critical task to start', async () => (s.entered.includes('p2') ? true : undefined));
    s.release('p2');
    for (const runId of [holding, waiting]) assert.equal((await platform.waitForRun(runId, 30_000)).status, 'completed');
    await until('prod-critical quiet', async () => ((await backlog(activityTaskQueue(prod, 'skills'))) === 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));

    const full = await Promise.all(Array.from({ length: 5 }, () => start('exp-stamp')));
    for (const runId of full) assert.equal((await platform.waitForRun(runId, 30_000)).status, 'completed', runId);
    const fast = gaps(s.stamps.splice(0));
    assert.ok(
      fast.some((gap) => gap < 1000 / YIELD_RATE - 100),
      `with prod-critical quiet, tasks should no longer be spaced by the yield rate: ${fast.map(Math.round).join(', ')} ms`,
    );
  });
});
