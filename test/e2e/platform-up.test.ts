import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { EncryptionCodec, loadCodecKeys } from '../../common/codec.ts';
import { freePort, isListening } from '../../embedded/ports.ts';

/**
 * The README's first command, for real: `platform up` on embedded defaults in a fresh data folder
 * brings up Temporal (with its Web UI), PGlite, one worker per lane and the API; a definition runs
 * end to end; Ctrl-C (SIGINT) stops the whole tree; starting again keeps definitions and runs.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'platform-up-'));
const spawned: ChildProcess[] = [];
after(async () => {
  // A failed assertion must not leave a platform running (it would keep this file alive).
  for (const child of spawned) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dataDir, { recursive: true, force: true });
});

interface Up {
  child: ChildProcess;
  ready: Record<string, unknown>;
  stderr: () => string;
}

async function startUp(env: NodeJS.ProcessEnv, args = ['--import', 'tsx', 'cli/platform.ts', 'up']): Promise<Up> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 180 s:\n${stdout.slice(-3000)}\n${stderr.slice(-2000)}`)), 180_000);
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
      for (const line of stdout.split('\n')) {
        if (!line.includes('"platform ready"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`up exited early (${code}):\n${stdout.slice(-3000)}\n${stderr.slice(-2000)}`));
    });
  });
  return { child, ready, stderr: () => stderr };
}

async function stopUp(up: Up): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => up.child.once('exit', (code) => resolve(code)));
  up.child.kill('SIGINT');
  const timeout = new Promise<null>((_, reject) => setTimeout(() => reject(new Error('up did not stop in 60 s')), 60_000).unref());
  return await Promise.race([exited, timeout]);
}

/** The environment of an `up` on embedded defaults, on free ports, in `dir`. */
async function upEnv(dir: string) {
  const ports = { api: await freePort(), temporal: await freePort(), ui: await freePort(), pg: await freePort() };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'API_KEYS', 'API_KEYS_FILE', 'WORKFLOW_BUNDLE_PATH', 'LANES', 'DEFAULT_LANE']) delete env[name];
  Object.assign(env, {
    DATA_DIR: dir,
    API_PORT: String(ports.api),
    TEMPORAL_DEV_PORT: String(ports.temporal),
    TEMPORAL_UI_PORT: String(ports.ui),
    EMBEDDED_PG_PORT: String(ports.pg),
    LOG_LEVEL: 'info',
  });
  return { ports, env };
}

test('up brings the whole platform up, runs a definition, stops on Ctrl-C and keeps its data', { timeout: 420_000 }, async (t) => {
  const { ports, env } = await upEnv(dataDir);
  const first = await startUp(env);
  t.diagnostic(`first start ready in ${String(first.ready.readyInMs)} ms`);
  const key = readFileSync(join(dataDir, 'dev-api-key'), 'utf8').trim();
  // stderr is its own pipe: give the banner a moment to arrive after the stdout ready line.
  for (let i = 0; i < 50 && !first.stderr().includes(key); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(first.stderr(), new RegExp(`Development API key .*${key}`), 'the dev key is printed');
  const api = `http://127.0.0.1:${ports.api}`;
  const call = async (path: string, body?: unknown) => {
    const response = await fetch(`${api}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as any };
  };

  const definition = {
    name: 'greeting',
    version: '1.0.0',
    steps: [
      { id: 'greet', type: 'skill', skill: 'echo', inputs: { message: 'hello ${input.name}' }, outputs: ['message'] },
      { id: 'shout', type: 'skill', skill: 'echo', inputs: { loud: 'greet.message' } },
    ],
  };
  assert.equal((await call('/v1/definitions', definition)).status, 201);
  const started = await call('/v1/runs', { definition: 'greeting', input: { name: 'Ada' } });
  assert.equal(started.status, 201);
  const runId = started.body.runId as string;
  let run: any;
  for (let i = 0; i < 100; i++) {
    run = (await call(`/v1/runs/${runId}`)).body;
    if (run.status !== 'running') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(run.status, 'completed');
  assert.deepEqual(run.output, { loud: 'hello Ada' });

  // What an SRE sees in Temporal Web: activities named after the skill, summaries naming the step.
  assert.equal((await fetch(`http://127.0.0.1:${ports.ui}/`)).status, 200, 'the Web UI answers');
  const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
  const history = await new Client({ connection }).workflow.getHandle(runId).fetchHistory();
  await connection.close();
  const all = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
  // Payloads are encrypted by default: open summaries with the key up made in the data folder.
  const codec = new EncryptionCodec(loadCodecKeys({ PAYLOAD_CODEC_KEYS_FILE: join(dataDir, 'codec-keys.json') })!);
  const opened = async (p: Payload) => defaultPayloadConverter.fromPayload((await codec.decode([p]))[0]!);
  // The run's lifecycle events are written by the platform activity, on its own queue.
  const platformWrites = all.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recordRunEvents');
  assert.ok(platformWrites.length >= 1);
  assert.ok(platformWrites.every((e) => e.activityTaskScheduledEventAttributes?.taskQueue?.name === 'prod-critical.platform'));
  assert.deepEqual(
    await Promise.all(platformWrites.map((e) => opened(e.userMetadata!.summary!))),
    platformWrites.map(() => 'lifecycle events and audit trail'),
  );
  const scheduled = all.filter((e) => !platformWrites.includes(e));
  assert.deepEqual(scheduled.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name), ['echo', 'echo']);
  assert.deepEqual(
    await Promise.all(scheduled.map((e) => opened(e.userMetadata!.summary!))),
    ['step greet', 'step shout'],
  );
  assert.equal(scheduled[0]?.activityTaskScheduledEventAttributes?.taskQueue?.name, 'prod-critical.skills');

  assert.equal(await stopUp(first), 0, 'Ctrl-C stops cleanly');
  for (const port of Object.values(ports)) assert.equal(await isListening('127.0.0.1', port), false, `port ${port} is released`);

  const second = await startUp(env);
  t.diagnostic(`restart ready in ${String(second.ready.readyInMs)} ms`);
  try {
    assert.equal((await call('/v1/definitions/greeting')).status, 200, 'definitions survive a restart');
    const again = (await call(`/v1/runs/${runId}`)).body;
    assert.equal(again.status, 'completed', 'runs survive a restart');
    assert.deepEqual(again.steps.map((s: { id: string }) => s.id), ['greet', 'shout']);
  } finally {
    assert.equal(await stopUp(second), 0);
  }
});

test('the production build (npm run build) runs the same platform from compiled JavaScript', { timeout: 600_000 }, async (t) => {
  const built = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(built.status, 0, `${built.stdout.slice(-2000)}\n${built.stderr.slice(-2000)}`);
  const dir = mkdtempSync(join(tmpdir(), 'platform-up-built-'));
  const { ports, env } = await upEnv(dir);
  const up = await startUp(env, ['dist/cli/platform.js', 'up']);
  try {
    t.diagnostic(`compiled start ready in ${String(up.ready.readyInMs)} ms`);
    // Its API and workers are compiled too: no tsx in their command lines, and the prebuilt bundle, not a webpack build.
    const children = spawnSync('ps', ['--ppid', String(up.child.pid), '-o', 'args='], { encoding: 'utf8' }).stdout;
    assert.match(children, /dist\/cli\/platform\.js api/, children);
    assert.match(children, /dist\/cli\/platform\.js worker/, children);
    assert.doesNotMatch(children, /tsx/, children);
    const key = readFileSync(join(dir, 'dev-api-key'), 'utf8').trim();
    const call = async (path: string, body?: unknown) => {
      const response = await fetch(`http://127.0.0.1:${ports.api}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    const registered = await call('/v1/definitions', { name: 'built', version: '1.0.0', steps: [{ id: 'greet', type: 'skill', skill: 'echo', inputs: { message: 'hi ${input.name}' } }] });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const started = await call('/v1/runs', { definition: 'built', input: { name: 'Ada' } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    let run: any;
    for (let i = 0; i < 300; i++) {
      run = (await call(`/v1/runs/${started.body.runId}`)).body;
      if (run.status !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.output, { message: 'hi Ada' });
    assert.equal((await fetch(`http://127.0.0.1:${ports.api}/graph/`)).status, 200, 'files read from the checkout (the graph page) are found');
  } finally {
    assert.equal(await stopUp(up), 0);
    rmSync(dir, { recursive: true, force: true });
  }
});
