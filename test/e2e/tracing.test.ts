import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
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
/** A JSON POST through node:http, which no instrumentation here touches: the headers arrive as given. */
function postUninstrumented(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.once('error', reject);
    req.end(JSON.stringify(body));
  });
}

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

  test("an event's traceparent header is continued into the run it starts, and a child run shares its parent's trace", async () => {
    await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: { name: 'traced-child', version: '1.0.0', steps: [{ id: 'hello', type: 'skill', skill: 'echo', inputs: { who: '${input.who}' } }] },
    });
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: {
        name: 'traced-parent',
        version: '1.0.0',
        triggers: [{ type: 'event', event: 'traced.order' }],
        steps: [{ id: 'call', type: 'sub_workflow', definition: 'traced-child', version: '1.0.0', inputs: { who: '${input.who}' } }],
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    // The upstream producer's trace, as a W3C traceparent header (CloudEvents over HTTP, binary or structured).
    const upstreamTrace = randomBytes(16).toString('hex');
    const upstreamSpan = randomBytes(8).toString('hex');
    // Sent with node:http: this process's fetch is instrumented (undici) and would put its own traceparent on it.
    const posted = await postUninstrumented(`${platform.url}/v1/events`, { id: `evt-${upstreamSpan}`, type: 'traced.order', source: 'shop', data: { who: 'ada' } }, {
      authorization: `Bearer ${KEYS.submitter}`,
      traceparent: `00-${upstreamTrace}-${upstreamSpan}-01`,
    });
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
    const runId = posted.body.runs.find((r: any) => r.definition === 'traced-parent').runId as string;
    const done = await platform.waitForRun(runId);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    assert.equal(done.traceId, upstreamTrace, "the run continues the event's trace");
    const spans = await spansOf(upstreamTrace, ['POST /v1/events', 'StartWorkflow:interpreter', 'RunWorkflow:interpreter', 'StartChildWorkflow:interpreter', 'RunActivity:echo']);
    assert.equal(one(spans, 'POST /v1/events').parentSpanId, upstreamSpan, 'the request span is the producer span\'s child');

    // The child run: started by the workflow, not by a request, so its memo holds no trace; its
    // lifecycle events name its parent's trace, and so does GET /v1/runs/{id}.
    const child = await platform.waitForRun(`${runId}/call`);
    assert.equal(child.status, 'completed', JSON.stringify(child));
    assert.equal(child.traceId, upstreamTrace, "the child run is in its parent's trace");
    const runSpans = spans.filter((s) => s.name === 'RunWorkflow:interpreter');
    const childRun = runSpans.find((s) => s.attributes.temporalWorkflowId === `${runId}/call`);
    assert.ok(childRun, 'the child run has its RunWorkflow span');
    childOf(childRun, one(spans, 'StartChildWorkflow:interpreter'));
    childOf(one(spans, 'RunActivity:echo'), childRun);
  });

  test('a scheduled run has a trace of its own, named by GET /v1/runs/{id}', async () => {
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: {
        name: 'traced-nightly',
        version: '1.0.0',
        triggers: [{ type: 'schedule', interval: 2, overlap: 'skip' }],
        steps: [{ id: 'build', type: 'skill', skill: 'echo', inputs: { report: 'daily' } }],
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const scheduleId = registered.body.schedules[0] as string;
    let runId: string | undefined;
    for (let i = 0; i < 300 && !runId; i += 1) {
      const view = (await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}`)).body;
      runId = view.recentRuns?.find((r: any) => r.status === 'completed')?.runId;
      if (!runId) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(runId, 'a scheduled run completed');
    assert.equal((await platform.api(`/v1/schedules/${encodeURIComponent(scheduleId)}/pause`, { method: 'POST', json: { note: 'test over' } })).status, 200);
    const run = (await platform.api(`/v1/runs/${encodeURIComponent(runId)}`)).body;
    assert.match(String(run.traceId), /^[\da-f]{32}$/, JSON.stringify(run));
    const spans = await spansOf(run.traceId, ['RunWorkflow:interpreter', 'RunActivity:echo']);
    const runSpan = one(spans, 'RunWorkflow:interpreter');
    assert.equal(runSpan.parentSpanId, undefined, 'no request started it: the run span is the root');
    assert.equal(runSpan.attributes.temporalWorkflowId, runId);
    childOf(one(spans, 'RunActivity:echo'), runSpan);
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
