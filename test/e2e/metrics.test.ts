import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../embedded/ports.ts';
import { KEYS, startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Prometheus metrics on by default, scraped from real endpoints: the API's `/metrics` on its own
 * port and a real worker process (`platform worker`) with its own endpoint, after real runs on the
 * dev server: a succeeding run and a failing one of a lane only that worker process serves.
 */

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The value of the one sample whose name is `name` and whose labels include `labels`; undefined if none. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const matches = text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)));
  if (matches.length === 0) return undefined;
  assert.equal(matches.length, 1, `one ${name} sample for ${JSON.stringify(labels)}:\n${matches.join('\n')}`);
  return Number(matches[0]!.slice(matches[0]!.lastIndexOf(' ') + 1));
}

describe('prometheus metrics', () => {
  let platform: TestPlatform;
  let worker: ChildProcess;
  let workerOutput = '';
  const lane = `metrics-${randomBytes(3).toString('hex')}`;
  let workerUrl: string;

  before(async () => {
    // A third lane that no in-process worker serves: only the worker process below.
    platform = await startTestPlatform({ database: 'postgres', env: (lanes) => ({ LANES: [...lanes, lane].join(',') }) });
    const port = await freePort();
    workerUrl = `http://127.0.0.1:${port}/metrics`;
    const cli = fileURLToPath(new URL('../../cli/platform.ts', import.meta.url));
    worker = spawn(process.execPath, ['--import', 'tsx', cli, 'worker', '--lane', lane], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: temporalAddress(),
        DATABASE_URL: platform.config.DATABASE_URL,
        LANES: platform.config.LANES.join(','),
        METRICS_PORT: String(port),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (d: Buffer) => (workerOutput += d.toString('utf8')));
    worker.stderr!.on('data', (d: Buffer) => (workerOutput += d.toString('utf8')));
    await until('the worker process polling', async () => (workerOutput.includes('lane workers polling') ? true : undefined), 90_000);
    for (const [name, steps] of [
      ['metrics-ok', [{ id: 'say', type: 'skill', skill: 'echo', inputs: { message: 'hi' } }]],
      // The host is not on the worker's allow-list: the step fails at once (HostNotAllowed), and so does the run.
      ['metrics-bad', [{ id: 'call', type: 'skill', skill: 'http-fetch', inputs: { url: 'https://not-allowed.example/x' }, retry: { max_attempts: 1 } }]],
    ] as const) {
      const registered = await platform.api('/v1/definitions', { method: 'POST', key: KEYS.admin, json: { name, version: '1.0.0', lane, steps } });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
    }
  });

  after(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.kill('SIGTERM');
      await exited;
    }
    await platform?.stop();
  });

  test('a worker process serves run, step and queue-wait series and the Temporal SDK metrics; the API serves backlog and lanes', { timeout: 120_000 }, async () => {
    assert.match(workerOutput, new RegExp(`"url":"${workerUrl.replace(/[/.]/g, '\\$&')}".*prometheus metrics endpoint|prometheus metrics endpoint.*${workerUrl.replace(/[/.]/g, '\\$&')}`));
    const runs: Record<string, string> = {};
    for (const name of ['metrics-ok', 'metrics-bad', 'metrics-ok']) {
      const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input: {} } });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      runs[`${name}-${Object.keys(runs).length}`] = started.body.runId;
    }
    const outcomes = await Promise.all(Object.values(runs).map(async (id) => (await platform.waitForRun(id)).status));
    assert.deepEqual(outcomes, ['completed', 'failed', 'completed']);

    const tenant = 'acme-';
    // The run-end events are written by the lane's platform activity a moment after the run closes.
    const text = await until('the run series', async () => {
      const body = await (await fetch(workerUrl)).text();
      return sample(body, 'workflow_runs_completed_total', { definition: 'metrics-ok', lane }) === 2 && sample(body, 'workflow_runs_failed_total', { definition: 'metrics-bad', lane }) === 1 ? body : undefined;
    });
    assert.equal(sample(text, 'workflow_runs_started_total', { definition: 'metrics-ok', lane }), 2);
    assert.equal(sample(text, 'workflow_runs_started_total', { definition: 'metrics-bad', lane }), 1);
    assert.equal(sample(text, 'workflow_runs_failed_total', { definition: 'metrics-ok', lane }), undefined, 'no failure for the good definition');
    assert.equal(sample(text, 'workflow_runs_completed_total', { definition: 'metrics-bad', lane }), undefined);
    assert.match(text, new RegExp(`^workflow_runs_failed_total\\{definition="metrics-bad",lane="${lane}",tenant="${tenant}[0-9a-f]{6}"\\} 1$`, 'm'));
    assert.equal(sample(text, 'workflow_steps_total', { lane, kind: 'skill', status: 'completed' }), 2);
    assert.equal(sample(text, 'workflow_steps_total', { lane, kind: 'skill', status: 'failed' }), 1);
    // The activity interceptor: one attempt per skill step, its queue wait and its duration.
    assert.equal(sample(text, 'workflow_queue_wait_seconds_count', { lane, task_queue: `${lane}.skills`, kind: 'skills' }), 3);
    assert.equal(sample(text, 'workflow_step_duration_seconds_count', { lane, kind: 'skills', activity: 'echo', outcome: 'ok' }), 2);
    assert.equal(sample(text, 'workflow_step_duration_seconds_count', { lane, kind: 'skills', activity: 'http-fetch', outcome: 'failed' }), 1);
    // recordRunEvents runs on the platform queue and is measured too.
    assert.ok((sample(text, 'workflow_queue_wait_seconds_count', { lane, task_queue: `${lane}.platform`, kind: 'platform' }) ?? 0) >= 3);
    // No run id is a label anywhere.
    for (const id of Object.values(runs)) assert.ok(!text.includes(id), `run id ${id} in the metrics`);
    // The Temporal SDK's own metrics, from the Runtime, on the same endpoint.
    assert.match(text, new RegExp(`^temporal_activity_schedule_to_start_latency_count\\{[^}]*task_queue="${lane}\\.skills"[^}]*\\} \\d+`, 'm'));
    assert.match(text, /^temporal_worker_task_slots_available\{/m);

    // The API's own endpoint (no key needed): the lane's queues as DescribeTaskQueue sees them.
    const api = await (await fetch(`${platform.url}/metrics`)).text();
    assert.equal(sample(api, 'workflow_queue_backlog', { lane, task_queue: `${lane}.skills`, role: 'skills' }), 0);
    assert.ok((sample(api, 'workflow_queue_pollers', { lane, task_queue: `${lane}.skills` }) ?? 0) >= 1);
    assert.equal(sample(api, 'workflow_runs_in_flight', { lane }), 0);
    assert.equal(sample(api, 'workflow_approvals_pending', { lane }), 0);
  });
});
