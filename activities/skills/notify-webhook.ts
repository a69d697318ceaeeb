import { createHmac } from 'node:crypto';
import { z } from 'zod';
import type { HttpClient } from '../integrations/http-client.ts';
import { defineSkill } from './skill.ts';

/** The header carrying the HMAC-SHA256 of the body, GitHub style: `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-signature-256';

/** The signature a receiver recomputes: HMAC-SHA256 of the exact body bytes with the shared secret. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * POSTs a JSON message to a webhook URL through the integrations HTTP client (allow-list,
 * timeouts, error classification). The call carries `Idempotency-Key` (stable across retries, so a
 * receiver can drop duplicates) and, when `signing_secret` references a secret, a body signature.
 */
export function createNotifyWebhookSkill(http: HttpClient) {
  return defineSkill({
    name: 'notify-webhook',
    description:
      'POSTs `message` as JSON to `url` (an allow-listed host) with an Idempotency-Key header stable across retries; ' +
      `with \`signing_secret\` ({"secret": "NAME"}) it adds ${SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body>. ` +
      'Returns {status, delivered}. 4xx fails without retry; 429/5xx/network errors are retried.',
    input: z.strictObject({
      url: z.url({ protocol: /^https?$/ }),
      /** Sent as the JSON body, as given (e.g. `{"text": "..."}` for chat webhooks). */
      message: z.unknown(),
      headers: z.record(z.string(), z.string()).optional(),
      /** A secret reference in definitions; the activity sees the resolved value. */
      signing_secret: z.string().min(1).optional(),
      timeout: z.number().positive().max(120).default(10),
    }),
    output: z.object({ status: z.number(), delivered: z.boolean() }),
    sideEffects: true,
    secretInputs: ['signing_secret'],
    defaults: { timeoutSeconds: 30, retry: { maxAttempts: 5, initialIntervalSeconds: 2, backoffCoefficient: 2, maxIntervalSeconds: 120 } },
    async handler(input, ctx) {
      const body = JSON.stringify(input.message ?? null);
      const headers: Record<string, string> = { ...input.headers, 'content-type': 'application/json' };
      if (input.signing_secret) headers[SIGNATURE_HEADER] = signBody(body, input.signing_secret);
      const result = await http.call({
        method: 'POST',
        url: input.url,
        headers,
        body,
        timeoutSeconds: input.timeout,
        sideEffects: true,
        idempotencyKey: ctx.meta.idempotencyKey,
        correlationId: ctx.meta.correlationId,
        signal: ctx.signal,
        logger: ctx.logger,
      });
      return { status: result.status, delivered: result.ok };
    },
  });
}
