import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../common/logger.ts';
import { modelMetrics, startMetrics } from '../../common/metrics.ts';
import { freePort } from '../../embedded/ports.ts';

/** METRICS_PORT serves the model instruments under the Prometheus names docs/models.md lists. */
test('the Prometheus endpoint exposes the model metrics', async () => {
  const port = await freePort();
  const running = await startMetrics({ METRICS_PORT: port, API_HOST: '127.0.0.1', METRICS_ENABLED: true }, createLogger('test', 'silent'));
  assert.ok(running);
  try {
    const m = modelMetrics();
    m.callDuration.record(1.5, { route: 'local/qwen-14b', provider: 'ollama', outcome: 'ok' });
    m.tokensPerSecond.record(40, { route: 'local/qwen-14b', provider: 'ollama' });
    m.calls.add(1, { route: 'local/qwen-14b', outcome: 'ok' });
    m.fallbacks.add(1, { from: 'local/qwen-14b', to: 'local/mistral-small', reason: 'stalled' });
    m.requests.add(1, { requested: 'default', outcome: 'ok', fell_back: 'true' });
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /^model_call_duration_bucket\{route="local\/qwen-14b",provider="ollama",outcome="ok",[^}]*le="2\.5"\} 1$/m);
    assert.match(text, /^model_tokens_per_second_count\{route="local\/qwen-14b",provider="ollama"[^}]*\} 1$/m);
    assert.match(text, /^model_calls_total\{route="local\/qwen-14b",outcome="ok"[^}]*\} 1$/m);
    assert.match(text, /^model_fallbacks_total\{from="local\/qwen-14b",to="local\/mistral-small",reason="stalled"[^}]*\} 1$/m);
    assert.match(text, /^model_requests_total\{requested="default",outcome="ok",fell_back="true"[^}]*\} 1$/m);
  } finally {
    await running.stop();
  }
});
