import { metrics, type Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider, MetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * The platform's metrics, through the OpenTelemetry metrics API. Code records with `meter()`;
 * where the numbers go is decided once per process by `installMetrics` (a Prometheus endpoint on
 * METRICS_PORT via `startMetrics`, or an in-memory reader in tests). Before anything is
 * installed, `meter()` is OpenTelemetry's no-op meter, so recording is always safe.
 */

export const METER_NAME = 'durable-workflows';

let provider: MeterProvider | undefined;
let generation = 0;

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

/** Starts the Prometheus endpoint (`GET /metrics` on METRICS_PORT, bound to API_HOST) when METRICS_PORT is set. */
export async function startMetrics(config: Pick<Config, 'METRICS_PORT' | 'API_HOST'>, logger: Logger): Promise<{ stop(): Promise<void> } | undefined> {
  if (config.METRICS_PORT === undefined) return undefined;
  const exporter = await new Promise<PrometheusExporter>((resolve, reject) => {
    const created: PrometheusExporter = new PrometheusExporter({ port: config.METRICS_PORT, host: config.API_HOST }, (error) =>
      error ? reject(error) : resolve(created),
    );
  });
  const installed = await installMetrics({ readers: [exporter] });
  logger.info({ url: `http://${config.API_HOST}:${config.METRICS_PORT}/metrics` }, 'prometheus metrics endpoint');
  return {
    async stop() {
      await installed.shutdown();
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
