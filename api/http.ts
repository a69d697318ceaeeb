import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';
import type { Logger } from '../common/logger.ts';
import { HttpProblem, type ProblemDetail } from './problem.ts';
import { toPointer } from '../interpreter/validate.ts';

declare module 'express-serve-static-core' {
  interface Request {
    correlationId?: string;
    log?: Logger;
  }
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Takes the caller's `X-Correlation-Id` (or makes one), echoes it, and gives the request a child
 * logger carrying it. The id then travels into the run (memo, search attribute, activity logs).
 */
export function correlation(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const given = req.get('x-correlation-id');
    const correlationId = given && CORRELATION_ID.test(given) ? given : randomUUID();
    req.correlationId = correlationId;
    req.log = logger.child({ correlationId });
    res.set('X-Correlation-Id', correlationId);
    const started = Date.now();
    res.on('finish', () => {
      req.log?.info({ method: req.method, path: req.path, status: res.statusCode, ms: Date.now() - started, principal: req.principal?.principal, keyId: req.apiKeyId }, 'http');
    });
    next();
  };
}

/** Parses with zod; a failure becomes a 400 listing every problem with its JSON path. */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, where: 'body' | 'query' | 'params' = 'body'): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const errors: ProblemDetail[] = parsed.error.issues.map((issue) => ({
    path: where === 'body' ? toPointer(issue.path) : issue.path.map(String).join('.') || where,
    message:
      issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}` : issue.message,
  }));
  throw new HttpProblem(400, 'Invalid request', `the request ${where} is invalid`, errors);
}

export function correlationIdOf(req: Request): string {
  return req.correlationId ?? randomUUID();
}
