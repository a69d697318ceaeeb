import { Router } from 'express';
import { definitionGraph } from '../authoring/graph.ts';
import { principalOf } from '../auth.ts';
import type { DefinitionsStore, StoredDefinition } from '../definitions-store.ts';
import { HttpProblem } from '../problem.ts';
import type { RunsService } from '../runs-service.ts';

export interface AuthoringRoutesDeps {
  definitions: DefinitionsStore;
  runs: RunsService;
}

/** Authoring aids over registered definitions and runs: diagrams (docs/authoring.md). */
export function authoringRoutes(deps: AuthoringRoutesDeps): Router {
  const router = Router();

  const version = async (tenant: string, name: string, v: string): Promise<StoredDefinition> => {
    const found = await deps.definitions.get(tenant, name, v);
    if (!found) throw new HttpProblem(404, 'Not Found', `no definition "${name}" version "${v}"`);
    return found;
  };

  router.get('/v1/definitions/:name/versions/:version/graph', async (req, res) => {
    const found = await version(principalOf(req).tenant, req.params.name, req.params.version);
    const graph = definitionGraph(found.body);
    res.json({ name: found.name, version: found.version, format: 'mermaid', mermaid: graph.mermaid, nodes: graph.nodes });
  });

  router.get('/v1/runs/:runId/graph', async (req, res) => {
    const tenant = principalOf(req).tenant;
    const run = await deps.runs.get(String(req.params.runId), tenant);
    const found = await version(tenant, run.definition.name, run.definition.version);
    const statuses: Record<string, string> = {};
    for (const step of run.steps ?? []) statuses[step.id] = step.status;
    const graph = definitionGraph(found.body, statuses);
    res.json({
      runId: run.runId,
      status: run.status,
      name: found.name,
      version: found.version,
      format: 'mermaid',
      mermaid: graph.mermaid,
      nodes: graph.nodes,
      steps: statuses,
    });
  });

  return router;
}
