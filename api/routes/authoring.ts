import { Router } from 'express';
import { handle } from '../contract.ts';
import { authoringContracts as c } from '../contracts/authoring.ts';
import { definitionContracts } from '../contracts/definitions.ts';
import type { Definition } from '../../interpreter/schema.ts';
import { subWorkflowReferences, validateDefinition, type ValidationContext } from '../../interpreter/validate.ts';
import { dryRun, scriptProblems } from '../authoring/dry-run.ts';
import { definitionGraph } from '../authoring/graph.ts';
import { operatorDoc } from '../authoring/operator-doc.ts';
import { principalOf, type ApiKeyStore } from '../auth.ts';
import type { DefinitionsStore, StoredDefinition } from '../definitions-store.ts';
import { correlationIdOf } from '../http.ts';
import { HttpProblem } from '../problem.ts';
import { pinRunDependencies } from '../run-inputs.ts';
import type { RunsService } from '../runs-service.ts';
import type { SchedulesService } from '../schedules-service.ts';
import type { CatalogView } from './catalog.ts';
import type { Pool } from '../../common/db.ts';
import { PromotionStore, rollbackPromotion, runPromotion } from '../authoring/promotions.ts';

export interface AuthoringRoutesDeps {
  definitions: DefinitionsStore;
  runs: RunsService;
  keys: ApiKeyStore;
  validation: ValidationContext;
  defaultLane: string;
  defaultExecutionTimeoutSeconds: number;
  catalogView?: CatalogView;
  /** The database the promotion gate keeps its alias and decisions in (the audit store's pool). */
  audit: { pool: Pool };
  /** Schedules follow the production alias: reconciled after a promotion or a rollback moves it. */
  schedules: Pick<SchedulesService, 'reconcile'>;
}

/** Authoring aids over registered definitions and runs: diagrams, dry runs (docs/authoring.md). */
export function authoringRoutes(deps: AuthoringRoutesDeps): Router {
  const router = Router();
  const promotions = new PromotionStore(deps.audit.pool);
  const version = versionLookup(deps);
  dryRunRoute(router, deps);
  documentRoutes(router, deps, version);
  promotionRoutes(router, deps, promotions);
  runGraphRoute(router, deps, version);
  return router;
}

/** A registered version, or a 404. */
const versionLookup = (deps: AuthoringRoutesDeps) => async (tenant: string, name: string, v: string): Promise<StoredDefinition> => {
  const found = await deps.definitions.get(tenant, name, v);
  if (!found) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${v}"`);
  return found;
};
type VersionLookup = ReturnType<typeof versionLookup>;

function dryRunRoute(router: Router, deps: AuthoringRoutesDeps): void {
  // A definition through the real interpreter with every effect simulated (api/authoring/dry-run.ts).
  handle(router, c.dryRun, async ({ req, body: request }) => {
    const who = principalOf(req);
    let body: unknown;
    let source: 'inline' | 'registered';
    if (request.name !== undefined) {
      const found = request.version !== undefined ? await deps.definitions.get(who.tenant, request.name, request.version) : await deps.definitions.startingVersion(who.tenant, request.name);
      if (!found) {
        throw new HttpProblem(404, 'Not Found', request.version !== undefined ? `no definition "${request.name}" version "${request.version}"` : `no active version of definition "${request.name}"`);
      }
      body = found.body;
      source = 'registered';
    } else {
      body = request.definition;
      source = 'inline';
    }
    const context: ValidationContext = { ...deps.validation, definitions: await deps.definitions.existing(who.tenant, subWorkflowReferences(body)) };
    const checked = validateDefinition(body, context);
    if (!checked.ok) {
      const at = source === 'inline' ? '/definition' : '';
      throw new HttpProblem(
        source === 'inline' ? 400 : 422,
        'Invalid definition',
        `${checked.problems.length} problem(s) found${source === 'registered' ? ' in the registered version against the current catalog' : ''}`,
        checked.problems.map((p) => ({ ...p, path: `${at}${p.path}` })),
      );
    }
    const definition: Definition = checked.definition;
    const pins = await pinRunDependencies(deps.definitions, deps.keys, who.tenant, { body: definition });
    const problems = scriptProblems(request, [definition, ...Object.values(pins.subDefinitions).map((d) => d.definition)]);
    if (problems.length > 0) throw new HttpProblem(400, 'Invalid request', `${problems.length} script(s) name no step that can take them`, problems);
    const report = await dryRun(definition, checked.plan, request, {
      tenant: who.tenant,
      startedBy: request.startedBy ?? who.principal,
      ...(deps.validation.outputs ? { outputs: deps.validation.outputs } : {}),
      ...(pins.activityDefaults ? { activityDefaults: pins.activityDefaults } : {}),
      directory: pins.directory,
      subDefinitions: pins.subDefinitions,
      ...(deps.validation.continueAsNewAfterEvents ? { continueAsNewAfterEvents: deps.validation.continueAsNewAfterEvents } : {}),
    }, source);
    return { status: 200, body: report };
  });
}

/** A version's diagram and its operator doc. */
function documentRoutes(router: Router, deps: AuthoringRoutesDeps, version: VersionLookup): void {
  handle(router, definitionContracts.graph, async ({ req, params }) => {
    const found = await version(principalOf(req).tenant, params.name, params.version);
    const graph = definitionGraph(found.body);
    return { status: 200, body: { name: found.name, version: found.version, format: 'mermaid', mermaid: graph.mermaid, nodes: graph.nodes } };
  });

  // Seed 001's template filled from the version and the catalog, TODOs for the owner (api/authoring/operator-doc.ts).
  handle(router, definitionContracts.operatorDoc, async ({ req, params }) => {
    const found = await version(principalOf(req).tenant, params.name, params.version);
    const checked = validateDefinition(found.body, { ...deps.validation, definitions: await deps.definitions.existing(principalOf(req).tenant, subWorkflowReferences(found.body)) });
    if (!checked.ok) {
      throw new HttpProblem(422, 'Invalid definition', `${found.name}@${found.version} no longer validates against the current catalog: ${checked.problems.length} problem(s)`, checked.problems);
    }
    const markdown = operatorDoc({
      definition: checked.definition,
      plan: checked.plan,
      estimate: checked.estimate,
      catalog: deps.catalogView ?? { skills: [], integrations: [], agents: [], models: [], lanes: [], defaultLane: deps.defaultLane },
      lane: found.lane,
      hash: found.hash,
      registered: { status: found.status, createdBy: found.createdBy, createdAt: found.createdAt },
    });
    return { status: 200, type: 'text/markdown; charset=utf-8', body: markdown };
  });
}

function promotionRoutes(router: Router, deps: AuthoringRoutesDeps, promotions: PromotionStore): void {
  // Seed 003 §5's promotion gate (api/authoring/promotions.ts): the battery on candidate and production, the verdict, the alias.
  handle(router, c.promote, async ({ req, params: { name }, body: request }) => {
    const principal = principalOf(req);
    if ((await deps.definitions.versions(principal.tenant, name)).length === 0) throw new HttpProblem(404, 'Not Found', `no definition "${name}"`);
    const outcome = await runPromotion(
      {
        definitions: deps.definitions,
        runs: deps.runs,
        store: promotions,
        pins: (d) => pinRunDependencies(deps.definitions, deps.keys, principal.tenant, d),
        executionTimeoutSeconds: deps.defaultExecutionTimeoutSeconds,
      },
      name,
      request,
      principal,
      correlationIdOf(req),
    );
    const schedules = outcome.decision.action === 'promoted' ? await deps.schedules.reconcile(principal.tenant, name) : undefined;
    req.log?.info({ definition: name, candidate: request.candidate, action: outcome.decision.action, production: outcome.decision.production, schedules }, 'promotion decided');
    return { status: 200, body: outcome };
  });

  handle(router, c.rollback, async ({ req, params: { name }, body }) => {
    const principal = principalOf(req);
    const decision = await rollbackPromotion({ store: promotions }, name, principal, body.reason);
    const schedules = await deps.schedules.reconcile(principal.tenant, name);
    req.log?.info({ definition: name, from: decision.previous, to: decision.production, schedules }, 'promotion rolled back');
    return { status: 200, body: decision };
  });

  handle(router, c.promotions, async ({ req, params: { name } }) => {
    const tenant = principalOf(req).tenant;
    if ((await deps.definitions.versions(tenant, name)).length === 0) throw new HttpProblem(404, 'Not Found', `no definition "${name}"`);
    return { status: 200, body: { name, production: (await promotions.production(tenant, name)) ?? null, decisions: await promotions.history(tenant, name) } };
  });
}

/** A run's diagram, each step coloured by its status. */
function runGraphRoute(router: Router, deps: AuthoringRoutesDeps, version: VersionLookup): void {
  handle(router, c.runGraph, async ({ req, params }) => {
    const tenant = principalOf(req).tenant;
    const run = await deps.runs.get(params.runId, tenant);
    const found = await version(tenant, run.definition.name, run.definition.version);
    const statuses: Record<string, string> = {};
    for (const step of run.steps ?? []) statuses[step.id] = step.status;
    const graph = definitionGraph(found.body, statuses);
    return {
      status: 200,
      body: {
        runId: run.runId,
        status: run.status,
        name: found.name,
        version: found.version,
        format: 'mermaid',
        mermaid: graph.mermaid,
        nodes: graph.nodes,
        steps: statuses,
      },
    };
  });
}
