import { metrics, type Meter } from '@opentelemetry/api';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * The platform's metrics, through the OpenTelemetry metrics API. Code records with `meter()`;
 * where the numbers go is decided once per process by `installMetrics`: a Prometheus endpoint
 * (`startMetrics` for a worker, the API's own `/metrics` via `installPrometheus`), or an
 * in-memory reader in tests. Before anything is installed, and with METRICS_ENABLED=false,
 * `meter()` is OpenTelemetry's no-op meter, so recording is always safe.
 */

export const METER_NAME = 'durable-workflows';

let provider: MeterProvider | undefined;
let generation = 0;
let shared: { generation: number; endpoint: MetricsEndpoint } | undefined;

/** The meter to create instruments from. Cache instruments with `instruments()` rather than by hand. */
export function meter(): Meter {
  return (provider ?? metrics.getMeterProvider()).getMeter(METER_NAME);
}

/**
 * Memoises a set of instruments per installed provider, so instruments created before
 * `installMetrics` (no-ops) are replaced once a provider exists.
 */
export function instruments<T>(create: (m: Meter) => T): () => T {
  let cached: { generation: number; value: T } | undefined;
  return () => {
    if (!cached || cached.generation !== generation) cached = { generation, value: create(meter()) };
    return cached.value;
  };
}

export interface InstallMetricsOptions {
  readers: MetricReader[];
}

/** Installs the process's meter provider (replacing an earlier one, which is shut down). */
export async function installMetrics(options: InstallMetricsOptions): Promise<MeterProvider> {
  const previous = provider;
  provider = new MeterProvider({ readers: options.readers });
  generation++;
  // The global provider can be set once; our own code reads `provider` first anyway.
  metrics.setGlobalMeterProvider(provider);
  if (previous) await previous.shutdown().catch(() => undefined);
  return provider;
}

/**
 * The process's Prometheus text: the platform's instruments (an OpenTelemetry reader serialised by
 * the Prometheus exporter's serializer) followed by the Temporal SDK's own metrics, which the SDK
 * Runtime serves on a loopback port of its own (`temporalCoreUrl`, workers only): one scrape
 * target per process.
 */
export class MetricsEndpoint {
  /** Without `otel_scope_name` on every sample: the platform has one meter. */
  private readonly serializer = new PrometheusSerializer(undefined, false, undefined, false, true);

  constructor(
    private readonly reader: MetricReader,
    private readonly temporalCoreUrl?: string,
  ) {}

  async text(): Promise<string> {
    const { resourceMetrics, errors } = await this.reader.collect();
    let text = this.serializer.serialize(resourceMetrics);
    if (errors.length > 0) text += `# ${errors.length} collection error(s): ${errors.map((e) => String((e as Error)?.message ?? e)).join('; ').replace(/\n/g, ' ')}\n`;
    if (this.temporalCoreUrl) {
      try {
        const core = await fetch(this.temporalCoreUrl, { signal: AbortSignal.timeout(2000) });
        text += `\n${await core.text()}`;
      } catch (error) {
        text += `# Temporal SDK metrics unavailable: ${(error as Error).message}\n`;
      }
    }
    return text;
  }

  /** A node:http / express handler answering `GET /metrics` (401 without the credentials `access` asks for). */
  handler(access: MetricsAccess = {}): (req: IncomingMessage, res: ServerResponse) => void {
    const allowed = metricsAuthorizer(access);
    return (req, res) => {
      if (!allowed(req.headers.authorization)) {
        res.statusCode = 401;
        res.setHeader('www-authenticate', access.METRICS_BEARER_TOKEN ? 'Bearer realm="metrics"' : 'Basic realm="metrics"');
        res.setHeader('content-type', 'application/problem+json');
        res.end(JSON.stringify({ type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'this /metrics endpoint needs the credentials METRICS_BEARER_TOKEN or METRICS_BASIC_AUTH configure (docs/OPERATIONS.md, Metrics and alerts)' }));
        return;
      }
      this.text().then(
        (body) => {
          res.statusCode = 200;
          res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
          res.end(body);
        },
        (error: unknown) => {
          res.statusCode = 500;
          res.setHeader('content-type', 'text/plain; charset=utf-8');
          res.end(`# metrics collection failed: ${(error as Error).message}\n`);
        },
      );
    };
  }
}

/** The optional credentials a scrape must send (common/config.ts); none configured: open. */
export type MetricsAccess = Partial<Pick<Config, 'METRICS_BEARER_TOKEN' | 'METRICS_BASIC_AUTH'>>;

/** Compares digests, so the time taken says nothing about how much of a secret matched. */
const sameSecret = (given: string, expected: string) => timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());

/** Whether an Authorization header carries the configured bearer token or Basic credentials (always, when none is configured). */
export function metricsAuthorizer(access: MetricsAccess): (authorization: string | undefined) => boolean {
  const { METRICS_BEARER_TOKEN: token, METRICS_BASIC_AUTH: basic } = access;
  if (!token && !basic) return () => true;
  return (authorization) => {
    const [scheme, credentials = ''] = (authorization ?? '').trim().split(/\s+/, 2);
    const kind = scheme?.toLowerCase();
    if (token && kind === 'bearer') return sameSecret(credentials, token);
    if (basic && kind === 'basic') return sameSecret(Buffer.from(credentials, 'base64').toString('utf8'), basic);
    return false;
  };
}

/** A reader collected on demand (each scrape); nothing is pushed anywhere. */
class PullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/**
 * Installs the process's meter provider with a reader collected on each scrape, and returns the
 * endpoint that renders it. `undefined` when METRICS_ENABLED=false: every instrument stays
 * OpenTelemetry's no-op, so recording costs nothing.
 */
export async function installPrometheus(config: Pick<Config, 'METRICS_ENABLED'>, options: { temporalCoreUrl?: string } = {}): Promise<MetricsEndpoint | undefined> {
  if (!config.METRICS_ENABLED) return undefined;
  // One provider per process: the API and a worker started in one process (tests) share it.
  if (shared && shared.generation === generation) return shared.endpoint;
  const reader = new PullReader();
  await installMetrics({ readers: [reader] });
  shared = { generation, endpoint: new MetricsEndpoint(reader, options.temporalCoreUrl) };
  return shared.endpoint;
}

/** The default port of a worker's metrics endpoint (the Prometheus exporter's own default). */
export const DEFAULT_WORKER_METRICS_PORT = 9464;

/**
 * Serves a process's metrics on their own small HTTP server (workers: `GET /metrics` on
 * METRICS_PORT, default 9464, bound to METRICS_HOST or API_HOST). `undefined` when metrics are off.
 */
export async function startMetrics(
  config: Pick<Config, 'METRICS_PORT' | 'API_HOST' | 'METRICS_ENABLED'> & Partial<Pick<Config, 'METRICS_HOST'>> & MetricsAccess,
  logger: Logger,
  options: { temporalCoreUrl?: string } = {},
): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  const endpoint = await installPrometheus(config, options);
  if (!endpoint) return undefined;
  const handle = endpoint.handler(config);
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') return handle(req, res);
    res.statusCode = 404;
    res.end('only GET /metrics is served here\n');
  });
  const host = config.METRICS_HOST ?? config.API_HOST;
  const port = config.METRICS_PORT ?? DEFAULT_WORKER_METRICS_PORT;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}/metrics`;
  logger.info({ url }, 'prometheus metrics endpoint');
  return {
    url,
    async stop() {
      // The provider stays: other parts of the process (an in-process API in tests) may record into it.
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A reader that only answers `collect()`: how tests look at what was recorded, with no network. */
export class InMemoryMetricReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}

  /** Every metric recorded so far, flattened across scopes. */
  async metrics(): Promise<MetricData[]> {
    const { resourceMetrics } = await this.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  }
}

// ------------------------------------------------------------------------------------- models

/** Seed 003 §6: model latency, tokens per second, fallback rate. */
export const modelMetrics = instruments((m) => ({
  /** One provider call (one route attempt), seconds; {route, provider, outcome}. */
  callDuration: m.createHistogram('model.call.duration', {
    unit: 's',
    description: 'Duration of one model call on one route',
    advice: { explicitBucketBoundaries: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320] },
  }),
  /** Output tokens per second of successful calls; {route, provider}. */
  tokensPerSecond: m.createHistogram('model.tokens_per_second', {
    unit: '{token}/s',
    description: 'Output tokens per second of a successful model call',
    advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 40, 80, 160, 320] },
  }),
  /** Route attempts; {route, outcome}: ok, or the failure class (unavailable, rejected, invalid_output, skipped). */
  calls: m.createCounter('model.calls', { description: 'Model calls per route and outcome' }),
  /** Passing from one route to the next; {from, to, reason}. */
  fallbacks: m.createCounter('model.fallbacks', { description: 'Fallbacks from one model route to the next, by reason' }),
  /** Whole requests; {requested, outcome, fell_back}: fallback rate = fell_back="true" / all. */
  requests: m.createCounter('model.requests', { description: 'model.generate requests by outcome and whether they fell back' }),
}));
