/**
 * `npm run fuzz`: schemathesis over the served OpenAPI document against an embedded platform this
 * script starts (`platform up` on free ports, a fresh data folder, its own Temporal dev server;
 * a fresh database on the machine's PostgreSQL when it answers, else PGlite), every operation, in
 * three passes:
 *
 *   1. with an admin key and real ids seeded (a definition, a run, a schedule, a webhook and a
 *      delivery), so generated requests reach the handlers behind the lookups;
 *   2. with the key and generated ids (malformed encodings, control characters, huge values);
 *   3. without a key (every operation must answer its documented 401).
 *
 * Checks: no 5xx, every response matches its documented schema, status code and content type.
 * Exits non-zero when schemathesis finds anything. schemathesis itself (pinned in
 * scripts/fuzz-requirements.txt) is installed once by scripts/fuzz-setup.sh.
 *
 *   npm run fuzz                      # the full pass (a few minutes)
 *   npm run fuzz -- --quick           # the short seeded pass CI runs
 *   npm run fuzz -- --seed 7 --max-examples 50
 *   npm run fuzz -- --pglite           # up's embedded PGlite even when PostgreSQL answers
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../embedded/ports.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ST = join(ROOT, 'node_modules/.cache/schemathesis-venv/bin/st');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seed: { type: 'string' },
    'max-examples': { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
    pglite: { type: 'boolean', default: false },
  },
});
const seed = args.seed ?? (args.quick ? '2112' : String(Date.now() % 1_000_000));
const maxExamples = args['max-examples'] ?? (args.quick ? '8' : '60');
const log = (message: string) => process.stderr.write(`fuzz: ${message}\n`);

const setup = spawnSync('bash', [join(ROOT, 'scripts/fuzz-setup.sh')], { stdio: 'inherit' });
if (setup.status !== 0) process.exit(setup.status ?? 1);

const dataDir = mkdtempSync(join(tmpdir(), 'fuzz-'));
const key = `fuzz_${randomBytes(18).toString('base64url')}`;
const ports = { api: await freePort(), temporal: await freePort(), ui: await freePort(), pg: await freePort() };
const api = `http://127.0.0.1:${ports.api}`;

// A loopback webhook receiver, so the seeded subscription has deliveries to list and retry.
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.statusCode = 500; // every delivery fails, so a dead letter soon exists
    res.end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverPort = (receiver.address() as { port: number }).port;

// The machine's PostgreSQL when it answers (a fresh database, dropped afterwards), else up's PGlite.
// PGlite multiplexes every connection onto one session and now and then answers a concurrent
// extended-protocol query with "unnamed prepared statement does not exist": a 500 that is PGlite's,
// not the API's, so it would make the fuzzing verdict depend on luck.
const pgAdminUrl = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
let database: { url: string; drop(): Promise<void> } | undefined;
if (!args.pglite) {
  const name = `fuzz_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: pgAdminUrl, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(pgAdminUrl);
    url.pathname = `/${name}`;
    database = {
      url: url.toString(),
      async drop() {
        const c = new pg.Client({ connectionString: pgAdminUrl });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  } catch (error) {
    log(`PostgreSQL at ${new URL(pgAdminUrl).host} is not reachable (${(error as Error).message}); using PGlite`);
  } finally {
    await admin.end().catch(() => undefined);
  }
}

const env: NodeJS.ProcessEnv = { ...process.env };
for (const name of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'API_KEYS_FILE', 'WORKFLOW_BUNDLE_PATH', 'LANES', 'DEFAULT_LANE']) delete env[name];
Object.assign(env, {
  DATA_DIR: dataDir,
  API_PORT: String(ports.api),
  TEMPORAL_DEV_PORT: String(ports.temporal),
  TEMPORAL_UI_PORT: String(ports.ui),
  EMBEDDED_PG_PORT: String(ports.pg),
  LOG_LEVEL: 'warn',
  API_KEYS: JSON.stringify([{ key, principal: 'fuzzer', roles: ['submit', 'approve', 'admin'], tenant: 'fuzz', groups: ['fuzzers'] }]),
  // schemathesis sends thousands of requests a minute; the limiter stays on, above that.
  API_RATE_LIMIT: '1000000',
  WEBHOOK_MAX_ATTEMPTS: '1',
  WEBHOOK_RETRY_BASE_MS: '10',
  ...(database ? { DATABASE_URL: database.url } : {}),
});

const platformLog = join(dataDir, 'platform.log');
writeFileSync(platformLog, '');
const logStream = createWriteStream(platformLog, { flags: 'a' });
let platformOutput = '';
log(`starting the embedded platform (API ${api}, data ${dataDir}, ${database ? 'PostgreSQL' : 'PGlite'})`);
const platform: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'cli/platform.ts', 'up'], {
  cwd: ROOT,
  env,
  stdio: ['ignore', 'pipe', 'pipe'],
});
for (const stream of [platform.stdout, platform.stderr]) {
  stream?.on('data', (chunk: Buffer) => {
    logStream.write(chunk);
    platformOutput = (platformOutput + chunk.toString()).slice(-20_000);
  });
}

let exitCode = 1;
try {
  await waitForPlatform();
  const ids = await seedIds();
  log(`seeded ${JSON.stringify(ids)}`);
  const failures: string[] = [];
  const passes: Array<{ name: string; headers: Record<string, string>; parameters: Record<string, string> }> = [
    { name: 'key, seeded ids', headers: { Authorization: `Bearer ${key}` }, parameters: ids },
    { name: 'key, generated ids', headers: { Authorization: `Bearer ${key}` }, parameters: {} },
    { name: 'no key', headers: {}, parameters: {} },
  ];
  for (const [index, pass] of passes.entries()) {
    const status = runSchemathesis(index, pass);
    log(`pass "${pass.name}": ${status === 0 ? 'clean' : `schemathesis exited ${status}`}`);
    if (status !== 0) failures.push(pass.name);
  }
  if (failures.length > 0) {
    log(`FAILED: ${failures.join('; ')} (platform log: ${platformLog})`);
    args['keep-data'] = true;
  } else {
    log('0 server errors, 0 schema mismatches');
    exitCode = 0;
  }
} catch (error) {
  log(`${(error as Error).message}\n${platformOutput.slice(-4000)}`);
  args['keep-data'] = true;
} finally {
  await stopPlatform();
  receiver.close();
  await database?.drop().catch((error: unknown) => log(`could not drop the fuzzing database: ${(error as Error).message}`));
  if (args['keep-data']) log(`data kept in ${dataDir}`);
  else rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);

async function waitForPlatform(): Promise<void> {
  const deadline = Date.now() + 240_000;
  let exited = false;
  platform.once('exit', () => (exited = true));
  while (Date.now() < deadline && !exited) {
    // /readyz answers 200 once PostgreSQL, Temporal and the supervised parts are up; the seeded
    // runs then wait for the lane workers.
    const ready = await fetch(`${api}/readyz`).then((r) => r.ok, () => false);
    if (ready) return;
    await sleep(500);
  }
  throw new Error(exited ? 'the platform exited before it was ready' : 'the platform was not ready in 240 s');
}

async function stopPlatform(): Promise<void> {
  if (platform.exitCode !== null || platform.signalCode !== null) return;
  const exited = new Promise((resolve) => platform.once('exit', resolve));
  platform.kill('SIGINT');
  const timer = setTimeout(() => platform.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

async function call(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`seeding: ${method} ${path} answered ${response.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : undefined;
}

/** Real ids for every path parameter, so seeded requests reach past the lookups. */
async function seedIds(): Promise<Record<string, string>> {
  const definition = JSON.parse(readFileSync(join(ROOT, 'docs/examples/hello.json'), 'utf8'));
  await call('POST', '/v1/definitions', definition);
  await call('POST', '/v1/definitions', { ...definition, version: '1.1.0', description: 'the second version, for diffs' });
  const scheduled = await call('POST', '/v1/definitions', {
    name: 'nightly',
    version: '1.0.0',
    triggers: [{ type: 'schedule', cron: '0 3 * * *', timezone: 'UTC' }],
    steps: [{ id: 'only', type: 'skill', skill: 'echo', inputs: { at: 'night' } }],
  });
  const approval = JSON.parse(readFileSync(join(ROOT, 'docs/examples/step-approval.json'), 'utf8'));
  await call('POST', '/v1/definitions', approval);
  const webhook = await call('POST', '/v1/webhooks', { url: `http://127.0.0.1:${receiverPort}/hook`, events: ['workflow.*'] });
  await call('POST', '/v1/runs', { definition: 'hello', input: { name: 'fuzz' }, idempotencyKey: 'fuzz-seed-1' });
  // Wait for the run to close and for a delivery of its events to be dead-lettered.
  let deliveryId: string | undefined;
  for (let i = 0; i < 480 && !deliveryId; i++) {
    const page = await call('GET', `/v1/webhooks/${encodeURIComponent(webhook.id)}/deliveries?status=dead`);
    deliveryId = page.deliveries[0]?.id;
    if (!deliveryId) await sleep(250);
  }
  if (!deliveryId) throw new Error('seeding: no dead delivery after 120 s');
  // A run waiting on an approval, so the approval, cancel and event operations meet a running run.
  const waiting = await call('POST', '/v1/runs', { definition: approval.name, input: { vendor: 'acme', amount: 10 }, idempotencyKey: 'fuzz-seed-2' });
  return {
    name: 'hello',
    version: '1.0.0',
    runId: waiting.runId,
    stepId: 'sign-off',
    scheduleId: scheduled.schedules[0],
    webhookId: webhook.id,
    deliveryId,
  };
}

function runSchemathesis(index: number, pass: { name: string; headers: Record<string, string>; parameters: Record<string, string> }): number {
  const config = join(dataDir, `schemathesis-${index}.toml`);
  const toml = [
    `headers = ${tomlTable(pass.headers)}`,
    ...(Object.keys(pass.parameters).length > 0 ? [`parameters = ${tomlTable(Object.fromEntries(Object.entries(pass.parameters).map(([k, v]) => [`path.${k}`, v])))}`] : []),
    '[checks]',
    // 401s of the no-key pass are documented; an unauthenticated request is never "ignored auth".
    'ignored_auth.enabled = false',
    // The generator's "negative" bodies include ones the server may accept (e.g. extra keys zod strips).
    'positive_data_acceptance.enabled = false',
    'negative_data_rejection.enabled = false',
    '',
  ].join('\n');
  writeFileSync(config, toml);
  log(`pass "${pass.name}" (seed ${seed}, up to ${maxExamples} cases per operation)`);
  const result = spawnSync(
    ST,
    [
      '--config-file',
      config,
      'run',
      `${api}/openapi.json`,
      '--checks',
      'not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance',
      '--seed',
      seed,
      '--max-examples',
      maxExamples,
      '--phases',
      args.quick ? 'examples,fuzzing' : 'examples,coverage,fuzzing',
      '--request-timeout',
      '30',
      '--workers',
      '2',
      '--no-color',
      '--suppress-health-check',
      'all',
      '--warnings',
      'off',
    ],
    { cwd: dataDir, stdio: 'inherit', env: { ...process.env, SCHEMATHESIS_TELEMETRY: 'false' } },
  );
  return result.status ?? 1;
}

function tomlTable(values: Record<string, string>): string {
  return `{ ${Object.entries(values)
    .map(([k, v]) => `${JSON.stringify(k)} = ${JSON.stringify(v)}`)
    .join(', ')} }`;
}
