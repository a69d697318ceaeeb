import { Router, type Request } from 'express';
import { handle } from '../contract.ts';
import { operateContracts as c } from '../contracts/operate.ts';
import { principalOf } from '../auth.ts';
import { correlationIdOf } from '../http.ts';
import type { LanesService } from '../lanes-service.ts';
import type { OperationsStore } from '../operations-store.ts';
import { HttpProblem } from '../problem.ts';
import type { RetryResult, RetryService } from '../retry-service.ts';
import type { SloReports } from '../reports.ts';
import { idempotencyKeySchema } from '../schemas.ts';

export interface OperateDeps {
  lanes: LanesService;
  retries: RetryService;
  operations: OperationsStore;
  /** Seed 003's daily SLO report (api/reports.ts). */
  reports?: SloReports;
}

function idempotencyKeyOf(req: Request): string | undefined {
  const header = req.get('idempotency-key');
  if (header !== undefined && !idempotencyKeySchema.safeParse(header).success) {
    throw new HttpProblem(400, 'Invalid request', 'the Idempotency-Key header must be 1-200 printable ASCII characters without spaces', [
      { path: 'Idempotency-Key', message: 'invalid header value' },
    ]);
  }
  return header;
}

/**
 * The operator's routes (seed 003 §8, issue 13): lane status, pause and resume; retry of one failed
 * run or of the failed runs a filter selects. Changes need the `operator` role (or `admin`), are
 * written to the operations audit trail, and honour an Idempotency-Key.
 */
export function operateRoutes(deps: { operate?: OperateDeps | undefined }): Router {
  const router = Router();
  const operate = deps.operate;
  if (!operate) return router;

  handle(router, c.lanes, async () => ({ status: 200, body: { lanes: await operate.lanes.list() } }));

  handle(router, c.lane, async ({ params }) => ({ status: 200, body: await operate.lanes.status(params.lane) }));

  for (const action of ['pause', 'resume'] as const) {
    handle(router, c[action], async ({ req, params: { lane }, body }) => {
      const principal = principalOf(req);
      const reason = body.reason ?? '';
      await operate.operations.perform(
        { principal, action: `lane.${action}`, target: lane, request: body, idempotencyKey: idempotencyKeyOf(req), correlationId: correlationIdOf(req) },
        async () => {
          const by = `${principal.principal} (tenant ${principal.tenant})`;
          const status = action === 'pause' ? await operate.lanes.pause(lane, by, reason) : await operate.lanes.resume(lane, by, reason);
          return { lane, paused: status.paused, backlog: status.backlog };
        },
      );
      req.log?.info({ lane, action, principal: principal.principal }, `lane ${action}`);
      return { status: 200, body: await operate.lanes.status(lane) };
    });
  }

  handle(router, c.bulkRetry, async ({ req, body }) => {
    const principal = principalOf(req);
    const key = idempotencyKeyOf(req);
    const correlationId = correlationIdOf(req);
    if (body.filter.since && body.filter.until && body.filter.since >= body.filter.until) {
      throw new HttpProblem(400, 'Invalid request', '`since` must be before `until`', [{ path: '/filter/until', message: 'not after since' }]);
    }
    if (body.dryRun) {
      const runs = await operate.retries.candidates(principal.tenant, { ...body.filter, limit: body.limit });
      return { status: 200, body: { dryRun: true, count: runs.length, runs } };
    }
    const { result, replayed } = await operate.operations.perform(
      { principal, action: 'runs.retry', target: JSON.stringify(body.filter), request: body, idempotencyKey: key, correlationId },
      async () => {
        const runs = await operate.retries.candidates(principal.tenant, { ...body.filter, limit: body.limit });
        const retried: RetryResult[] = [];
        const failed: Array<{ runId: string; status: number; detail: string }> = [];
        for (const run of runs) {
          try {
            // Each run's own key: a replayed bulk request retries none twice.
            const runKey = key === undefined ? undefined : `bulk:${key}:${run.runId}`;
            retried.push(await operate.retries.retry(run.runId, principal, { mode: body.mode, reason: body.reason }, { idempotencyKey: runKey, correlationId }));
          } catch (error) {
            failed.push({ runId: run.runId, status: error instanceof HttpProblem ? error.status : 500, detail: (error as Error).message });
          }
        }
        return { dryRun: false, count: runs.length, runs, retried, failed };
      },
    );
    req.log?.info({ count: result.count, retried: result.retried.length, failed: result.failed.length, replayed }, 'bulk retry');
    return { status: replayed ? 200 : 202, body: result };
  });

  handle(router, c.retryRun, async ({ req, params: { runId }, body }) => {
    const principal = principalOf(req);
    const key = idempotencyKeyOf(req);
    const correlationId = correlationIdOf(req);
    const { result, replayed } = await operate.operations.perform(
      { principal, action: 'run.retry', target: runId, request: body, idempotencyKey: key, correlationId },
      () => operate.retries.retry(runId, principal, body, { idempotencyKey: key, correlationId }),
    );
    req.log?.info({ runId, mode: result.mode, replayed, newRunId: result.newRunId }, 'run retry');
    return { status: replayed ? 200 : 202, body: result };
  });

  handle(router, c.sloReport, async ({ req, query }) => {
    if (!operate.reports) throw new HttpProblem(404, 'Not Found', 'the SLO report is not configured on this API');
    return { status: 200, body: await operate.reports.report(principalOf(req).tenant, query.window) };
  });

  handle(router, c.operations, async ({ req, query }) => ({ status: 200, body: { operations: await operate.operations.list(principalOf(req).tenant, query) } }));

  return router;
}
