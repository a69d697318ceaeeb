import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AdmissionQueueFull, RateWindow, TokenBucket, admissionSettings } from '../../api/admission.ts';
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
