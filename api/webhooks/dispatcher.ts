import { apiMetrics } from '../../common/metrics-platform.ts';
import pg from 'pg';
import { fetch, type Agent } from 'undici';
import { withTraceparent } from '../../common/trace-context.ts';
import { literalAddressRefused, type Resolver } from '../../activities/integrations/allow-list.ts';
import { addressRefusal, guardedAgent } from '../../activities/integrations/http-client.ts';
import { isHostAllowed } from '../../activities/skills/http-fetch.ts';
import { WEBHOOK_NOTIFY_CHANNEL } from '../../activities/platform/events.ts';
import type { Logger } from '../../common/logger.ts';
import { parseRetryAfter, retryDelayMs } from './backoff.ts';
import { signedDelivery } from './cloud-event.ts';
import type { ClaimedDelivery, WebhookStore } from './store.ts';
import type { LifecycleEvent } from '../../workflows/types.ts';

export interface WebhookDispatcherOptions {
  store: WebhookStore;
  /** For the LISTEN connection (a dedicated client, outside the pool). Without it the dispatcher only polls. */
  databaseUrl?: string | undefined;
  logger: Logger;
  /** Attempts before a delivery is dead-lettered. @default 8 */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Per-request timeout. */
  timeoutMs: number;
  /** How often to look for due deliveries when nothing wakes the dispatcher. */
  pollMs: number;
  /** Hosts webhook URLs may point at (webhookAllowList); empty = none. */
  allowedHosts: readonly string[];
  /** Deliveries sent at the same time (claimed as room frees up). @default 16 */
  batchSize?: number;
  /** Resolves receiver names before connecting (DNS-rebinding guard). @default the system's */
  resolver?: Resolver;
  /** What leaves the platform: each event with its run's declared sensitive values masked (api/run-masking.ts). */
  maskEvent?: <E extends LifecycleEvent>(event: E) => Promise<E>;
}

/** The outcome of one POST, before it is written. */
type Outcome = { status: 'delivered' | 'pending' | 'dead'; httpStatus?: number; error?: string; retryInMs?: number; disable?: string };

/**
 * Delivers lifecycle events to webhook subscriptions, from the `webhook_deliveries` outbox. Each
 * round claims due rows (SKIP LOCKED, so API replicas share the work), POSTs them, and records
 * the outcome: 2xx delivered; 410 disables the subscription; anything else is retried with
 * exponential backoff and jitter until `maxAttempts`, then the delivery is `dead` (listed and
 * re-queued through the API). It sleeps until NOTIFY (a batch was recorded, a delivery re-queued)
 * or the poll interval, whichever comes first.
 */
export class WebhookDispatcher {
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** The retries this dispatcher scheduled (epoch ms): it wakes for each rather than waiting for the poll. */
  private retryTimes: number[] = [];
  private listener: pg.Client | undefined;
  private reconnect: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  /** Connections whose resolved addresses are checked against the allow-list (a listed name answering 10.x is refused). */
  private readonly agent: Agent;

  constructor(private readonly options: WebhookDispatcherOptions) {
    this.log = options.logger.child({ component: 'webhooks' });
    this.agent = guardedAgent(options.allowedHosts, { connectTimeoutMs: Math.min(options.timeoutMs, 10_000), ...(options.resolver ? { resolver: options.resolver } : {}) });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.listen();
    this.loop = this.run();
  }

  /** Stops claiming, waits for the deliveries in flight, closes the LISTEN connection. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.reconnect);
    this.wake();
    await this.loop;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.agent.close().catch(() => undefined);
  }

  /** Makes the dispatcher look for due deliveries now. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  private async listen(): Promise<void> {
    if (!this.options.databaseUrl || !this.running) return;
    const client = new pg.Client({ connectionString: this.options.databaseUrl });
    const retry = () => {
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
      if (this.running) this.reconnect = setTimeout(() => void this.listen(), Math.max(this.options.pollMs, 1000));
    };
    client.on('error', (error: Error) => {
      this.log.warn({ err: error.message }, 'webhook LISTEN connection lost; polling until it is back');
      retry();
    });
    client.on('notification', () => this.wake());
    try {
      await client.connect();
      await client.query(`LISTEN ${WEBHOOK_NOTIFY_CHANNEL}`);
      if (!this.running) {
        await client.end();
        return;
      }
      this.listener = client;
      // Anything recorded while the connection was down is found by this round.
      this.wake();
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'could not LISTEN for webhook deliveries; polling only');
      retry();
    }
  }

  private async run(): Promise<void> {
    const concurrency = this.options.batchSize ?? 16;
    // A claim lasts the request timeout plus a margin; after that another dispatcher may retry it.
    const leaseMs = this.options.timeoutMs + 30_000;
    while (this.running) {
      this.woken = false;
      // Retries due now are found by this round's claim; later ones stay scheduled.
      const now = Date.now();
      this.retryTimes = this.retryTimes.filter((t) => t > now);
      const room = concurrency - this.inFlight.size;
      let claimed: ClaimedDelivery[] = [];
      if (room > 0) {
        try {
          claimed = await this.options.store.claim(room, leaseMs);
        } catch (error) {
          this.log.warn({ err: (error as Error).message }, 'could not claim webhook deliveries');
        }
      }
      // Sends run side by side; one slow receiver does not hold up the others. A finished send wakes the loop.
      for (const delivery of claimed) {
        const sending = this.deliver(delivery).finally(() => {
          this.inFlight.delete(sending);
          this.wake();
        });
        this.inFlight.add(sending);
      }
      if (!this.running) break;
      if (claimed.length === room && room > 0) continue;
      if (this.woken) continue;
      const untilRetry = Math.min(Infinity, ...this.retryTimes) - Date.now();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, Math.min(this.options.pollMs, untilRetry)));
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
    await Promise.allSettled([...this.inFlight]);
  }

  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const log = this.log.child({ deliveryId: delivery.id, subscriptionId: delivery.subscriptionId, eventId: delivery.event.id, attempt: delivery.attempts });
    let outcome: Outcome;
    if (delivery.attempts > this.options.maxAttempts) {
      // A lease expired after the last attempt (the dispatcher sending it stopped mid-request).
      outcome = { status: 'dead', error: 'no attempts left after an interrupted delivery' };
    } else {
      outcome = await this.post(delivery);
    }
    try {
      const written = await this.options.store.complete(delivery, outcome);
      if (outcome.disable) await this.options.store.disable(delivery.subscriptionId, outcome.disable);
      if (written && outcome.retryInMs !== undefined) this.retryTimes.push(Date.now() + outcome.retryInMs + 5);
      const fields = { status: outcome.status, httpStatus: outcome.httpStatus, error: outcome.error, retryInMs: outcome.retryInMs };
      if (written) apiMetrics().webhookDeliveries.add(1, { outcome: outcome.status === 'pending' ? 'retry' : outcome.status });
      if (!written) log.warn(fields, 'webhook delivery outcome not written: the claim had expired');
      else if (outcome.status === 'dead') log.warn(fields, 'webhook delivery dead-lettered');
      else if (outcome.status === 'pending') log.info(fields, 'webhook delivery failed; will retry');
      else log.debug(fields, 'webhook delivered');
    } catch (error) {
      // The lease runs out and the delivery is claimed again: at least once, never lost.
      log.error({ err: (error as Error).message }, 'could not record a webhook delivery outcome');
    }
  }

  private async post(delivery: ClaimedDelivery): Promise<Outcome> {
    let url: URL;
    try {
      url = new URL(delivery.url);
    } catch {
      return { status: 'dead', error: 'the subscription URL is not a valid URL' };
    }
    if (!isHostAllowed(url, this.options.allowedHosts)) {
      return { status: 'dead', error: `host ${url.host} is not in WEBHOOK_ALLOWED_HOSTS` };
    }
      const literal = literalAddressRefused(url, this.options.allowedHosts);
      if (literal) return { status: 'dead', error: `${literal} is not a public address and WEBHOOK_ALLOWED_HOSTS does not list it` };
      let event = delivery.event;
      try {
        if (this.options.maskEvent) event = await this.options.maskEvent(event);
      } catch (error) {
        return { status: 'pending', error: `could not mask the event: ${(error as Error).message}`, retryInMs: this.options.retryBaseMs };
      }
      const { body, headers } = signedDelivery(delivery.secrets, event, new Date(), delivery.traceparent);
    const failed = (error: string, httpStatus?: number, retryAfterMs?: number): Outcome => {
      if (delivery.attempts >= this.options.maxAttempts) return { status: 'dead', error: `${error} (attempt ${delivery.attempts} of ${this.options.maxAttempts})`, ...(httpStatus ? { httpStatus } : {}) };
      const retryInMs = retryDelayMs(delivery.attempts, { baseMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs }, Math.random, retryAfterMs);
      return { status: 'pending', error, retryInMs, ...(httpStatus ? { httpStatus } : {}) };
    };
    try {
      // Sent inside the run's trace: the request's span (and its traceparent header) joins it.
      const response = await withTraceparent(delivery.traceparent, () => fetch(url, {
        method: 'POST',
        headers: { ...headers, 'user-agent': 'durable-workflows-webhooks/1' },
        body,
        // A redirect could lead past the allow-list: it counts as a failed attempt.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
        dispatcher: this.agent,
      }));
      // The receiver's body is not needed (and never logged).
      await response.body?.cancel().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) return { status: 'delivered', httpStatus: response.status };
      if (response.status === 410) {
        return { status: 'dead', httpStatus: 410, error: 'the receiver answered 410 Gone; the subscription was disabled', disable: `the receiver answered 410 Gone at ${new Date().toISOString()}` };
      }
      return failed(`HTTP ${response.status}`, response.status, parseRetryAfter(response.headers.get('retry-after')));
    } catch (error) {
      const refused = addressRefusal(error);
      if (refused) return { status: 'dead', error: `${refused.message} (WEBHOOK_ALLOWED_HOSTS)` };
      const err = error as Error & { cause?: { code?: string; message?: string } };
      const reason = err.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
      return failed(reason);
    }
  }
}
