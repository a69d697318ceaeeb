import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { startApi } from '../api/server.ts';
import { ConfigError, LANE_WORKER_KINDS, loadConfig, type Config, type LaneWorkerKind } from '../common/config.ts';
import { migrate } from '../common/db.ts';
import { createLogger } from '../common/logger.ts';
import { startTracing, stopTracing } from '../common/tracing.ts';
import { buildWorkflowBundle } from '../workers/bundle.ts';
import { exitWhenSupervisorDies } from './orphan-guard.ts';
import { up } from './up.ts';
import { runWorkerProcess } from './worker.ts';

function config(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name('platform')
    .description('Durable workflows on Temporal: run the whole platform, or one part of it.')
    .showHelpAfterError();

  program
    .command('up')
    .description('Start everything on embedded defaults (Temporal dev server, PGlite, one worker per lane, API)')
    .action(async () => {
      const cfg = config();
      await up(cfg, createLogger('supervisor', cfg.LOG_LEVEL));
    });

  program
    .command('api')
    .description('Run the REST API (scale out by running several)')
    .action(async () => {
      const cfg = config();
      const logger = createLogger('api', cfg.LOG_LEVEL);
      // Before the API exists, so its client and routes find the tracer provider (OTEL_* variables).
      startTracing('durable-workflows-api', logger);
      const api = await startApi(cfg, logger);
      const stop = () => void api.close().then(stopTracing).then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      exitWhenSupervisorDies(stop);
    });

  program
    .command('worker')
    .description('Run the workers of one lane (or several, comma-separated), all its task queues or some kinds')
    .requiredOption('--lane <lanes>', 'lane name(s), e.g. prod-critical')
    .option('--kinds <kinds>', `task queues to serve, comma-separated: ${LANE_WORKER_KINDS.join(', ')} (default: all)`)
    .action(async (options: { lane: string; kinds?: string }) => {
      const cfg = config();
      const lanes = options.lane.split(',').map((l) => l.trim()).filter(Boolean);
      const unknown = lanes.filter((l) => !cfg.LANES.includes(l));
      if (unknown.length > 0) {
        process.stderr.write(`unknown lane(s) ${unknown.join(', ')}; configured lanes (LANES): ${cfg.LANES.join(', ')}\n`);
        process.exit(2);
      }
      const kinds = options.kinds?.split(',').map((k) => k.trim()).filter(Boolean);
      const badKinds = (kinds ?? []).filter((k) => !(LANE_WORKER_KINDS as readonly string[]).includes(k));
      if (kinds?.length === 0 || badKinds.length > 0) {
        process.stderr.write(`unknown kind(s) ${badKinds.join(', ') || '(none given)'}; kinds: ${LANE_WORKER_KINDS.join(', ')}\n`);
        process.exit(2);
      }
      const logger = createLogger(`worker:${lanes.join(',')}${kinds ? `:${kinds.join(',')}` : ''}`, cfg.LOG_LEVEL);
      exitWhenSupervisorDies(() => process.kill(process.pid, 'SIGTERM'));
      await runWorkerProcess(cfg, lanes, logger, kinds as LaneWorkerKind[] | undefined);
    });

  program
    .command('migrate')
    .description('Apply database migrations to DATABASE_URL')
    .action(async () => {
      const cfg = config();
      if (!cfg.DATABASE_URL) {
        process.stderr.write('DATABASE_URL is not set\n');
        process.exit(2);
      }
      await migrate(cfg.DATABASE_URL, createLogger('migrate', cfg.LOG_LEVEL));
    });

  program
    .command('bundle')
    .description('Prebuild the workflow bundle for WORKFLOW_BUNDLE_PATH (production images)')
    .requiredOption('--out <file>', 'where to write the bundle')
    .action(async (options: { out: string }) => {
      const bundle = await buildWorkflowBundle(createLogger('bundle', config().LOG_LEVEL));
      writeFileSync(options.out, bundle.code);
    });

  await program.parseAsync(argv);
}

main(process.argv).catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
