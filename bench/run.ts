/**
 * `npm run bench`: measures the interpreter against hand-written Temporal workflows doing the same
 * activities, in one process against one local Temporal dev server, and writes bench/RESULTS.md
 * (tables) and bench/results.json (every sample).
 *
 * Both sides run on the same workers (one bundle holding the interpreter and the baselines, the
 * lane workers of workers/lane-worker.ts) with the same activity implementations, one run at a
 * time, interpreter and baseline interleaved (alternating which goes first) after a warm-up.
 *
 * Knobs (environment): BENCH_WARMUP (3), BENCH_KIND_REPS (3), BENCH_REPS_100 (7), BENCH_REPS_10 (21),
 * BENCH_PURE_REPS (3), BENCH_LOOP_ITERATIONS (10000), BENCH_LOOP_REPS (1), BENCH_LOOP_BUDGET_SECONDS (360:
 * when the interpreter's full-size echo loop takes longer, it is terminated and both sides run
 * BENCH_LOOP_FALLBACK_ITERATIONS (2000) instead; 0 disables the budget), BENCH_SKIP_LOOP (unset),
 * BENCH_TEMPORAL_DYNAMIC_CONFIG (unset: the dev server as the platform starts it; `k=v,k2=v2` adds
 * `--dynamic-config-value` flags and writes RESULTS-dynconfig.md instead), LOG_LEVEL (warn).
 *
 * `npm run bench -- --report` rewrites RESULTS.md from results.json without running anything.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { catalogNames, createActivityCatalog } from '../activities/catalog.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger, type Logger } from '../common/logger.ts';
import { startDevServer, type DevServer } from '../embedded/dev-server.ts';
import { freePort } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { PURE_STEPS_PER_TASK } from '../interpreter/engine.ts';
import { validateDefinition, type ValidationContext } from '../interpreter/validate.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { createLaneWorkers, type LaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';
import { CHILD_DEFINITION } from './definitions.ts';
import type { Ctx } from './harness.ts';
import { BENCH_DIR, ENTRY, SETTINGS, mb, memorySnapshot, processTreePeakRss, round } from './helpers.ts';
import { measureEchoLoop } from './measure-echo-loop.ts';
import { measureKinds } from './measure-kinds.ts';
import { measurePureLoop } from './measure-pure-loop.ts';
import { measureSequence } from './measure-sequence.ts';
import { type Results, markdown } from './report.ts';


async function startLoopback(): Promise<{ server: Server; url: string; host: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}/ok`, host: `127.0.0.1:${port}` };
}

/** The commit the bench ran against, and whether the engine's sources differ from it. */
function gitState(): { head: string; dirty: string[] } | undefined {
  try {
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'interpreter', 'workflows', 'activities', 'workers', 'common'], { cwd, encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((l) => l.trim());
    return { head, dirty };
  } catch {
    return undefined;
  }
}

export async function runBench(logger: Logger) {
  const t0 = performance.now();
  const snapshots = [memorySnapshot('start')];
  let sampledPeak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss);
  }, 250);
  sampler.unref();
  const notes: string[] = [];
  // Before the bundle is built: the commit whose interpreter the workers run.
  const git = gitState();

  const loopback = await startLoopback();
  const realCli = resolveTemporalCli();
  let cliPath = realCli;
  let wrapperDir: string | undefined;
  if (SETTINGS.dynamicConfig.length > 0) {
    // startDevServer takes no extra flags: a one-line wrapper adds them.
    for (const kv of SETTINGS.dynamicConfig) {
      if (!/^[A-Za-z0-9_.]+=[A-Za-z0-9_.:-]+$/.test(kv)) throw new Error(`BENCH_TEMPORAL_DYNAMIC_CONFIG: "${kv}" is not key=value`);
    }
    wrapperDir = mkdtempSync(join(os.tmpdir(), 'bench-temporal-'));
    cliPath = join(wrapperDir, 'temporal');
    const flags = SETTINGS.dynamicConfig.map((kv) => `--dynamic-config-value ${kv}`).join(' ');
    writeFileSync(cliPath, `#!/bin/sh\nexec '${realCli.replace(/'/g, `'\\''`)}' "$@" ${flags}\n`);
    chmodSync(cliPath, 0o755);
  }
  let temporalCli = cliPath;
  try {
    temporalCli = execFileSync(realCli, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // keep the path
  }
  let server: DevServer | undefined;
  let workers: LaneWorkers | undefined;
  let running: Promise<void> | undefined;
  let native: NativeConnection | undefined;
  let connection: Connection | undefined;
  try {
    server = await startDevServer({ cliPath, port: await freePort(), headless: true, logger });
    const lane = `bench-${randomBytes(3).toString('hex')}`;
    const config = loadConfig({
      TEMPORAL_ADDRESS: server.address,
      LANES: lane,
      DEFAULT_LANE: lane,
      HTTP_FETCH_ALLOWED_HOSTS: loopback.host,
      LOG_LEVEL: logger.level,
    });
    const catalog = createActivityCatalog(config);

    const bundleStarted = performance.now();
    const bundle = await buildWorkflowBundle(logger, ENTRY);
    const bundleMs = performance.now() - bundleStarted;

    native = await NativeConnection.connect({ address: server.address });
    workers = await createLaneWorkers({ config, lane, logger, workflowBundle: { code: bundle.code }, connection: native, catalog });
    running = workers.run();
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });

    const names = catalogNames(catalog);
    const validation: ValidationContext = { ...names, lanes: [lane], definitions: new Set([`${CHILD_DEFINITION.name}@${CHILD_DEFINITION.version}`]) };
    const child = validateDefinition(CHILD_DEFINITION, validation);
    if (!child.ok) throw new Error(`child definition invalid: ${JSON.stringify(child.problems)}`);
    const ctx: Ctx = {
      client,
      lane,
      logger,
      validation,
      subDefinitions: {},
      seq: 0,
    };
    const kindsCtx: Ctx = { ...ctx, subDefinitions: { [`${CHILD_DEFINITION.name}@${CHILD_DEFINITION.version}`]: { definition: child.definition, hash: 'bench-child' } } };
    snapshots.push(memorySnapshot('workers up'));

    // Warm-up: JIT, the workflow sandbox, sticky queues, the dev server's caches.
    logger.warn({ pairs: SETTINGS.warmup }, 'warming up');
    for (let i = 0; i < SETTINGS.warmup; i += 1) {
      await measureSequence(ctx, 10, 2);
    }
    if (SETTINGS.warmup > 0) {
      await measureSequence(ctx, 100, 1);
      await measurePureLoop(ctx, 1000, 1);
    }

    logger.warn('1/4 step kinds');
    const kinds = await measureKinds(kindsCtx, loopback.url);
    // ids keep counting in kindsCtx; carry on from there so every workflow id stays unique
    ctx.seq = kindsCtx.seq;

    logger.warn({ reps: SETTINGS.reps100 }, '2/4 100-step sequence');
    const sequence100 = await measureSequence(ctx, 100, SETTINGS.reps100);
    logger.warn({ ratio: round(sequence100.ratio, 3) }, '100-step sequence measured');
    logger.warn({ reps: SETTINGS.reps10 }, '3/4 10-step sequence');
    const sequence10 = await measureSequence(ctx, 10, SETTINGS.reps10);
    logger.warn({ ratio: round(sequence10.ratio, 3) }, '10-step sequence measured');
    snapshots.push(memorySnapshot('after sequences'));

    logger.warn({ iterations: SETTINGS.loopIterations }, '4/4 loops');
    const pureLoopResult = await measurePureLoop(ctx, SETTINGS.loopIterations, SETTINGS.pureReps);
    let echoLoopResult: Awaited<ReturnType<typeof measureEchoLoop>> | undefined;
    if (process.env.BENCH_SKIP_LOOP || SETTINGS.loopReps === 0) {
      notes.push('The echo loop (4b) was skipped (BENCH_SKIP_LOOP or BENCH_LOOP_REPS=0).');
    } else {
      echoLoopResult = await measureEchoLoop(ctx, SETTINGS.loopIterations, SETTINGS.loopReps, SETTINGS.loopFallbackIterations, SETTINGS.loopBudgetSeconds * 1000);
      if (echoLoopResult.iterations !== 10_000) {
        const a = echoLoopResult.attempt;
        notes.push(
          a && !a.completed
            ? `The echo loop (4b) ran ${echoLoopResult.iterations} iterations, not ${a.iterations}: the interpreter's ${a.iterations}-iteration run did not finish within the ${a.budgetSeconds} s budget (progress when terminated: ${JSON.stringify(a.progress)}).`
            : `The echo loop (4b) ran ${echoLoopResult.iterations} iterations instead of 10,000 (BENCH_LOOP_ITERATIONS).`,
        );
      }
    }
    snapshots.push(memorySnapshot('after loops'));

    const devServer = processTreePeakRss(server.process.pid);
    clearInterval(sampler);
    sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss);
    const sdk = (JSON.parse(readFileSync(fileURLToPath(new URL('../node_modules/@temporalio/worker/package.json', import.meta.url)), 'utf8')) as { version: string }).version;
    return {
      environment: {
        date: new Date().toISOString(),
        node: process.version,
        sdk,
        temporalCli: temporalCli.replace(/\s+/g, ' '),
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memGb: round(os.totalmem() / 1024 ** 3, 1),
        bundleMs: round(bundleMs, 0),
        pureStepsPerTask: PURE_STEPS_PER_TASK,
        git,
        devServerDynamicConfig: SETTINGS.dynamicConfig,
      },
      settings: SETTINGS,
      kinds,
      sequence100,
      sequence10,
      pureLoop: pureLoopResult,
      echoLoop: echoLoopResult,
      memory: { snapshots, sampledPeakRssMb: mb(sampledPeak), devServer },
      notes,
      totalSeconds: (performance.now() - t0) / 1000,
    };
  } finally {
    clearInterval(sampler);
    workers?.shutdown();
    await running?.catch((error: unknown) => logger.error({ err: error }, 'workers failed'));
    await connection?.close();
    await native?.close();
    await server?.stop();
    await new Promise<void>((resolve) => loopback.server.close(() => resolve()));
    if (wrapperDir) rmSync(wrapperDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const suffix = SETTINGS.dynamicConfig.length > 0 ? '-dynconfig' : '';
  if (process.argv.includes('--report')) {
    // Rewrites the markdown from the last results file, without running anything.
    const saved = JSON.parse(readFileSync(`${BENCH_DIR}results${suffix}.json`, 'utf8')) as Results;
    writeFileSync(`${BENCH_DIR}RESULTS${suffix}.md`, markdown(saved));
    process.stdout.write(markdown(saved));
    return;
  }
  const logger = createLogger('bench', process.env.LOG_LEVEL ?? 'warn');
  installRuntime(logger);
  const results = await runBench(logger);
  writeFileSync(`${BENCH_DIR}results${suffix}.json`, `${JSON.stringify(results, null, 2)}\n`);
  const md = markdown(results);
  writeFileSync(`${BENCH_DIR}RESULTS${suffix}.md`, md);
  process.stdout.write(md);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
