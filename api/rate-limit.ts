import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpProblem } from './problem.ts';

export interface RateLimitOptions {
  /** Requests per window per API key (API_RATE_LIMIT); 0 turns the limit off. */
  limit: number;
  /** API_RATE_LIMIT_WINDOW_SECONDS */
  windowSeconds: number;
}

/**
 * Per-key request limits (express-rate-limit, a fixed window in this process's memory). Runs after
 * `authenticate`, so it counts the authenticated key, never an address or a claimed identity, and
 * before the body is read, so a caller over its limit costs no parsing. Over the limit: 429
 * problem+json with `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy` headers.
 */
export function perKeyRateLimit(options: RateLimitOptions): RequestHandler {
  if (options.limit === 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: options.windowSeconds * 1000,
    limit: options.limit,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    identifier: 'per-key',
    keyGenerator: (req) => req.apiKeyId ?? 'unauthenticated',
    handler: (req, _res, next) => {
      const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const seconds = resetTime ? Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : options.windowSeconds;
      next(
        new HttpProblem(429, 'Too Many Requests', `this API key made more than ${options.limit} requests in ${options.windowSeconds} s; retry in ${seconds} s`, undefined, {
          retryAfterSeconds: seconds,
        }),
      );
    },
  });
}
