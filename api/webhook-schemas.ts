import { z } from 'zod';
import { eventPatternProblem } from '../activities/platform/event-patterns.ts';
import { LIFECYCLE_EVENT_TYPES } from '../workflows/types.ts';
import { identifier } from './text-schemas.ts';

/** Lifecycle events and webhook subscriptions (docs/lifecycle-events.md). */
const eventPatternSchema = z
  .string()
  .min(1)
  .max(100)
  .superRefine((pattern, ctx) => {
    const problem = eventPatternProblem(pattern);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe(`an event type (${LIFECYCLE_EVENT_TYPES.join(', ')}), a prefix pattern such as \`workflow.step.*\` or \`workflow.*\`, or \`*\``);

const webhookUrlSchema = z
  .string()
  .max(2000)
  .superRefine((text, ctx) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not an absolute URL' });
      return;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: 'must be http: or https:' });
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials; verify the signature instead' });
  })
  .meta({ format: 'uri' })
  .describe('where events are POSTed; its host must be in WEBHOOK_ALLOWED_HOSTS');

export const createWebhookSchema = z.strictObject({
  url: webhookUrlSchema,
  events: z.array(eventPatternSchema).min(1).max(20).default(['workflow.*']).describe('default `["workflow.*"]`: every lifecycle event'),
  definitions: z.array(identifier(200)).min(1).max(100).optional().describe('only events of runs of these definitions (names); default every definition'),
  description: z.string().max(500).optional(),
  enabled: z.boolean().optional().describe('default true'),
});

export const updateWebhookSchema = z
  .strictObject({
    url: webhookUrlSchema.optional(),
    events: z.array(eventPatternSchema).min(1).max(20).optional(),
    definitions: z.array(identifier(200)).min(1).max(100).nullable().optional().describe('null: every definition'),
    description: z.string().max(500).nullable().optional(),
    enabled: z.boolean().optional().describe('true re-enables a subscription its receiver disabled with 410 Gone; its waiting deliveries then go out'),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'give at least one field to change');

export const webhookSubscriptionSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  definitions: z.array(z.string()).optional(),
  enabled: z.boolean(),
  disabledReason: z.string().optional().describe('why the subscription is disabled (410 Gone from the receiver, or the API)'),
  description: z.string().optional(),
  createdBy: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  secretRotatedAt: z.string().optional().describe('when the signing secret was last rotated'),
  previousSecretExpiresAt: z.string().optional().describe('during a rotation\'s overlap: until when deliveries are also signed with the previous secret'),
});

export const rotateWebhookSecretSchema = z.strictObject({
  overlapSeconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3600)
    .default(86_400)
    .describe('how long the previous secret keeps signing deliveries next to the new one (default 86400 = 24 h, at most 7 days; 0 = it stops at once)'),
});

export const webhookDeliverySchema = z.object({
  id: z.string(),
  subscriptionId: z.string(),
  eventId: z.string().describe('also the `webhook-id` header and the CloudEvent `id`'),
  eventType: z.string(),
  runId: z.string(),
  seq: z.number().int(),
  status: z.enum(['pending', 'delivering', 'delivered', 'dead']),
  attempts: z.number().int(),
  nextAttemptAt: z.string().optional(),
  lastStatus: z.number().int().optional().describe('HTTP status of the last attempt'),
  lastError: z.string().optional(),
  deliveredAt: z.string().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const webhookIdParamSchema = z.object({ webhookId: z.string() });
export const webhookDeliveryParamSchema = z.object({ webhookId: z.string(), deliveryId: z.string() });

export const listDeliveriesQuerySchema = z.strictObject({
  status: z.enum(['pending', 'delivering', 'delivered', 'dead']).optional().describe('`dead`: the dead letters'),
  after: z.string().regex(/^\d{1,18}$/, 'a delivery id').optional().describe('the `next` of the previous page'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

