import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Admission, AdmissionQueueFull, RateWindow, TokenBucket, admissionSettings } from '../../api/admission.ts';
import { createLogger } from '../../common/logger.ts';
import { ConfigError, loadConfig } from '../../common/config.ts';

describe('admission parts', () => {
  test('a token bucket gives its burst at once, then `rate` a second', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 3, () => now);
    assert.equal(bucket.take(5), 3);
    assert.equal(bucket.take(), 0);
    assert.equal(bucket.waitMs(), 500);
    now = 500;
    assert.equal(bucket.take(), 1);
    now = 10_000;
    assert.equal(bucket.take(10), 3, 'never more than the burst saved up');
  });

  test('a rate window counts the last second only', () => {
    let now = 0;
    const window = new RateWindow(() => now);
    window.add();
    now = 600;
    window.add();
    assert.equal(window.perSecond(), 2);
    now = 1_200;
    assert.equal(window.perSecond(), 1);
  });

  test('settings: experimental is deferrable by default, every other lane protected; `none` defers nothing', () => {
    const defaults = admissionSettings(loadConfig({}));
    assert.deepEqual([defaults.deferrableLanes, defaults.protectedLanes], [['experimental'], ['prod-critical']]);
    assert.deepEqual([defaults.queueMax, defaults.startRate, defaults.startBurst], [10_000, 5, 5]);
    // Lanes named otherwise: the default names no lane of theirs, so nothing is deferred.
    assert.deepEqual(admissionSettings(loadConfig({ LANES: 'ops,lab' })).deferrableLanes, []);
    assert.deepEqual(admissionSettings(loadConfig({ LANES: 'ops,lab', ADMISSION_DEFERRABLE_LANES: 'lab' })).protectedLanes, ['ops']);
    assert.deepEqual(admissionSettings(loadConfig({ ADMISSION_DEFERRABLE_LANES: 'none' })).deferrableLanes, []);
    assert.throws(() => loadConfig({ ADMISSION_DEFERRABLE_LANES: 'batch' }), (e: unknown) => e instanceof ConfigError && /ADMISSION_DEFERRABLE_LANES: "batch" not in LANES/.test(e.message));
    assert.throws(() => loadConfig({ ADMISSION_START_RATE: '0' }), ConfigError);
  });

  test('a full queue is a 429 that says when to come back', () => {
    const full = new AdmissionQueueFull('experimental', 10, 2);
    assert.equal(full.status, 429);
    assert.equal(full.extra?.retryAfterSeconds, 2);
    assert.deepEqual(full.errors, [{ path: '/definition', message: 'lane experimental: admission queue full' }]);
  });
});

describe('admission while a protected lane is busy', () => {
  /** Admission over a fake DescribeTaskQueue (prod-critical's add rate as given) and a store holding what is deferred. */
  function admissionWith(prodAddRate: number, env: Record<string, string> = {}) {
    const deferred: string[] = [];
    const client = {
      workflowService: {
        async describeTaskQueue(request: { taskQueue: { name: string } }) {
          const prod = request.taskQueue.name.startsWith('prod-critical');
          return { stats: { approximateBacklogCount: 0, approximateBacklogAge: null, tasksAddRate: prod ? prodAddRate : 0 } };
        },
      },
    };
    const store = {
      async depth() {
        return 0;
      },
      async enqueue(request: { spec: { workflowId: string }; reason: string }) {
        deferred.push(request.reason);
        return { outcome: 'queued' as const };
      },
    };
    const settings = admissionSettings(loadConfig({ ADMISSION_START_RATE: '5', ADMISSION_START_BURST: '5', ...env }));
    const admission = new Admission(client as never, store as never, settings, createLogger('test', 'silent'));
    const admit = (i: number) =>
      admission.admit({ spec: { workflowId: `run-${i}` }, lane: 'experimental', keyed: false } as unknown as Parameters<Admission['admit']>[0]);
    return { admit, deferred };
  }

  test('quiet prod-critical: the burst of 5 starts at once', async () => {
    const { admit, deferred } = admissionWith(0);
    const verdicts = await Promise.all(Array.from({ length: 8 }, (_, i) => admit(i)));
    assert.equal(verdicts.filter((v) => !v.deferred).length, 5);
    assert.match(deferred[0] ?? '', /ADMISSION_START_RATE 5/);
  });

  test('busy prod-critical (tasks added recently): one start at a time, at LANE_YIELD_RATE, with the reason', async () => {
    const { admit, deferred } = admissionWith(3.5);
    const verdicts = [];
    for (let i = 0; i < 8; i++) verdicts.push(await admit(i));
    assert.equal(verdicts.filter((v) => !v.deferred).length, 1);
    assert.match(deferred[0] ?? '', /starts 2 run\(s\)\/s while a protected lane is busy \(prod-critical\.\w+ takes 3\.50 tasks\/s\)/);
  });

  test('LANE_YIELD_RATE=0 turns the busy rule off', async () => {
    const { admit } = admissionWith(3.5, { LANE_YIELD_RATE: '0' });
    const verdicts = await Promise.all(Array.from({ length: 8 }, (_, i) => admit(i)));
    assert.equal(verdicts.filter((v) => !v.deferred).length, 5);
  });
});
