import { Router } from 'express';
import { handle } from '../contract.ts';
import { definitionContracts } from '../contracts/definitions.ts';
import { triggerContracts as c } from '../contracts/triggers.ts';
import { createPatch } from 'rfc6902';
import { compileDefinition } from '../../interpreter/compile.ts';
import { evaluate } from '../../interpreter/expressions.ts';
import { principalOf, type ApiKeyStore } from '../auth.ts';
import type { DefinitionsStore, DefinitionStatus } from '../definitions-store.ts';
import { HttpProblem } from '../problem.ts';
import { pinRunDependencies } from '../run-inputs.ts';
import type { RunStatus, RunsService } from '../runs-service.ts';
import type { SchedulesService } from '../schedules-service.ts';
import { definitionRecord } from './definitions.ts';

export interface TriggerRoutesDeps {
  definitions: DefinitionsStore;
  runs: RunsService;
  schedules: SchedulesService;
  keys: ApiKeyStore;
}

/** Event-triggered runs, schedules, and the definition lifecycle (deprecate, retire, diff). */
export function triggerRoutes(deps: TriggerRoutesDeps): Router {
  const router = Router();
  eventRoutes(router, deps);
  lifecycleRoutes(router, deps);
  scheduleRoutes(router, deps);
  return router;
}

/** POST /v1/events: start what the event triggers, deliver it to the runs waiting for it. */
function eventRoutes(router: Router, deps: TriggerRoutesDeps): void {
  handle(router, c.event, async ({ req, body: event }) => {
    const principal = principalOf(req);
    const correlationId = event.correlationId ?? event.id;
    const started: Array<{ definition: string; version: string; runId: string; created: boolean; status: RunStatus }> = [];
    // Each definition's starting version (its production alias, else its newest active one), as POST /v1/runs.
    for (const definition of await deps.definitions.allStartingVersions(principal.tenant)) {
      const { plan } = compileDefinition(definition.body);
      const matches = plan.eventTriggers.some((t) => {
        if (t.event !== event.type) return false;
        if (!t.filter) return true;
        try {
          return Boolean(
            evaluate(t.filter, {
              input: null,
              context: { readonly: definition.body.context?.readonly ?? {}, mutable: definition.body.context?.mutable ?? {} },
              steps: {},
              run: {},
              signal: event,
              bindings: { event },
            }),
          );
        } catch {
          return false;
        }
      });
      if (!matches) continue;
      // The run id derives from the event id and the definition: a redelivered event starts nothing new.
      const run = await deps.runs.start({
        definition,
        pins: await pinRunDependencies(deps.definitions, deps.keys, principal.tenant, definition),
        input: event.data ?? null,
        idempotencyKey: `event:${event.source}:${event.id}`,
        requestedVersion: undefined,
        principal,
        correlationId,
        executionTimeoutSeconds: definition.body.resource_limits?.max_execution_time ?? deps.runs.defaultExecutionTimeoutSeconds,
        trigger: { event },
      });
      started.push({ definition: definition.name, version: definition.version, ...run });
    }
    // Runs waiting in a wait_for_event step for this type, matched by correlation id.
    const delivered = event.correlationId
      ? await deps.runs.deliver(principal.tenant, event.correlationId, event.type, event, new Set(started.map((r) => r.runId)))
      : [];
    req.log?.info({ eventId: event.id, type: event.type, started: started.length, delivered: delivered.length }, 'event received');
    const created = started.filter((r) => r.created);
    return { status: created.length === 0 ? 200 : created.every((r) => r.status === 'deferred') ? 202 : 201, body: { event: { id: event.id, type: event.type, source: event.source }, runs: started, delivered } };
  });
}

/** A version's status changes, and the diff of two versions. */
function lifecycleRoutes(router: Router, deps: TriggerRoutesDeps): void {
  for (const [action, status] of [
    ['deprecate', 'deprecated'],
    ['retire', 'retired'],
    ['activate', 'active'],
  ] as const) {
    handle(router, definitionContracts[action], async ({ req, params: { name, version } }) => {
      const principal = principalOf(req);
      const result = await deps.definitions.setStatus(principal.tenant, name, version, status satisfies DefinitionStatus, principal.principal);
      if (result === undefined) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${version}"`);
      if (typeof result === 'string') throw new HttpProblem(409, 'Conflict', result, [{ path: '/status', message: result }]);
      const schedules = await deps.schedules.reconcile(principal.tenant, name);
      req.log?.info({ definition: name, version, status, schedules }, 'definition status changed');
      return { status: 200, body: { ...definitionRecord(result), schedules } };
    });
  }

  handle(router, definitionContracts.diff, async ({ req, params: { name }, query }) => {
    const principal = principalOf(req);
    const [from, to] = await Promise.all([deps.definitions.get(principal.tenant, name, query.from), deps.definitions.get(principal.tenant, name, query.to)]);
    if (!from) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${query.from}"`, [{ path: 'from', message: 'not registered' }]);
    if (!to) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${query.to}"`, [{ path: 'to', message: 'not registered' }]);
    return { status: 200, body: { name, from: from.version, to: to.version, patch: createPatch(from.body, to.body) } };
  });
}

/** The tenant's schedules. */
function scheduleRoutes(router: Router, deps: TriggerRoutesDeps): void {
  handle(router, c.schedules, async ({ req }) => ({ status: 200, body: { schedules: await deps.schedules.list(principalOf(req).tenant) } }));
  handle(router, c.schedule, async ({ req, params }) => ({ status: 200, body: await deps.schedules.get(principalOf(req).tenant, params.scheduleId) }));
  handle(router, c.pause, async ({ req, params, body }) => {
    const principal = principalOf(req);
    return { status: 200, body: await deps.schedules.pause(principal.tenant, params.scheduleId, body.note ?? `paused by ${principal.principal}`) };
  });
  handle(router, c.resume, async ({ req, params, body }) => {
    const principal = principalOf(req);
    return { status: 200, body: await deps.schedules.resume(principal.tenant, params.scheduleId, body.note ?? `resumed by ${principal.principal}`) };
  });
  handle(router, c.trigger, async ({ req, params: { scheduleId } }) => {
    await deps.schedules.trigger(principalOf(req).tenant, scheduleId);
    return { status: 202, body: { scheduleId, triggered: true } };
  });
  handle(router, c.backfill, async ({ req, params: { scheduleId }, body }) => {
    if (new Date(body.end) <= new Date(body.start)) {
      throw new HttpProblem(400, 'Invalid request', '"end" must be after "start"', [{ path: '/end', message: 'not after start' }]);
    }
    await deps.schedules.backfill(principalOf(req).tenant, scheduleId, new Date(body.start), new Date(body.end), body.overlap);
    return { status: 202, body: { scheduleId, backfill: { start: body.start, end: body.end } } };
  });
}
