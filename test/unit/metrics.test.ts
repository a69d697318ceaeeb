import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../common/logger.ts';
import { installPrometheus, startMetrics } from '../../common/metrics.ts';
import { METRIC_LABEL_LIMIT, OTHER_LABEL, bounded } from '../../common/metrics-platform.ts';
import { freePort, isListening } from '../../embedded/ports.ts';

test('METRICS_ENABLED=false: no endpoint, no provider', async () => {
  const port = await freePort();
  const running = await startMetrics({ METRICS_PORT: port, API_HOST: '127.0.0.1', METRICS_ENABLED: false }, createLogger('test', 'silent'));
  assert.equal(running, undefined);
  assert.equal(await isListening('127.0.0.1', port), false);
  assert.equal(await installPrometheus({ METRICS_ENABLED: false }), undefined);
});

test('open-ended labels are capped: past METRIC_LABEL_LIMIT values, the rest report as _other', () => {
  const label = `cap-test-${Date.now()}`;
  for (let i = 0; i < METRIC_LABEL_LIMIT; i++) assert.equal(bounded(label, `d${i}`), `d${i}`);
  assert.equal(bounded(label, 'one-too-many'), OTHER_LABEL);
  assert.equal(bounded(label, 'd7'), 'd7', 'a value already reported keeps its label');
  assert.equal(bounded(label, ''), OTHER_LABEL);
});
