import { randomUUID } from 'node:crypto';
import type { Pool } from '../../common/db.ts';
import type { Principal } from '../auth.ts';
import { PRODUCTION_ALIAS, type DefinitionsStore, type StoredDefinition } from '../definitions-store.ts';
import { HttpProblem } from '../problem.ts';
import type { RunPins } from '../run-inputs.ts';
import type { RunsService, RunView } from '../runs-service.ts';
import { judgePromotion, measure, readPath, tokensIn, type BatteryRun, type Measures, type PromotionRequest, type Verdict } from './promotion-gate.ts';

/**
 * The promotion gate's effects (seed 003 §5): the production alias per definition, the battery
 * runs of candidate and production on the real platform, and the decisions as an audit trail.
 */

export const PRODUCTION = PRODUCTION_ALIAS;

export interface PromotionRecord {
  id: string;
  name: string;
  action: 'promoted' | 'kept_experimental' | 'rolled_back';
  candidate: string | null;
  previous: string | null;
  production: string | null;
  principal: string;
  at: string;
  report: Record<string, unknown>;
}

export class PromotionStore {
  constructor(private readonly pool: Pool) {}

  async production(tenant: string, name: string): Promise<string | undefined> {
    const r = await this.pool.query<{ version: string }>('SELECT version FROM definition_aliases WHERE tenant = $1 AND name = $2 AND alias = $3', [tenant, name, PRODUCTION]);
    return r.rows[0]?.version;
  }

  /** Records the decision and moves (or clears) the alias in one transaction. */
  async decide(tenant: string, record: Omit<PromotionRecord, 'at'>, moveTo: string | null | undefined): Promise<PromotionRecord> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      if (moveTo === null) await client.query('DELETE FROM definition_aliases WHERE tenant = $1 AND name = $2 AND alias = $3', [tenant, record.name, PRODUCTION]);
      else if (moveTo !== undefined) {
        await client.query(
          `INSERT INTO definition_aliases (tenant, name, alias, version, updated_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant, name, alias) DO UPDATE SET version = EXCLUDED.version, updated_by = EXCLUDED.updated_by, updated_at = now()`,
          [tenant, record.name, PRODUCTION, moveTo, record.principal],
        );
      }
      const inserted = await client.query<{ at: Date }>(
        'INSERT INTO promotion_decisions (id, tenant, name, action, candidate, previous, production, principal, report) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING at',
        [record.id, tenant, record.name, record.action, record.candidate, record.previous, record.production, record.principal, JSON.stringify(record.report)],
      );
      await client.query('COMMIT');
      return { ...record, at: new Date(inserted.rows[0]?.at ?? Date.now()).toISOString() };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async history(tenant: string, name: string): Promise<PromotionRecord[]> {
    const r = await this.pool.query<Record<string, any>>('SELECT * FROM promotion_decisions WHERE tenant = $1 AND name = $2 ORDER BY at DESC, id DESC LIMIT 100', [tenant, name]);
    return r.rows.map((row) => ({
      id: row.id,
      name: row.name,
      action: row.action,
      candidate: row.candidate,
      previous: row.previous,
      production: row.production,
      principal: row.principal,
      at: new Date(row.at).toISOString(),
      report: row.report,
    }));
  }
}

export interface PromotionDeps {
  definitions: DefinitionsStore;
  runs: RunsService;
  store: PromotionStore;
  pins: (definition: StoredDefinition) => Promise<RunPins>;
  executionTimeoutSeconds: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitClosed(runs: RunsService, runId: string, tenant: string, timeoutMs: number): Promise<RunView | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await runs.get(runId, tenant);
    if (run.status !== 'running' && run.status !== 'deferred') return run;
    if (Date.now() > deadline) return undefined;
    await sleep(150);
  }
}

/**
 * Runs one version on the battery, one task after another (the gate runs candidate and production
 * side by side, so each pair of runs meets the same load), and measures each run.
 */
async function runBattery(deps: PromotionDeps, definition: StoredDefinition, request: PromotionRequest, principal: Principal, tag: string, correlationId: string): Promise<BatteryRun[]> {
  const pins = await deps.pins(definition);
  const measured: BatteryRun[] = [];
  for (const [i, task] of request.battery.entries()) {
    const started = await deps.runs.start({
      definition,
      pins,
      input: task.input,
      idempotencyKey: `${tag}-${i}`,
      requestedVersion: definition.version,
      principal,
      correlationId: `${correlationId}/${tag}-${i}`,
      executionTimeoutSeconds: Math.min(request.timeoutSeconds, deps.executionTimeoutSeconds),
    });
    const run = await waitClosed(deps.runs, started.runId, principal.tenant, request.timeoutSeconds * 1000);
    if (!run) {
      measured.push({ task: i, class: task.class, runId: started.runId, status: 'timed_out', tokens: 0, error: `still running after ${request.timeoutSeconds}s` });
      continue;
    }
    const outputs = (run.steps ?? []).map((s) => s.output);
    const durationMs = run.startedAt && run.closedAt ? Date.parse(run.closedAt) - Date.parse(run.startedAt) : undefined;
    const judged = request.judge ? readPath(run.steps?.find((s) => s.id === request.judge?.step)?.output, request.judge.field) : undefined;
    const one: BatteryRun = { task: i, class: task.class, runId: run.runId, status: run.status, tokens: tokensIn(outputs) };
    if (durationMs !== undefined) one.durationMs = durationMs;
    if (typeof judged === 'number' && Number.isFinite(judged)) one.quality = judged;
    const error = (run as { error?: { message?: string } }).error;
    if (error?.message) one.error = error.message;
    measured.push(one);
  }
  return measured;
}

export interface PromotionOutcome {
  decision: PromotionRecord;
  verdict: Verdict;
  candidate: { version: string; measures: Measures; runs: BatteryRun[] };
  production?: { version: string; measures: Measures; runs: BatteryRun[] };
}

/** Runs the gate: both versions on the battery, the verdict, the alias moved or not, the decision recorded. */
export async function runPromotion(deps: PromotionDeps, name: string, request: PromotionRequest, principal: Principal, correlationId: string): Promise<PromotionOutcome> {
  const tenant = principal.tenant;
  const candidate = await deps.definitions.get(tenant, name, request.candidate);
  if (!candidate) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${request.candidate}"`, [{ path: '/candidate', message: 'not registered' }]);
  if (candidate.status !== 'active') throw new HttpProblem(409, 'Conflict', `${name}@${request.candidate} is ${candidate.status}; only an active version can be promoted`, [{ path: '/candidate', message: candidate.status }]);
  const current = await deps.store.production(tenant, name);
  if (current === request.candidate) throw new HttpProblem(409, 'Conflict', `${name}@${request.candidate} is already production`, [{ path: '/candidate', message: 'already production' }]);
  const baseline = current === undefined ? undefined : await deps.definitions.get(tenant, name, current);
  const id = randomUUID();
  const [candidateRuns, baselineRuns] = await Promise.all([
    runBattery(deps, candidate, request, principal, `promotion-${id}-candidate`, correlationId),
    baseline ? runBattery(deps, baseline, request, principal, `promotion-${id}-production`, correlationId) : Promise.resolve(undefined),
  ]);
  const candidateMeasures = measure(candidateRuns);
  const baselineMeasures = baselineRuns ? measure(baselineRuns) : undefined;
  const verdict = judgePromotion(candidateMeasures, baselineMeasures, request, current);
  const report: Record<string, unknown> = {
    verdict,
    battery: request.battery.map((t) => ({ class: t.class, ...(t.name ? { name: t.name } : {}) })),
    candidate: { version: candidate.version, measures: candidateMeasures, runs: candidateRuns },
    ...(baseline && baselineMeasures && baselineRuns ? { production: { version: baseline.version, measures: baselineMeasures, runs: baselineRuns } } : {}),
    ...(request.judge ? { judge: request.judge } : {}),
    ...(request.budget ? { budget: request.budget } : {}),
  };
  const decision = await deps.store.decide(
    tenant,
    {
      id,
      name,
      action: verdict.promote ? 'promoted' : 'kept_experimental',
      candidate: candidate.version,
      previous: current ?? null,
      production: verdict.promote ? candidate.version : (current ?? null),
      principal: principal.principal,
      report,
    },
    verdict.promote ? candidate.version : undefined,
  );
  return {
    decision,
    verdict,
    candidate: { version: candidate.version, measures: candidateMeasures, runs: candidateRuns },
    ...(baseline && baselineMeasures && baselineRuns ? { production: { version: baseline.version, measures: baselineMeasures, runs: baselineRuns } } : {}),
  };
}

/** Moves production back to the version the last promotion replaced (clears it after a first promotion). */
export async function rollbackPromotion(deps: Pick<PromotionDeps, 'store'>, name: string, principal: Principal, reason: string | undefined): Promise<PromotionRecord> {
  const tenant = principal.tenant;
  const current = await deps.store.production(tenant, name);
  if (current === undefined) throw new HttpProblem(409, 'Conflict', `"${name}" has no production version to roll back`);
  // The promotion that made the current version production; what it replaced is where rollback goes.
  const last = (await deps.store.history(tenant, name)).find((d) => d.action === 'promoted' && d.production === current);
  const target = last ? last.previous : null;
  return deps.store.decide(
    tenant,
    {
      id: randomUUID(),
      name,
      action: 'rolled_back',
      candidate: current,
      previous: current,
      production: target,
      principal: principal.principal,
      report: { ...(reason ? { reason } : {}), from: current, to: target },
    },
    target,
  );
}
