import { Router } from 'express';
import { handle, RESPONDED } from '../contract.ts';
import { runContracts as c } from '../contracts/runs.ts';
import { LIMITS } from '../../interpreter/schema.ts';
import { auditEntryOf } from '../../interpreter/approvals.ts';
import { principalOf } from '../auth.ts';
import type { DefinitionsStore } from '../definitions-store.ts';
import { correlationIdOf } from '../http.ts';
import { HttpProblem } from '../problem.ts';
import type { RunsService, RunView } from '../runs-service.ts';
import { randomUUID } from 'node:crypto';
import type { AuditStore } from '../../activities/platform/audit.ts';
import type { RunLogStore } from '../../activities/platform/run-logs.ts';
import type { RunEventStore, StoredRunEvent } from '../../activities/platform/events.ts';
import type { ApiKeyStore } from '../auth.ts';
import { pinRunDependencies } from '../run-inputs.ts';
import { readsSensitive, type RunMasking } from '../run-masking.ts';
import { streamRun, wantsEventStream, type RunStreamOptions } from '../run-stream.ts';
import { idempotencyKeySchema } from '../schemas.ts';

export interface RunRoutesDeps {
  definitions: DefinitionsStore;
  runs: RunsService;
  keys: ApiKeyStore;
  audit: AuditStore;
  /** Lifecycle events (docs/lifecycle-events.md). */
  events: RunEventStore;
  /** The workers' log lines of runs. */
  logs: RunLogStore;
  defaultExecutionTimeoutSeconds: number;
  temporalUiUrl: string;
  namespace: string;
  /** Poll and keep-alive intervals of the progress stream. */
  runStream?: RunStreamOptions;
  /** Masks declared sensitive values for callers without `sensitive-reader` (api/run-masking.ts). */
  masking?: RunMasking;
}

/** Starting, reading, listing and cancelling runs. */
export function runRoutes(deps: RunRoutesDeps): Router {
  const router = Router();
  const links = runLinks(deps);
  startAndReadRoutes(router, deps, links);
  approvalRoutes(router, deps);
  eventAndCancelRoutes(router, deps, links);
  runLogRoutes(router, deps);
  return router;
}

/** The links a run's answers carry. */
const runLinks = (deps: RunRoutesDeps) => (runId: string) => ({
  self: `/v1/runs/${encodeURIComponent(runId)}`,
  cancel: `/v1/runs/${encodeURIComponent(runId)}/cancel`,
  temporalUi: `${deps.temporalUiUrl}/namespaces/${encodeURIComponent(deps.namespace)}/workflows/${encodeURIComponent(runId)}`,
});
type Links = ReturnType<typeof runLinks>;

/** POST /v1/runs, GET /v1/runs and GET /v1/runs/{runId}. */
function startAndReadRoutes(router: Router, deps: RunRoutesDeps, links: Links): void {
  handle(router, c.start, async ({ req, body }) => {
    const principal = principalOf(req);
    const header = req.get('idempotency-key');
    if (header !== undefined && !idempotencyKeySchema.safeParse(header).success) {
      throw new HttpProblem(400, 'Invalid request', 'the Idempotency-Key header must be 1-200 printable ASCII characters without spaces', [
        { path: 'Idempotency-Key', message: 'invalid header value' },
      ]);
    }
    if (header !== undefined && body.idempotencyKey !== undefined && header !== body.idempotencyKey) {
      throw new HttpProblem(400, 'Invalid request', 'the Idempotency-Key header and the idempotencyKey field differ', [
        { path: '/idempotencyKey', message: 'differs from the Idempotency-Key header' },
      ]);
    }
    const inputBytes = Buffer.byteLength(JSON.stringify(body.input ?? null), 'utf8');
    if (inputBytes > LIMITS.maxInputBytes) {
      throw new HttpProblem(400, 'Invalid request', `the input is ${inputBytes} bytes; the limit is ${LIMITS.maxInputBytes}`, [
        { path: '/input', message: 'too large' },
      ]);
    }
    // Without a version: the production alias, else the highest active version (as schedules and events do).
    const definition =
      body.version === undefined
        ? await deps.definitions.startingVersion(principal.tenant, body.definition)
        : await deps.definitions.get(principal.tenant, body.definition, body.version);
    // A retried request gets the run it started, even if its version was deprecated since.
    const key = body.idempotencyKey ?? header;
    if ((!definition || definition.status !== 'active') && key !== undefined) {
      const existing = await deps.runs.existing(principal.tenant, body.definition, key);
      if (existing) return { status: 200, location: links(existing.runId).self, body: { ...existing, created: false, links: links(existing.runId) } };
    }
    if (!definition && body.version === undefined && (await deps.definitions.latest(principal.tenant, body.definition))) {
      throw new HttpProblem(409, 'Conflict', `every version of "${body.definition}" is deprecated or retired; no new runs start`, [
        { path: '/definition', message: 'no active version' },
      ]);
    }
    if (definition && definition.status !== 'active') {
      throw new HttpProblem(409, 'Conflict', `${definition.name}@${definition.version} is ${definition.status}; no new runs start (running ones finish)`, [
        { path: '/version', message: definition.status },
      ]);
    }
    if (!definition) {
      throw new HttpProblem(
        404,
        'Not Found',
        body.version === undefined ? `no definition "${body.definition}"` : `no definition "${body.definition}" version "${body.version}"`,
        [{ path: body.version === undefined ? '/definition' : '/version', message: 'not registered' }],
      );
    }
    const started = await deps.runs.start({
      definition,
      pins: await pinRunDependencies(deps.definitions, deps.keys, principal.tenant, definition),
      input: body.input,
      idempotencyKey: body.idempotencyKey ?? header,
      requestedVersion: body.version,
      principal,
      correlationId: correlationIdOf(req),
      executionTimeoutSeconds: definition.body.resource_limits?.max_execution_time ?? deps.defaultExecutionTimeoutSeconds,
    });
    req.log?.info({ runId: started.runId, created: started.created, definition: definition.name, version: definition.version }, 'run start');
    // A deferred run is accepted, not started: 202, and GET on its link shows it `deferred`.
    return {
      status: started.created ? (started.status === 'deferred' ? 202 : 201) : 200,
      location: links(started.runId).self,
      body: { runId: started.runId, status: started.status, created: started.created, links: links(started.runId) },
    };
  });

  handle(router, c.list, async ({ req, query }) => ({ status: 200, body: { runs: await deps.runs.list(principalOf(req).tenant, query) } }));

  handle(router, c.get, async ({ req, params }) => {
    const principal = principalOf(req);
    const found = await deps.runs.get(params.runId, principal.tenant);
    const run = deps.masking && !readsSensitive(principal) ? await deps.masking.view(found, principal.tenant) : found;
    return { status: 200, body: { ...run, links: links(run.runId) } };
  });
}

/** Deciding an approval and the run's audit trail. */
function approvalRoutes(router: Router, deps: RunRoutesDeps): void {
  handle(router, c.decide, async ({ req, params: { runId, stepId }, body }) => {
    const principal = principalOf(req);
    const result = await deps.runs.decide(runId, principal, stepId, body.decision, body.comment, async (refusal) => {
      // Refused before the workflow's history: the API writes the audit line itself. A failed write
      // is logged; the caller still learns why the attempt was refused.
      await deps.audit.record([
        auditEntryOf(
          { id: `${runId}/refused/${randomUUID()}`, runId, tenant: principal.tenant, definition: refusal.definition.name, version: refusal.definition.version },
          { step: stepId, principal: principal.principal, decision: body.decision, ...(body.comment ? { comment: body.comment } : {}), via: 'api' },
          'refused',
          new Date().toISOString(),
          { code: refusal.code as never, reason: refusal.reason },
        ),
      ]).catch((error: unknown) => req.log?.error({ err: error, runId, stepId }, 'could not write the refused approval to the audit trail'));
      req.log?.warn({ runId, stepId, approver: principal.principal, code: refusal.code }, 'approval refused');
    });
    req.log?.info({ runId, stepId, approver: principal.principal, decision: body.decision, status: result.status }, 'approval recorded');
    return { status: 200, body: { runId, ...result } };
  });

  handle(router, c.audit, async ({ req, params: { runId } }) => {
    const principal = principalOf(req);
    await deps.runs.assertOwned(runId, principal.tenant);
    const stored = await deps.audit.forRun(principal.tenant, runId);
    // Comments may quote a sensitive value: scrubbed like the run's other read paths.
    const first = stored[0];
    const masker =
      deps.masking && first && !readsSensitive(principal)
        ? await deps.masking.maskerFor(runId, principal.tenant, { name: first.definition, version: first.version }).catch(() => undefined)
        : undefined;
    const entries = stored.map(({ tenant: _t, definition: _d, version: _v, ...entry }) => (masker ? masker.scrub(entry) : entry));
    return { status: 200, body: { runId, entries } };
  });
}

/** GET /v1/runs/{runId}/logs: the workers' log lines of a run. */
function runLogRoutes(router: Router, deps: RunRoutesDeps): void {
  handle(router, c.logs, async ({ req, params: { runId }, query }) => {
    const principal = principalOf(req);
    await deps.runs.assertOwned(runId, principal.tenant);
    const stored = await deps.logs.forRun(principal.tenant, runId, { limit: query.limit, ...(query.after === undefined ? {} : { after: query.after }), ...(query.level ? { minLevel: query.level } : {}) });
    // A line may quote a declared sensitive value (a skill's own log call): scrubbed like the run's other read paths,
    // and when the run's values cannot be read to scrub them, its free-text parts are withheld.
    // maskerFor: undefined when the run declares nothing; null here when its values cannot be read.
    const first = stored.find((l) => l.definition);
    const masker =
      deps.masking && first?.definition && !readsSensitive(principal)
        ? await deps.masking.maskerFor(runId, principal.tenant, { name: first.definition, version: first.version ?? '' }).catch(() => null)
        : undefined;
    const lines = stored.map(({ definition: _d, version: _v, ...line }) => {
      if (masker === undefined) return line;
      if (masker) return masker.scrub(line);
      return { ...line, msg: '[withheld: the run declares sensitive data]', fields: {} };
    });
    const last = lines.at(-1);
    return { status: 200, body: { runId, lines, ...(lines.length === query.limit && last ? { next: last.id } : {}) } };
  });
}

/** Lifecycle events (or the progress stream), the inbox, cancellation. */
function eventAndCancelRoutes(router: Router, deps: RunRoutesDeps, links: Links): void {
  handle(router, c.events, async ({ req, res, params: { runId }, query }) => {
    const principal = principalOf(req);
    await deps.runs.assertOwned(runId, principal.tenant);
    if (wantsEventStream(req)) {
      const masking = deps.masking && !readsSensitive(principal) ? deps.masking : undefined;
      const mask = masking ? { view: (v: RunView) => masking.view(v, principal.tenant), event: <E extends StoredRunEvent>(e: E) => masking.event(e) } : undefined;
      await streamRun(req, res, { runs: deps.runs, events: deps.events, links, ...(mask ? { mask } : {}) }, runId, principal.tenant, query.after, deps.runStream);
      return RESPONDED;
    }
    const stored = await deps.events.forRun(principal.tenant, runId, query);
    const masking = deps.masking && !readsSensitive(principal) ? deps.masking : undefined;
    const visible = masking ? await Promise.all(stored.map((e) => masking.event(e))) : stored;
    const events = visible.map(({ tenant: _t, ...event }) => event);
    const last = events.at(-1);
    return { status: 200, body: { runId, events, ...(events.length === query.limit && last ? { next: last.seq } : {}) } };
  });

  handle(router, c.inbox, async ({ req }) => ({ status: 200, body: { approvals: await deps.runs.inbox(principalOf(req)) } }));

  handle(router, c.cancel, async ({ req, params: { runId } }) => {
    const was = await deps.runs.cancel(runId, principalOf(req).tenant);
    // A deferred run is taken out of its queue: it never starts, and is gone at once.
    return was === 'deferred' ? { status: 200, body: { runId, status: 'cancelled' } } : { status: 202, body: { runId, status: 'cancelling' } };
  });
}

