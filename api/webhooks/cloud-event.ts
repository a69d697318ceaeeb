import { Webhook } from 'standardwebhooks';
import type { LifecycleEvent } from '../../workflows/types.ts';

/**
 * A lifecycle event as a CloudEvents 1.0 structured-mode JSON body, with the platform's context in
 * extension attributes (lower-case alphanumerics, as the spec requires).
 */
export interface LifecycleCloudEvent {
  specversion: '1.0';
  id: string;
  type: string;
  source: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  correlationid: string;
  causationid?: string;
  tenant: string;
  definition: string;
  version: string;
  seq: number;
  /** CloudEvents distributed-tracing extension: the trace context the event was recorded in. */
  traceparent?: string;
  data: Record<string, unknown>;
}

/**
 * The CloudEvent for a stored lifecycle event; `subject` is the step path for step and approval
 * events; `traceparent` (the distributed-tracing extension) the run's trace where it was recorded.
 */
export function toCloudEvent(event: LifecycleEvent, traceparent?: string): LifecycleCloudEvent {
  const stepPath = event.data.stepPath ?? event.data.stepId;
  const cloudEvent: LifecycleCloudEvent = {
    specversion: '1.0',
    id: event.id,
    type: event.type,
    source: `/v1/runs/${encodeURIComponent(event.runId)}`,
    subject: typeof stepPath === 'string' && stepPath.length > 0 ? stepPath : event.runId,
    time: event.time,
    datacontenttype: 'application/json',
    correlationid: event.correlationId,
    tenant: event.tenant,
    definition: event.definition,
    version: event.version,
    seq: event.seq,
    data: event.data,
  };
  if (event.causationId) cloudEvent.causationid = event.causationId;
  if (traceparent) cloudEvent.traceparent = traceparent;
  return cloudEvent;
}

/**
 * The body and headers of one delivery, signed per Standard Webhooks: `webhook-id` is the event id
 * (the same on every attempt, so receivers dedupe by it), `webhook-timestamp` the attempt's time in
 * seconds, `webhook-signature` `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per
 * secret, space-separated (during a rotation's overlap: the new secret's first, then the old one's;
 * a receiver holding either verifies).
 */
export function signedDelivery(
  secrets: string | readonly string[],
  event: LifecycleEvent,
  at: Date = new Date(),
  traceparent?: string,
): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(toCloudEvent(event, traceparent));
  const timestamp = new Date(Math.floor(at.getTime() / 1000) * 1000);
  const all = typeof secrets === 'string' ? [secrets] : secrets;
  return {
    body,
    headers: {
      'content-type': 'application/cloudevents+json; charset=utf-8',
      'webhook-id': event.id,
      'webhook-timestamp': String(timestamp.getTime() / 1000),
      'webhook-signature': all.map((secret) => new Webhook(secret).sign(event.id, timestamp, body)).join(' '),
    },
  };
}
