import { z } from 'zod';
import { identifier } from './text-schemas.ts';

/** Request shapes of events and schedules (api/contracts/triggers.ts). */

/**
 * A CloudEvents-shaped event (https://cloudevents.io): `id` + `source` identify it. Extension
 * attributes are kept (CloudEvents allows them) and travel with the event.
 */
export const cloudEventSchema = z.looseObject({
  id: identifier(200),
  type: identifier(200),
  source: identifier(500),
  subject: z.string().max(500).optional(),
  data: z.unknown().optional(),
  correlationId: identifier(200).optional().describe('delivers the event to running runs with this correlation id'),
  time: z.string().optional(),
  specversion: z.string().optional(),
  datacontenttype: z.string().optional(),
  dataschema: z.string().optional(),
});

export const scheduleNoteSchema = z.strictObject({ note: z.string().max(500).optional() });
export const backfillSchema = z.strictObject({
  start: z.iso.datetime({ offset: true }),
  end: z.iso.datetime({ offset: true }),
  overlap: z.enum(['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all']).optional(),
});

