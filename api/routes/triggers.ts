import { Router } from 'express';
import { createPatch } from 'rfc6902';
import { compileDefinition } from '../../interpreter/compile.ts';
import { evaluate } from '../../interpreter/expressions.ts';
import { principalOf, requireRole, type ApiKeyStore } from '../auth.ts';
import type { DefinitionsStore, DefinitionStatus } from '../definitions-store.ts';
import { parseOr400 } from '../http.ts';
import { HttpProblem } from '../problem.ts';
import { pinRunDependencies } from '../run-inputs.ts';
import type { RunsService } from '../runs-service.ts';
import type { SchedulesService } from '../schedules-service.ts';
import { backfillSchema, cloudEventSchema, diffQuerySchema, scheduleNoteSchema } from '../schemas.ts';
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

  router.post('/v1/events', requireRole('submit'), async (req, res) => {
    const principal = principalOf(req);
    const event = parseOr400(cloudEventSchema, req.body);
    const correlationId = event.correlationId ?? event.id;
    const started: Array<{ definition: string; version: string; runId: string; created: boolean; status: string }> = [];
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
        pins: await pinRunDependencies(deps.definitions, deps.keys, principal.tenant, definition.body),
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
    res.status(created.length === 0 ? 200 : created.every((r) => r.status === 'deferred') ? 202 : 201).json({ event: { id: event.id, type: event.type, source: event.source }, runs: started, delivered });
  });

  for (const [action, status] of [
    ['deprecate', 'deprecated'],
    ['retire', 'retired'],
    ['activate', 'active'],
  ] as const) {
    router.post(`/v1/definitions/:name/versions/:version/${action}`, requireRole('submit'), async (req, res) => {
      const principal = principalOf(req);
      const name = String(req.params.name);
      const version = String(req.params.version);
      const result = await deps.definitions.setStatus(principal.tenant, name, version, status satisfies DefinitionStatus, principal.principal);
      if (result === undefined) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${version}"`);
      if (typeof result === 'string') throw new HttpProblem(409, 'Conflict', result, [{ path: '/status', message: result }]);
      const schedules = await deps.schedules.reconcile(principal.tenant, name);
      req.log?.info({ definition: name, version, status, schedules }, 'definition status changed');
      res.json({ ...definitionRecord(result), schedules });
    });
  }

  router.get('/v1/definitions/:name/diff', async (req, res) => {
    const principal = principalOf(req);
    const query = parseOr400(diffQuerySchema, req.query, 'query');
    const name = String(req.params.name);
    const [from, to] = await Promise.all([deps.definitions.get(principal.tenant, name, query.from), deps.definitions.get(principal.tenant, name, query.to)]);
    if (!from) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${query.from}"`, [{ path: 'from', message: 'not registered' }]);
    if (!to) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${query.to}"`, [{ path: 'to', message: 'not registered' }]);
    res.json({ name, from: from.version, to: to.version, patch: createPatch(from.body, to.body) });
  });

  router.get('/v1/schedules', async (req, res) => {
    res.json({ schedules: await deps.schedules.list(principalOf(req).tenant) });
  });
  router.get('/v1/schedules/:scheduleId', async (req, res) => {
    res.json(await deps.schedules.get(principalOf(req).tenant, String(req.params.scheduleId)));
  });
  router.post('/v1/schedules/:scheduleId/pause', requireRole('submit'), async (req, res) => {
    const body = parseOr400(scheduleNoteSchema, req.body ?? {});
    const principal = principalOf(req);
    res.json(await deps.schedules.pause(principal.tenant, String(req.params.scheduleId), body.note ?? `paused by ${principal.principal}`));
  });
  router.post('/v1/schedules/:scheduleId/resume', requireRole('submit'), async (req, res) => {
    const body = parseOr400(scheduleNoteSchema, req.body ?? {});
    const principal = principalOf(req);
    res.json(await deps.schedules.resume(principal.tenant, String(req.params.scheduleId), body.note ?? `resumed by ${principal.principal}`));
  });
  router.post('/v1/schedules/:scheduleId/trigger', requireRole('submit'), async (req, res) => {
    await deps.schedules.trigger(principalOf(req).tenant, String(req.params.scheduleId));
    res.status(202).json({ scheduleId: String(req.params.scheduleId), triggered: true });
  });
  router.post('/v1/schedules/:scheduleId/backfill', requireRole('submit'), async (req, res) => {
    const body = parseOr400(backfillSchema, req.body);
    if (new Date(body.end) <= new Date(body.start)) {
      throw new HttpProblem(400, 'Invalid request', '"end" must be after "start"', [{ path: '/end', message: 'not after start' }]);
    }
    await deps.schedules.backfill(principalOf(req).tenant, String(req.params.scheduleId), new Date(body.start), new Date(body.end), body.overlap);
    res.status(202).json({ scheduleId: String(req.params.scheduleId), backfill: { start: body.start, end: body.end } });
  });

  return router;
}
