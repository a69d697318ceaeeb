import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../common/logger.ts';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../embedded/pglite.ts';
import { freePort } from '../../embedded/ports.ts';
import { readSupervisorState, type SupervisorState } from '../../embedded/supervisor-state.ts';
import { startLoopbackHttp, type LoopbackHttp } from '../support/loopback-http.ts';

/**
 * The fault matrix, on the real embedded platform (`platform up`: Temporal dev server, one worker
 * process per lane, the API) with its database a PGlite server this file hosts, so it can stop and
 * restart it. Each case injects one fault while runs are open; afterwards every run has completed
 * (none lost), no run was started twice, and the external side effect (a POST with an
 * Idempotency-Key to a loopback receiver standing in for a third-party API) was applied exactly
 * once per key: the receiver drops repeats of a key, as such APIs do, and the test checks the set
 * of keys it applied is exactly one per run.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'fault-matrix-'));
const dataDir = join(work, 'data');
const logger = createLogger('fault-matrix', 'silent');

let upProcess: ChildProcess | undefined;
let upLog = '';
let postgres: EmbeddedPostgres | undefined;
let pgPort = 0;
let receiver: LoopbackHttp;
let api = '';
let key = '';
/** Milliseconds the receiver holds each request before answering (a slow third-party API). */
let effectDelayMs = 0;
/** Keys the receiver applied (first arrival), and how many times each arrived. */
const applied = new Map<string, number>();

async function call(path: string, options: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const response = await fetch(`${api}${path}`, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...options.headers },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as any };
}

function state(): SupervisorState {
  return readSupervisorState(join(dataDir, 'supervisor-state.json'));
}

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      // The platform's log without the request lines, and the supervisor's state, to say why.
      const lines = upLog.split('\n').filter((l) => !l.includes('"msg":"http"'));
      let supervisor = '';
      try {
        supervisor = JSON.stringify(state().components);
      } catch {
        supervisor = '(no state file)';
      }
      throw new Error(`${what}: not within ${timeoutMs} ms\nsupervisor: ${supervisor}\n${lines.slice(-40).join('\n')}`);
    }
    await sleep(everyMs);
  }
}

/** Starts runs of the probe definition, each with its own idempotency key (a client would retry with it). */
async function startRuns(label: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const started = await call('/v1/runs', { body: { definition: 'fault-probe', input: { n: `${label}-${i}` } }, headers: { 'idempotency-key': `${label}-${i}` } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    ids.push(started.body.runId as string);
  }
  return ids;
}

/** Every run completes with its own output, its lifecycle rows end in exactly one completion, and its side effect was applied once. */
async function assertAllCompleted(label: string, runIds: string[], timeoutMs: number): Promise<void> {
  for (const runId of runIds) {
    const run = await until(
      `run ${runId} completes`,
      async () => {
        const r = await call(`/v1/runs/${runId}`);
        return r.status === 200 && r.body.status !== 'running' ? r.body : undefined;
      },
      timeoutMs,
      250,
    );
    assert.equal(run.status, 'completed', `${runId}: ${JSON.stringify(run.error ?? run)}`);
  }
  const outputs = await Promise.all(runIds.map(async (id) => (await call(`/v1/runs/${id}`)).body.output.n as string));
  assert.deepEqual(outputs.sort(), runIds.map((_, i) => `${label}-${i}`).sort(), 'each run carried its own input through');
  // The lifecycle rows (written by the platform activity while the faults happen): one start and
  // one completion per run, contiguous seqs, nothing written twice.
  for (const runId of runIds) {
    const events = await until(
      `lifecycle rows of ${runId}`,
      async () => {
        const r = await call(`/v1/runs/${runId}/events?limit=1000`);
        const list = r.body?.events as Array<{ seq: number; type: string }> | undefined;
        return list?.some((e) => e.type === 'workflow.run.completed') ? list : undefined;
      },
      30_000,
      250,
    );
    assert.equal(events.filter((e) => e.type === 'workflow.run.started').length, 1, `${runId}: one start event`);
    assert.equal(events.filter((e) => e.type === 'workflow.run.completed').length, 1, `${runId}: one completion event`);
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
      `${runId}: lifecycle seqs are 1..n without gaps or repeats`,
    );
  }
  // One side effect per run: the keys applied for this case are exactly one per run id.
  const keys = [...applied.keys()].filter((k) => runIds.some((id) => k.startsWith(`${id}/`)));
  assert.deepEqual(keys.sort(), runIds.map((id) => `${id}/effect`).sort(), 'one applied side effect per run');
  const strays = [...applied.keys()].filter((k) => k.includes(`fault-probe-`) && !k.includes('/effect'));
  assert.deepEqual(strays, []);
}

async function startPostgres(): Promise<void> {
  postgres = await startEmbeddedPostgres({ dataDir: join(work, 'pglite'), port: pgPort, maxConnections: 16, logger });
}

before(async () => {
  receiver = await startLoopbackHttp({
    '/effect': (req, res) => {
      const k = String(req.headers['idempotency-key'] ?? '');
      applied.set(k, (applied.get(k) ?? 0) + 1);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, duplicate: (applied.get(k) ?? 0) > 1 }));
      }, effectDelayMs);
    },
  });
  pgPort = await freePort();
  await startPostgres();
  const ports = { api: await freePort(), temporal: await freePort(), ui: await freePort() };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['TEMPORAL_ADDRESS', 'API_KEYS', 'API_KEYS_FILE', 'WORKFLOW_BUNDLE_PATH', 'LANES', 'DEFAULT_LANE']) delete env[name];
  Object.assign(env, {
    DATA_DIR: dataDir,
    API_PORT: String(ports.api),
    TEMPORAL_DEV_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    DATABASE_URL: postgres!.url,
    DATABASE_POOL_SIZE: '2',
    HTTP_FETCH_ALLOWED_HOSTS: receiver.host,
    LOG_LEVEL: 'info',
  });
  upProcess = spawn(process.execPath, ['--import', 'tsx', 'cli/platform.ts', 'up'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (c: Buffer) => {
    upLog += c.toString();
    if (upLog.length > 400_000) upLog = upLog.slice(-200_000);
  };
  upProcess.stdout?.on('data', append);
  upProcess.stderr?.on('data', append);
  await until('platform ready', () => upLog.includes('"platform ready"') || undefined, 180_000, 200);
  api = `http://127.0.0.1:${ports.api}`;
  key = readFileSync(join(dataDir, 'dev-api-key'), 'utf8').trim();
  const definition = {
    name: 'fault-probe',
    version: '1.0.0',
    steps: [
      // A short step timeout: an attempt lost with its worker is retried within seconds.
      { id: 'effect', type: 'skill', skill: 'notify-webhook', timeout: 4, inputs: { url: `${receiver.url}/effect`, message: { n: '${input.n}' } } },
      { id: 'after', type: 'skill', skill: 'echo', inputs: { n: '${input.n}' } },
    ],
  };
  const registered = await call('/v1/definitions', { body: definition });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
});

after(async () => {
  if (upProcess && upProcess.exitCode === null && upProcess.signalCode === null) {
    const exited = new Promise((resolve) => upProcess!.once('exit', resolve));
    upProcess.kill('SIGINT');
    const timer = setTimeout(() => upProcess!.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  }
  await postgres?.stop().catch(() => undefined);
  await receiver?.close();
  rmSync(work, { recursive: true, force: true });
});

test('SIGKILL of a lane worker mid-activity: the attempt is retried on the restarted worker, each side effect applied once', { timeout: 180_000 }, async () => {
  effectDelayMs = 1500;
  const before = state().components['worker:prod-critical']!;
  const runIds = await startRuns('worker-kill', 4);
  // Mid-activity: the receiver holds requests of these runs open.
  await until('requests in flight', () => runIds.filter((id) => applied.has(`${id}/effect`)).length >= 2 || undefined, 30_000, 50);
  process.kill(before.pid!, 'SIGKILL');
  // /readyz says so while the worker is down, and the supervisor brings it back (logged).
  const notReady = await until('/readyz reports the restart', async () => {
    const r = await fetch(`${api}/readyz`);
    const body = (await r.json()) as { checks: Record<string, string> };
    return r.status === 503 && /worker:prod-critical (restarting|starting)/.test(body.checks.supervisor ?? '') ? body : undefined;
  }, 10_000, 50);
  assert.match(notReady.checks.supervisor!, /SIGKILL/);
  const restarted = await until('worker restarted', () => {
    const s = state().components['worker:prod-critical']!;
    return s.state === 'running' && s.pid !== before.pid ? s : undefined;
  }, 30_000);
  assert.equal(restarted.restarts, before.restarts + 1);
  assert.match(upLog, /worker:prod-critical exited; restarting/);
  effectDelayMs = 0;
  await assertAllCompleted('worker-kill', runIds, 90_000);
  await until('/readyz ready again', async () => (await fetch(`${api}/readyz`)).status === 200 || undefined, 30_000, 200);
});

test('SIGKILL of the Temporal dev server mid-run: it comes back on the same SQLite file and every open run completes', { timeout: 240_000 }, async () => {
  effectDelayMs = 1000;
  const before = state().components.temporal!;
  const runIds = await startRuns('temporal-kill', 4);
  await until('requests in flight', () => runIds.filter((id) => applied.has(`${id}/effect`)).length >= 1 || undefined, 30_000, 50);
  process.kill(before.pid!, 'SIGKILL');
  await until('the killed dev server is gone', () => {
    try {
      process.kill(before.pid!, 0);
      return undefined;
    } catch {
      return true;
    }
  }, 10_000, 50);
  // While the supervisor has it down (a 1 s backoff, then the start), /readyz says so. Asked only
  // once the state says so: a request sent at the very moment of the kill can read the old state
  // and then wait out the reconnect (under 3 s), answering 200 for a restart it never saw.
  await until('the supervisor marks Temporal down', () => (['restarting', 'starting'].includes(state().components.temporal!.state) ? true : undefined), 10_000, 20);
  const notReady = await fetch(`${api}/readyz`);
  const body = (await notReady.json()) as { checks: Record<string, string> };
  assert.equal(notReady.status, 503, JSON.stringify(body));
  assert.match(body.checks.supervisor ?? '', /temporal (restarting|starting) after SIGKILL/);
  const restarted = await until('dev server restarted', () => {
    const s = state().components.temporal!;
    return s.state === 'running' && s.pid !== before.pid ? s : undefined;
  }, 60_000);
  assert.equal(restarted.restarts, before.restarts + 1);
  assert.match(upLog, /temporal exited; restarting/);
  effectDelayMs = 0;
  await assertAllCompleted('temporal-kill', runIds, 150_000);
  // Runs from before the crash are still there (same database file).
  assert.equal((await call(`/v1/runs/${runIds[0]}`)).body.status, 'completed');
});

test('the API killed during a start burst: clients retrying with their idempotency keys start each run exactly once', { timeout: 180_000 }, async () => {
  effectDelayMs = 0;
  const before = state().components.api!;
  const count = 16;
  const attempts = new Map<number, number>();
  // Each client retries its start (same Idempotency-Key) until the API answers 201 or 200.
  const startOne = async (i: number): Promise<string> => {
    for (;;) {
      attempts.set(i, (attempts.get(i) ?? 0) + 1);
      try {
        const r = await call('/v1/runs', { body: { definition: 'fault-probe', input: { n: `api-kill-${i}` } }, headers: { 'idempotency-key': `api-kill-${i}` } });
        if (r.status === 201 || r.status === 200) return r.body.runId as string;
        assert.ok(r.status === 503, `start ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      } catch {
        // connection refused or reset: the API is down
      }
      await sleep(200);
    }
  };
  // A burst spread over ~0.5 s; the API is killed as soon as the first start has been answered.
  let first: () => void = () => undefined;
  const firstAnswered = new Promise<void>((resolve) => (first = resolve));
  const burst = Array.from({ length: count }, async (_, i) => {
    await sleep(i * 30);
    const id = await startOne(i);
    first();
    return id;
  });
  await firstAnswered;
  process.kill(before.pid!, 'SIGKILL');
  const runIds = await Promise.all(burst);
  assert.ok([...attempts.values()].some((n) => n > 1), 'some starts hit the dead API and were retried');
  assert.equal(new Set(runIds).size, count, 'one run per idempotency key');
  const restarted = state().components.api!;
  assert.ok(restarted.pid !== before.pid && restarted.restarts === before.restarts + 1);
  // A retry after the restart answers the run it started, not a new one.
  const again = await call('/v1/runs', { body: { definition: 'fault-probe', input: { n: 'api-kill-0' } }, headers: { 'idempotency-key': 'api-kill-0' } });
  assert.equal(again.status, 200);
  assert.equal(again.body.runId, runIds[0]);
  await assertAllCompleted('api-kill', runIds, 120_000);
  // None started twice: the platform lists exactly these runs for the burst's inputs.
  assert.equal(runIds.filter((id) => [...applied.keys()].includes(`${id}/effect`)).length, count);
});

test('PostgreSQL (PGlite) stopped and restarted while runs write lifecycle rows: the writes are retried, nothing lost or doubled', { timeout: 180_000 }, async () => {
  effectDelayMs = 1500;
  const runIds = await startRuns('db-restart', 4);
  await until('requests in flight', () => runIds.filter((id) => applied.has(`${id}/effect`)).length >= 2 || undefined, 30_000, 50);
  await postgres!.stop();
  // While the database is down, /readyz says so and a start answers 503 (not a 500).
  const down = await fetch(`${api}/readyz`);
  assert.equal(down.status, 503);
  const refused = await call('/v1/runs', { body: { definition: 'fault-probe', input: { n: 'x' } } }).catch(() => ({ status: 0, body: undefined }));
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  await sleep(4000);
  await startPostgres();
  effectDelayMs = 0;
  await assertAllCompleted('db-restart', runIds, 120_000);
  await until('/readyz ready again', async () => (await fetch(`${api}/readyz`)).status === 200 || undefined, 30_000, 200);
});
