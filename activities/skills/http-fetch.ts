import { z } from 'zod';
import { HttpClient, MAX_RESPONSE_BYTES } from '../integrations/http-client.ts';
import { defineSkill, type SkillSpec } from './skill.ts';

export { isHostAllowed } from '../integrations/allow-list.ts';
export { MAX_RESPONSE_BYTES };

/** A header value: literal text, or `{"secret": "NAME", "prefix"?: "Bearer "}` resolved in the activity. */
const headerValue = z.string();

export const httpRequestInputSchema = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), headerValue).optional(),
  /** A string is sent as is; anything else is sent as JSON. */
  body: z.unknown().optional(),
  /** Seconds before the attempt is abandoned (the step's own timeout still applies). */
  timeout: z.number().positive().max(300).default(10),
  /** Extra statuses treated as transient (retried); 408, 425, 429 and every 5xx always are. */
  retry_on_status: z.array(z.number().int().min(400).max(599)).default([]),
  /** Statuses returned as the output instead of failing the step, e.g. [404] when "absent" is an answer. */
  accept_status: z.array(z.number().int().min(400).max(599)).default([]),
});

export const httpRequestOutputSchema = z.object({
  status: z.number(),
  ok: z.boolean(),
  headers: z.record(z.string(), z.string()),
  data: z.unknown(),
});

/** The shared HTTP client for an allow-list, so skills and integrations pool connections. */
export function createHttpClient(allowedHosts: readonly string[], name = 'http'): HttpClient {
  return new HttpClient({ allowedHosts, name });
}

/** Builds the `http-fetch` skill on the integrations HTTP client (allow-list, timeouts, classification). */
export function createHttpFetchSkill(
  client: HttpClient | readonly string[],
): SkillSpec<typeof httpRequestInputSchema, typeof httpRequestOutputSchema> {
  const http = client instanceof HttpClient ? client : createHttpClient(client, 'http-fetch');
  return defineSkill({
    name: 'http-fetch',
    description:
      'Calls an HTTP(S) URL on an allow-listed host and returns {status, ok, headers, data}; JSON bodies are parsed. ' +
      '4xx answers fail the step without retry (type HttpNotFound, HttpUnauthorized, ...; accept_status returns them instead); ' +
      '429 and 503 are retried after Retry-After; 408, 5xx and network errors are retried. ' +
      'Writes carry an Idempotency-Key; header values may be secret references {"secret": "NAME"}.',
    input: httpRequestInputSchema,
    output: httpRequestOutputSchema,
    sideEffects: true,
    defaults: { timeoutSeconds: 30, retry: { maxAttempts: 5, initialIntervalSeconds: 1, backoffCoefficient: 2, maxIntervalSeconds: 60 } },
    async handler(input, ctx) {
      return http.call({
        method: input.method,
        url: input.url,
        ...(input.headers ? { headers: input.headers } : {}),
        ...(input.body === undefined ? {} : { body: input.body }),
        timeoutSeconds: input.timeout,
        sideEffects: true,
        idempotencyKey: ctx.meta.idempotencyKey,
        correlationId: ctx.meta.correlationId,
        signal: ctx.signal,
        logger: ctx.logger,
        acceptStatus: input.accept_status,
        retryOnStatus: input.retry_on_status,
      });
    },
  });
}
