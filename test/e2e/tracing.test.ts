import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { trace } from '@opentelemetry/api';
import { createLogger } from '../../common/logger.ts';
import { flushTracing, startTracing, stopTracing } from '../../common/tracing.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

/**
 * Traces end to end (issue 13): the API and the workers of a real platform on the real dev server
 * export to a loopback OTLP/HTTP receiver (the collector's double). A 3-step run with an approval
 * must arrive as one trace: the HTTP request that started it → StartWorkflow → RunWorkflow →
 * RunActivity for each step (one span per step: no StartActivity span, workflows/tracing-interceptors.ts)
 * → the http-fetch skill's outbound request (whose
 * traceparent the remote server receives); the approval's request → StartWorkflowUpdate →
 * HandleUpdate in the workflow. GET /v1/runs/{id} names the trace.
 */
describe('traces end to end', () => {
  let receiver: OtlpReceiver;
  let remote: LoopbackHttp;
  let platform: TestPlatform;

  before(async () => {
    receiver = await startOtlpReceiver();
    remote = await startLoopbackHttp({
      '/quote': (_req, res) => json(res, 200, { price: 42 }),
      '/hooks': (_req, res) => json(res, 204, {}),
    });
    // The SDK's own variables, as an operator sets them.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
    process.env.OTEL_SERVICE_NAME = 'tracing-e2e';
    const state = startTracing('durable-workflows-test', createLogger('test', 'silent'));
    assert.deepEqual(state, { enabled: true, exporting: true });
    platform = await startTestPlatform({
      database: 'postgres',
      env: { HTTP_FETCH_ALLOWED_HOSTS: remote.host, WEBHOOK_ALLOWED_HOSTS: remote.host, WEBHOOK_POLL_MS: '200' },
    });
  });

  after(async () => {
    await platform?.stop();
    await stopTracing();
    await remote?.close();
    await receiver?.close();
  });

  /** Waits until the receiver holds spans matching every name (the workflow's spans end with the run). */
  async function spansOf(traceId: string, names: string[]): Promise<ReceivedSpan[]> {
    for (let i = 0; i < 100; i += 1) {
      await flushTracing();
      const spans = receiver.spans.filter((s) => s.traceId === traceId);
      if (names.every((n) => spans.some((s) => s.name === n))) return spans;
      await new Promise((r) => setTimeout(r, 100));
    }
    const seen = receiver.spans.filter((s) => s.traceId === traceId).map((s) => s.name);
    throw new Error(`trace ${traceId}: expected ${names.join(', ')}; received ${seen.join(', ')}`);
  }

  const one = (spans: ReceivedSpan[], name: string, where: (s: ReceivedSpan) => boolean = () => true): ReceivedSpan => {
    const found = spans.filter((s) => s.name === name && where(s));
    assert.equal(found.length, 1, `one ${name} span (found ${found.length})`);
    return found[0]!;
  };
  const childOf = (child: ReceivedSpan, parent: ReceivedSpan) =>
    assert.equal(child.parentSpanId, parent.spanId, `${child.name} is a child of ${parent.name}`);

  test('a 3-step run with an approval is one trace from the HTTP request to every activity and outbound call', async () => {
    const name = 'traced-three-steps';
    const subscribed = await platform.api('/v1/webhooks', { method: 'POST', key: KEYS.admin, json: { url: `${remote.url}/hooks`, events: ['workflow.run.*'] } });
    assert.equal(subscribed.status, 201, JSON.stringify(subscribed.body));
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: {
        name,
        version: '1.0.0',
        steps: [
          { id: 'prepare', type: 'skill', skill: 'echo', inputs: { amount: '${input.amount}' } },
          { id: 'sign-off', type: 'approval', approvers: { groups: ['finance'] }, summary: 'Pay ${input.amount}' },
          { id: 'quote', type: 'skill', skill: 'http-fetch', inputs: { url: `${remote.url}/quote` } },
        ],
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: { amount: 120 } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const runId = started.body.runId as string;

    let pending = false;
    for (let i = 0; i < 200 && !pending; i += 1) {
      const view = (await platform.api(`/v1/runs/${runId}`)).body;
      pending = (view.approvals ?? []).some((a: any) => a.stepId === 'sign-off' && a.status === 'pending');
      if (!pending) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(pending, 'the run reached its approval');
    const decided = await platform.api(`/v1/runs/${runId}/approvals/sign-off`, { method: 'POST', key: KEYS.bob, json: { decision: 'approve' } });
    assert.equal(decided.status, 200, JSON.stringify(decided.body));
    const done = await platform.waitForRun(runId);
    assert.equal(done.status, 'completed', JSON.stringify(done));

    // GET /v1/runs/{id} names the trace; every span below belongs to it.
    const traceId = done.traceId as string;
    assert.match(traceId, /^[\da-f]{32}$/);
    const spans = await spansOf(traceId, ['POST /v1/runs', 'StartWorkflow:interpreter', 'RunWorkflow:interpreter', 'RunActivity:echo', 'RunActivity:http-fetch', 'GET']);

    const request = one(spans, 'POST /v1/runs');
    assert.equal(request.kind, 2, 'the HTTP request is a SERVER span');
    assert.equal(request.attributes['http.route'], '/v1/runs');
    assert.equal(request.attributes['http.response.status_code'], 201);
    const start = one(spans, 'StartWorkflow:interpreter');
    childOf(start, request);
    assert.equal(start.attributes.temporalWorkflowId, runId);
    const runSpan = one(spans, 'RunWorkflow:interpreter');
    childOf(runSpan, start);
    assert.equal(runSpan.attributes.temporalWorkflowId, runId, 'the workflow span names the run');
    for (const skill of ['echo', 'http-fetch']) childOf(one(spans, `RunActivity:${skill}`), runSpan);
    assert.deepEqual(spans.filter((s) => s.name.startsWith('StartActivity:')).map((s) => s.name), [], 'scheduling an activity opens no span of its own');
    // The lifecycle events the run records are activities of the same trace.
    assert.ok(spans.some((s) => s.name === 'RunActivity:recordRunEvents' && s.parentSpanId === runSpan.spanId), 'the lifecycle-events write is in the trace');

    // The http-fetch skill's request: a CLIENT span under its activity, and its traceparent reached the remote server.
    const outbound = one(spans, 'GET', (s) => s.kind === 3 && String(s.attributes['url.full'] ?? '').endsWith('/quote'));
    childOf(outbound, one(spans, 'RunActivity:http-fetch'));
    const arrived = remote.requests.find((r) => r.url === '/quote');
    assert.equal(arrived?.headers.traceparent, `00-${traceId}-${outbound.spanId}-01`);

    // Lifecycle webhooks: the CloudEvent carries the run's trace (distributed-tracing extension), and
    // the delivery is sent inside it.
    let hooks: Array<{ event: any; headers: Record<string, unknown> }> = [];
    for (let i = 0; i < 100; i += 1) {
      hooks = remote.requests.filter((r) => r.url === '/hooks').map((r) => ({ event: JSON.parse(r.body), headers: r.headers }));
      if (hooks.some((h) => h.event.type === 'workflow.run.completed' && h.event.subject === runId)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const completed = hooks.find((h) => h.event.type === 'workflow.run.completed' && h.event.subject === runId);
    assert.ok(completed, 'the run.completed webhook arrived');
    assert.match(completed.event.traceparent, new RegExp(`^00-${traceId}-[\\da-f]{16}-01$`));
    assert.match(String(completed.headers.traceparent), new RegExp(`^00-${traceId}-`), 'the delivery request itself is in the run trace');
    const recordedBy = completed.event.traceparent.split('-')[2];
    assert.ok(spans.some((s) => s.name === 'RunActivity:recordRunEvents' && s.spanId === recordedBy), 'the traceparent is the recording activity span');

    // The approval: its own request's trace, down to the workflow's update handler.
    const approvalRequest = receiver.spans.find((s) => s.name === 'POST /v1/runs/{runId}/approvals/{stepId}' && s.attributes['http.response.status_code'] === 200);
    assert.ok(approvalRequest, 'the approval request has a span');
    const approvalSpans = await spansOf(approvalRequest.traceId, ['StartWorkflowUpdate:decideApproval', 'HandleUpdate:decideApproval']);
    const update = one(approvalSpans, 'StartWorkflowUpdate:decideApproval');
    childOf(update, approvalRequest);
    childOf(one(approvalSpans, 'HandleUpdate:decideApproval'), update);
    childOf(one(approvalSpans, 'ValidateUpdate:decideApproval'), update);

    // Each process names itself (OTEL_SERVICE_NAME here, one test process).
    assert.ok(spans.every((s) => s.service === 'tracing-e2e'), 'every span carries the service name');
  });

  test("a log line written inside a span carries the trace's ids", async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _enc, done) => void (lines.push(String(chunk)), done()) });
    const logger = createLogger('tracing-e2e', 'info', sink);
    await trace.getTracer('test').startActiveSpan('logged', async (span) => {
      logger.info('inside');
      span.end();
      const line = JSON.parse(lines[0]!);
      assert.equal(line.traceId, span.spanContext().traceId);
      assert.equal(line.spanId, span.spanContext().spanId);
    });
    logger.info('outside');
    assert.equal(JSON.parse(lines[1]!).traceId, undefined);
  });
});
