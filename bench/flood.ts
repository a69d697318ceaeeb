/**
 * `npm run bench:flood`: lane isolation and admission under congestion. In one process against one
 * local Temporal dev server (started as the platform starts it, embedded/dev-server.ts), with both
 * lanes' workers running with their limits (LANE_LIMITS over the defaults, workers/lane-worker.ts),
 * every run started through the API's start path (RunsService with the admission stage,
 * api/admission.ts, over a real PostgreSQL), it measures a prod-critical run (FLOOD_STEPS echo
 * steps through the real interpreter) in interleaved rounds:
 *   - unflooded;
 *   - started at the same moment as a burst of FLOOD_RUNS experimental starts (the "burst");
 *   - while that flood runs steadily (experimental's skills slots full, the rest queued);
 * and checks that every experimental run completes. Writes bench/RESULTS-lanes.md and
 * bench/results-lanes.json.
 *
 * Knobs (environment): FLOOD_ROUNDS (5), FLOOD_SAMPLES (3: steady-flood and unflooded prod runs per
 * round), FLOOD_STEPS (10), FLOOD_RUNS (200), FLOOD_SLEEP_SECONDS (3: each experimental run's
 * sleep), FLOOD_WARMUP (3), BENCH_PG_ADMIN_URL (postgres://postgres@127.0.0.1:5432/postgres: a
 * fresh database is created there and dropped), LANE_LIMITS, ADMISSION_* and LANE_YIELD_* (the platform's
 * variables; unset: the defaults), LOG_LEVEL (warn).
 *
 * `npm run bench:flood -- --report` rewrites RESULTS-lanes.md from results-lanes.json without running.
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import pg from 'pg';
import { z } from 'zod';
import { Admission, admissionSettings } from '../api/admission.ts';
import { AdmissionStore } from '../api/admission-store.ts';
import type { StoredDefinition } from '../api/definitions-store.ts';
import { RunsService } from '../api/runs-service.ts';
import { catalogNames, createActivityCatalog } from '../activities/catalog.ts';
import { defineSkill } from '../activities/skills/skill.ts';
import { laneLimits, loadConfig } from '../common/config.ts';
import { activityTaskQueue } from '../common/constants.ts';
import { createPool, migrate } from '../common/db.ts';
import { createLogger } from '../common/logger.ts';
import { startDevServer, type DevServer } from '../embedded/dev-server.ts';
import { freePort } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { manifestOf } from '../interpreter/manifest.ts';
import { validateDefinition, type ValidationContext } from '../interpreter/validate.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { createLaneWorkers, type LaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

const intEnv = (name: string, fallback: number, min = 1): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, not "${raw}"`);
  return n;
};

const SETTINGS = {
  rounds: intEnv('FLOOD_ROUNDS', 5),
  samples: intEnv('FLOOD_SAMPLES', 3),
  steps: intEnv('FLOOD_STEPS', 10),
  floodRuns: intEnv('FLOOD_RUNS', 200),
  sleepSeconds: intEnv('FLOOD_SLEEP_SECONDS', 3),
  warmup: intEnv('FLOOD_WARMUP', 3, 0),
};

const PROD = 'prod-critical';
const EXPERIMENTAL = 'experimental';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The slow experimental work: sleeps, heartbeating through the wrapper, until done or cancelled. */
const benchSleep = defineSkill({
  name: 'bench-sleep',
  description: 'bench: sleeps for `seconds` (cancellable)',
  input: z.object({ seconds: z.number().positive() }),
  output: z.object({ slept: z.number() }),
  sideEffects: false,
  async handler(input, ctx) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, input.seconds * 1000);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('cancelled'));
      }, { once: true });
    });
    return { slept: input.seconds };
  },
});

interface Sample {
  round: number;
  phase: 'unflooded' | 'flooded' | 'burst';
  ms: number;
  /** experimental.skills backlog (approximate, from the server) right before and after the run. */
  backlogBefore?: number;
  backlogAfter?: number;
  /** Experimental starts waiting in the admission queue right before and after the run. */
  deferredBefore?: number;
  deferredAfter?: number;
}

/** A fresh database on the machine's PostgreSQL for this run, dropped at the end. */
async function benchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `bench_flood_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--report')) {
    const saved = JSON.parse(readFileSync(`${BENCH_DIR}results-lanes.json`, 'utf8')) as Results;
    writeFileSync(`${BENCH_DIR}RESULTS-lanes.md`, markdown(saved));
    process.stdout.write(markdown(saved));
    return;
  }
  const logger = createLogger('bench-flood', process.env.LOG_LEVEL ?? 'warn');
  installRuntime(logger);
  const t0 = performance.now();
  let server: DevServer | undefined;
  const workers: LaneWorkers[] = [];
  const running: Array<Promise<void>> = [];
  let native: NativeConnection | undefined;
  let connection: Connection | undefined;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let pool: pg.Pool | undefined;
  let admission: Admission | undefined;
  try {
    database = await benchDatabase();
    await migrate(database.url, logger);
    pool = createPool(database.url, 10);
    server = await startDevServer({ cliPath: resolveTemporalCli(), port: await freePort(), headless: true, logger });
    const admissionEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('ADMISSION_') || k.startsWith('LANE_YIELD_')));
    const config = loadConfig({
      TEMPORAL_ADDRESS: server.address,
      DATABASE_URL: database.url,
      LANES: `${PROD},${EXPERIMENTAL}`,
      LOG_LEVEL: logger.level,
      ...(process.env.LANE_LIMITS ? { LANE_LIMITS: process.env.LANE_LIMITS } : {}),
      ...admissionEnv,
    });
    const catalog = createActivityCatalog(config, { skills: [benchSleep] });
    const bundle = await buildWorkflowBundle(logger);
    native = await NativeConnection.connect({ address: server.address });
    for (const lane of [PROD, EXPERIMENTAL]) {
      const w = await createLaneWorkers({ config, lane, logger, workflowBundle: { code: bundle.code }, connection: native, catalog });
      workers.push(w);
      running.push(w.run());
    }
    connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection });
    const validation: ValidationContext = { ...catalogNames(catalog), lanes: config.LANES };
    // The API's start path: RunsService with the admission stage and its dispatcher (api/server.ts wires the same).
    const store = new AdmissionStore(pool);
    admission = new Admission(client, store, admissionSettings(config), logger);
    admission.start();
    const runs = new RunsService(client, { executionTimeoutSeconds: config.RUN_EXECUTION_TIMEOUT_SECONDS }, admission);

    const definition = (raw: Record<string, unknown>): StoredDefinition => {
      const result = validateDefinition(raw, validation);
      if (!result.ok) throw new Error(`bench definition invalid: ${JSON.stringify(result.problems)}`);
      const body = result.definition;
      return {
        tenant: 'bench',
        name: body.name,
        version: body.version,
        hash: `bench-${body.name}`,
        lane: String(raw.lane),
        description: null,
        createdBy: 'bench',
        createdAt: new Date().toISOString(),
        body,
        status: 'active',
        statusChangedAt: null,
        statusChangedBy: null,
        manifest: manifestOf(body),
      };
    };
    const prodDefinition = definition({
      name: 'flood-prod',
      version: '1.0.0',
      lane: PROD,
      priority: 'high',
      steps: Array.from({ length: SETTINGS.steps }, (_, i) => ({ id: `s${i}`, type: 'skill', skill: 'echo', inputs: { i } })),
    });
    const floodDefinition = definition({
      name: 'flood-experimental',
      version: '1.0.0',
      lane: EXPERIMENTAL,
      priority: 'normal',
      steps: [{ id: 'slow', type: 'skill', skill: 'bench-sleep', inputs: { seconds: SETTINGS.sleepSeconds }, timeout: SETTINGS.sleepSeconds + 60 }],
    });
    const principal = { principal: 'bench', roles: ['submit' as const], tenant: 'bench', groups: [] };
    const startRun = (def: StoredDefinition) =>
      runs.start({ definition: def, input: null, principal, correlationId: 'bench', executionTimeoutSeconds: 3600 });

    /** One prod-critical run, start call to result, through the API's start path. */
    const prodRun = async (): Promise<number> => {
      const started = performance.now();
      const { runId, status } = await startRun(prodDefinition);
      if (status === 'deferred') throw new Error('a prod-critical start was deferred');
      await client.workflow.getHandle(runId).result();
      return performance.now() - started;
    };

    const backlog = async (): Promise<number> => {
      const response = await connection!.workflowService.describeTaskQueue({
        namespace: config.TEMPORAL_NAMESPACE,
        taskQueue: { name: activityTaskQueue(EXPERIMENTAL, 'skills'), kind: 1 },
        taskQueueType: 2,
        reportStats: true,
      });
      return Number(response.stats?.approximateBacklogCount ?? 0);
    };
    const deferred = () => store.depth(EXPERIMENTAL);

    /** Starts the flood: FLOOD_RUNS experimental starts through the admission stage, 20 calls at a time. */
    const startFlood = async (): Promise<{ ids: string[]; deferredAtStart: number }> => {
      const ids: string[] = [];
      let deferredAtStart = 0;
      for (let i = 0; i < SETTINGS.floodRuns; i += 20) {
        const batch = await Promise.all(Array.from({ length: Math.min(20, SETTINGS.floodRuns - i) }, () => startRun(floodDefinition)));
        for (const r of batch) {
          ids.push(r.runId);
          if (r.status === 'deferred') deferredAtStart += 1;
        }
      }
      return { ids, deferredAtStart };
    };
    /** Waits until every flood run has left the queue and completed; returns how many completed. */
    const finishFlood = async (ids: string[]): Promise<number> => {
      const deadline = performance.now() + 30 * 60_000;
      while ((await deferred()) > 0) {
        if (performance.now() > deadline) throw new Error('the admission queue did not drain');
        await sleep(250);
      }
      let completed = 0;
      for (const id of ids) {
        await client.workflow.getHandle(id).result();
        completed += 1;
      }
      return completed;
    };

    const limits = { [PROD]: laneLimits(config, PROD), [EXPERIMENTAL]: laneLimits(config, EXPERIMENTAL) };
    logger.warn({ settings: SETTINGS, limits, admission: admission.settings }, 'flood bench: warming up');
    for (let i = 0; i < SETTINGS.warmup; i += 1) await prodRun();

    const samples: Sample[] = [];
    const floodStats: FloodStat[] = [];
    const unflooded = async (r: number) => {
      for (let i = 0; i < SETTINGS.samples; i += 1) samples.push({ round: r, phase: 'unflooded', ms: await prodRun() });
    };
    const flooded = async (r: number) => {
      const startedAt = performance.now();
      const floodStarting = startFlood();
      // A prod-critical run started at the same moment as the flood's start calls.
      const burst = await prodRun();
      samples.push({ round: r, phase: 'burst', ms: burst });
      const { ids, deferredAtStart } = await floodStarting;
      const startMs = performance.now() - startedAt;
      // Steady flood: experimental's skills slots full, more queued in Temporal and in the admission queue.
      const settleStarted = performance.now();
      while (performance.now() - settleStarted < 60_000) {
        if ((await backlog()) >= 1) break;
        await sleep(250);
      }
      for (let i = 0; i < SETTINGS.samples; i += 1) {
        const backlogBefore = await backlog();
        const deferredBefore = await deferred();
        const ms = await prodRun();
        samples.push({ round: r, phase: 'flooded', ms, backlogBefore, backlogAfter: await backlog(), deferredBefore, deferredAfter: await deferred() });
      }
      const completed = await finishFlood(ids);
      floodStats.push({ round: r, startMs: round(startMs, 0), deferredAtStart, completed, completeMs: round(performance.now() - startedAt, 0) });
      await sleep(1000);
    };

    for (let r = 1; r <= SETTINGS.rounds; r += 1) {
      logger.warn({ round: r }, 'round');
      if (r % 2 === 1) {
        await unflooded(r);
        await flooded(r);
      } else {
        await flooded(r);
        await unflooded(r);
      }
    }

    const of = (phase: Sample['phase'], r?: number) => samples.filter((s) => s.phase === phase && (r === undefined || s.round === r)).map((s) => s.ms);
    const perRound = Array.from({ length: SETTINGS.rounds }, (_, i) => {
      const r = i + 1;
      const u = median(of('unflooded', r));
      const f = median(of('flooded', r));
      const b = median(of('burst', r));
      return { round: r, unflooded: round(u), flooded: round(f), ratio: round(f / u, 3), burst: round(b), burstRatio: round(b / u, 3) };
    });
    const unfloodedMedian = median(of('unflooded'));
    const floodedMedian = median(of('flooded'));
    const burstMedian = median(of('burst'));
    const steady = samples.filter((s) => s.phase === 'flooded');
    const backlogs = steady.flatMap((s) => [s.backlogBefore!, s.backlogAfter!]);
    const deferrals = steady.flatMap((s) => [s.deferredBefore!, s.deferredAfter!]);
    const sdk = (JSON.parse(readFileSync(fileURLToPath(new URL('../node_modules/@temporalio/worker/package.json', import.meta.url)), 'utf8')) as { version: string }).version;
    let temporalCli = 'unknown';
    let git = 'unknown';
    try {
      temporalCli = execFileSync(resolveTemporalCli(), ['--version'], { encoding: 'utf8' }).trim();
      git = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: BENCH_DIR }).trim();
    } catch {
      // keep unknown
    }
    const { namespace: _ns, ...admissionShown } = admission.settings;
    const results: Results = {
      environment: {
        date: new Date().toISOString(),
        git,
        node: process.version,
        sdk,
        temporalCli,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? 'unknown',
        memGb: round(os.totalmem() / 1024 ** 3, 1),
        loadAverage: os.loadavg().map((x) => round(x, 2)),
      },
      settings: SETTINGS,
      limits,
      admission: admissionShown,
      headline: {
        unfloodedMedianMs: round(unfloodedMedian),
        floodedMedianMs: round(floodedMedian),
        ratio: round(floodedMedian / unfloodedMedian, 3),
        medianOfRoundRatios: round(median(perRound.map((p) => p.ratio)), 3),
        burstMedianMs: round(burstMedian),
        burstRatio: round(burstMedian / unfloodedMedian, 3),
        backlogDuringFloodedRuns: { min: Math.min(...backlogs), max: Math.max(...backlogs) },
        deferredDuringFloodedRuns: { min: Math.min(...deferrals), max: Math.max(...deferrals) },
        floodRunsCompleted: floodStats.reduce((n, f) => n + f.completed, 0),
        floodRunsStarted: SETTINGS.floodRuns * SETTINGS.rounds,
      },
      perRound,
      floodStats,
      samples: samples.map((s) => ({ ...s, ms: round(s.ms, 1) })),
      totalSeconds: round((performance.now() - t0) / 1000, 0),
    };
    writeFileSync(`${BENCH_DIR}results-lanes.json`, `${JSON.stringify(results, null, 2)}\n`);
    const md = markdown(results);
    writeFileSync(`${BENCH_DIR}RESULTS-lanes.md`, md);
    process.stdout.write(md);
  } finally {
    await admission?.stop();
    for (const w of workers) w.shutdown();
    await Promise.allSettled(running);
    await connection?.close();
    await native?.close();
    await server?.stop();
    await pool?.end();
    await database?.drop();
  }
}

type FloodStat = { round: number; startMs: number; deferredAtStart: number; completed: number; completeMs: number };

type Results = {
  samples: Sample[];
  environment: Record<string, unknown> & { date: string; git: string; node: string; sdk: string; temporalCli: string; cpus: number; cpuModel: string; memGb: number; loadAverage: number[] };
  settings: typeof SETTINGS;
  limits: Record<string, Record<string, number>>;
  admission: Record<string, unknown>;
  headline: {
    unfloodedMedianMs: number;
    floodedMedianMs: number;
    ratio: number;
    medianOfRoundRatios: number;
    burstMedianMs: number;
    burstRatio: number;
    backlogDuringFloodedRuns: { min: number; max: number };
    deferredDuringFloodedRuns: { min: number; max: number };
    floodRunsCompleted: number;
    floodRunsStarted: number;
  };
  perRound: Array<{ round: number; unflooded: number; flooded: number; ratio: number; burst: number; burstRatio: number }>;
  floodStats: FloodStat[];
  totalSeconds: number;
};

function markdown(r: Results): string {
  const e = r.environment;
  const s = r.settings;
  const h = r.headline;
  const a = r.admission;
  const dist = (phase: Sample['phase']) => {
    const xs = r.samples.filter((x) => x.phase === phase).map((x) => x.ms).sort((p, q) => p - q);
    const label = phase === 'burst' ? 'started with the burst' : phase === 'flooded' ? 'steady flood' : phase;
    return `| ${label} | ${xs.length} | ${round(median(xs))} | ${xs[0]} | ${xs[xs.length - 1]} | ${xs.join(', ')} |`;
  };
  const lim = (lane: string) => Object.entries(r.limits[lane] ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
  const verdict = (x: number) => (x <= 1.1 ? 'within' : '**above**');
  return `# Lanes under congestion: prod-critical latency while experimental is flooded

Generated by \`npm run bench:flood\` (bench/flood.ts) on ${e.date} at commit ${e.git}. Raw numbers: [results-lanes.json](results-lanes.json).

## Result

| prod-critical run (${s.steps} echo steps) | median (ms) | ratio to unflooded | target |
| --- | ---: | ---: | --- |
| unflooded | ${h.unfloodedMedianMs} | 1 | |
| started at the same moment as a burst of ${s.floodRuns} experimental starts | ${h.burstMedianMs} | **${h.burstRatio.toFixed(3)}** | ≤ 1.1 (${verdict(h.burstRatio)}) |
| during the steady flood | ${h.floodedMedianMs} | **${h.ratio.toFixed(3)}** (median of per-round ratios ${h.medianOfRoundRatios.toFixed(3)}) | ≤ 1.1 (${verdict(h.ratio)}) |

Experimental runs completed: **${h.floodRunsCompleted} of ${h.floodRunsStarted}** (${s.floodRuns} per round; none dropped). During every steady-flood prod-critical run, experimental's skills queue in Temporal held ${h.backlogDuringFloodedRuns.min}–${h.backlogDuringFloodedRuns.max} waiting activities behind its ${r.limits.experimental?.skills} running ones, and the admission queue held ${h.deferredDuringFloodedRuns.min}–${h.deferredDuringFloodedRuns.max} deferred starts.

| round | order | unflooded median (ms) | steady flood median (ms) | ratio | started with the burst (ms) | ratio |
| ---: | --- | ---: | ---: | ---: | ---: | ---: |
${r.perRound.map((p) => `| ${p.round} | ${p.round % 2 === 1 ? 'unflooded first' : 'flooded first'} | ${p.unflooded} | ${p.flooded} | ${p.ratio.toFixed(3)} | ${p.burst} | ${p.burstRatio.toFixed(3)} |`).join('\n')}

Every sample (ms), per phase:

| phase | n | median | min | max | samples, sorted |
| --- | ---: | ---: | ---: | ---: | --- |
${dist('unflooded')}
${dist('burst')}
${dist('flooded')}

Flood per round (time for the ${s.floodRuns} start calls to answer, how many of them were deferred, experimental runs completed, time from the first start call until the last completed): ${r.floodStats.map((f) => `round ${f.round}: ${f.startMs} ms, ${f.deferredAtStart} deferred, ${f.completed} completed, ${f.completeMs} ms`).join('; ')}.

### Reading the numbers

${h.burstRatio <= 1.1 && h.ratio <= 1.1 ? '- **Both targets met.** Prod-critical ran as fast with the burst and the steady flood as without.' : `- **Target not met in this run.** Burst ${h.burstRatio.toFixed(2)}×, steady flood ${h.ratio.toFixed(2)}×. Read the load average below: on a 2-CPU machine at that load, prod-critical's runs share the CPU with the experimental lane's ongoing work. That work is experimental's starts, workflow tasks and completions, in the same process and on the same dev server. The admission stage bounds how fast experimental work enters Temporal. It does not make the work that is already admitted free.`}
- **The burst no longer reaches Temporal.** Without the admission stage (this file's previous version, commit 33479ad), the ${s.floodRuns} start calls went to Temporal at once. A prod-critical run started with them took 3.0–5.2 s, 4.0× its unflooded median. Now the admission stage (api/admission.ts, docs/lanes.md "Admission") starts at most ${a.startBurst} experimental runs at once and ${a.startRate} a second. The rest are deferred into PostgreSQL (the "deferred" count per round above) and started in order as capacity frees.
- **What the stage measures, and what it does not.** It measures task-queue backlog and the age of the oldest waiting task, on prod-critical's queues (above ${a.protectedBacklogMax} tasks or ${a.protectedBacklogAgeMs} ms: congested) and on experimental's own (above ${a.laneBacklogMax} tasks: no room), plus the start rate. Prod-critical's workers had free slots, so its tasks did not queue. Its slowdown here is CPU and server latency, which backlog does not show. So the stage also watches the rate of tasks added to prod-critical's queues (above ${a.busyAddRate}/s: busy) and then starts experimental runs at ${a.busyStartRate}/s only; and experimental's activity workers yield the same way (workers/lane-yield.ts, docs/lanes.md "Yield": at most LANE_YIELD_RATE task starts a second while a protected lane is busy). What is left is the work already admitted (each flood run's workflow tasks, its sleep activity, its lifecycle writes) sharing 2 CPUs, one Node process and one dev server with prod-critical: the lanes' processes are separate on \`up\` and in Compose, not here.
- **Experimental work is never dropped.** Every experimental run completed (row above), at the admission rate instead of all at once.
- **Single runs are noisy in every phase.** Almost all of a step's time is the dev server dispatching the workflow task and the activity (see [RESULTS.md](RESULTS.md), "Where a step's time goes"). Compare the medians over interleaved rounds, not single runs.

## Method

- One process, one local Temporal dev server started as the platform starts it (\`embedded/dev-server.ts\`: priority-aware matcher, one write partition per task queue), \`${e.temporalCli.replace(/\s+/g, ' ')}\`, Temporal TS SDK ${e.sdk}, Node ${e.node}, ${e.cpus} CPU(s) (${e.cpuModel}), ${e.memGb} GB RAM; load average at the end ${e.loadAverage.join(' / ')} (the machine is shared with other work). A fresh database on the machine's PostgreSQL (admission queue, lifecycle events).
- Both lanes' workers run in this process, created by \`workers/lane-worker.ts\` with their limits (\`LANE_LIMITS\` over the defaults): prod-critical ${lim('prod-critical')}; experimental ${lim('experimental')}.
- Every run is started through the API's start path: \`RunsService.start\` with the admission stage and its dispatcher, wired as \`api/server.ts\` wires them, with the defaults of \`common/config.ts\` unless \`ADMISSION_*\` is set: ${Object.entries(a).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(',') : String(v)}`).join(', ')}. (HTTP routing and the definition lookup are left out, the same for every phase.)
- The prod-critical run: a definition of ${s.steps} sequential \`echo\` skill steps in lane \`prod-critical\`, priority \`high\`, through the real interpreter, with lifecycle events; wall time from the start call to the result.
- The flood: ${s.floodRuns} runs of a definition in lane \`experimental\` (priority \`normal\`) whose one step is \`bench-sleep\` for ${s.sleepSeconds} s, started 20 calls at a time. That is more than experimental's skills limit can run at once, so they queue.
- ${s.rounds} rounds after ${s.warmup} warm-up run(s), alternating which phase goes first. Per round:
  - unflooded: ${s.samples} prod-critical runs, one after another;
  - flooded: the ${s.floodRuns} flood starts begin, and one prod-critical run is started at the same moment (the burst sample). Once experimental's skills queue holds a backlog, ${s.samples} more prod-critical runs follow (steady flood). Then the bench waits until every flood run has completed.
- Ratios: the median of all burst (or all steady-flood) runs over the median of all unflooded runs, all in this one run.

Total bench time ${r.totalSeconds} s.
`;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
