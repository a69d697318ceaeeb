import { STATUS_CODES } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { isGrpcServiceError } from '@temporalio/client';
import type { Logger } from '../common/logger.ts';
import { HttpProblem, type ProblemDetail } from './problem.ts';

const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAVAILABLE = 14;
const GRPC_TRANSIENT = new Set([GRPC_DEADLINE_EXCEEDED, GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE]);

/** Node and pg codes of a database that cannot be reached right now (not a bad query). */
const DATABASE_UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '53300']);

/** Seconds a 503 asks the caller to wait before trying again. */
const RETRY_AFTER_SECONDS = 5;

/** Longest `detail`, `instance` and error path echoed back; callers' input is never echoed whole. */
const MAX_ECHO = 300;
const MAX_ERRORS = 100;

/** The error and its causes, outermost first (Temporal's ServiceError wraps the gRPC error). */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) chain.push(e);
  return chain;
}

function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  const e = error as { type?: string; status?: unknown; statusCode?: unknown; message?: string; expose?: boolean; code?: unknown };
  // body-parser's errors (http-errors): each carries its 4xx status and a type.
  if (e?.type === 'entity.parse.failed') return new HttpProblem(400, 'Malformed JSON', `the body is not valid JSON: ${e.message ?? ''}`, [{ path: '', message: 'malformed JSON' }]);
  if (e?.type === 'entity.too.large') return new HttpProblem(413, 'Payload Too Large', 'the request body exceeds the limit', [{ path: '', message: 'too large' }]);
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return new HttpProblem(415, 'Unsupported Media Type', e.message, [{ path: e.type === 'encoding.unsupported' ? 'Content-Encoding' : 'Content-Type', message: 'not supported' }]);
  }
  if (error instanceof URIError) return new HttpProblem(400, 'Invalid request', 'the URL path has malformed percent-encoding', [{ path: 'url', message: 'malformed percent-encoding' }]);
  if (causes(error).some((c) => isGrpcServiceError(c) && GRPC_TRANSIENT.has(c.code))) {
    return new HttpProblem(503, 'Service Unavailable', 'Temporal is not reachable; try again');
  }
  if ((typeof e?.code === 'string' && DATABASE_UNAVAILABLE.has(e.code)) || /Connection terminated|timeout exceeded when trying to connect/.test(e?.message ?? '')) {
    return new HttpProblem(503, 'Service Unavailable', 'the database is not reachable; try again');
  }
  // Anything else that carries its own client-error status keeps it (raw-body aborts, zlib errors...).
  const status = Number(e?.status ?? e?.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    return new HttpProblem(status, STATUS_CODES[status] ?? 'Bad Request', e.expose && e.message ? e.message : (STATUS_CODES[status] ?? 'the request was refused'));
  }
  return new HttpProblem(500, 'Internal Server Error', 'an unexpected error occurred; the correlation id identifies it in the logs');
}

/** Caller text made safe to echo: control characters spelled out, lone surrogates replaced, cut to `max`. */
export function echo(text: string, max = MAX_ECHO): string {
  const visible = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  return visible.length > max ? `${visible.slice(0, max - 1)}…` : visible;
}

/** The request URL as `instance`: anything outside RFC 3986's characters percent-encoded, then cut. */
function instanceOf(url: string): string {
  const encoded = url.replace(/[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/g, (c) => {
    try {
      return encodeURIComponent(c);
    } catch {
      return '%EF%BF%BD';
    }
  });
  return encoded.length > MAX_ECHO ? `${encoded.slice(0, MAX_ECHO - 1)}…` : encoded;
}

function errorsOf(errors: ProblemDetail[]): ProblemDetail[] {
  const shown = errors.slice(0, MAX_ERRORS).map((p) => ({ ...p, path: echo(p.path), message: echo(p.message, 1000), ...(p.stepId ? { stepId: echo(p.stepId) } : {}) }));
  if (errors.length > MAX_ERRORS) shown.push({ path: '', message: `and ${errors.length - MAX_ERRORS} more` });
  return shown;
}

/** The one error handler of the API: everything leaves as application/problem+json. */
export function problemHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const problem = toProblem(error);
    const log = req.log ?? logger;
    if (problem.status >= 500) log.error({ err: error }, 'request failed');
    if (problem.status === 503 && !res.get('retry-after')) res.set('Retry-After', String(RETRY_AFTER_SECONDS));
    // A problem that knows when to come back (a full admission queue, api/admission.ts) says so.
    if (typeof problem.extra?.retryAfterSeconds === 'number' && !res.get('retry-after')) res.set('Retry-After', String(problem.extra.retryAfterSeconds));
    res
      .status(problem.status)
      .type('application/problem+json')
      .json({
        type: 'about:blank',
        title: problem.title,
        status: problem.status,
        ...(problem.detail ? { detail: echo(problem.detail) } : {}),
        instance: instanceOf(req.originalUrl),
        ...(req.correlationId ? { correlationId: req.correlationId } : {}),
        ...(problem.errors ? { errors: errorsOf(problem.errors) } : {}),
        ...(problem.extra ?? {}),
      });
  };
}
