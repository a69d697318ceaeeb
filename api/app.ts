import express, { Router, type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import type { AuditStore } from '../activities/platform/audit.ts';
import type { RunLogStore } from '../activities/platform/run-logs.ts';
import type { RunEventStore } from '../activities/platform/events.ts';
import type { Logger } from '../common/logger.ts';
import { httpServerSpans } from '../common/trace-context.ts';
import { definitionSchema } from '../interpreter/schema.ts';
import type { ValidationContext, WorkerAgreement } from '../interpreter/validate.ts';
import { authenticate, type ApiKeyStore } from './auth.ts';
import { handle } from './contract.ts';
import { platformContracts } from './contracts/platform.ts';
import type { DefinitionsStore } from './definitions-store.ts';
import { allowedMethods, jsonBody, routeTemplates, urlGuard, type EdgeLimits } from './edge.ts';
import { problemHandler } from './error-handler.ts';
import { correlation } from './http.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { HttpProblem } from './problem.ts';
import { perKeyRateLimit, type RateLimitOptions } from './rate-limit.ts';
import { authoringRoutes } from './routes/authoring.ts';
import { catalogRoutes, type CatalogView } from './routes/catalog.ts';
import { codecRoutes, type CodecServerOptions } from './routes/codec.ts';
import { definitionRoutes } from './routes/definitions.ts';
import { runRoutes } from './routes/runs.ts';
import type { RunsService } from './runs-service.ts';
import type { RunMasking } from './run-masking.ts';
import type { SchedulesService } from './schedules-service.ts';
import { triggerRoutes } from './routes/triggers.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { operateRoutes, type OperateDeps } from './routes/operate.ts';
import type { WebhookStore } from './webhooks/store.ts';
import { graphPage } from './authoring/graph-page.ts';

export interface AppDeps {
  logger: Logger;
  keys: ApiKeyStore;
  definitions: DefinitionsStore;
  runs: RunsService;
  /** Masks declared sensitive values for callers without `sensitive-reader` (api/run-masking.ts). */
  masking?: RunMasking;
  schedules: SchedulesService;
  audit: AuditStore;
  /** Lifecycle events of runs, and webhook subscriptions with the hosts they may point at. */
  events: RunEventStore;
  /** The workers' log lines of each run (GET /v1/runs/{id}/logs). */
  logs: RunLogStore;
  webhooks: WebhookStore;
  webhookAllowedHosts: readonly string[];
  validation: ValidationContext;
  /** What a lane's workers reported running, so registration refuses what they lack. */
  workerAgreement?: (lane: string) => Promise<WorkerAgreement | undefined>;
  defaultLane: string;
  defaultExecutionTimeoutSeconds: number;
  namespace: string;
  temporalUiUrl: string;
  /** Named readiness checks; each resolves when its dependency answers. */
  readiness: Record<string, () => Promise<unknown>>;
  /** Body size and depth limits (API_MAX_BODY_BYTES, API_MAX_JSON_DEPTH). */
  limits: EdgeLimits;
  /** Per-key request limits (API_RATE_LIMIT, API_RATE_LIMIT_WINDOW_SECONDS). */
  rateLimit: RateLimitOptions;
  /** Skills, integrations, agents, models and lanes with their schemas (GET /v1/catalog). */
  catalogView?: CatalogView;
  /** Lanes, retries and the operations audit trail (api/routes/operate.ts). */
  operate?: OperateDeps;
  /** `GET /metrics`: the process's Prometheus text (common/metrics.ts), unless METRICS_ENABLED=false. */
  metrics?: RequestHandler;
  /** The codec server for Temporal Web and the CLI (api/routes/codec.ts), when payloads are encrypted. */
  codec?: Omit<CodecServerOptions, 'keys' | 'logger' | 'maxBodyBytes' | 'rateLimit'>;
}

/** The JSON Schema of the definition language, generated from the zod schema. */
export function definitionJsonSchema(): Record<string, unknown> {
  return {
    $id: '/v1/schemas/definition.json',
    title: 'Workflow definition',
    ...z.toJSONSchema(definitionSchema, { target: 'draft-2020-12', unrepresentable: 'any' }),
  };
}

/** Builds the express app without listening, so tests can drive it on any port. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  // `<`, `>` and `&` leave as \u escapes in every JSON body, so echoed input never reads as markup.
  app.set('json escape', true);
  // nosniff, frame and referrer policies, a CSP that still lets /docs (Swagger UI, same-origin scripts) work.
  app.use(helmet());
  // Before the request log: the UI's codec path holds its token; the codec logs its own lines.
  if (deps.codec) app.use(codecRoutes({ ...deps.codec, keys: deps.keys, logger: deps.logger, rateLimit: deps.rateLimit, maxBodyBytes: Math.max(deps.limits.maxBodyBytes, 8 * 1024 * 1024) }));
  else {
    app.use('/codec', (_req, _res, next) => {
      next(new HttpProblem(404, 'Not Found', 'payloads are not encrypted on this platform (no PAYLOAD_CODEC_KEYS), so there is no codec server'));
    });
  }
  const openapi = buildOpenApiDocument();
  const templates = routeTemplates(openapi.paths as Record<string, Record<string, unknown>>);
  // One SERVER span per request (named by its route template); everything the request does runs in it.
  app.use(httpServerSpans((path) => templates.find((t) => t.pattern.test(path))?.path));
  app.use(correlation(deps.logger));

  // The open routes (no key): health, then after the documents the definition language's schema.
  const health = Router();
  handle(health, platformContracts.healthz, () => ({ status: 200, body: { status: 'ok' } }));
  handle(health, platformContracts.readyz, async () => {
    const checks: Record<string, string> = {};
    await Promise.all(
      Object.entries(deps.readiness).map(async ([name, check]) => {
        try {
          await Promise.race([check(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), 3000).unref())]);
          checks[name] = 'ok';
        } catch (error) {
          checks[name] = `unavailable: ${(error as Error).message}`;
        }
      }),
    );
    const ready = Object.values(checks).every((c) => c === 'ok');
    return ready ? { status: 200, body: { status: 'ready', checks } } : { status: 503, body: { status: 'unavailable', checks } };
  });
  app.use(health);

  // Prometheus scrapes without an API key, like /healthz (it lists no run ids, inputs or outputs);
  // METRICS_BEARER_TOKEN / METRICS_BASIC_AUTH make the handler ask for credentials of its own.
  if (deps.metrics) app.get('/metrics', deps.metrics);

  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openapi, { customSiteTitle: 'Durable workflows API' }));
  app.use('/graph', graphPage());
  const schema = definitionJsonSchema();
  const open = Router();
  handle(open, platformContracts.definitionSchema, () => ({ status: 200, body: schema }));
  app.use(open);

  // The key is checked first; only then is the caller counted and, within its limit, its body read.
  app.use('/v1', authenticate(deps.keys), perKeyRateLimit(deps.rateLimit));
  app.use(urlGuard(templates));
  app.use(jsonBody(deps.limits));
  app.use(catalogRoutes(deps));
  app.use(definitionRoutes(deps));
  app.use(authoringRoutes(deps));
  app.use(runRoutes(deps));
  app.use(triggerRoutes(deps));
  app.use(webhookRoutes(deps));
  app.use(operateRoutes(deps));

  app.use((req, res, next) => {
    const methods = allowedMethods(templates, req.path);
    if (methods.length > 0) {
      res.set('Allow', methods.join(', '));
      next(new HttpProblem(405, 'Method Not Allowed', `${req.method} is not supported here; the path supports ${methods.join(', ')}`));
      return;
    }
    next(new HttpProblem(404, 'Not Found', `no route for ${req.method} ${req.path}`));
  });
  app.use(problemHandler(deps.logger));
  return app;
}
