import { Router } from 'express';
import { handle } from '../contract.ts';
import { webhookContracts as c } from '../contracts/webhooks.ts';
import { isHostAllowed } from '../../activities/skills/http-fetch.ts';
import { principalOf } from '../auth.ts';
import { HttpProblem } from '../problem.ts';
import type { WebhookStore } from '../webhooks/store.ts';

export interface WebhookRoutesDeps {
  webhooks: WebhookStore;
  /** WEBHOOK_ALLOWED_HOSTS (plus loopback on the embedded platform): URLs must point at one of these hosts; empty = none. */
  webhookAllowedHosts: readonly string[];
}

/** Webhook subscriptions for lifecycle events, and their deliveries (admin role, tenant-scoped). */
export function webhookRoutes(deps: WebhookRoutesDeps): Router {
  const router = Router();

  const checkHost = (url: string | undefined) => {
    if (url === undefined) return;
    const parsed = new URL(url);
    if (!isHostAllowed(parsed, deps.webhookAllowedHosts)) {
      throw new HttpProblem(400, 'Invalid request', `webhooks may not point at ${parsed.host}: it is not in WEBHOOK_ALLOWED_HOSTS`, [
        { path: '/url', message: 'host not allowed' },
      ]);
    }
  };
  const notFound = (id: string) => new HttpProblem(404, 'Not Found', `no webhook "${id}"`);

  handle(router, c.create, async ({ req, body }) => {
    const principal = principalOf(req);
    checkHost(body.url);
    const { subscription, secret } = await deps.webhooks.create({ ...body, tenant: principal.tenant, createdBy: principal.principal });
    req.log?.info({ webhookId: subscription.id, events: subscription.events, host: new URL(subscription.url).host }, 'webhook subscribed');
    return { status: 201, location: `/v1/webhooks/${subscription.id}`, body: { ...subscription, secret } };
  });

  handle(router, c.list, async ({ req }) => ({ status: 200, body: { webhooks: await deps.webhooks.list(principalOf(req).tenant) } }));

  handle(router, c.get, async ({ req, params: { webhookId: id } }) => {
    const subscription = await deps.webhooks.get(principalOf(req).tenant, id);
    if (!subscription) throw notFound(id);
    return { status: 200, body: subscription };
  });

  handle(router, c.update, async ({ req, params: { webhookId: id }, body: patch }) => {
    checkHost(patch.url);
    const subscription = await deps.webhooks.update(principalOf(req).tenant, id, patch);
    if (!subscription) throw notFound(id);
    req.log?.info({ webhookId: id, fields: Object.keys(patch) }, 'webhook changed');
    return { status: 200, body: subscription };
  });

  handle(router, c.rotateSecret, async ({ req, params: { webhookId: id }, body }) => {
    const rotated = await deps.webhooks.rotateSecret(principalOf(req).tenant, id, body.overlapSeconds);
    if (!rotated) throw notFound(id);
    req.log?.info({ webhookId: id, overlapSeconds: body.overlapSeconds }, 'webhook secret rotated');
    return { status: 200, body: { ...rotated.subscription, secret: rotated.secret } };
  });

  handle(router, c.delete, async ({ req, params: { webhookId: id } }) => {
    if (!(await deps.webhooks.delete(principalOf(req).tenant, id))) throw notFound(id);
    req.log?.info({ webhookId: id }, 'webhook deleted');
    return { status: 204 };
  });

  handle(router, c.deliveries, async ({ req, params: { webhookId: id }, query }) => {
    const tenant = principalOf(req).tenant;
    if (!(await deps.webhooks.get(tenant, id))) throw notFound(id);
    const deliveries = await deps.webhooks.deliveries(tenant, id, query);
    const last = deliveries.at(-1);
    return { status: 200, body: { deliveries, ...(deliveries.length === query.limit && last ? { next: last.id } : {}) } };
  });

  handle(router, c.retryDelivery, async ({ req, params: { webhookId: id, deliveryId } }) => {
    const tenant = principalOf(req).tenant;
    if (!/^\d{1,18}$/.test(deliveryId)) throw new HttpProblem(404, 'Not Found', `no delivery "${deliveryId}"`);
    if (!(await deps.webhooks.get(tenant, id))) throw notFound(id);
    const result = await deps.webhooks.retry(tenant, id, deliveryId);
    if (result === undefined) throw new HttpProblem(404, 'Not Found', `no delivery "${deliveryId}" for webhook "${id}"`);
    if (typeof result === 'string') throw new HttpProblem(409, 'Conflict', result, [{ path: '/status', message: 'not dead' }]);
    req.log?.info({ webhookId: id, deliveryId, eventId: result.eventId }, 'webhook delivery re-queued');
    return { status: 202, body: result };
  });

  return router;
}
