/**
 * `npm run bench:codec`: the 100-step sequence with the payload codec on vs off, in one run
 * against one dev server (issue 18, target ≤ 1.05×). Two lanes on the same process: one whose
 * workers and client have the codec (AES-256-GCM, common/codec.ts), one without; runs alternate
 * between them after a warm-up. Writes bench/RESULTS-codec.md and bench/results-codec.json.
 *
 * Knobs: BENCH_CODEC_REPS (5), BENCH_CODEC_STEPS (100), BENCH_WARMUP (2).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { catalogNames, createActivityCatalog } from '../activities/catalog.ts';
import { newKeyEntry } from '../common/codec.ts';
import { loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';
import { dataConverterFor } from '../common/temporal.ts';
import { startDevServer } from '../embedded/dev-server.ts';
import { freePort } from '../embedded/ports.ts';
import { resolveTemporalCli } from '../embedded/temporal-cli.ts';
import { validateDefinition } from '../interpreter/validate.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { createLaneWorkers } from '../workers/lane-worker.ts';
import { installRuntime } from '../workers/runtime.ts';
import { sequence } from './definitions.ts';
import { alternatingPairs, ratios, timedRun } from './pairs.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const int = (name: string, fallback: number) => Math.max(1, Number(process.env[name] ?? fallback) || fallback);
const REPS = int('BENCH_CODEC_REPS', 5);
const STEPS = int('BENCH_CODEC_STEPS', 100);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);

async function main(): Promise<void> {
  const logger = createLogger('bench', process.env.LOG_LEVEL ?? 'warn');
  installRuntime(logger);
  const server = await startDevServer({ cliPath: resolveTemporalCli(), port: await freePort(), headless: true, logger });
  const suffix = randomBytes(3).toString('hex');
  const lanes = { off: `codec-off-${suffix}`, on: `codec-on-${suffix}` };
  const keys = JSON.stringify([newKeyEntry()]);
  const configs = {
    off: loadConfig({ TEMPORAL_ADDRESS: server.address, LANES: `${lanes.off},${lanes.on}`, DEFAULT_LANE: lanes.off }),
    on: loadConfig({ TEMPORAL_ADDRESS: server.address, LANES: `${lanes.off},${lanes.on}`, DEFAULT_LANE: lanes.on, PAYLOAD_CODEC_KEYS: keys }),
  };
  const native = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const bundle = await buildWorkflowBundle(logger);
  const catalog = createActivityCatalog(configs.off);
  const sides = ['off', 'on'] as const;
  const workers = await Promise.all(
    sides.map((side) => createLaneWorkers({ config: configs[side], lane: lanes[side], logger, workflowBundle: { code: bundle.code }, connection: native, catalog })),
  );
  const running = workers.map((w) => w.run());
  const clients = {
    off: new Client({ connection }),
    on: new Client({ connection, dataConverter: dataConverterFor(configs.on) }),
  };
  const raw = sequence(STEPS);
  const validated = validateDefinition(raw, { ...catalogNames(catalog), lanes: Object.values(lanes) });
  if (!validated.ok) throw new Error(JSON.stringify(validated.problems));
  let seq = 0;
  const run = async (side: 'off' | 'on'): Promise<number> => {
    seq += 1;
    return timedRun(clients[side], validated.definition, lanes[side], `bench-codec-${side}-${String(seq).padStart(4, '0')}`);
  };

  const t0 = performance.now();
  const ms = await alternatingPairs(sides, run, REPS, WARMUP);
  for (const w of workers) w.shutdown();
  await Promise.allSettled(running);
  await native.close();
  await connection.close();
  await server.stop();

  const result = {
    at: new Date().toISOString(),
    host: { cpus: os.cpus().length, load1: os.loadavg()[0] ?? 0 },
    steps: STEPS,
    reps: REPS,
    warmup: WARMUP,
    ms,
    ...ratios(ms),
    wallSeconds: Math.round((performance.now() - t0) / 1000),
  };
  writeFileSync(`${BENCH_DIR}results-codec.json`, `${JSON.stringify(result, null, 2)}\n`);
  const f = (n: number) => n.toFixed(0);
  writeFileSync(
    `${BENCH_DIR}RESULTS-codec.md`,
    [
      '# Payload codec overhead (`npm run bench:codec`)',
      '',
      `${result.at}, ${result.host.cpus} CPUs, load ${result.host.load1.toFixed(2)} at the end. ${STEPS}-step echo sequence (the interpreter), ${REPS} runs per side after ${WARMUP} warm-up pairs, sides alternating.`,
      '',
      '| codec | median ms | runs (ms) |',
      '| --- | ---: | --- |',
      `| off | ${f(result.median.off)} | ${ms.off.map(f).join(', ')} |`,
      `| on (AES-256-GCM) | ${f(result.median.on)} | ${ms.on.map(f).join(', ')} |`,
      '',
      `**Ratio on/off: ${result.ratio.toFixed(3)}×** (median of per-pair ratios ${result.medianOfPerRepRatios.toFixed(3)}×; per pair ${result.perRepRatios.join(', ')}). Target ≤ 1.05×.`,
      '',
    ].join('\n'),
  );
  process.stdout.write(`${JSON.stringify({ ratio: result.ratio, median: result.median, perRep: result.perRepRatios })}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
