import type { IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, isSpanContextValid, propagation, trace, type Context, type SpanContext } from '@opentelemetry/api';

/**
 * The trace context as the platform's code reads and carries it, through the OpenTelemetry API
 * only (no SDK: cheap to import anywhere). Without a started SDK (common/tracing.ts) every helper
 * finds no trace and returns nothing.
 */

/** Whether OTEL_SDK_DISABLED=true turns tracing off (read where the workflow bundle is built, too). */
export function tracingDisabled(): boolean {
  return process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
}

/** The active span's context, when there is a valid one. */
function activeSpanContext(ctx: Context = context.active()): SpanContext | undefined {
  const spanContext = trace.getSpanContext(ctx);
  return spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** `{traceId, spanId}` of the active span, for log lines (common/logger.ts). */
export function traceFields(): { traceId: string; spanId: string } | Record<string, never> {
  const spanContext = activeSpanContext();
  return spanContext ? { traceId: spanContext.traceId, spanId: spanContext.spanId } : {};
}

/** The active context as a W3C `traceparent`, or undefined outside any trace. */
export function currentTraceparent(): string | undefined {
  const spanContext = activeSpanContext();
  if (!spanContext) return undefined;
  return `00-${spanContext.traceId}-${spanContext.spanId}-0${(spanContext.traceFlags & 0xff).toString(16)}`;
}

/** The trace id inside a `traceparent`. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent ? /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(traceparent)?.[1] : undefined;
}

/** Runs `fn` in the context a stored `traceparent` names (a deferred start, a webhook delivery). */
export function withTraceparent<T>(traceparent: string | undefined, fn: () => T): T {
  if (!traceparent) return fn();
  return context.with(propagation.extract(ROOT_CONTEXT, { traceparent }), fn);
}

// --------------------------------------------------------------------------------- HTTP server

/**
 * A SERVER span per API request, named by its route template (`POST /v1/runs`), child of the
 * caller's `traceparent` when it sends one; the request's handlers run inside it. A hand-made span
 * rather than the http instrumentation: that one patches `node:http` on require, which an ES module
 * process has already imported by the time the SDK starts.
 */
export function httpServerSpans(routeOf: (path: string) => string | undefined) {
  const tracer = trace.getTracer('durable-workflows/api');
  return (req: IncomingMessage & { path: string }, res: ServerResponse, next: () => void): void => {
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const route = routeOf(req.path);
    const span = tracer.startSpan(
      route ? `${req.method} ${route}` : (req.method ?? 'HTTP'),
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method ?? '',
          'url.path': req.path,
          'url.scheme': 'http',
          ...(route ? { 'http.route': route } : {}),
        },
      },
      parent,
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  };
}
