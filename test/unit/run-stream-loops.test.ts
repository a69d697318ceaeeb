import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProgressTracker } from '../../api/run-stream.ts';
import type { PendingActivity, StepView } from '../../api/runs-service.ts';

describe('progress stream: retries of steps inside loops', () => {
  test('each iteration retrying is reported, under the step id, with its path', () => {
    let now = 1_000;
    const tracker = new ProgressTracker(() => now);
    const steps: StepView[] = [
      { id: 'loop', status: 'running' },
      { id: 'flaky', status: 'running' },
    ];
    const pending = (activityId: string, path: string, attempt: number): PendingActivity => ({
      activityId,
      activity: 'boom',
      stepId: 'flaky',
      stepPath: path,
      attempt,
      lastFailure: `boom #${attempt - 1}`,
    });
    assert.deepEqual(tracker.next(steps, [], []).map((e) => [e.stepId, e.status]), [['loop', 'started'], ['flaky', 'started']]);
    now = 2_000;
    const first = tracker.next(steps, [pending('5', 'loop[0]/flaky', 2)], []);
    assert.deepEqual(first.map((e) => [e.stepId, e.stepPath, e.status, e.attempt, e.error?.message]), [['flaky', 'loop[0]/flaky', 'retrying', 2, 'boom #1']]);
    assert.deepEqual(tracker.next(steps, [pending('5', 'loop[0]/flaky', 2)], []), []);
    // The next iteration's call is a new activity whose attempts count from 1 again.
    now = 3_000;
    const second = tracker.next(steps, [pending('9', 'loop[1]/flaky', 2)], []);
    assert.deepEqual(second.map((e) => [e.stepPath, e.attempt]), [['loop[1]/flaky', 2]]);
    const third = tracker.next(steps, [pending('9', 'loop[1]/flaky', 3)], []);
    assert.deepEqual(third.map((e) => [e.stepPath, e.attempt]), [['loop[1]/flaky', 3]]);
  });

  test('a for_each iteration\'s steps have no views: the retry shows under the for_each; nested paths find the innermost running step', () => {
    const tracker = new ProgressTracker(() => 5_000);
    const steps: StepView[] = [{ id: 'each', status: 'running' }];
    tracker.next(steps, [], []);
    const retry = (activityId: string, stepPath: string): PendingActivity => ({ activityId, activity: 'boom', stepId: stepPath.slice(stepPath.lastIndexOf('/') + 1), stepPath, attempt: 2 });
    const seen = tracker.next(steps, [retry('1', 'each[0]/inner'), retry('2', 'each[1]/twice[3]/inner')], []);
    assert.deepEqual(seen.map((e) => [e.stepId, e.stepPath]), [['each', 'each[0]/inner'], ['each', 'each[1]/twice[3]/inner']]);
    // An activity of no running step (it just finished) is not reported.
    assert.deepEqual(new ProgressTracker().next([{ id: 'each', status: 'completed' }], [retry('3', 'each[0]/inner')], []).filter((e) => e.status === 'retrying'), []);
  });
});
