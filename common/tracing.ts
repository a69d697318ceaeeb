import { DiagLogLevel, diag, type DiagLogger, type SpanContext } from '@opentelemetry/api';
import { diagLogLevelFromString, getNumberFromEnv, getStringFromEnv, getStringListFromEnv, setGlobalErrorHandler } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  resourceFromAttributes,
  serviceInstanceIdDetector,
  type Resource,
} from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NoopSpanProcessor,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import type { OpenTelemetrySinks, SerializableSpan } from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks } from '@temporalio/worker';
import type { Logger } from './logger.ts';
import { tracingDisabled } from './trace-context.ts';

/**
 * OpenTelemetry traces for the API and worker processes (docs/OPERATIONS.md, "Traces").
 *
 * `startTracing` starts `@opentelemetry/sdk-node` once per process. Export is configured with the
 * SDK's own variables (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*, OTEL_BSP_*, OTEL_TRACES_SAMPLER,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS); OTEL_SDK_DISABLED=true turns it off.
 * With no exporter and no OTLP endpoint configured (the embedded default) the process still makes
 * trace context — ids in logs, `GET /v1/runs/{id}`, webhooks and the run's memo, propagated to
 * Temporal and outbound HTTP — but records nothing: no collector needed, nothing queued, nothing sent.
 *
 * Metrics stay with common/metrics.ts: the SDK is started without metric readers or log processors.
 * The trace context helpers every module may use (log fields, traceparent) are in trace-context.ts.
 */

let sdk: NodeSDK | undefined;
let processor: SpanProcessor | undefined;
let resource: Resource | undefined;
let exporting = false;

export interface TracingState {
  /** False when OTEL_SDK_DISABLED=true (or tracing was never started in this process). */
  enabled: boolean;
  /** Whether spans are exported anywhere (an exporter or OTLP endpoint is configured). */
  exporting: boolean;
}

/** The exporters OTEL_TRACES_EXPORTER names, as the SDK reads it; none unless an exporter or endpoint is configured. */
function exportersFromEnv(logger: Logger): SpanExporter[] {
  const endpoint = getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_ENDPOINT');
  const names = [...new Set(getStringListFromEnv('OTEL_TRACES_EXPORTER') ?? (endpoint ? ['otlp'] : []))];
  if (names.includes('none')) return [];
  const exporters: SpanExporter[] = [];
  for (const name of names) {
    if (name === 'console') exporters.push(new ConsoleSpanExporter());
    else if (name === 'otlp') {
      const protocol = (getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf').trim();
      if (protocol === 'grpc') exporters.push(new OtlpGrpcExporter());
      else if (protocol === 'http/json') exporters.push(new OtlpJsonExporter());
      else {
        if (protocol !== 'http/protobuf') logger.warn({ protocol }, 'unsupported OTEL_EXPORTER_OTLP_PROTOCOL; using http/protobuf');
        exporters.push(new OtlpProtoExporter());
      }
    } else logger.warn({ exporter: name }, 'unsupported OTEL_TRACES_EXPORTER value (supported: otlp, console, none); ignored');
  }
  return exporters;
}

/** One processor over every exporter: batched (OTEL_BSP_* as the SDK reads them), the console one simple. */
function processorFor(exporters: SpanExporter[]): SpanProcessor {
  const processors = exporters.map((exporter) =>
    exporter instanceof ConsoleSpanExporter
      ? new SimpleSpanProcessor({ exporter })
      : new BatchSpanProcessor({
          exporter,
          ...optional('maxQueueSize', getNumberFromEnv('OTEL_BSP_MAX_QUEUE_SIZE')),
          ...optional('scheduledDelayMillis', getNumberFromEnv('OTEL_BSP_SCHEDULE_DELAY')),
          ...optional('exportTimeoutMillis', getNumberFromEnv('OTEL_BSP_EXPORT_TIMEOUT')),
          ...optional('maxExportBatchSize', getNumberFromEnv('OTEL_BSP_MAX_EXPORT_BATCH_SIZE')),
        }),
  );
  if (processors.length === 1) return processors[0]!;
  return {
    onStart: (span, parent) => processors.forEach((p) => p.onStart(span, parent)),
    onEnd: (span) => processors.forEach((p) => p.onEnd(span)),
    forceFlush: async () => void (await Promise.all(processors.map((p) => p.forceFlush()))),
    shutdown: async () => void (await Promise.all(processors.map((p) => p.shutdown()))),
  };
}

const optional = <K extends string>(key: K, value: number | undefined) => (value === undefined ? {} : ({ [key]: value } as Record<K, number>));

/**
 * Export failures (a collector that is down or misconfigured) are logged at most once a minute
 * per kind, with how many were left out, instead of one line per batch.
 */
function throttled(logger: Logger): { log(kind: string, fields: Record<string, unknown>, message: string): void } {
  const last = new Map<string, { at: number; skipped: number }>();
  return {
    log(kind, fields, message) {
      const now = Date.now();
      const seen = last.get(kind);
      if (seen && now - seen.at < 60_000) {
        seen.skipped += 1;
        return;
      }
      last.set(kind, { at: now, skipped: 0 });
      logger.warn({ ...fields, ...(seen?.skipped ? { suppressed: seen.skipped } : {}) }, message);
    },
  };
}

function diagLogger(logger: Logger): DiagLogger {
  const warn = throttled(logger);
  const text = (args: unknown[]) => args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
  return {
    error: (m, ...a) => warn.log(`diag:${m.slice(0, 40)}`, { otel: text(a) }, m),
    warn: (m, ...a) => warn.log(`diag:${m.slice(0, 40)}`, { otel: text(a) }, m),
    info: (m, ...a) => logger.debug({ otel: text(a) }, m),
    debug: (m, ...a) => logger.debug({ otel: text(a) }, m),
    verbose: (m, ...a) => logger.trace({ otel: text(a) }, m),
  };
}

/**
 * Starts tracing for this process (once; later calls return the same state). `service` becomes
 * `service.name` unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise.
 */
export function startTracing(service: string, logger: Logger): TracingState {
  if (sdk) return { enabled: true, exporting };
  if (tracingDisabled()) return { enabled: false, exporting: false };
  const exporters = exportersFromEnv(logger);
  exporting = exporters.length > 0;
  processor = exporting ? processorFor(exporters) : new NoopSpanProcessor();
  // Later sources win: the platform's name, then what the environment says (envDetector last).
  resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': service }))
    .merge(detectResources({ detectors: [serviceInstanceIdDetector, processDetector, hostDetector, osDetector, envDetector] }));
  sdk = new NodeSDK({
    resource,
    autoDetectResources: false,
    spanProcessors: [processor],
    // Nothing is exported, so nothing is recorded: spans still carry ids and propagate, cost nothing.
    ...(exporting ? {} : { sampler: new AlwaysOffSampler() }),
    // Outbound HTTP (undici and fetch, which the http-fetch skill, integrations, webhooks and model providers use).
    instrumentations: [new UndiciInstrumentation()],
    // Metrics belong to common/metrics.ts; logs go to stdout as JSON (pino), not through OpenTelemetry.
    metricReaders: [],
    logRecordProcessors: [],
  });
  diag.setLogger(diagLogger(logger), { logLevel: diagLogLevelFromString(getStringFromEnv('OTEL_LOG_LEVEL')) ?? DiagLogLevel.WARN, suppressOverrideMessage: true });
  const failures = throttled(logger);
  setGlobalErrorHandler((error) => failures.log('export', { err: error instanceof Error ? error.message : String(error) }, 'could not export spans (further failures within a minute are counted, not logged)'));
  sdk.start();
  logger.info({ service, exporting, exporters: exporters.map((e) => e.constructor.name) }, exporting ? 'tracing: exporting spans' : 'tracing: trace context only (no exporter configured)');
  return { enabled: true, exporting };
}

/** Exports what is queued (tests, and before a process exits). */
export async function flushTracing(): Promise<void> {
  await processor?.forceFlush();
}

/** Flushes and stops the SDK. */
export async function stopTracing(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown().catch(() => undefined);
}

// -------------------------------------------------------------------------- workflow spans sink

/**
 * The worker's `exporter` sink for the spans the workflow interceptors make inside the sandbox
 * (@temporalio/interceptors-opentelemetry, OpenTelemetry 1.x shapes there). Each span is handed
 * to this process's span processor in the SDK's own shape (parent context, instrumentation scope,
 * resource) with the run's ids as attributes; without tracing they are dropped. Registered on
 * every worker so the bundle's interceptors always find their sink.
 */
export function workflowSpanSinks(): InjectedSinks<OpenTelemetrySinks> {
  return {
    exporter: {
      export: {
        fn: (info, spans) => {
          if (!processor || !resource || !exporting) return;
          for (const span of spans) processor.onEnd(readableSpan(span, resource, { temporalWorkflowId: info.workflowId, run_id: info.runId, taskQueue: info.taskQueue }));
        },
      },
    },
  };
}

function readableSpan(span: SerializableSpan, res: Resource, extra: Record<string, string>): ReadableSpan {
  const { traceState: _traceState, ...ids } = span.spanContext;
  const spanContext: SpanContext = ids;
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => spanContext,
    ...(span.parentSpanId ? { parentSpanContext: { traceId: ids.traceId, spanId: span.parentSpanId, traceFlags: ids.traceFlags } } : {}),
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: { ...span.attributes, ...extra },
    links: span.links,
    events: span.events,
    duration: span.duration,
    ended: span.ended,
    resource: res,
    instrumentationScope: span.instrumentationLibrary,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}
