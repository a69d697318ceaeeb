/**
 * `npm run bench:telemetry`: the 100-step sequence with tracing and metrics on vs off, in one run
 * against one dev server (issue 13, target ≤ 1.03×). Each side is a real worker process
 * (`platform worker --lane <lane>`, the production entry point) with its own environment:
 *
 * - on: tracing exporting every span by OTLP (http/json) to a loopback receiver in this process,
 *   the workflow bundle with the OpenTelemetry interceptors, Prometheus metrics on (METRICS_PORT);
 * - off: OTEL_SDK_DISABLED=true (a bundle without the interceptors), METRICS_ENABLED=false.
 *
 * This process is the client: the "on" runs start through a client with the OpenTelemetry
 * interceptor (their StartWorkflow span is exported too), the "off" runs through a plain client.
 * Runs alternate between the sides after a warm-up. Writes bench/RESULTS-telemetry.md and
 * bench/results-telemetry.json.
 *
 * Knobs: BENCH_TELEMETRY_REPS (5), BENCH_TELEMETRY_STEPS (100), BENCH_WARMUP (2),
 * BENCH_TELEMETRY_EXPORT (`otlp`; `none` measures the embedded default instead: the "on" side with
 * no exporter configured, so trace context is kept and nothing is recorded, metrics on; it writes
 * bench/RESULTS-telemetry-default.md and results-telemetry-default.json; `metrics-only`: the "on"
 * side with tracing off and metrics on, into RESULTS-telemetry-metrics.md), BENCH_CPU_PROF (a directory for
 * V8 CPU profiles of both workers). Each side's worker CPU per run (/proc) is reported beside the wall time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { catalogNames, createActivityCatalog } from '../activities/catalog.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { flushTracing, startTracing, stopTracing } from '../common/tracing.ts';
import { startDevServer } from '../embedded/dev-server.ts';
import { freePort } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { validateDefinition } from '../interpreter/validate.ts';
import { startOtlpReceiver } from '../test/support/otlp-receiver.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { sequence } from './definitions.ts';
import { alternatingPairs, median, ratios, timedRun } from './pairs.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const CLI = fileURLToPath(new URL('../cli/platform.ts', import.meta.url));
const int = (name: string, fallback: number) => Math.max(1, Number(process.env[name] ?? fallback) || fallback);
const REPS = int('BENCH_TELEMETRY_REPS', 5);
const STEPS = int('BENCH_TELEMETRY_STEPS', 100);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const EXPORT = (['none', 'metrics-only'] as const).find((e) => e === process.env.BENCH_TELEMETRY_EXPORT) ?? 'otlp';
/** The "on" side traces (interceptors in its bundle, the SDK on) unless only its metrics are measured. */
const TRACES_ON = EXPORT !== 'metrics-only';
/** BENCH_CPU_PROF=<dir>: each worker writes V8 CPU profiles (one per thread) to <dir>/<lane>/, and the bundles stay in <dir>. */
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const sides = ['off', 'on'] as const;
type Side = (typeof sides)[number];

/** Builds the side's workflow bundle as its worker would (OTEL_SDK_DISABLED read at bundle time). */
async function bundleFor(side: Side, dir: string): Promise<string> {
  const before = process.env.OTEL_SDK_DISABLED;
  if (side === 'off' || !TRACES_ON) process.env.OTEL_SDK_DISABLED = 'true';
  else delete process.env.OTEL_SDK_DISABLED;
  try {
    const path = join(dir, `bundle-${side}.js`);
    writeFileSync(path, (await buildWorkflowBundle()).code);
    return path;
  } finally {
    if (before === undefined) delete process.env.OTEL_SDK_DISABLED;
    else process.env.OTEL_SDK_DISABLED = before;
  }
}

/** Starts `platform worker --lane <lane>` and resolves once it polls (its info line "lane workers polling"). */
async function startWorker(lane: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, lane)}`] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', CLI, 'worker', '--lane', lane], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('lane workers polling')) resolve();
      if (buffered.length > 1e6) buffered = buffered.slice(-1e5);
    });
    child.once('exit', (code) => reject(new Error(`worker ${lane} exited with ${code}`)));
  });
  child.stdout!.resume();
  return child;
}

/**
 * CPU a worker process spent, by thread (Linux /proc): `main` (the event loop: activities and their
 * interceptors, logging, metrics), `core` (the Temporal Rust core's tokio threads), `other` (the
 * workflow worker thread, where the sandbox runs, plus V8's and libuv's helper threads). CPU per run
 * is steadier than wall time on a loaded machine and says which side of the worker a cost is on.
 */
type CpuSample = Record<'main' | 'core' | 'other' | 'total', number>;
const TICK_MS = 10; // USER_HZ is 100 on Linux

function threadCpu(pid: number): CpuSample {
  const sample: CpuSample = { main: 0, core: 0, other: 0, total: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return sample;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      sample[Number(tid) === pid ? 'main' : comm.startsWith('tokio') ? 'core' : 'other'] += ms;
      sample.total += ms;
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return sample;
}

const cpuDelta = (a: CpuSample, b: CpuSample): CpuSample => ({ main: b.main - a.main, core: b.core - a.core, other: b.other - a.other, total: b.total - a.total });

/** Median CPU ms per run of each side's worker, by thread group, and the on/off ratio of the totals. */
function cpuSummary(cpu: Record<Side, CpuSample[]>) {
  const groups = ['main', 'core', 'other', 'total'] as const;
  const med = (side: Side) => Object.fromEntries(groups.map((g) => [g, median(cpu[side].map((c) => c[g]))])) as CpuSample;
  const off = med('off');
  const on = med('on');
  return { off, on, ratio: off.total ? Math.round((on.total / off.total) * 1000) / 1000 : 0, perRun: cpu };
}

function versionOf(pkg: string): string {
  const lock = JSON.parse(readFileSync(fileURLToPath(new URL('../package-lock.json', import.meta.url)), 'utf8')) as { packages: Record<string, { version?: string }> };
  return lock.packages[`node_modules/${pkg}`]?.version ?? '?';
}

async function main(): Promise<void> {
  const logger = createLogger('bench', process.env.LOG_LEVEL ?? 'warn');
  const work = PROFILE_DIR ?? mkdtempSync(join(os.tmpdir(), 'bench-telemetry-'));
  const receiver = await startOtlpReceiver({ keep: false });
  const otel = EXPORT !== 'otlp' ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' };
  Object.assign(process.env, otel);
  startTracing('bench-client', logger);
  const server = await startDevServer({ cliPath: resolveTemporalCli(), port: await freePort(), headless: true, logger });
  const suffix = randomBytes(3).toString('hex');
  const lanes: Record<Side, string> = { off: `telemetry-off-${suffix}`, on: `telemetry-on-${suffix}` };
  const base: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: server.address, LANES: `${lanes.off},${lanes.on}`, LOG_LEVEL: 'info' };
  for (const key of ['DATABASE_URL', 'METRICS_PORT', 'OTEL_SDK_DISABLED', 'METRICS_ENABLED', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL']) delete base[key];
  const envs: Record<Side, NodeJS.ProcessEnv> = {
    off: { ...base, WORKFLOW_BUNDLE_PATH: await bundleFor('off', work), OTEL_SDK_DISABLED: 'true', METRICS_ENABLED: 'false' },
    on: { ...base, WORKFLOW_BUNDLE_PATH: await bundleFor('on', work), ...otel, ...(TRACES_ON ? {} : { OTEL_SDK_DISABLED: 'true' }), METRICS_PORT: String(await freePort()) },
  };
  const workers = await Promise.all(sides.map((side) => startWorker(lanes[side], envs[side])));
  const connection = await Connection.connect({ address: server.address });
  const clients: Record<Side, Client> = {
    off: new Client({ connection }),
    on: TRACES_ON ? new Client({ connection, interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } }) : new Client({ connection }),
  };
  const config = loadConfig({ TEMPORAL_ADDRESS: server.address, LANES: base.LANES! });
  const catalog = createActivityCatalog(config);
  const validated = validateDefinition(sequence(STEPS), { ...catalogNames(catalog), lanes: Object.values(lanes) });
  if (!validated.ok) throw new Error(JSON.stringify(validated.problems));
  let seq = 0;
  const cpu: Record<Side, CpuSample[]> = { off: [], on: [] };
  const pids: Record<Side, number> = { off: workers[0]!.pid!, on: workers[1]!.pid! };
  const run = async (side: Side): Promise<number> => {
    seq += 1;
    const before = threadCpu(pids[side]);
    const ms = await timedRun(clients[side], validated.definition, lanes[side], `bench-telemetry-${side}-${String(seq).padStart(4, '0')}`);
    cpu[side].push(cpuDelta(before, threadCpu(pids[side])));
    return ms;
  };

  const t0 = performance.now();
  const loadAtStart = os.loadavg()[0] ?? 0;
  const ms = await alternatingPairs(sides, run, REPS, WARMUP);
  // The warm-up rounds' samples are not measured.
  for (const side of sides) cpu[side].splice(0, cpu[side].length - REPS);
  const metricsText = await fetch(`http://127.0.0.1:${envs.on.METRICS_PORT}/metrics`).then((r) => r.text()).catch(() => '');
  await flushTracing();
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((resolve) => (w.exitCode === null ? w.once('exit', resolve) : resolve(undefined)))));
  await stopTracing();
  await connection.close();
  await server.stop();
  await receiver.close();
  if (!PROFILE_DIR) rmSync(work, { recursive: true, force: true });

  const result = {
    at: new Date().toISOString(),
    commit: process.env.BENCH_COMMIT ?? '',
    host: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', load1AtStart: loadAtStart, load1: os.loadavg()[0] ?? 0 },
    versions: {
      node: process.version,
      '@opentelemetry/sdk-node': versionOf('@opentelemetry/sdk-node'),
      '@temporalio/interceptors-opentelemetry': versionOf('@temporalio/interceptors-opentelemetry'),
      '@opentelemetry/sdk-metrics': versionOf('@opentelemetry/sdk-metrics'),
      '@temporalio/worker': versionOf('@temporalio/worker'),
    },
    steps: STEPS,
    reps: REPS,
    warmup: WARMUP,
    spansReceived: receiver.received,
    metricsSeries: metricsText.split('\n').filter((l) => l && !l.startsWith('#')).length,
    ms,
    ...ratios(ms),
    workerCpuMs: cpuSummary(cpu),
    wallSeconds: Math.round((performance.now() - t0) / 1000),
  };
  const name = { none: 'telemetry-default', 'metrics-only': 'telemetry-metrics', otlp: 'telemetry' }[EXPORT];
  writeFileSync(`${BENCH_DIR}results-${name}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${BENCH_DIR}RESULTS-${name}.md`, report(result));
  process.stdout.write(`${JSON.stringify({ ratio: result.ratio, median: result.median, perRep: result.perRepRatios, spans: result.spansReceived, cpu: { off: result.workerCpuMs.off, on: result.workerCpuMs.on, ratio: result.workerCpuMs.ratio } })}\n`);
}

function report(r: {
  at: string;
  commit: string;
  host: { cpus: number; model: string; load1AtStart: number; load1: number };
  versions: Record<string, string>;
  spansReceived: number;
  metricsSeries: number;
  ms: Record<Side, number[]>;
  median: Record<Side, number>;
  ratio: number;
  medianOfPerRepRatios: number;
  perRepRatios: number[];
  workerCpuMs: ReturnType<typeof cpuSummary>;
}): string {
  const f = (n: number) => n.toFixed(0);
  return [
    '# Telemetry overhead (`npm run bench:telemetry`)',
    '',
    `${r.at}${r.commit ? `, commit ${r.commit}` : ''}. ${r.host.cpus} CPUs (${r.host.model}), load ${r.host.load1AtStart.toFixed(2)} at the start of the measured pairs and ${r.host.load1.toFixed(2)} at the end (shared machine; wall times on a machine this loaded vary by a factor of 2 to 3 between runs, so the worker CPU below is the steadier figure).`,
    `${STEPS}-step echo sequence (the interpreter), ${REPS} runs per side after ${WARMUP} warm-up pairs, sides alternating; each side a \`platform worker\` process.`,
    `Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    '',
    '| side | median ms | runs (ms) |',
    '| --- | ---: | --- |',
    `| off (OTEL_SDK_DISABLED=true, METRICS_ENABLED=false) | ${f(r.median.off)} | ${r.ms.off.map(f).join(', ')} |`,
    `| on (${{ none: 'no exporter configured, the embedded default: trace context only, ', 'metrics-only': 'tracing off (OTEL_SDK_DISABLED=true), ', otlp: 'every span exported by OTLP http/json, ' }[EXPORT]}Prometheus metrics) | ${f(r.median.on)} | ${r.ms.on.map(f).join(', ')} |`,
    '',
    `**Ratio on/off: ${r.ratio.toFixed(3)}×** (median of per-pair ratios ${r.medianOfPerRepRatios.toFixed(3)}×; per pair ${r.perRepRatios.join(', ')}). Target ≤ 1.03×.`,
    '',
    '| worker CPU per run (median ms) | main thread | workflow thread + helpers | Temporal core | total |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...sides.map((side) => {
      const c = r.workerCpuMs[side];
      return `| ${side} | ${c.main} | ${c.other} | ${c.core} | ${c.total} |`;
    }),
    '',
    `**Worker CPU on/off: ${r.workerCpuMs.ratio.toFixed(3)}×** (CPU time of the side's worker process during its runs, /proc, 10 ms ticks).`,
    '',
    `The receiver got ${r.spansReceived} spans; the "on" worker's /metrics served ${r.metricsSeries} samples at the end.`,
    '',
  ].join('\n');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
