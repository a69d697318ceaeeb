import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ActivitySlotInfo, SlotReserveContext } from '@temporalio/worker';
import { loadConfig } from '../../common/config.ts';
import { createLogger } from '../../common/logger.ts';
import { ProtectedLaneWatch, YieldingSlotSupplier, laneYieldSettings, type DescribesTaskQueues } from '../../workers/lane-yield.ts';

const ctx = {} as SlotReserveContext;
const logger = createLogger('test', 'silent');

/** A watch whose verdict the test sets. */
function fakeWatch(initial: string | undefined) {
  const listeners = new Set<() => void>();
  const watch = {
    busy: initial,
    onChange(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(busy: string | undefined) {
      watch.busy = busy;
      for (const l of listeners) l();
    },
  };
  return watch;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('lane yield: the slot supplier', () => {
  test('quiet protected lanes: slots up to the limit at once, then only when one is released', async () => {
    const watch = fakeWatch(undefined);
    const supplier = new YieldingSlotSupplier<ActivitySlotInfo>(2, watch, 1);
    await supplier.reserveSlot(ctx, new AbortController().signal);
    supplier.markSlotUsed();
    await supplier.reserveSlot(ctx, new AbortController().signal);
    supplier.markSlotUsed();
    assert.equal(supplier.tryReserveSlot(), null, 'the limit holds');
    let third = false;
    const pending = supplier.reserveSlot(ctx, new AbortController().signal).then(() => (third = true));
    await settle();
    assert.equal(third, false);
    supplier.releaseSlot({ permit: {}, slotInfo: { type: 'activity', activityType: 'echo' } });
    await pending;
    assert.equal(third, true);
    assert.equal(supplier.yieldedGrants, 0);
  });

  test('busy protected lanes: a new slot no sooner than 1/yieldRate after the last task began, and one idle reservation at most', async () => {
    let now = 0;
    const watch = fakeWatch('prod-critical.skills holds 3 waiting task(s)');
    const supplier = new YieldingSlotSupplier<ActivitySlotInfo>(10, watch, 2, () => now);
    assert.ok(supplier.tryReserveSlot(), 'the first slot at once');
    assert.equal(supplier.tryReserveSlot(), null, 'one idle reservation while yielding, though 9 are free');
    now = 2_000;
    supplier.markSlotUsed(); // its task arrives late (the poll waited)
    now = 2_499;
    assert.equal(supplier.tryReserveSlot(), null, 'counted from when the task began, not from the grant');
    now = 2_500;
    assert.ok(supplier.tryReserveSlot(), 'the first task still runs: slots up to the limit may run at once');
    assert.equal(supplier.yieldedGrants, 2);
    watch.set(undefined);
    assert.ok(supplier.tryReserveSlot(), 'quiet again: no rate');
    assert.equal(supplier.tryReserveSlot(), null, 'but at most two idle reservations (a burst when it turns busy again stays small)');
    supplier.releaseSlot({ permit: {} }); // a poll timed out unused
    assert.ok(supplier.tryReserveSlot());
  });

  test('a waiting reservation is granted as soon as the protected lanes turn quiet', async () => {
    const watch = fakeWatch('busy');
    const supplier = new YieldingSlotSupplier<ActivitySlotInfo>(10, watch, 0.001, () => 0);
    supplier.tryReserveSlot();
    let granted = false;
    const pending = supplier.reserveSlot(ctx, new AbortController().signal).then(() => (granted = true));
    await settle();
    assert.equal(granted, false, 'one slot per 1000 s while busy');
    watch.set(undefined);
    await pending;
    assert.equal(granted, true);
  });

  test('an aborted reservation rejects with AbortError and takes no slot', async () => {
    const watch = fakeWatch(undefined);
    const supplier = new YieldingSlotSupplier<ActivitySlotInfo>(1, watch, 1);
    supplier.tryReserveSlot();
    const abort = new AbortController();
    const pending = supplier.reserveSlot(ctx, abort.signal);
    abort.abort();
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError');
    supplier.releaseSlot({ permit: {} });
    assert.ok(supplier.tryReserveSlot(), 'the released slot is free for the next reservation');
  });
});

describe('lane yield: watching the protected lanes', () => {
  function connection(stats: Record<string, { approximateBacklogCount?: number; tasksAddRate?: number } | Error>): DescribesTaskQueues & { calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      workflowService: {
        async describeTaskQueue(request) {
          calls.push(`${request.taskQueue.name}/${request.taskQueueType}`);
          assert.equal(request.reportStats, true);
          const s = stats[request.taskQueue.name] ?? stats['*'];
          if (s instanceof Error) throw s;
          return { stats: s ?? {} };
        },
      },
    };
  }
  const settings = laneYieldSettings(loadConfig({ LANES: 'prod-critical,experimental' }), 'experimental')!;

  test('only deferrable lanes yield, to every queue of every protected lane; LANE_YIELD_RATE=0 turns it off', () => {
    assert.equal(laneYieldSettings(loadConfig({ LANES: 'prod-critical,experimental' }), 'prod-critical'), undefined);
    assert.equal(laneYieldSettings(loadConfig({ LANES: 'prod-critical,experimental', LANE_YIELD_RATE: '0' }), 'experimental'), undefined);
    assert.equal(laneYieldSettings(loadConfig({ LANES: 'experimental', DEFAULT_LANE: 'experimental' }), 'experimental'), undefined, 'nothing to yield to');
    assert.deepEqual(
      settings.protectedQueues.map((q) => `${q.name}/${q.type}`),
      ['prod-critical.workflows/1', 'prod-critical.skills/2', 'prod-critical.integrations/2', 'prod-critical.models/2', 'prod-critical.agents/2', 'prod-critical.platform/2'],
    );
  });

  test('a waiting task or a recent add rate makes the protected lanes busy; nothing of either, quiet', async () => {
    const quiet = new ProtectedLaneWatch(connection({ '*': { approximateBacklogCount: 0, tasksAddRate: 0.01 } }), settings, logger);
    assert.equal(await quiet.probe(), undefined);
    const waiting = new ProtectedLaneWatch(connection({ '*': {}, 'prod-critical.skills': { approximateBacklogCount: 3 } }), settings, logger);
    assert.match((await waiting.probe()) ?? '', /prod-critical\.skills holds 3 waiting/);
    const active = new ProtectedLaneWatch(connection({ '*': {}, 'prod-critical.workflows': { tasksAddRate: 1.5 } }), settings, logger);
    assert.match((await active.probe()) ?? '', /prod-critical.workflows takes 1\.50 tasks\/s/);
  });

  test('a failed measurement keeps the last verdict', async () => {
    const stats: Record<string, { approximateBacklogCount?: number } | Error> = { '*': { approximateBacklogCount: 1 } };
    const watch = new ProtectedLaneWatch(connection(stats), settings, logger);
    assert.ok(await watch.probe());
    stats['*'] = new Error('UNAVAILABLE');
    assert.ok(await watch.probe(), 'still busy: Temporal restarting is no reason to flood it');
  });
});
