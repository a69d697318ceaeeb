import { defineRoute, errors, json, problem } from '../contract.ts';
import { RUN_STATUSES } from '../run-views.ts';
import { backfillSchema, cloudEventSchema, scheduleNoteSchema } from '../trigger-schemas.ts';
import { named, z } from './zod-openapi.ts';

/** Events that start and reach runs, and the tenant's schedules (api/routes/triggers.ts). */

const CloudEvent = named('CloudEvent', cloudEventSchema);
const EventResult = named(
  'EventResult',
  z.object({
    event: z.object({ id: z.string(), type: z.string(), source: z.string() }),
    runs: z
      .array(
        z.object({
          definition: z.string(),
          version: z.string().describe('the starting version now (the production alias, else the newest active one; a run found again keeps the version it started with)'),
          runId: z.string(),
          created: z.boolean().describe('false when this event (same source and id) already started the run'),
          status: z.enum(RUN_STATUSES),
        }),
      )
      .describe('one entry per definition whose starting version (the production alias, else the newest active one) has a trigger for this event type that matches'),
    delivered: z
      .array(z.object({ runId: z.string() }))
      .describe('running runs of the tenant with CorrelationId = the event\'s correlationId that were signalled the event (not those it just started)'),
  }),
);
const ScheduleView = named(
  'Schedule',
  z.object({
    scheduleId: z.string().describe('`sched:<tenant>:<definition>:<trigger index>`'),
    definition: z.object({ name: z.string(), version: z.string() }).describe('the version the schedule starts: the production alias, else the newest active one'),
    trigger: z.number().int().describe('index of the trigger in the definition\'s `triggers`'),
    spec: z.object({ cron: z.string().optional(), interval: z.number().int().optional(), timezone: z.string().optional(), jitter: z.number().int().optional() }),
    overlap: z.enum(['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all']),
    catchupWindowSeconds: z.number().int(),
    pauseOnFailure: z.boolean(),
    paused: z.boolean(),
    note: z
      .string()
      .optional()
      .describe('set at creation (`<name>@<version>, trigger <n>`), by pause and resume, or by Temporal after a pause on failure'),
    nextRuns: z.array(z.string()).describe('the next scheduled times (up to 10), also while paused'),
    recentRuns: z
      .array(
        z.object({
          scheduledAt: z.string().describe('the scheduled time, jitter included'),
          startedAt: z.string(),
          runId: z.string().describe('`<definition>-scheduled-<trigger index>-<scheduled time>`'),
          status: z.string().optional().describe('the run\'s Temporal status, lower-case (`running`, `completed`, `failed`, …); absent when it cannot be read'),
        }),
      )
      .describe('the last runs the schedule started (up to 10), oldest first'),
    missedCatchupWindow: z.number().int().describe('scheduled times skipped because they were later than the catch-up window'),
    skippedOverlap: z.number().int().describe('scheduled times skipped by the overlap policy'),
  }),
);
const ScheduleNote = named('ScheduleNote', scheduleNoteSchema);
const Backfill = named('Backfill', backfillSchema);
const scheduleParams = z.object({ scheduleId: z.string().describe('e.g. `sched:acme:nightly-report:0`') });

const scheduleToggle = <A extends string>(action: A, summary: string, defaultNote: string) =>
  defineRoute({
    method: 'post',
    roles: ['submit'],
    path: `/v1/schedules/{scheduleId}/${action}`,
    summary,
    description: `The body is optional. \`note\` (default \`${defaultNote}\`) becomes the schedule's note. Later registrations and status changes update the schedule and keep its paused state, unless they delete it (no active version has the trigger any more).`,
    tags: ['schedules'],
    params: scheduleParams,
    body: { schema: ScheduleNote, required: false, absentAs: {} },
    responses: { 200: json('The schedule', ScheduleView), ...errors, 404: problem('No such schedule (or another tenant\'s)') },
  });
const scheduleToggles = {
  pause: scheduleToggle('pause', 'Pause a schedule: no scheduled run starts until it is resumed', 'paused by <principal>'),
  resume: scheduleToggle('resume', 'Resume a paused schedule', 'resumed by <principal>'),
};

export const triggerContracts = {
  event: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/events',
    summary: 'Receive an event: start the definitions it triggers, deliver it to runs waiting for it',
    description: [
      'Starts a run of every definition of the tenant whose starting version (the `production` alias, else the newest active one) has an `event` trigger (or seed 004 `trigger.signal`) for `type` whose `filter` is true.',
      'The run input is `data`; `signal` in expressions is the whole event. The run id derives from the event `source` and `id` and the definition, so a redelivered event returns the same runs with `created: false`.',
      'The correlation id is `correlationId`, else `id`; the causation id (memo, `CausationId` search attribute, activity logs) is `id`.',
      'With a `correlationId`, the event is also signalled (name = `type`, payload = the whole event) to every running run of the tenant with that correlation id, except those it just started; a run keeps an event with the same source and id only once.',
    ].join(' '),
    tags: ['events'],
    body: { schema: CloudEvent },
    responses: {
      201: json('At least one run was created and started', EventResult),
      202: json('Runs were created, every one deferred by the admission stage (`status: deferred`)', EventResult),
      200: json('No run was created (nothing matched, or a redelivery)', EventResult),
      ...errors,
      409: problem('An event with the same `source` and `id` but other `data` already started a run (`title: "Idempotency key reused"`, with `runId`)'),
    },
  }),
  schedules: defineRoute({
    method: 'get',
    path: '/v1/schedules',
    summary: 'The tenant\'s schedules: one per schedule trigger of each definition\'s newest active version',
    tags: ['schedules'],
    responses: { 200: json('Schedules, by id', z.object({ schedules: z.array(ScheduleView) })), 401: errors[401] },
  }),
  schedule: defineRoute({
    method: 'get',
    path: '/v1/schedules/{scheduleId}',
    summary: 'One schedule: spec, policies, paused state, next and recent runs',
    tags: ['schedules'],
    params: scheduleParams,
    responses: { 200: json('The schedule', ScheduleView), 401: errors[401], 404: problem('No such schedule (or another tenant\'s)') },
  }),
  ...scheduleToggles,
  trigger: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/schedules/{scheduleId}/trigger',
    summary: 'Start one run now, also while paused (overlap policy allow_all for this run)',
    tags: ['schedules'],
    params: scheduleParams,
    responses: {
      202: json('Requested; the run shows in `recentRuns` a moment later', z.object({ scheduleId: z.string(), triggered: z.literal(true) })),
      401: errors[401],
      403: errors[403],
      404: problem('No such schedule (or another tenant\'s)'),
    },
  }),
  backfill: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/schedules/{scheduleId}/backfill',
    summary: 'Start the runs the schedule would have started between `start` and `end`',
    description:
      'For the schedule\'s times in the range, at once, whether or not they ran before, ignoring the catch-up window. `overlap` overrides the schedule\'s overlap policy for these runs (default: the schedule\'s).',
    tags: ['schedules'],
    params: scheduleParams,
    body: { schema: Backfill },
    responses: {
      202: json('Requested', z.object({ scheduleId: z.string(), backfill: z.object({ start: z.string(), end: z.string() }) })),
      ...errors,
      404: problem('No such schedule (or another tenant\'s)'),
    },
  }),
};
