import { defineRoute, errors, json, problem } from '../contract.ts';
import {
  bulkRetryResultSchema,
  bulkRetrySchema,
  laneActionSchema,
  laneParamSchema,
  laneStatusSchema,
  listOperationsQuerySchema,
  operationRecordSchema,
  retryRunSchema,
  retryResultSchema,
} from '../operate-schemas.ts';
import { runIdParamSchema } from '../run-schemas.ts';
import { idempotencyKeySchema } from '../schemas.ts';
import { sloQuerySchema, sloReportSchema } from '../reports-schemas.ts';
import { named, withOpenApi as clone, z } from './zod-openapi.ts';

/** Lanes, retries, the SLO report and the operations audit trail (api/routes/operate.ts). */

const operatorOnly = problem('The key lacks the `operator` (or `admin`) role');
const idempotency = z.object({
  'Idempotency-Key': idempotencyKeySchema.optional().describe('the same key answers the first request’s result again instead of acting twice (200)'),
});
const LaneStatus = named('LaneStatus', laneStatusSchema);
const RetryResult = named('RetryResult', retryResultSchema);

const laneToggle = <A extends 'pause' | 'resume'>(action: A) =>
  defineRoute({
    method: 'post',
    roles: ['operator'],
    path: `/v1/lanes/{lane}/${action}`,
    summary: action === 'pause' ? 'Pause a lane: no new step of it starts; queued work waits, nothing is lost' : 'Resume a paused lane where it stood',
    description:
      action === 'pause'
        ? 'Sets a rate limit of 0 on the lane’s step queues (skills, integrations, models, agents) on the Temporal server, which keeps it across restarts. Runs still start, timers fire and approvals land; each run waits at its next step. Audited; idempotent.'
        : 'Removes the rate limit: queued steps are dispatched again. Audited; idempotent.',
    tags: ['operations'],
    params: laneParamSchema,
    headers: idempotency,
    body: { schema: clone(laneActionSchema), required: false, absentAs: {} },
    responses: { 200: json('The lane after the change', LaneStatus), ...errors, 403: operatorOnly, 404: problem('Not a lane of LANES'), 409: problem('The Idempotency-Key was used for another request, or is still in progress') },
  });
const laneToggles = { pause: laneToggle('pause'), resume: laneToggle('resume') };

export const operateContracts = {
  lanes: defineRoute({
    method: 'get',
    roles: ['operator'],
    path: '/v1/lanes',
    summary: 'Every lane: workers, pollers, backlog, runs in flight, paused',
    tags: ['operations'],
    responses: { 200: json('The lanes', z.object({ lanes: z.array(LaneStatus) })), 401: errors[401], 403: operatorOnly },
  }),
  lane: defineRoute({
    method: 'get',
    roles: ['operator'],
    path: '/v1/lanes/{lane}',
    summary: 'One lane’s status',
    tags: ['operations'],
    params: laneParamSchema,
    responses: { 200: json('The lane', LaneStatus), 401: errors[401], 403: operatorOnly, 404: problem('Not a lane of LANES') },
  }),
  ...laneToggles,
  retryRun: defineRoute({
    method: 'post',
    roles: ['operator'],
    path: '/v1/runs/{runId}/retry',
    summary: 'Retry a failed run: reset to just before its failed step, or re-run it as a new run',
    description:
      '`mode: reset` (default) resets the run to the workflow task that scheduled its failed step: the run keeps its id, so the step’s idempotency key (`<runId>/<stepPath>`) reaches integrations again, and it goes on from there. `mode: rerun` starts a new run of the same version with the same input. Audited; the same Idempotency-Key answers the first result (200).',
    tags: ['runs', 'operations'],
    params: runIdParamSchema,
    headers: idempotency,
    body: { schema: clone(retryRunSchema), required: false, absentAs: {} },
    responses: {
      202: json('Retried', RetryResult),
      200: json('An earlier request with this Idempotency-Key retried it', RetryResult),
      ...errors,
      403: operatorOnly,
      404: problem('No such run'),
      409: problem('The run is not in a state to retry this way, its version is no longer active (rerun), or the Idempotency-Key was used for another request'),
    },
  }),
  bulkRetry: defineRoute({
    method: 'post',
    roles: ['operator'],
    path: '/v1/runs/retry',
    summary: 'Retry the failed runs a filter selects (the dead-letter list); `dryRun` counts them first',
    tags: ['runs', 'operations'],
    headers: idempotency,
    body: { schema: clone(bulkRetrySchema), absentAs: {} },
    responses: {
      200: json('Dry run (or an earlier request with this Idempotency-Key): the matching runs', named('BulkRetryResult', bulkRetryResultSchema)),
      202: json('Retried: `retried` and `failed` list each run', bulkRetryResultSchema),
      ...errors,
      403: operatorOnly,
      409: problem('The Idempotency-Key was used for another request, or is still in progress'),
    },
  }),
  sloReport: defineRoute({
    method: 'get',
    roles: ['operator'],
    path: '/v1/reports/slo',
    summary: 'Seed 003’s daily SLO report: queues, success by definition, model fallback and latency, cron health, each SLO with its verdict',
    description:
      'Computed from what the platform records: lifecycle events (runs of the caller’s tenant; each run’s latest end event in the window), the workers’ attempt and model-request samples, DescribeTaskQueue (depth now) and Temporal schedules. A window with nothing to judge answers `no data`, never a pass. Operator role.',
    tags: ['operations'],
    query: clone(sloQuerySchema),
    responses: { 200: json('The report', named('SloReport', sloReportSchema)), 400: errors[400], 401: errors[401], 403: operatorOnly },
  }),
  operations: defineRoute({
    method: 'get',
    roles: ['operator'],
    path: '/v1/operations',
    summary: 'The operations audit trail: lane pauses and resumes, retries (newest first)',
    tags: ['operations'],
    query: clone(listOperationsQuerySchema),
    responses: { 200: json('Operations', z.object({ operations: z.array(named('Operation', operationRecordSchema)) })), 400: errors[400], 401: errors[401], 403: operatorOnly },
  }),
};
