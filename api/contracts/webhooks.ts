import { defineRoute, errors, json, problem } from '../contract.ts';
import {
  createWebhookSchema,
  listDeliveriesQuerySchema,
  rotateWebhookSecretSchema,
  updateWebhookSchema,
  webhookDeliveryParamSchema,
  webhookDeliverySchema,
  webhookIdParamSchema,
  webhookSubscriptionSchema,
} from '../webhook-schemas.ts';
import { named, z } from './zod-openapi.ts';

/** Webhook subscriptions for lifecycle events and their deliveries (api/routes/webhooks.ts). */

const CreateWebhook = named('CreateWebhook', createWebhookSchema);
const UpdateWebhook = named('UpdateWebhook', updateWebhookSchema);
const Webhook = named('Webhook', webhookSubscriptionSchema);
const WebhookDelivery = named('WebhookDelivery', webhookDeliverySchema);
const adminOnly = problem('The key lacks the role `admin`');

export const webhookContracts = {
  create: defineRoute({
    method: 'post',
    roles: ['admin'],
    path: '/v1/webhooks',
    summary: 'Subscribe a URL to lifecycle events',
    description:
      'Events are POSTed as CloudEvents 1.0 JSON, signed per Standard Webhooks with the returned `secret` (shown only here), retried with exponential backoff and jitter, then dead-lettered (docs/lifecycle-events.md). Only events recorded after the subscription are delivered. With tracing on, each event carries the run\'s trace in the CloudEvents `traceparent` extension (distributed tracing), and the request is sent inside that trace.',
    tags: ['webhooks'],
    body: { schema: CreateWebhook },
    responses: {
      201: json('Subscribed; `secret` (`whsec_…`) is not shown again', Webhook.extend({ secret: z.string().describe('the signing secret, shown once') })),
      400: problem('Invalid request (`errors` lists every problem with its JSON path), or the URL\'s host is not in WEBHOOK_ALLOWED_HOSTS'),
      401: errors[401],
      403: adminOnly,
    },
  }),
  list: defineRoute({
    method: 'get',
    roles: ['admin'],
    path: '/v1/webhooks',
    summary: 'The tenant\'s webhook subscriptions (without secrets)',
    tags: ['webhooks'],
    responses: { 200: json('Subscriptions, oldest first', z.object({ webhooks: z.array(Webhook) })), 401: errors[401], 403: adminOnly },
  }),
  get: defineRoute({
    method: 'get',
    roles: ['admin'],
    path: '/v1/webhooks/{webhookId}',
    summary: 'One webhook subscription',
    tags: ['webhooks'],
    params: webhookIdParamSchema,
    responses: { 200: json('The subscription', Webhook), 401: errors[401], 403: adminOnly, 404: problem('No such webhook (or another tenant\'s)') },
  }),
  update: defineRoute({
    method: 'patch',
    roles: ['admin'],
    path: '/v1/webhooks/{webhookId}',
    summary: 'Change a webhook subscription: URL, patterns, definition filter, description, enabled',
    tags: ['webhooks'],
    params: webhookIdParamSchema,
    body: { schema: UpdateWebhook },
    responses: { 200: json('The subscription', Webhook), ...errors, 403: adminOnly, 404: problem('No such webhook (or another tenant\'s)') },
  }),
  rotateSecret: defineRoute({
    method: 'post',
    roles: ['admin'],
    path: '/v1/webhooks/{webhookId}/rotate-secret',
    summary: 'Rotate the signing secret: a new one now, the old one still valid during an overlap',
    description:
      'Answers the new `secret` (shown only here). Until `previousSecretExpiresAt` (now + `overlapSeconds`, default 24 h) every delivery carries two signatures in `webhook-signature`, the new secret\'s and the old one\'s, so a receiver verifying with either accepts it: deploy the new secret to the receiver within the overlap. Secrets are stored encrypted (docs/lifecycle-events.md).',
    tags: ['webhooks'],
    params: webhookIdParamSchema,
    body: { schema: named('RotateWebhookSecret', rotateWebhookSecretSchema), required: false, absentAs: {} },
    responses: {
      200: json('Rotated; `secret` is not shown again', Webhook.extend({ secret: z.string().describe('the new signing secret, shown once') })),
      ...errors,
      403: adminOnly,
      404: problem('No such webhook (or another tenant\'s)'),
    },
  }),
  delete: defineRoute({
    method: 'delete',
    roles: ['admin'],
    path: '/v1/webhooks/{webhookId}',
    summary: 'Delete a webhook subscription and its deliveries',
    tags: ['webhooks'],
    params: webhookIdParamSchema,
    responses: { 204: { description: 'Deleted' }, 401: errors[401], 403: adminOnly, 404: problem('No such webhook (or another tenant\'s)') },
  }),
  deliveries: defineRoute({
    method: 'get',
    roles: ['admin'],
    path: '/v1/webhooks/{webhookId}/deliveries',
    summary: 'A subscription\'s deliveries; `status=dead` lists the dead letters',
    description: 'Oldest first. Page with `after` = the `next` of the previous page.',
    tags: ['webhooks'],
    params: webhookIdParamSchema,
    query: listDeliveriesQuerySchema,
    responses: {
      200: json('Deliveries; `next` is set when the page is full', z.object({ deliveries: z.array(WebhookDelivery), next: z.string().optional() })),
      400: errors[400],
      401: errors[401],
      403: adminOnly,
      404: problem('No such webhook (or another tenant\'s)'),
    },
  }),
  retryDelivery: defineRoute({
    method: 'post',
    roles: ['admin'],
    path: '/v1/webhooks/{webhookId}/deliveries/{deliveryId}/retry',
    summary: 'Re-queue a dead delivery with a fresh attempt budget',
    tags: ['webhooks'],
    params: webhookDeliveryParamSchema,
    responses: {
      202: json('Queued: it goes out at once (`status: pending`, `attempts: 0`)', WebhookDelivery),
      401: errors[401],
      403: adminOnly,
      404: problem('No such webhook or delivery'),
      409: problem('The delivery is not dead'),
    },
  }),
};
