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

test('METRICS_BEARER_TOKEN / METRICS_BASIC_AUTH: a scrape without the credentials is a 401, with either one a 200; none set, open', async () => {
  const logger = createLogger('test', 'silent');
  const token = 'scrape-token-0123456789';
  const port = await freePort();
  const running = await startMetrics({ METRICS_PORT: port, API_HOST: '127.0.0.1', METRICS_ENABLED: true, METRICS_BEARER_TOKEN: token, METRICS_BASIC_AUTH: 'prometheus:s3cret-pass' }, logger);
  assert.ok(running);
  const open = await startMetrics({ METRICS_PORT: await freePort(), API_HOST: '127.0.0.1', METRICS_ENABLED: true }, logger);
  assert.ok(open);
  try {
    const scrape = (url: string, authorization?: string) => fetch(url, authorization ? { headers: { authorization } } : {});
    const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;
    const refused = await scrape(running.url);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="metrics"');
    assert.match(((await refused.json()) as { detail: string }).detail, /METRICS_BEARER_TOKEN/);
    for (const wrong of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, basic('prometheus:wrong-pass'), `Basic ${token}`, token]) {
      assert.equal((await scrape(running.url, wrong)).status, 401, wrong);
    }
    const withToken = await scrape(running.url, `Bearer ${token}`);
    assert.equal(withToken.status, 200);
    assert.match(await withToken.text(), /# (HELP|TYPE)|^$/m);
    assert.equal((await scrape(running.url, basic('prometheus:s3cret-pass'))).status, 200);
    assert.equal((await scrape(open.url)).status, 200, 'no credentials configured: open');
  } finally {
    await running.stop();
    await open.stop();
  }
});
