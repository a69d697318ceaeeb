import { Router } from 'express';
import { handle } from '../contract.ts';
import { definitionContracts as c } from '../contracts/definitions.ts';
import { unwrapDefinition } from '../../interpreter/schema.ts';
import { subWorkflowReferences, validateDefinition, type ValidationContext, type WorkerAgreement } from '../../interpreter/validate.ts';
import { approverWarnings } from '../approver-warnings.ts';
import { principalOf, type ApiKeyStore } from '../auth.ts';
import type { DefinitionsStore, StoredDefinition } from '../definitions-store.ts';
import { importDefinition, ImportSourceError, type ImportResult } from '../../importers/index.ts';
import { HttpProblem } from '../problem.ts';
import type { SchedulesService } from '../schedules-service.ts';

export interface DefinitionRoutesDeps {
  definitions: DefinitionsStore;
  schedules: SchedulesService;
  validation: ValidationContext;
  /** The key configuration, for warnings about approvers nobody holds a key for. */
  keys: ApiKeyStore;
  defaultLane: string;
  /** What the workers of a lane reported running, against the API's catalog (api/server.ts). */
  workerAgreement?: (lane: string) => Promise<WorkerAgreement | undefined>;
}

export function definitionRecord(d: StoredDefinition) {
  return {
    name: d.name,
    version: d.version,
    hash: d.hash,
    lane: d.lane,
    description: d.description,
    createdBy: d.createdBy,
    createdAt: d.createdAt,
    status: d.status,
    ...(d.statusChangedAt ? { statusChangedAt: d.statusChangedAt, statusChangedBy: d.statusChangedBy ?? undefined } : {}),
    definition: d.body,
  };
}

/** Registering, validating and reading definitions. */
export function definitionRoutes(deps: DefinitionRoutesDeps): Router {
  const router = Router();
  const contextFor = contextForOf(deps);
  writeRoutes(router, deps, contextFor, registerOf(deps, contextFor));
  readRoutes(router, deps);
  return router;
}

/** The installation's names plus the sub_workflow definitions this document calls that exist. */
const contextForOf = (deps: DefinitionRoutesDeps) => async (tenant: string, body: unknown): Promise<ValidationContext> => {
  const raw = unwrapDefinition(body) as { lane?: unknown } | null;
  const lane = raw !== null && typeof raw === 'object' && typeof raw.lane === 'string' ? raw.lane : deps.defaultLane;
  const workers = deps.workerAgreement ? await deps.workerAgreement(lane) : undefined;
  return {
    ...deps.validation,
    definitions: await deps.definitions.existing(tenant, subWorkflowReferences(body)),
    ...(workers ? { workers } : {}),
  };
};
type ContextFor = ReturnType<typeof contextForOf>;

/** Validates and registers; answers the status (201 created, 200 identical) and the record. */
const registerOf = (deps: DefinitionRoutesDeps, contextFor: ContextFor) => async (principal: ReturnType<typeof principalOf>, body: unknown, invalidStatus: number) => {
  const result = validateDefinition(body, await contextFor(principal.tenant, body));
  if (!result.ok) {
    throw new HttpProblem(invalidStatus, 'Invalid definition', `${result.problems.length} problem(s) found`, result.problems);
  }
  const { definition, estimate } = result;
  const outcome = await deps.definitions.register(principal.tenant, definition, definition.lane ?? deps.defaultLane, principal.principal);
  if (outcome.outcome === 'conflict') {
    throw new HttpProblem(
      409,
      'Version already registered',
      `${definition.name}@${definition.version} is registered with different content (hash ${outcome.existing.hash}); versions are immutable, register a new version`,
      [{ path: '/version', message: 'already registered with different content' }],
    );
  }
  // Schedule triggers become Temporal Schedules for the newest active version (a re-post retries this).
  const schedules = await deps.schedules.reconcile(principal.tenant, definition.name);
  const location = `/v1/definitions/${encodeURIComponent(definition.name)}/versions/${encodeURIComponent(definition.version)}`;
  return { status: outcome.outcome === 'created' ? (201 as const) : (200 as const), location, record: { ...definitionRecord(outcome.definition), schedules, warnings: approverWarnings(definition, deps.keys, principal.tenant), estimate } };
};
type Register = ReturnType<typeof registerOf>;

/** Validating, registering and importing. */
function writeRoutes(router: Router, deps: DefinitionRoutesDeps, contextFor: ContextFor, register: Register): void {
  handle(router, c.validate, async ({ req, body }) => {
    const { tenant } = principalOf(req);
    const result = validateDefinition(body, await contextFor(tenant, body));
    return {
      status: 200,
      body: result.ok
        ? { valid: true, errors: [], warnings: approverWarnings(result.definition, deps.keys, tenant), estimate: result.estimate }
        : { valid: false, errors: result.problems },
    };
  });

  handle(router, c.register, async ({ req, body }) => {
    const { status, location, record } = await register(principalOf(req), body, 400);
    return { status, location, body: record };
  });

  // Another engine's definition, converted (and registered when asked). A source that cannot be
  // converted exactly is refused with every construct at fault, never half-converted.
  handle(router, c.import, async ({ req, body }) => {
    let result: ImportResult;
    try {
      result = importDefinition(body.format, body.source, {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.version !== undefined ? { version: body.version } : {}),
        ...(body.resources !== undefined ? { resources: body.resources } : {}),
        ...(body.maxTransitions !== undefined ? { maxTransitions: body.maxTransitions } : {}),
        ...(body.baseUrls !== undefined ? { baseUrls: body.baseUrls } : {}),
        ...(body.openapi !== undefined ? { openapi: body.openapi } : {}),
      });
    } catch (error) {
      if (error instanceof ImportSourceError) throw new HttpProblem(400, 'Invalid source', error.message, [{ path: '/source', message: error.message }]);
      throw error;
    }
    const report = { mapped: result.mapped, refused: result.refused };
    if (!result.definition) {
      throw new HttpProblem(
        422,
        'Cannot import',
        `${result.refused.length} construct(s) of the source have no exact equivalent`,
        result.refused.map((r) => ({ path: `/source${r.path}`, message: `${r.construct}: ${r.detail}` })),
      );
    }
    if (!body.register) {
      const check = validateDefinition(result.definition, await contextFor(principalOf(req).tenant, result.definition));
      if (!check.ok) throw new HttpProblem(422, 'Invalid definition', `the converted definition has ${check.problems.length} problem(s)`, check.problems);
      return { status: 200, body: { definition: check.definition, report, registered: false } };
    }
    const { status, location, record } = await register(principalOf(req), result.definition, 422);
    return { status, location, body: { definition: record.definition, report, registered: true } };
  });
}

/** Listing and reading definitions. */
function readRoutes(router: Router, deps: DefinitionRoutesDeps): void {
  handle(router, c.list, async ({ req }) => {
    const all = await deps.definitions.list(principalOf(req).tenant);
    return {
      status: 200,
      body: {
        definitions: all.map(({ latest, versions }) => ({
          name: latest.name,
          latestVersion: latest.version,
          versions,
          lane: latest.lane,
          description: latest.description,
        })),
      },
    };
  });

  handle(router, c.get, async ({ req, params }) => {
    const versions = await deps.definitions.versions(principalOf(req).tenant, params.name);
    const latest = versions[0];
    if (!latest) throw new HttpProblem(404, 'Not Found', `no definition "${params.name}"`);
    return { status: 200, body: { ...definitionRecord(latest), versions: versions.map((v) => v.version) } };
  });

  handle(router, c.version, async ({ req, params }) => {
    const found = await deps.definitions.get(principalOf(req).tenant, params.name, params.version);
    if (!found) throw new HttpProblem(404, 'Not Found', `no definition "${params.name}" version "${params.version}"`);
    return { status: 200, body: definitionRecord(found) };
  });
}
