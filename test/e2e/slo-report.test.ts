import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { httpError, json, reply, startLlmDouble, type LlmDouble } from '../support/llm-double.ts';
import { KEYS, startTestPlatform, type TestPlatform } from '../support/platform.ts';

const BIN = fileURLToPath(new URL('../../cli/workflow.mjs', import.meta.url));
const exec = promisify(execFile);

/**
 * Seed 003's daily report on a real platform: on a fresh database every SLO says `no data`; after
 * two completed urgent runs and one failed run in the prod lane, the numbers are those runs' and
 * the verdicts follow from them (2 of 3 succeeded: the 98% SLO fails). Model figures come from
 * model steps against the LLM double (Ollama as the local route, OpenAI-compatible as the cloud one).
 */
describe('GET /v1/reports/slo', () => {
  let platform: TestPlatform;
  let work: string;
  let prod: string;
  let llm: LlmDouble;

  before(async () => {
    llm = await startLlmDouble();
    work = mkdtempSync(join(tmpdir(), 'slo-report-'));
    const keyFile = join(work, 'openai-key');
    writeFileSync(keyFile, 'sk-slo-report\n');
    // The second lane is deferrable, so the first is the only prod lane the SLOs judge.
    platform = await startTestPlatform({
      database: 'postgres',
      env: (lanes) => ({
        ADMISSION_DEFERRABLE_LANES: lanes[1]!,
        OLLAMA_BASE_URL: llm.url,
        OPENAI_BASE_URL: llm.openaiUrl,
        MODEL_ROUTES: JSON.stringify({
          routes: {
            'local/qwen-14b': { provider: 'ollama', providerModel: 'qwen3:14b', fallbacks: ['cloud/gpt'] },
            'cloud/gpt': { provider: 'openai', providerModel: 'gpt-4o-mini', cloud: true, apiKeyFile: keyFile, lanes: [lanes[0]!], reason: 'fallback' },
          },
          aliases: { default: 'local/qwen-14b' },
        }),
      }),
    });
    prod = platform.lanes[0]!;
  });

  after(async () => {
    await platform?.stop();
    await llm?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const report = async (query = '', key: string = KEYS.operator) => platform.api(`/v1/reports/slo${query}`, { key });

  test('a fresh platform: zeros and `no data`, never a pass', async () => {
    const { status, body } = await report();
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.window.spec, '24h');
    assert.equal(Date.parse(body.window.to) - Date.parse(body.window.from), 24 * 3600 * 1000);
    assert.deepEqual(body.prodLanes, [prod]);
    assert.deepEqual(body.runs, { total: { completed: 0, failed: 0, cancelled: 0 }, byDefinition: [] });
    assert.deepEqual(body.slos.map((s: any) => [s.id, s.verdict, s.value]), [
      ['prod-success', 'no data', null],
      ['prod-queue-wait-p95', 'no data', null],
      ['urgent-start', 'no data', null],
    ]);
    assert.deepEqual(body.queues.map((q: any) => [q.lane, q.depth, q.wait.samples, q.paused]), platform.lanes.map((l) => [l, 0, 0, false]));
    assert.equal(body.models.requests, 0);
    assert.equal(body.models.fallbackRateLocalToCloud, null);
    assert.deepEqual(body.cron, { schedules: [], missedExecutions: 0, healthy: null });
  });

  test('bad windows are 400s naming the parameter; the report needs the operator role', async () => {
    for (const window of ['25x', '0h', '32d', '']) {
      const { status, body } = await report(`?window=${window}`);
      assert.equal(status, 400, `${window}: ${JSON.stringify(body)}`);
      assert.equal(body.errors[0].path, 'window');
    }
    assert.equal((await report('?window=24h&extra=1')).status, 400);
    assert.equal((await report('', KEYS.submitter)).status, 403);
  });

  test('after real runs: success by definition, the prod SLO fails at 2 of 3, waits and urgent starts pass; the CLI prints the same', { timeout: 120_000 }, async () => {
    for (const [name, priority, steps] of [
      ['slo-ok', 'urgent', [{ id: 'a', type: 'skill', skill: 'echo', inputs: { n: 1 } }]],
      // No host is on the test workers' allow-list: the step fails at once (HostNotAllowed).
      ['slo-bad', 'normal', [{ id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: 'https://not-allowed.example/' }, retry: { max_attempts: 1 } }]],
    ] as const) {
      const registered = await platform.api('/v1/definitions', { method: 'POST', key: KEYS.admin, json: { name, version: '1.0.0', lane: prod, priority, steps } });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
    }
    const ids: string[] = [];
    for (const name of ['slo-ok', 'slo-bad', 'slo-ok']) ids.push((await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: {} } })).body.runId);
    assert.deepEqual(await Promise.all(ids.map(async (id) => (await platform.waitForRun(id)).status)), ['completed', 'failed', 'completed']);

    // Run-end events and the workers' samples (flushed every 2 s) land a moment after the runs close.
    let body: any;
    for (let i = 0; i < 100; i++) {
      body = (await report()).body;
      if (body.runs.total.completed + body.runs.total.failed === 3 && body.queues.find((q: any) => q.lane === prod).wait.samples === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(body.runs.byDefinition, [
      { definition: 'slo-bad', lane: prod, completed: 0, failed: 1, cancelled: 0, successRate: 0 },
      { definition: 'slo-ok', lane: prod, completed: 2, failed: 0, cancelled: 0, successRate: 1 },
    ]);
    const slo = Object.fromEntries(body.slos.map((s: any) => [s.id, s]));
    assert.equal(slo['prod-success'].verdict, 'fail');
    assert.equal(slo['prod-success'].value, 0.667);
    assert.deepEqual(slo['prod-success'].numbers, { completed: 2, failed: 1, lanes: [prod] });
    const wait = body.queues.find((q: any) => q.lane === prod).wait;
    assert.equal(wait.samples, 3, 'one attempt per skill step (platform activities are not counted)');
    assert.ok(wait.p50Seconds !== null && wait.p95Seconds !== null && wait.p50Seconds <= wait.p95Seconds);
    assert.equal(slo['prod-queue-wait-p95'].numbers.samples, 3);
    assert.equal(slo['prod-queue-wait-p95'].value, wait.p95Seconds);
    assert.equal(slo['prod-queue-wait-p95'].verdict, wait.p95Seconds < 30 ? 'pass' : 'fail');
    // Only slo-ok is urgent: its two echo attempts are the urgent samples.
    assert.equal(slo['urgent-start'].numbers.samples, 2);
    assert.equal(slo['urgent-start'].verdict, slo['urgent-start'].value < 10 ? 'pass' : 'fail');
    assert.equal(body.queues.find((q: any) => q.lane === platform.lanes[1]).wait.samples, 0);

    const env = { PATH: process.env.PATH ?? '', HOME: work, WORKFLOW_CONFIG: join(work, 'none.json'), WORKFLOW_API_URL: platform.url, WORKFLOW_API_KEY: KEYS.operator };
    const json = JSON.parse((await exec(process.execPath, [BIN, 'slo', '--window', '2h', '--json'], { cwd: work, env })).stdout);
    assert.equal(json.window.spec, '2h');
    assert.deepEqual(json.runs.byDefinition, body.runs.byDefinition);
    const text = (await exec(process.execPath, [BIN, 'slo'], { cwd: work, env })).stdout;
    assert.match(text, /prod workflow success >= 98%\s+98%\s+66\.7%\s+fail/);
    assert.match(text, new RegExp(`slo-ok\\s+${prod}\\s+2\\s+0\\s+0\\s+100%`));
  });

  test('model figures: fallback rate local → cloud, latency and tokens/s from the requests the workers made', { timeout: 120_000 }, async () => {
    // Two requests the local route answers (the double reports 1 ms of generation, so tokens/s is
    // output tokens × 1000), one it fails with a 500 that the cloud route then answers.
    llm.script('qwen3:14b', reply('forty', { usage: { inputTokens: 5, outputTokens: 40 }, delayMs: 250 }), reply('sixty', { usage: { inputTokens: 5, outputTokens: 60 }, delayMs: 250 }), httpError(500, { message: 'out of memory' }));
    llm.script('gpt-4o-mini', json({ answer: 'from the cloud' }));
    const registered = await platform.api('/v1/definitions', {
      method: 'POST',
      key: KEYS.admin,
      json: { name: 'slo-model', version: '1.0.0', lane: prod, steps: [{ id: 'ask', type: 'model', model: 'local/qwen-14b', user_prompt: 'hi' }] },
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    // One after another, so the double's script answers them in order.
    for (let i = 0; i < 3; i += 1) {
      const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: 'slo-model', input: {}, idempotencyKey: `slo-model-${i}` } });
      assert.equal((await platform.waitForRun(started.body.runId, 60_000)).status, 'completed');
    }
    let models: any;
    for (let i = 0; i < 100; i++) {
      models = (await report()).body.models;
      if (models.requests === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(
      { requests: models.requests, fellBack: models.fellBack, localFirst: models.localFirst, localToCloud: models.localToCloud, rate: models.fallbackRateLocalToCloud },
      { requests: 3, fellBack: 1, localFirst: 3, localToCloud: 1, rate: 0.333 },
    );
    assert.ok(models.latencyMs.p50 >= 250, `latency p50 ${models.latencyMs.p50} ms covers the double's 250 ms delay`);
    assert.ok(models.latencyMs.p95 >= models.latencyMs.p50 && models.latencyMs.p95 < 60_000);
    const local = models.byRoute.find((r: any) => r.route === 'local/qwen-14b');
    assert.deepEqual({ provider: local.provider, answered: local.answered, tps: local.tokensPerSecondP50 }, { provider: 'ollama', answered: 2, tps: 50_000 });
    assert.ok(local.latencyP50Ms >= 250);
    const cloud = models.byRoute.find((r: any) => r.route === 'cloud/gpt');
    assert.deepEqual({ provider: cloud.provider, answered: cloud.answered }, { provider: 'openai', answered: 1 });
    assert.ok(models.tokensPerSecond.p50 >= 40_000 && models.tokensPerSecond.p50 <= 60_000, JSON.stringify(models.tokensPerSecond));
  });
});
