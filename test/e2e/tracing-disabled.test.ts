import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../common/logger.ts';
import { flushTracing, startTracing, stopTracing } from '../../common/tracing.ts';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * OTEL_SDK_DISABLED=true (issue 13): with an OTLP endpoint configured all the same, a platform
 * exports no span and names no trace (not in GET /v1/runs/{id}, not in a log line), and its runs
 * work as ever. The workflow bundle the test runner built has the tracing interceptors in it: their
 * spans must go nowhere either.
 */
describe('tracing disabled by OTEL_SDK_DISABLED', () => {
  let receiver: OtlpReceiver;
  let platform: TestPlatform;
  const logs: string[] = [];

  before(async () => {
    receiver = await startOtlpReceiver();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
    process.env.OTEL_SDK_DISABLED = 'true';
    assert.deepEqual(startTracing('durable-workflows-test', createLogger('test', 'silent')), { enabled: false, exporting: false });
    platform = await startTestPlatform({ database: 'pglite', logs });
  });

  after(async () => {
    await platform?.stop();
    await stopTracing();
    await receiver?.close();
    delete process.env.OTEL_SDK_DISABLED;
  });

  test('a run completes with no span exported and no trace id anywhere', async () => {
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: {
        name: 'untraced',
        version: '1.0.0',
        steps: [
          { id: 'one', type: 'skill', skill: 'echo', inputs: { n: 1 } },
          { id: 'two', type: 'skill', skill: 'echo', inputs: { n: '${steps.one.output.n}' } },
        ],
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'untraced', input: {} } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const done = await platform.waitForRun(started.body.runId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.deepEqual(done.output, { n: 1 });
    assert.equal(done.traceId, undefined, 'no trace id in GET /v1/runs/{id}');

    // Whatever a tracing process would have exported by now (batch delay 100 ms) is not there.
    await flushTracing();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual([receiver.received, receiver.spans.map((s) => s.name)], [0, []], 'no span reached the collector');
    const traced = logs.filter((line) => /"(traceId|trace_id)"/.test(line));
    assert.deepEqual(traced.slice(0, 3), [], 'no log line carries a trace id');
    assert.ok(logs.some((line) => line.includes(started.body.runId)), 'the run was logged (the capture works)');
  });
});
