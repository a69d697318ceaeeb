import type { NextFunction, Request, Response } from 'express';
import { isGrpcServiceError } from '@temporalio/client';
import type { Logger } from '../common/logger.ts';
import { HttpProblem } from './problem.ts';

const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;

function toProblem(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error;
  const e = error as { type?: string; status?: number; message?: string };
  if (e?.type === 'entity.parse.failed') return new HttpProblem(400, 'Malformed JSON', `the body is not valid JSON: ${e.message ?? ''}`, [{ path: '', message: 'malformed JSON' }]);
  if (e?.type === 'entity.too.large') return new HttpProblem(413, 'Payload Too Large', 'the request body exceeds the limit');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new HttpProblem(415, 'Unsupported Media Type', e.message);
  if (isGrpcServiceError(error) && (error.code === GRPC_UNAVAILABLE || error.code === GRPC_DEADLINE_EXCEEDED)) {
    return new HttpProblem(503, 'Service Unavailable', 'Temporal is not reachable; try again');
  }
  return new HttpProblem(500, 'Internal Server Error', 'an unexpected error occurred; the correlation id identifies it in the logs');
}

/** The one error handler of the API: everything leaves as application/problem+json. */
export function problemHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const problem = toProblem(error);
    const log = req.log ?? logger;
    if (problem.status >= 500) log.error({ err: error }, 'request failed');
    res
      .status(problem.status)
      .type('application/problem+json')
      .json({
        type: 'about:blank',
        title: problem.title,
        status: problem.status,
        ...(problem.detail ? { detail: problem.detail } : {}),
        instance: req.originalUrl,
        ...(req.correlationId ? { correlationId: req.correlationId } : {}),
        ...(problem.errors ? { errors: problem.errors } : {}),
        ...(problem.extra ?? {}),
      });
  };
}
