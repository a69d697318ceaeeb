import { ApplicationFailure } from '@temporalio/common';
import { Agent, buildConnector, request, type Dispatcher } from 'undici';
import type { Logger } from '../../common/logger.ts';
import { AddressNotAllowedError, guardedLookup, isHostAllowed, literalAddressRefused, systemResolver, type Resolver } from './allow-list.ts';
import { parseRetryAfter } from './retry-after.ts';

/**
 * The one way activities call external HTTP APIs (seed 000 §3). It owns:
 * - timeouts: a connect timeout per connection and a total timeout per attempt;
 * - the host allow-list (SSRF), checked before connecting and on every redirect, and the addresses a
 *   name resolves to checked as each connection is made (DNS rebinding: a non-public address must be
 *   listed itself; activities/integrations/allow-list.ts);
 * - error classification at the boundary, as Temporal ApplicationFailures the retry policy acts on:
 *   4xx → non-retryable with a type (`HttpNotFound`, `HttpUnauthorized`, ...), 429 and 503 →
 *   retryable after `Retry-After` (`nextRetryDelay`, capped), 408/5xx and network errors → retryable;
 * - the `Idempotency-Key` header on every side-effecting call (stable across retries: the run's
 *   `<workflowId>/<stepPath>`), and `X-Correlation-Id` on every call;
 * - logs with the call's correlation fields (the caller's child logger) and never a header value
 *   or a body.
 * Retries themselves are Temporal's (the activity's retry policy), never a loop in here.
 */

/** Largest response body kept; bigger bodies fail the step (Temporal payload limits). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface HttpClientOptions {
  /** Hosts calls may reach (HTTP_FETCH_ALLOWED_HOSTS). */
  allowedHosts: readonly string[];
  /** Milliseconds to establish a TCP/TLS connection. @default 5000 */
  connectTimeoutMs?: number;
  /** Redirects followed (each re-checked against the allow-list). @default 5 */
  maxRedirects?: number;
  /** Longest `Retry-After` honoured; longer ones are cut to this. @default 300000 (5 min) */
  maxRetryAfterMs?: number;
  /** @default MAX_RESPONSE_BYTES */
  maxResponseBytes?: number;
  /** The name operators see in errors, e.g. "http-fetch". @default "http" */
  name?: string;
  /** Resolves names before each connection (tests answer private addresses with it). @default the system's */
  resolver?: Resolver;
}

export interface HttpCall {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON (with `content-type: application/json`). */
  body?: unknown;
  /** Seconds the whole attempt may take (connect, headers, body). */
  timeoutSeconds: number;
  /** True when the call changes something remotely: it carries the idempotency key. */
  sideEffects: boolean;
  idempotencyKey: string;
  correlationId: string;
  /** The activity's cancellation signal. */
  signal: AbortSignal;
  /** The step's child logger (it carries workflowId, stepId, correlationId, attempt). */
  logger: Logger;
  /** Statuses returned as a result instead of failing (e.g. 404 when "absent" is an answer). */
  acceptStatus?: readonly number[];
  /** Extra statuses treated as transient (retried), beyond 408, 429 and 5xx. */
  retryOnStatus?: readonly number[];
}

export interface HttpResult {
  status: number;
  ok: boolean;
  headers: Record<string, string>;
  /** Parsed JSON for JSON responses, text otherwise; null for HEAD. */
  data: unknown;
}

/** Failure types by status, for the common 4xx answers; other 4xx are `HttpClientError`. */
export const CLIENT_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'HttpBadRequest',
  401: 'HttpUnauthorized',
  403: 'HttpForbidden',
  404: 'HttpNotFound',
  405: 'HttpMethodNotAllowed',
  409: 'HttpConflict',
  410: 'HttpGone',
  413: 'HttpPayloadTooLarge',
  422: 'HttpUnprocessableEntity',
};

/** Statuses retried whatever the caller says (besides every 5xx). */
export const TRANSIENT_STATUSES: readonly number[] = [408, 425, 429];

/** What an HTTP status means for the step: a result, a retry (maybe after a delay) or a permanent failure. */
export type StatusClass =
  | { kind: 'result' }
  | { kind: 'retry'; type: string; delayMs?: number }
  | { kind: 'fail'; type: string };

/** Classifies a final (non-redirect) status. Pure, for unit tests and docs. */
export function classifyStatus(
  status: number,
  retryAfter: string | null,
  options: { acceptStatus?: readonly number[]; retryOnStatus?: readonly number[]; maxRetryAfterMs: number; now?: number },
): StatusClass {
  if (options.acceptStatus?.includes(status) || status < 400) return { kind: 'result' };
  const delayMs = parseRetryAfter(retryAfter, options.maxRetryAfterMs, options.now);
  const delay = delayMs === undefined ? {} : { delayMs };
  if (status === 429) return { kind: 'retry', type: 'HttpTooManyRequests', ...delay };
  if (status === 503) return { kind: 'retry', type: 'HttpServiceUnavailable', ...delay };
  if (status >= 500) return { kind: 'retry', type: 'HttpServerError', ...delay };
  if (status === 408) return { kind: 'retry', type: 'HttpRequestTimeout', ...delay };
  if (TRANSIENT_STATUSES.includes(status) || options.retryOnStatus?.includes(status)) return { kind: 'retry', type: `HttpStatus${status}`, ...delay };
  return { kind: 'fail', type: CLIENT_ERROR_TYPES[status] ?? 'HttpClientError' };
}

/** Undici error codes that mean "no answer": retried like any network failure. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * An undici Agent whose connections resolve names with guardedLookup: a connection to a name whose
 * addresses include a non-public one the list does not name fails with AddressNotAllowedError.
 * One connector per port, since list entries may name a port.
 */
export function guardedAgent(allowedHosts: readonly string[], options: { connectTimeoutMs?: number; resolver?: Resolver } = {}): Agent {
  const connectors = new Map<string, buildConnector.connector>();
  const connect: buildConnector.connector = (target, callback) => {
    const port = String(target.port || (target.protocol === 'https:' ? 443 : 80));
    let connector = connectors.get(port);
    if (!connector) {
      connector = buildConnector({ timeout: options.connectTimeoutMs ?? 5000, lookup: guardedLookup(allowedHosts, port, options.resolver ?? systemResolver) });
      connectors.set(port, connector);
    }
    return connector(target, callback);
  };
  return new Agent({ connect, keepAliveTimeout: 4000 });
}

/** The guarded lookup's refusal, wherever undici put it in the cause chain. */
export function addressRefusal(error: unknown): AddressNotAllowedError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth += 1) {
    if (e instanceof AddressNotAllowedError) return e;
  }
  return undefined;
}

function headerRecord(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Drops a body we will not read; undici reports a destroyed body as an error, which nobody awaits. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

async function readBody(body: Dispatcher.ResponseData['body'], headers: Record<string, string>, limit: number): Promise<unknown> {
  const declared = Number(headers['content-length'] ?? '0');
  if (declared > limit) {
    discard(body);
    throw ApplicationFailure.nonRetryable(`response body of ${declared} bytes exceeds ${limit}`, 'ResponseTooLarge');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) {
      discard(body);
      throw ApplicationFailure.nonRetryable(`response body exceeds ${limit} bytes`, 'ResponseTooLarge');
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (/[/+]json\b/i.test(headers['content-type'] ?? '') && text.length > 0) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** A short, single-line excerpt of an error response, for the failure message. */
function excerpt(data: unknown): string {
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  if (!text) return '';
  const line = text.replace(/\s+/g, ' ').trim();
  return `: ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
}

/** Where a call goes, for messages and logs: no query string (it may carry tokens), no userinfo. */
function target(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

export class HttpClient {
  readonly #options: Required<HttpClientOptions>;
  readonly #dispatcher: Agent;

  constructor(options: HttpClientOptions) {
    this.#options = {
      connectTimeoutMs: 5000,
      maxRedirects: 5,
      maxRetryAfterMs: 300_000,
      maxResponseBytes: MAX_RESPONSE_BYTES,
      name: 'http',
      resolver: systemResolver,
      ...options,
    };
    this.#dispatcher = guardedAgent(this.#options.allowedHosts, { connectTimeoutMs: this.#options.connectTimeoutMs, resolver: this.#options.resolver });
  }

  get allowedHosts(): readonly string[] {
    return this.#options.allowedHosts;
  }

  /** Refuses a URL outside the allow-list with a non-retryable `HostNotAllowed`. */
  checkHost(url: URL): void {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw ApplicationFailure.nonRetryable(`only http and https URLs can be called, not "${url.protocol}"`, 'HostNotAllowed');
    }
    if (!isHostAllowed(url, this.#options.allowedHosts)) {
      throw ApplicationFailure.nonRetryable(
        `host "${url.host}" is not on the ${this.#options.name} allow-list (HTTP_FETCH_ALLOWED_HOSTS)`,
        'HostNotAllowed',
      );
    }
    const literal = literalAddressRefused(url, this.#options.allowedHosts);
    if (literal) {
      throw ApplicationFailure.nonRetryable(
        `${literal} is not a public address; list it (or a CIDR range holding it) in the ${this.#options.name} allow-list (HTTP_FETCH_ALLOWED_HOSTS) to call it`,
        'HostNotAllowed',
      );
    }
  }

  /** Makes one attempt of a call; throws ApplicationFailures classified for Temporal's retry policy. */
  async call(call: HttpCall): Promise<HttpResult> {
    const { logger } = call;
    let url = new URL(call.url);
    let method = call.method.toUpperCase();
    let body: string | undefined =
      call.body === undefined ? undefined : typeof call.body === 'string' ? call.body : JSON.stringify(call.body);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(call.headers ?? {})) headers[name.toLowerCase()] = value;
    if (body !== undefined && typeof call.body !== 'string' && headers['content-type'] === undefined) {
      headers['content-type'] = 'application/json';
    }
    if (call.sideEffects && method !== 'GET' && method !== 'HEAD' && headers['idempotency-key'] === undefined) {
      headers['idempotency-key'] = call.idempotencyKey;
    }
    headers['x-correlation-id'] = call.correlationId;
    const timeout = AbortSignal.timeout(call.timeoutSeconds * 1000);
    const signal = AbortSignal.any([call.signal, timeout]);

    for (let hop = 0; ; hop += 1) {
      this.checkHost(url);
      const started = Date.now();
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, { dispatcher: this.#dispatcher, method: method as Dispatcher.HttpMethod, headers, body: body ?? null, signal });
      } catch (error) {
        const refused = addressRefusal(error);
        if (refused) {
          const reason = refused;
          logger.warn({ host: url.host, method }, `${this.#options.name} call refused: ${reason.message}`);
          throw ApplicationFailure.nonRetryable(`${reason.message} (${this.#options.name} allow-list, HTTP_FETCH_ALLOWED_HOSTS)`, 'HostNotAllowed');
        }
        throw this.#networkFailure(error, { url, method, started, timedOut: timeout.aborted, cancelled: call.signal.aborted, logger });
      }
      const status = response.statusCode;
      const responseHeaders = headerRecord(response.headers);
      logger.info({ host: url.host, path: url.pathname, method, status, ms: Date.now() - started }, `${this.#options.name} call`);

      const location = responseHeaders.location;
      if (status >= 300 && status < 400 && location) {
        await response.body.dump({ limit: 64 * 1024 }).catch(() => discard(response.body));
        if (hop >= this.#options.maxRedirects) {
          throw ApplicationFailure.nonRetryable(`more than ${this.#options.maxRedirects} redirects from ${target(new URL(call.url))}`, 'TooManyRedirects');
        }
        const next = new URL(location, url);
        // Credentials belong to the origin they were given for, as browsers and curl do.
        if (next.origin !== url.origin) {
          for (const name of ['authorization', 'cookie', 'proxy-authorization']) delete headers[name];
        }
        url = next;
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
          delete headers['content-type'];
          delete headers['idempotency-key'];
        }
        continue;
      }

      const verdict = classifyStatus(status, responseHeaders['retry-after'] ?? null, {
        ...(call.acceptStatus ? { acceptStatus: call.acceptStatus } : {}),
        ...(call.retryOnStatus ? { retryOnStatus: call.retryOnStatus } : {}),
        maxRetryAfterMs: this.#options.maxRetryAfterMs,
      });
      let data: unknown;
      try {
        data = method === 'HEAD' ? null : await readBody(response.body, responseHeaders, this.#options.maxResponseBytes);
      } catch (error) {
        if (error instanceof ApplicationFailure) throw error;
        throw this.#networkFailure(error, { url, method, started, timedOut: timeout.aborted, cancelled: call.signal.aborted, logger });
      }
      if (verdict.kind === 'result') return { status, ok: status >= 200 && status < 300, headers: responseHeaders, data };
      const message = `${method} ${target(url)} answered ${status}${excerpt(data)}`;
      if (verdict.kind === 'fail') {
        logger.warn({ host: url.host, method, status, errorType: verdict.type }, `${this.#options.name} call refused (not retried)`);
        throw ApplicationFailure.create({ message, type: verdict.type, nonRetryable: true, details: [{ status }] });
      }
      logger.warn({ host: url.host, method, status, errorType: verdict.type, retryAfterMs: verdict.delayMs }, `${this.#options.name} call failed (retried)`);
      throw ApplicationFailure.create({
        message: verdict.delayMs === undefined ? message : `${message} (retry after ${Math.round(verdict.delayMs / 1000)} s)`,
        type: verdict.type,
        details: [{ status }],
        ...(verdict.delayMs === undefined ? {} : { nextRetryDelay: verdict.delayMs }),
      });
    }
  }

  #networkFailure(
    error: unknown,
    at: { url: URL; method: string; started: number; timedOut: boolean; cancelled: boolean; logger: Logger },
  ): Error {
    // Cancellation is the activity's, not the remote's: let it through for the wrapper to report.
    if (at.cancelled) return error instanceof Error ? error : new Error(String(error));
    const code = errorCode(error);
    const ms = Date.now() - at.started;
    const timedOut = at.timedOut || (code !== undefined && TIMEOUT_CODES.has(code));
    const reason = at.timedOut
      ? 'timed out'
      : code === 'UND_ERR_CONNECT_TIMEOUT'
        ? `could not connect within ${this.#options.connectTimeoutMs} ms`
        : error instanceof Error
          ? (error.cause instanceof Error ? error.cause.message : error.message) || code || error.name
          : String(error);
    const type = timedOut ? 'HttpTimeout' : 'NetworkError';
    at.logger.warn({ host: at.url.host, method: at.method, ms, errorType: type, code }, `${this.#options.name} call failed (retried)`);
    return ApplicationFailure.retryable(`${at.method} ${target(at.url)} failed: ${reason}`, type);
  }

  /** Closes pooled connections (worker shutdown, tests). */
  async close(): Promise<void> {
    await this.#dispatcher.close();
  }
}
