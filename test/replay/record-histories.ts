/**
 * Records the committed replay fixtures: runs every golden definition on a fresh dev server and
 * writes its history to test/fixtures/histories/<name>.json. Run it (`npm run record-histories`)
 * only when a deliberate interpreter change comes with `patched()` and needs a new fixture; never
 * overwrite an existing fixture to make replay pass.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { catalogNames, createActivityCatalog } from '../../activities/catalog.ts';
import { definitionHash } from '../../api/definitions-store.ts';
import { loadConfig } from '../../common/config.ts';
import { INTERPRETER_WORKFLOW_TYPE, workflowTaskQueue } from '../../common/constants.ts';
import { createLogger } from '../../common/logger.ts';
import { startDevServer } from '../../embedded/dev-server.ts';
import { freePort } from '../../embedded/ports.ts';
import { resolveTemporalCli } from '../../embedded/temporal-cli.ts';
import { validateDefinition } from '../../interpreter/validate.ts';
import { buildWorkflowBundle } from '../../workers/bundle.ts';
import { createLaneWorkers } from '../../workers/lane-worker.ts';
import { installRuntime } from '../../workers/runtime.ts';
import type { RunInput } from '../../workflows/types.ts';
import { GOLDEN_INPUT, HISTORIES_DIR, goldenDefinitions } from './golden.ts';

const force = process.argv.includes('--force');
const logger = createLogger('record', 'warn');
installRuntime(logger);
const cliPath = resolveTemporalCli();
const server = await startDevServer({ cliPath, port: await freePort(), headless: true, logger });
try {
  const lane = 'golden';
  const config = loadConfig({ TEMPORAL_ADDRESS: server.address, LANES: lane, DEFAULT_LANE: lane, LOG_LEVEL: 'warn' });
  const native = await NativeConnection.connect({ address: server.address });
  const workers = await createLaneWorkers({ config, lane, logger, workflowBundle: await buildWorkflowBundle(logger), connection: native });
  const running = workers.run();
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  mkdirSync(HISTORIES_DIR, { recursive: true });
  for (const { name, definition } of goldenDefinitions()) {
    const file = join(HISTORIES_DIR, `${name}.json`);
    if (existsSync(file) && !force) {
      console.log(`kept ${file} (use --force to re-record)`);
      continue;
    }
    const result = validateDefinition(definition, { ...catalogNames(createActivityCatalog(config)), lanes: [lane] });
    if (!result.ok) throw new Error(`${name} is invalid: ${JSON.stringify(result.problems)}`);
    const input: RunInput = {
      definition: result.definition,
      definitionHash: definitionHash(result.definition),
      input: GOLDEN_INPUT,
      lane,
      tenant: 'golden',
      startedBy: 'recorder',
      correlationId: `golden-${name}`,
    };
    const handle = await client.workflow.start(INTERPRETER_WORKFLOW_TYPE, {
      workflowId: `golden-${name}`,
      taskQueue: workflowTaskQueue(lane),
      args: [input],
    });
    await handle.result().catch(() => undefined);
    // The CLI's JSON export is the same format the Temporal UI downloads.
    const json = execFileSync(cliPath, ['workflow', 'show', '--address', server.address, '--workflow-id', handle.workflowId, '--output', 'json'], { encoding: 'utf8' });
    writeFileSync(file, json.endsWith('\n') ? json : `${json}\n`);
    console.log(`recorded ${file}`);
  }
  workers.shutdown();
  await running;
  await native.close();
} finally {
  await server.stop();
}
