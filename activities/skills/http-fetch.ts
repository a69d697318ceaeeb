import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { defineSkill, type SkillSpec } from './skill.ts';

/** Largest response body the skill keeps; bigger bodies fail the step (Temporal payload limits). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_REDIRECTS = 5;

const inputSchema = z.strictObject({
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()).optional(),
  /** A string is sent as is; anything else is sent as JSON. */
  body: z.unknown().optional(),
  /** Seconds before the request is abandoned (the step's own timeout still applies). */
  timeout: z.number().positive().max(300).default(10),
  /** Statuses treated as transient: the attempt fails and Temporal retries it. */
  retry_on_status: z.array(z.number().int()).default([408, 429, 500, 502, 503, 504]),
});

const outputSchema = z.object({
  status: z.number(),
  ok: z.boolean(),
  headers: z.record(z.string(), z.string()),
  data: z.unknown(),
});

/**
 * Matches a URL's host against the allow-list. Entries are `host`, `host:port` or `*.domain`
 * (any subdomain, not the domain itself).
 */
export function isHostAllowed(url: URL, allowList: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return allowList.some((raw) => {
    const entry = raw.toLowerCase();
    const [entryHost = '', entryPort] = entry.startsWith('[')
      ? [entry.slice(1, entry.indexOf(']')), entry.slice(entry.indexOf(']') + 2) || undefined]
      : (entry.split(':') as [string, string | undefined]);
    if (entryPort !== undefined && entryPort !== port) return false;
    if (entryHost.startsWith('*.')) return host.endsWith(entryHost.slice(1));
    return host === entryHost;
  });
}

async function readBody(response: Response): Promise<unknown> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_RESPONSE_BYTES) {
    throw ApplicationFailure.nonRetryable(`response body of ${declared} bytes exceeds ${MAX_RESPONSE_BYTES}`, 'ResponseTooLarge');
  }
  const buffer = Buffer.from(await response.arrayBuffer());
  if (buffer.byteLength > MAX_RESPONSE_BYTES) {
    throw ApplicationFailure.nonRetryable(`response body exceeds ${MAX_RESPONSE_BYTES} bytes`, 'ResponseTooLarge');
  }
  const text = buffer.toString('utf8');
  const type = response.headers.get('content-type') ?? '';
  if (/[/+]json\b/i.test(type) && text.length > 0) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** Builds the `http-fetch` skill for a host allow-list (SSRF guard: nothing else is reachable). */
export function createHttpFetchSkill(allowedHosts: readonly string[]): SkillSpec<typeof inputSchema, typeof outputSchema> {
  return defineSkill({
    name: 'http-fetch',
    description:
      'Calls an HTTP(S) URL on an allow-listed host and returns {status, ok, headers, data}; JSON bodies are parsed. ' +
      'Transient statuses (408, 429, 5xx by default) fail the attempt so it is retried; others are returned.',
    input: inputSchema,
    output: outputSchema,
    sideEffects: true,
    async handler(input, ctx) {
      let url = new URL(input.url);
      let method: string = input.method;
      let body: string | undefined =
        input.body === undefined ? undefined : typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
      const headers = new Headers(input.headers);
      if (body !== undefined && typeof input.body !== 'string' && !headers.has('content-type')) {
        headers.set('content-type', 'application/json');
      }
      if (method !== 'GET' && method !== 'HEAD' && !headers.has('idempotency-key')) {
        headers.set('idempotency-key', ctx.meta.idempotencyKey);
      }
      headers.set('x-correlation-id', ctx.meta.correlationId);
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(input.timeout * 1000)]);

      for (let hop = 0; ; hop++) {
        if (!isHostAllowed(url, allowedHosts)) {
          throw ApplicationFailure.nonRetryable(
            `host "${url.host}" is not on the http-fetch allow-list (HTTP_FETCH_ALLOWED_HOSTS)`,
            'HostNotAllowed',
          );
        }
        const started = Date.now();
        let response: Response;
        try {
          response = await fetch(url, { method, headers, body: body ?? null, redirect: 'manual', signal });
        } catch (error) {
          const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
          ctx.logger.warn({ host: url.host, method, reason }, 'http-fetch network error');
          throw ApplicationFailure.retryable(`${method} ${url.origin}${url.pathname} failed: ${reason}`, 'NetworkError');
        }
        ctx.logger.info({ host: url.host, path: url.pathname, method, status: response.status, ms: Date.now() - started }, 'http-fetch');
        const location = response.headers.get('location');
        if (response.status >= 300 && response.status < 400 && location) {
          if (hop >= MAX_REDIRECTS) throw ApplicationFailure.nonRetryable(`more than ${MAX_REDIRECTS} redirects`, 'TooManyRedirects');
          const next = new URL(location, url);
          // Credentials belong to the origin they were given for, as browsers and curl do.
          if (next.origin !== url.origin) {
            for (const name of ['authorization', 'cookie', 'proxy-authorization']) headers.delete(name);
          }
          url = next;
          if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
            method = 'GET';
            body = undefined;
            headers.delete('content-type');
            headers.delete('idempotency-key');
          }
          continue;
        }
        if (input.retry_on_status.includes(response.status)) {
          const retryAfter = Number(response.headers.get('retry-after'));
          throw ApplicationFailure.create({
            message: `${method} ${url.origin}${url.pathname} answered ${response.status}`,
            type: `HttpStatus${response.status}`,
            ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { nextRetryDelay: retryAfter * 1000 } : {}),
          });
        }
        return {
          status: response.status,
          ok: response.ok,
          headers: Object.fromEntries(response.headers.entries()),
          data: method === 'HEAD' ? null : await readBody(response),
        };
      }
    },
  });
}
