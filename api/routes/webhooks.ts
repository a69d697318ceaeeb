import { Router } from 'express';
import { isHostAllowed } from '../../activities/skills/http-fetch.ts';
import { principalOf, requireRole } from '../auth.ts';
import { parseOr400 } from '../http.ts';
import { HttpProblem } from '../problem.ts';
import { createWebhookSchema, listDeliveriesQuerySchema, rotateWebhookSecretSchema, updateWebhookSchema } from '../schemas.ts';
import type { WebhookStore } from '../webhooks/store.ts';

export interface WebhookRoutesDeps {
  webhooks: WebhookStore;
  /** WEBHOOK_ALLOWED_HOSTS (plus loopback on the embedded platform): URLs must point at one of these hosts; empty = none. */
  webhookAllowedHosts: readonly string[];
}

/** Webhook subscriptions for lifecycle events, and their deliveries (admin role, tenant-scoped). */
export function webhookRoutes(deps: WebhookRoutesDeps): Router {
  const router = Router();
  const admin = requireRole('admin');

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

  router.post('/v1/webhooks', admin, async (req, res) => {
    const principal = principalOf(req);
    const body = parseOr400(createWebhookSchema, req.body);
    checkHost(body.url);
    const { subscription, secret } = await deps.webhooks.create({ ...body, tenant: principal.tenant, createdBy: principal.principal });
    req.log?.info({ webhookId: subscription.id, events: subscription.events, host: new URL(subscription.url).host }, 'webhook subscribed');
    res.status(201).location(`/v1/webhooks/${subscription.id}`).json({ ...subscription, secret });
  });

  router.get('/v1/webhooks', admin, async (req, res) => {
    res.json({ webhooks: await deps.webhooks.list(principalOf(req).tenant) });
  });

  router.get('/v1/webhooks/:webhookId', admin, async (req, res) => {
    const id = String(req.params.webhookId);
    const subscription = await deps.webhooks.get(principalOf(req).tenant, id);
    if (!subscription) throw notFound(id);
    res.json(subscription);
  });

  router.patch('/v1/webhooks/:webhookId', admin, async (req, res) => {
    const id = String(req.params.webhookId);
    const patch = parseOr400(updateWebhookSchema, req.body);
    checkHost(patch.url);
    const subscription = await deps.webhooks.update(principalOf(req).tenant, id, patch);
    if (!subscription) throw notFound(id);
    req.log?.info({ webhookId: id, fields: Object.keys(patch) }, 'webhook changed');
    res.json(subscription);
  });

  router.post('/v1/webhooks/:webhookId/rotate-secret', admin, async (req, res) => {
    const id = String(req.params.webhookId);
    const body = parseOr400(rotateWebhookSecretSchema, req.body ?? {});
    const rotated = await deps.webhooks.rotateSecret(principalOf(req).tenant, id, body.overlapSeconds);
    if (!rotated) throw notFound(id);
    req.log?.info({ webhookId: id, overlapSeconds: body.overlapSeconds }, 'webhook secret rotated');
    res.json({ ...rotated.subscription, secret: rotated.secret });
  });

  router.delete('/v1/webhooks/:webhookId', admin, async (req, res) => {
    const id = String(req.params.webhookId);
    if (!(await deps.webhooks.delete(principalOf(req).tenant, id))) throw notFound(id);
    req.log?.info({ webhookId: id }, 'webhook deleted');
    res.status(204).end();
  });

  router.get('/v1/webhooks/:webhookId/deliveries', admin, async (req, res) => {
    const tenant = principalOf(req).tenant;
    const id = String(req.params.webhookId);
    const query = parseOr400(listDeliveriesQuerySchema, req.query, 'query');
    if (!(await deps.webhooks.get(tenant, id))) throw notFound(id);
    const deliveries = await deps.webhooks.deliveries(tenant, id, query);
    const last = deliveries.at(-1);
    res.json({ deliveries, ...(deliveries.length === query.limit && last ? { next: last.id } : {}) });
  });

  router.post('/v1/webhooks/:webhookId/deliveries/:deliveryId/retry', admin, async (req, res) => {
    const tenant = principalOf(req).tenant;
    const id = String(req.params.webhookId);
    const deliveryId = String(req.params.deliveryId);
    if (!/^\d{1,18}$/.test(deliveryId)) throw new HttpProblem(404, 'Not Found', `no delivery "${deliveryId}"`);
    if (!(await deps.webhooks.get(tenant, id))) throw notFound(id);
    const result = await deps.webhooks.retry(tenant, id, deliveryId);
    if (result === undefined) throw new HttpProblem(404, 'Not Found', `no delivery "${deliveryId}" for webhook "${id}"`);
    if (typeof result === 'string') throw new HttpProblem(409, 'Conflict', result, [{ path: '/status', message: 'not dead' }]);
    req.log?.info({ webhookId: id, deliveryId, eventId: result.eventId }, 'webhook delivery re-queued');
    res.status(202).json(result);
  });

  return router;
}
