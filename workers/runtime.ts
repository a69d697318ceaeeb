import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../common/logger.ts';

let installed = false;

/**
 * Workflow and activity logs carry the OpenTelemetry interceptors' `trace_id` / `span_id` /
 * `trace_flags`: renamed to the `traceId` / `spanId` every other line has (common/logger.ts).
 */
function traceNamed(fields: Record<string, unknown>): Record<string, unknown> {
  if (!('trace_id' in fields)) return fields;
  const { trace_id: traceId, span_id: spanId, trace_flags: _flags, ...rest } = fields;
  return { ...rest, traceId, spanId };
}

const EXPECTED_NOTICES = ['No activities registered', 'No workflows registered', 'No Nexus services registered'];

/**
 * Installs the SDK Runtime once per process, forwarding SDK and workflow logs to pino so every
 * line of a worker process is the same JSON shape.
 */
export function installRuntime(logger: Logger, options: { prometheusBindAddress?: string } = {}): void {
  if (installed) return;
  installed = true;
  const level = (logger.level === 'trace' ? 'TRACE' : logger.level === 'debug' ? 'DEBUG' : 'INFO') as LogLevel;
  Runtime.install({
    // Core (Rust) logs are forwarded too, so nothing bypasses the JSON format.
    telemetryOptions: {
      logging: { filter: { core: 'WARN', other: 'WARN' }, forward: {} },
      // The SDK's own metrics (temporal_*: schedule-to-start, slots, pollers, …) on a loopback port the
      // worker's /metrics endpoint reads and serves with the platform's (common/metrics.ts).
      ...(options.prometheusBindAddress ? { metrics: { prometheus: { bindAddress: options.prometheusBindAddress, useSecondsForDurations: true } } } : {}),
    },
    logger: new DefaultLogger(level, (entry) => {
      const fields = traceNamed({ ...(entry.meta ?? {}), sdk: true });
      const message = entry.message;
      // A worker that polls only workflows or only activities is the design here, not a problem.
      const level = EXPECTED_NOTICES.some((n) => message.startsWith(n)) ? 'DEBUG' : entry.level;
      switch (level) {
        case 'TRACE':
          logger.trace(fields, message);
          break;
        case 'DEBUG':
          logger.debug(fields, message);
          break;
        case 'WARN':
          logger.warn(fields, message);
          break;
        case 'ERROR':
          logger.error(fields, message);
          break;
        default:
          logger.info(fields, message);
      }
    }),
  });
}
