/**
 * Records the committed replay fixtures: runs every golden definition on a fresh dev server and
 * writes its histories to test/fixtures/histories (layout in golden.ts): the run, every run of a
 * continue-as-new chain, and every child run. Run it (`npm run record-histories`) only when a
 * golden is added, or when a deliberate interpreter change comes with `patched()` and needs a new
 * fixture; never overwrite an existing fixture to make replay pass.
 *
 *   npm run record-histories                        record goldens that have no history yet
 *   npm run record-histories -- control-flow        only these goldens (still keeps existing ones)
 *   npm run record-histories -- --force [names...]  re-record (deletes the goldens' old histories first)
 *
 * A golden's sidecar `<name>.run.json` sets its input, the signals to send, continue-as-new and the
 * outcome the run must have; `<name>.children.json` holds the definitions its sub_workflow steps call.
 *
 * The lane's workers include the platform worker (the approval audit trail), which needs a database:
 * the recorder runs an in-memory PGlite with the migrations applied and passes its URL as
 * DATABASE_URL, so a golden with approvals records its `recordAudit` activities too.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { catalogNames, createActivityCatalog } from '../../activities/catalog.ts';
import { AuditStore } from '../../activities/platform/audit.ts';
import { DecisionKeys, signDecisionToken } from '../../activities/platform/decision-tokens.ts';
import type { DecisionClaims } from '../../interpreter/approvals.ts';
import { definitionHash } from '../../api/definitions-store.ts';
import { loadConfig } from '../../common/config.ts';
import { createPool, migrate } from '../../common/db.ts';
import { INTERPRETER_WORKFLOW_TYPE, RUN_STATE_QUERY, workflowTaskQueue } from '../../common/constants.ts';
import { createLogger } from '../../common/logger.ts';
import { startDevServer } from '../../embedded/dev-server.ts';
import { startEmbeddedPostgres } from '../../embedded/pglite.ts';
import { freePort } from '../../embedded/ports.ts';
import { resolveTemporalCli } from '../../embedded/temporal-cli.ts';
import type { RunState } from '../../interpreter/engine.ts';
import type { Definition } from '../../interpreter/schema.ts';
import { validateDefinition, type ValidationContext } from '../../interpreter/validate.ts';
import { buildWorkflowBundle } from '../../workers/bundle.ts';
import { createLaneWorkers } from '../../workers/lane-worker.ts';
import { installRuntime } from '../../workers/runtime.ts';
import type { PinnedDefinition, RunInput } from '../../workflows/types.ts';
import type { AgentDefinition } from '../../activities/agents/types.ts';
import { startLlmDouble, type LlmBehaviour } from '../support/llm-double.ts';
import { json, startLoopbackHttp } from '../support/loopback-http.ts';
import {
  GOLDEN_INPUT,
  HISTORIES_DIR,
  goldenDefinitions,
  goldenWorkflowId,
  historyBase,
  historyFixtures,
  type Golden,
  type HistoryEvent,
} from './golden.ts';

const args = process.argv.slice(2);
const force = args.includes('--force');
const only = new Set(args.filter((a) => !a.startsWith('--')));
const goldens = goldenDefinitions().filter((g) => only.size === 0 || only.has(g.name));
for (const name of only) {
  if (!goldens.some((g) => g.name === name)) throw new Error(`no golden definition "${name}"`);
}

/** The loopback API the `loopback` goldens call: POST /notes answers 503 once, then 201. */
let notePosts = 0;
const loopback = await startLoopbackHttp({
  '/notes': (req, res, body) => {
    if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
    notePosts += 1;
    if (notePosts === 1) return json(res, 503, { error: 'warming up' });
    return json(res, 201, { id: 1, text: (JSON.parse(body) as { text?: unknown }).text ?? null });
  },
  '/notes/1': (_req, res) => json(res, 200, { id: 1, text: 'hello ada' }),
});

/** The loopback LLM server `model` steps and agents call (Ollama's protocol), scripted per golden. */
const llm = await startLlmDouble();

const logger = createLogger('record', 'warn');
installRuntime(logger);
const cliPath = resolveTemporalCli();
const server = await startDevServer({ cliPath, port: await freePort(), headless: true, logger });
// The audit trail's database: in memory, gone with the recorder.
const database = await startEmbeddedPostgres({ port: await freePort(), logger });
await migrate(database.url, logger);

function showHistory(workflowId: string, runId: string): string {
  // The CLI's JSON export is the same format the Temporal UI downloads.
  const out = execFileSync(
    cliPath,
    ['workflow', 'show', '--address', server.address, '--workflow-id', workflowId, '--run-id', runId, '--output', 'json'],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  return out.endsWith('\n') ? out : `${out}\n`;
}

/**
 * Saves every run of a workflow id, following the continue-as-new chain from its first run (each
 * ContinuedAsNew event names the next run, so the order needs no visibility query), then the
 * histories of the children those runs started. Returns the files written with their event counts.
 */
function saveExecution(golden: string, workflowId: string, firstRunId: string): Array<[string, number]> {
  const runs: Array<{ text: string; events: HistoryEvent[] }> = [];
  for (let runId: string | undefined = firstRunId; runId !== undefined; ) {
    const text = showHistory(workflowId, runId);
    const events = (JSON.parse(text) as { events: HistoryEvent[] }).events;
    runs.push({ text, events });
    const last = events[events.length - 1];
    const next = last?.workflowExecutionContinuedAsNewEventAttributes as { newExecutionRunId?: string } | undefined;
    runId = next?.newExecutionRunId;
  }
  const root = goldenWorkflowId(golden);
  const base = historyBase(golden, workflowId === root ? undefined : workflowId.slice(root.length + 1));
  const written: Array<[string, number]> = [];
  runs.forEach((run, i) => {
    const file = runs.length === 1 ? `${base}.json` : `${base}.${i + 1}.json`;
    writeFileSync(join(HISTORIES_DIR, file), run.text);
    written.push([file, run.events.length]);
  });
  for (const run of runs) {
    for (const event of run.events) {
      const started = event.childWorkflowExecutionStartedEventAttributes as { workflowExecution?: { workflowId?: string; runId?: string } } | undefined;
      const child = started?.workflowExecution;
      if (!child?.workflowId || !child.runId) continue;
      if (!child.workflowId.startsWith(`${root}/`)) throw new Error(`child ${child.workflowId} is not under ${root}/`);
      written.push(...saveExecution(golden, child.workflowId, child.runId));
    }
  }
  return written;
}

/**
 * Sends the golden's signals in order; a `whenStep` signal waits until that step is running (and,
 * with `whenStage`, until that approval step's pending approval reached the stage).
 */
async function sendSignals(golden: Golden, handle: WorkflowHandle): Promise<void> {
  for (const signal of golden.run.signals ?? []) {
    if (signal.whenStep !== undefined) {
      const deadline = Date.now() + 60_000;
      const stageReached = (state: RunState) =>
        signal.whenStage === undefined ||
        Object.values(state.approvals ?? {}).some((a) => a.stepId === signal.whenStep && a.status === 'pending' && a.stage >= (signal.whenStage ?? 0));
      for (;;) {
        const state = await handle.query<RunState>(RUN_STATE_QUERY);
        if (state.currentStep === signal.whenStep && stageReached(state)) break;
        if (state.status !== 'running' || Date.now() > deadline) {
          const stage = signal.whenStage === undefined ? '' : ` at stage ${signal.whenStage}`;
          throw new Error(
            `${golden.name}: step "${signal.whenStep}" never ran${stage} (status ${state.status}, current step ${state.currentStep ?? 'none'}${state.error ? `, error ${JSON.stringify(state.error)}` : ''})`,
          );
        }
        await sleep(100);
      }
    }
    await handle.signal(signal.name, await withSignedToken(handle.workflowId, signal.payload ?? null));
  }
}

/**
 * A payload whose `token` is `{"$sign": {...claims}}` gets a decision token signed with the
 * platform's key in the recorder's database, bound to this run (`run` and `exp` filled in).
 */
async function withSignedToken(workflowId: string, payload: unknown): Promise<unknown> {
  const token = (payload as { token?: { $sign?: Partial<DecisionClaims> } } | null)?.token;
  if (!token?.$sign) return payload;
  const claims = { run: workflowId, groups: [], channel: 'signal', exp: Date.now() + 3_600_000, ...token.$sign } as DecisionClaims;
  return { ...(payload as object), token: await signDecisionToken(decisionKeys, claims) };
}

let decisionKeys: DecisionKeys;

try {
  const lane = 'golden';
  const config = loadConfig({
    TEMPORAL_ADDRESS: server.address,
    LANES: lane,
    DEFAULT_LANE: lane,
    LOG_LEVEL: 'warn',
    HTTP_FETCH_ALLOWED_HOSTS: loopback.host,
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '2',
    OLLAMA_BASE_URL: llm.url,
  });
  const auditPool = createPool(database.url, 1);
  const auditStore = new AuditStore(auditPool);
  decisionKeys = new DecisionKeys(auditPool);
  const native = await NativeConnection.connect({ address: server.address });
  const workers = await createLaneWorkers({ config, lane, logger, workflowBundle: await buildWorkflowBundle(logger), connection: native });
  const running = workers.run();
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const catalog = catalogNames(createActivityCatalog(config));
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const existing = historyFixtures();
  for (const golden of goldens) {
    const old = existing.filter((h) => h.golden === golden.name);
    if (old.length > 0 && !force) {
      console.log(`kept ${golden.name}: ${old.map((h) => h.file).join(', ')} (use --force to re-record)`);
      continue;
    }
    for (const h of old) rmSync(join(HISTORIES_DIR, h.file));

    const keyOf = (d: unknown) => `${(d as Definition).name}@${(d as Definition).version}`;
    const ctx: ValidationContext = {
      ...catalog,
      agents: new Set([...catalog.agents, ...Object.keys(golden.run.agents ?? {})]),
      lanes: [lane],
      definitions: new Set(golden.children.map(keyOf)),
    };
    const validated = (raw: unknown, what: string): Definition => {
      const result = validateDefinition(raw, ctx);
      if (!result.ok) throw new Error(`${what} is invalid: ${JSON.stringify(result.problems)}`);
      return result.definition;
    };
    const definition = validated(golden.definition, golden.name);
    const subDefinitions: Record<string, PinnedDefinition> = {};
    for (const raw of golden.children) {
      const child = validated(raw, `${golden.name}.children.json: ${keyOf(raw)}`);
      subDefinitions[keyOf(child)] = { definition: child, hash: definitionHash(child) };
    }
    for (const [model, behaviours] of Object.entries(golden.run.llm ?? {})) llm.script(model, ...(behaviours as unknown as LlmBehaviour[]));
    const input: RunInput = {
      definition,
      definitionHash: definitionHash(definition),
      input: { ...GOLDEN_INPUT, ...golden.run.input, ...(golden.run.loopback ? { loopback: loopback.url } : {}) },
      lane,
      tenant: 'golden',
      startedBy: 'recorder',
      correlationId: goldenWorkflowId(golden.name),
      ...(golden.children.length > 0 ? { subDefinitions } : {}),
      ...(golden.run.continueAsNewAfterEvents !== undefined ? { continueAsNewAfterEvents: golden.run.continueAsNewAfterEvents } : {}),
      ...(golden.run.recordEvents ? { recordEvents: true } : {}),
      ...(golden.run.agents ? { agents: golden.run.agents as unknown as Record<string, AgentDefinition> } : {}),
    };
    const handle = await client.workflow.start(INTERPRETER_WORKFLOW_TYPE, {
      workflowId: goldenWorkflowId(golden.name),
      taskQueue: workflowTaskQueue(lane),
      args: [input],
    });
    await sendSignals(golden, handle);
    const outcome = await handle.result().then(
      () => 'completed' as const,
      (error: unknown) => {
        if (error instanceof WorkflowFailedError) return 'failed' as const;
        throw error;
      },
    );
    const expected = golden.run.expect ?? 'completed';
    if (outcome !== expected) {
      const description = await handle.describe();
      throw new Error(`${golden.name}: the run ${outcome} (expected ${expected}); see workflow ${handle.workflowId} run ${description.runId}`);
    }
    const written = saveExecution(golden.name, handle.workflowId, handle.firstExecutionRunId);
    // The run's audit trail was written before it closed (the workflow drains it first).
    const audit = await auditStore.forRun(input.tenant, handle.workflowId);
    const trail = audit.length === 0 ? '' : `; audit trail: ${audit.map((e) => `${e.principal} ${e.decision} ${e.stepId} ${e.outcome}${e.code ? ` (${e.code})` : ''}`).join(', ')}`;
    console.log(`recorded ${golden.name} (${outcome}): ${written.map(([file, events]) => `${file} (${events} events)`).join(', ')}${trail}`);
  }
  await auditPool.end();
  workers.shutdown();
  await running;
  await native.close();
} finally {
  await server.stop();
  await database.stop();
  await loopback.close();
  await llm.close();
}
