import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { EncryptionCodec, ENCRYPTED_ENCODING, newKeyEntry, parseCodecKeys } from '../../common/codec.ts';
import { SENSITIVE_MASK } from '../../common/sensitive.ts';
import { resolveTemporalCli } from '../../embedded/temporal-cli.ts';
import { json, startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';
import { startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Sensitive data end to end (issue 18): a run whose input and step output hold declared sensitive
 * values and a secret. Temporal's history, read with a plain client, holds none of them in the
 * clear; the API masks them for a caller without `sensitive-reader` and shows them to one with
 * it; the codec server decodes for the role and for Temporal Web's origin only; after a key
 * rotation the old run still decodes.
 */

const SSN = '078-05-1120';
const CARD = '4111-1111-1111-1111';
const SECRET = 'sk_live_0f3a9c2e7b1d4e6f';
const keys = {
  submitter: 'sens-submit-key-000000000',
  reader: 'sens-reader-key-000000000',
  approver: 'sens-approve-key-00000000',
};
const k1 = newKeyEntry();
const UI_TOKEN = 'ui-token-for-the-codec-test-0001';
const UI_ORIGIN = 'http://127.0.0.1:18233';

/** Every byte string in a history (payload data and metadata), as text. */
function historyBytes(value: unknown, into: string[] = []): string[] {
  if (value instanceof Uint8Array) into.push(Buffer.from(value).toString('latin1'));
  else if (Array.isArray(value)) for (const v of value) historyBytes(v, into);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) historyBytes(v, into);
  else if (typeof value === 'string') into.push(value);
  return into;
}

describe('sensitive data: encrypted history, masked API, codec server', () => {
  let platform: TestPlatform;
  let plain: Client;
  let runId: string;
  const logs: string[] = [];
  /** A webhook subscriber: lifecycle events leave the platform, so they must arrive masked. */
  let receiver: LoopbackHttp;

  before(async () => {
    receiver = await startLoopbackHttp({ '/hook': (_req, res) => json(res, 200, { ok: true }) });
    platform = await startTestPlatform({
      database: 'postgres',
      logs,
      env: (lanes) => {
        const tenant = `sens-${lanes[0]!.slice(-6)}`;
        return {
          PAYLOAD_CODEC_KEYS: JSON.stringify([k1]),
          CODEC_UI_TOKEN: UI_TOKEN,
          TEMPORAL_UI_URL: UI_ORIGIN,
          WEBHOOK_ALLOWED_HOSTS: receiver.host,
          API_KEYS: JSON.stringify([
            { key: keys.submitter, principal: 'sam', roles: ['submit', 'admin'], tenant },
            { key: keys.reader, principal: 'sre', roles: ['submit', 'sensitive-reader'], tenant },
            { key: keys.approver, principal: 'abby', roles: ['approve'], tenant },
          ]),
        };
      },
    });
    plain = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });

    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: keys.submitter,
      json: {
        name: 'kyc-check',
        version: '1.0.0',
        sensitive: { input: ['/customer/ssn'], steps: { lookup: ['/card'] } },
        steps: [
          { id: 'lookup', type: 'skill', skill: 'echo', inputs: { ssn: '${input.customer.ssn}', card: CARD, token: '${input.token}', name: '${input.customer.name}' } },
          { id: 'check', type: 'approval', approvers: { principals: ['abby'] }, summary: 'Check ${input.customer.name}' },
          { id: 'letter', type: 'skill', skill: 'echo', inputs: { text: 'Dear ${input.customer.name}, card ${lookup.card} is on file' } },
        ],
      },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const hook = await platform.api('/v1/webhooks', { method: 'POST', key: keys.submitter, json: { url: `${receiver.url}/hook`, definitions: ['kyc-check', 'kyc-reject'] } });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    const started = await platform.api('/v1/runs', {
      method: 'POST',
      key: keys.submitter,
      json: { definition: 'kyc-check', input: { customer: { ssn: SSN, name: 'Ada Lovelace' }, token: SECRET } },
    });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    runId = started.body.runId;
    for (let i = 0; ; i += 1) {
      const decided = await platform.api(`/v1/runs/${runId}/approvals/check`, { method: 'POST', key: keys.approver, json: { decision: 'approve', comment: `SSN ${SSN} matches the file` } });
      if (decided.status === 200) break;
      assert.ok(i < 100, `approval never accepted: ${JSON.stringify(decided.body)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let i = 0; ; i += 1) {
      const done = (await platform.api(`/v1/runs/${runId}`, { key: keys.reader })).body;
      if (done.status !== 'running') {
        assert.equal(done.status, 'completed', JSON.stringify(done));
        break;
      }
      assert.ok(i < 300, `run still running: ${JSON.stringify(done)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    await plain?.connection.close();
    await platform?.stop();
    await receiver?.close();
  });

  test('the raw history, read with a plain client (no codec), holds neither the marked values nor the secret in clear', async () => {
    const history = await plain.workflow.getHandle(runId).fetchHistory();
    const text = historyBytes(history).join('\n');
    for (const value of [SSN, CARD, SECRET, 'Ada Lovelace']) assert.ok(!text.includes(value), `${value} is in the history in clear`);
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    assert.equal(Buffer.from(started?.metadata?.encoding ?? []).toString(), ENCRYPTED_ENCODING);
    assert.equal(Buffer.from(started?.metadata?.['encryption-key-id'] ?? []).toString(), k1.id);
    // Every payload of the run is sealed: inputs, activity results, the update, the result.
    const encodings = new Map<string, string>();
    const walk = (v: unknown, path: string): void => {
      if (v && typeof v === 'object' && 'metadata' in v && 'data' in v) {
        const enc = (v as { metadata?: Record<string, Uint8Array> }).metadata?.encoding;
        if (enc) encodings.set(path, Buffer.from(enc).toString());
      }
      if (v && typeof v === 'object' && !(v instanceof Uint8Array)) Object.entries(v).forEach(([k, item]) => walk(item, `${path}/${k}`));
    };
    walk(history, '');
    // Search attributes are indexed by Temporal, so they stay readable: they hold only the
    // platform's identifiers (definition, lane, tenant, principal, correlation id), never run data.
    // patched() markers hold the patch's name, written by the SDK's core outside the codec.
    // Headers do not go through a TypeScript SDK codec (temporalio/sdk-typescript#514): the
    // OpenTelemetry interceptors' `_tracer-data` header stays readable, so it must hold the W3C
    // trace context and nothing else (no baggage, no run data).
    const tracerHeaders: unknown[] = [];
    const collect = (v: unknown): void => {
      if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
      const tracer = (v as { header?: { fields?: Record<string, { data?: Uint8Array }> } }).header?.fields?.['_tracer-data'];
      if (tracer?.data) tracerHeaders.push(JSON.parse(Buffer.from(tracer.data).toString()));
      Object.values(v).forEach(collect);
    };
    collect(history);
    assert.ok(tracerHeaders.length > 0, 'the run is traced, so its starts carry a tracer header');
    // (An empty header is written where no span is active.)
    for (const header of tracerHeaders as Array<Record<string, unknown>>) {
      assert.deepEqual(Object.keys(header).filter((k) => k !== 'traceparent' && k !== 'tracestate'), [], JSON.stringify(header));
      if (header.traceparent !== undefined) assert.match(String(header.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    }
    assert.ok(
      tracerHeaders.some((h) => (h as Record<string, unknown>).traceparent !== undefined),
      'the start carries the trace context',
    );
    const clear = [...encodings].filter(
      ([path, e]) => e !== ENCRYPTED_ENCODING && !path.includes('/searchAttributes/') && !path.includes('/details/patch-data/') && !path.endsWith('/header/fields/_tracer-data'),
    );
    assert.deepEqual(clear, []);
    assert.ok([...encodings.values()].filter((e) => e === ENCRYPTED_ENCODING).length >= 6, 'inputs, results, the update and the summaries are sealed');
  });

  test('the API masks declared values and their copies for a caller without sensitive-reader, and shows them to one with it', async () => {
    const masked = (await platform.api(`/v1/runs/${runId}`, { key: keys.submitter })).body;
    const lookup = masked.steps.find((s: any) => s.id === 'lookup');
    assert.equal(lookup.output.card, SENSITIVE_MASK);
    assert.equal(lookup.output.ssn, SENSITIVE_MASK, 'a copy of the sensitive input is masked');
    assert.equal(lookup.output.name, 'Ada Lovelace', 'undeclared values stay');
    const letter = masked.steps.find((s: any) => s.id === 'letter');
    assert.equal(letter.output.text, `Dear Ada Lovelace, card ${SENSITIVE_MASK} is on file`);
    assert.ok(!JSON.stringify(masked).includes(SSN) && !JSON.stringify(masked).includes(CARD));

    const clear = (await platform.api(`/v1/runs/${runId}`, { key: keys.reader })).body;
    assert.equal(clear.steps.find((s: any) => s.id === 'lookup').output.card, CARD);
    assert.equal(clear.steps.find((s: any) => s.id === 'lookup').output.ssn, SSN);

    const events = (await platform.api(`/v1/runs/${runId}/events`, { key: keys.submitter })).body;
    assert.ok(events.events.length > 0);
    assert.ok(!JSON.stringify(events).includes(SSN) && !JSON.stringify(events).includes(CARD));
  });

  test('lifecycle webhooks arrive masked: a failed step whose error quotes the SSN, and the approval audit\'s comment', async () => {
    const definition = {
      name: 'kyc-reject',
      version: '1.0.0',
      sensitive: { input: ['/customer/ssn'] },
      steps: [{ id: 'verify', type: 'skill', skill: 'code_inline', inputs: { code: "throw new Error('no record for ' + args.ssn)", args: { ssn: '${input.customer.ssn}' } } }],
    };
    assert.equal((await platform.api('/v1/definitions', { method: 'POST', key: keys.submitter, json: definition })).status, 201);
    const started = await platform.api('/v1/runs', { method: 'POST', key: keys.submitter, json: { definition: 'kyc-reject', input: { customer: { ssn: SSN } } } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const failedRun = started.body.runId as string;
    const bodies = (): Array<{ type: string; data: Record<string, any> }> => receiver.requests.map((r) => JSON.parse(r.body));
    const delivered = (type: string, run: string) => bodies().find((e) => e.type === type && JSON.stringify(e).includes(run));
    for (const deadline = Date.now() + 60_000; !delivered('workflow.run.failed', failedRun) || !delivered('workflow.run.completed', runId); ) {
      assert.ok(Date.now() < deadline, `not delivered yet: ${bodies().map((e) => e.type)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const stepFailed = delivered('workflow.step.failed', failedRun);
    assert.ok(stepFailed, `the step's failure is delivered: ${bodies().map((e) => e.type)}`);
    assert.match(JSON.stringify(stepFailed.data.error), new RegExp(`no record for ${SENSITIVE_MASK.replace(/[[\]]/g, '\\$&')}`), JSON.stringify(stepFailed.data));
    for (const request of receiver.requests) for (const value of [SSN, CARD]) assert.ok(!request.body.includes(value), `${value} left in a webhook: ${request.body}`);

    // Temporal holds the failure's message sealed (the failure converter makes it a payload).
    const history = await plain.workflow.getHandle(failedRun).fetchHistory();
    assert.ok(!historyBytes(history).join('\n').includes(SSN), 'the failure message is not in the history in clear');
    const failedEvent = history.events?.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes?.failure;
    assert.equal(failedEvent?.message, 'Encoded failure');
    assert.equal(Buffer.from(failedEvent?.encodedAttributes?.metadata?.encoding ?? []).toString(), ENCRYPTED_ENCODING);

    // The API masks the same error for a caller without the role, and the approver's comment in the audit.
    const run = (await platform.api(`/v1/runs/${failedRun}`, { key: keys.submitter })).body;
    assert.equal(run.status, 'failed', JSON.stringify(run));
    assert.ok(!JSON.stringify(run).includes(SSN) && JSON.stringify(run).includes(SENSITIVE_MASK), JSON.stringify(run.error));
    const audit = await platform.api(`/v1/runs/${runId}/audit`, { key: keys.submitter });
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    assert.ok(JSON.stringify(audit.body).includes(`SSN ${SENSITIVE_MASK} matches the file`), JSON.stringify(audit.body));
    const auditForReader = await platform.api(`/v1/runs/${runId}/audit`, { key: keys.reader });
    assert.ok(JSON.stringify(auditForReader.body).includes(`SSN ${SSN} matches the file`), JSON.stringify(auditForReader.body));
  });

  test('the codec server decodes for sensitive-reader and for Temporal Web\'s origin only', async () => {
    const history = await plain.workflow.getHandle(runId).fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const body = {
      payloads: [
        {
          metadata: Object.fromEntries(Object.entries(payload!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
          data: Buffer.from(payload!.data!).toString('base64'),
        },
      ],
    };
    const post = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${platform.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers }, body: JSON.stringify(body) });

    const decoded = await post('/codec/decode', { authorization: `Bearer ${keys.reader}` });
    assert.equal(decoded.status, 200);
    const opened = (await decoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    assert.equal(Buffer.from(opened.payloads[0]!.metadata.encoding!, 'base64').toString(), 'json/plain');
    assert.ok(Buffer.from(opened.payloads[0]!.data, 'base64').toString().includes(SSN));

    assert.equal((await post('/codec/decode')).status, 401);
    assert.equal((await post('/codec/decode', { authorization: `Bearer ${keys.submitter}` })).status, 403);

    const ui = await post(`/codec/ui/${UI_TOKEN}/decode`, { origin: UI_ORIGIN });
    assert.equal(ui.status, 200);
    assert.equal(ui.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.equal((await post(`/codec/ui/${UI_TOKEN}/decode`, { origin: 'http://evil.example' })).status, 403);
    assert.equal((await post('/codec/ui/not-the-token-000000000000/decode', { origin: UI_ORIGIN })).status, 404);
    const preflight = await fetch(`${platform.url}/codec/ui/${UI_TOKEN}/decode`, {
      method: 'OPTIONS',
      headers: { origin: UI_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /X-Namespace/i);

    const encoded = await post('/codec/encode', { authorization: `Bearer ${keys.reader}` });
    assert.equal(encoded.status, 200);
  });

  test('the temporal CLI shows the run decoded through the codec server with a sensitive-reader key, and ciphertext without it', async () => {
    const show = async (...extra: string[]) =>
      (await promisify(execFile)(resolveTemporalCli(), ['workflow', 'show', '--workflow-id', runId, '--address', temporalAddress(), '--output', 'json', ...extra], { maxBuffer: 32 * 1024 * 1024 })).stdout;
    // Payload bytes are base64 in the CLI's JSON: every `data` field, decoded, joined.
    const payloadText = (json: string) => {
      const out: string[] = [];
      const walk = (v: unknown): void => {
        if (v && typeof v === 'object') {
          for (const [k, item] of Object.entries(v)) {
            if (k === 'data' && typeof item === 'string') out.push(Buffer.from(item, 'base64').toString('latin1'));
            else walk(item);
          }
        }
      };
      walk(JSON.parse(json));
      return out.join('\n');
    };
    const decoded = payloadText(await show('--codec-endpoint', `${platform.url}/codec`, '--codec-auth', `Bearer ${keys.reader}`));
    assert.ok(decoded.includes(SSN), 'the decoded history holds the input');
    const raw = await show();
    assert.ok(!payloadText(raw).includes(SSN) && raw.includes(Buffer.from(ENCRYPTED_ENCODING).toString('base64')));
  });

  test('after a key rotation (a new key first), the old run still decodes; without the old key it does not', async () => {
    const k2 = newKeyEntry();
    const rotated = new Client({
      connection: plain.connection,
      dataConverter: { payloadCodecs: [new EncryptionCodec(parseCodecKeys(JSON.stringify([k2, k1]), 'rotated'))] },
    });
    const result = (await rotated.workflow.getHandle(runId).result()) as { state: { steps: Record<string, { output?: any }> } };
    assert.equal(result.state.steps.lookup?.output.ssn, SSN);
    const withoutOld = new Client({
      connection: plain.connection,
      dataConverter: { payloadCodecs: [new EncryptionCodec(parseCodecKeys(JSON.stringify([k2]), 'only new'))] },
    });
    await assert.rejects(withoutOld.workflow.getHandle(runId).result(), /no configured payload key has the id/);
  });

  // Last, so it reads the lines of every run above, the failed one's included.
  test('no log line of the API or the workers, at debug level, holds a marked value', () => {
    const ofRun = logs.filter((line) => line.includes(runId));
    // The runs are logged (their skills' start and end, the failure), so the check below can fail.
    assert.ok(ofRun.some((line) => line.includes('skill completed')), `the run's activities log: ${ofRun.length} lines`);
    const failures = logs.filter((line) => line.includes('skill failed') && line.includes('kyc-reject'));
    assert.ok(failures.length > 0 && failures.every((line) => line.includes('"errWithheld"') && line.includes('"errorType":"CodeError"')), failures.join('\n'));
    for (const value of [SSN, CARD]) {
      const leaks = logs.filter((line) => line.includes(value));
      assert.deepEqual(leaks, [], `${value} is in the logs`);
    }
  });
});
