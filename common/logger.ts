import { pino, type Logger, type LoggerOptions } from 'pino';
import { traceFields } from './trace-context.ts';

/** Paths pino removes from every log line, wherever the object sits. */
export const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  '*.apiKey',
  '*.password',
  '*.secret',
  '*.token',
  '*.accessToken',
  'apiKey',
  'password',
  'secret',
  'token',
];

/**
 * The platform's root logger: JSON lines on stdout, one per event, with ISO timestamps and the
 * service name (and the trace of the request or activity it was written in), so the embedded supervisor's merged output stays greppable and `jq`-friendly.
 */
export function createLogger(service: string, level = 'info', destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { svc: service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // A line written inside a trace (an API request, an activity) names it: traceId and spanId.
    mixin: traceFields,
  };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
