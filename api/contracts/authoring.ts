import { defineRoute, errors, json, problem } from '../contract.ts';
import { dryRunReportSchema, dryRunRequestSchema } from '../authoring/dry-run-contract.ts';
import { promotionRequestSchema } from '../authoring/promotion-gate.ts';
import { runIdParamSchema } from '../run-schemas.ts';
import { nameParamSchema } from '../schemas.ts';
import { Graph } from './definitions.ts';
import { named, z } from './zod-openapi.ts';

/** Authoring aids over registered definitions and runs: the promotion gate, dry runs, a run's diagram (api/routes/authoring.ts). */

const PromotionDecision = named(
  'PromotionDecision',
  z.object({
    id: z.string(),
    name: z.string(),
    action: z.enum(['promoted', 'kept_experimental', 'rolled_back']),
    candidate: z.string().nullable(),
    previous: z.string().nullable().describe('production before the decision'),
    production: z.string().nullable().describe('production after it'),
    principal: z.string(),
    at: z.string(),
    report: z.record(z.string(), z.unknown()).describe('the verdict, the battery, each version’s measures and runs'),
  }),
);
const criterion = z.object({ name: z.enum(['reliability', 'latency', 'quality', 'cost', 'rollback']), pass: z.boolean(), judged: z.boolean(), detail: z.string() });
const measures = z.object({
  runs: z.number(),
  completed: z.number(),
  completionRate: z.number(),
  p50Ms: z.number().nullable(),
  p95Ms: z.number().nullable(),
  tokensPerRun: z.number(),
  quality: z.number().nullable(),
});
const side = z.object({ version: z.string(), measures, runs: z.array(z.record(z.string(), z.unknown())) });
const rollbackRequestSchema = z.strictObject({ reason: z.string().max(2000).optional() });

export const authoringContracts = {
  promote: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/definitions/{name}/promotions',
    summary: 'The promotion gate (seed 003 §5): run candidate and production on a battery, promote or keep experimental',
    description:
      'Runs the candidate version and the current production version (the `production` alias) on every battery input as real runs, one task after another and side by side; measures completion rate, p50/p95 latency, model tokens per run and, with `judge`, the mean score of the judge step; applies seed 003 §5 (no completion regression; ≥ 20% faster or parity within 5% with a ≥ 15% judged quality gain; ≥ 15% quality gain where judged; within `budget`) and moves the alias to the candidate, or keeps it experimental with the reasons. Every decision is recorded (GET …/promotions). Runs started without a version use the production alias. Synchronous: answers when every battery run has ended. See docs/authoring.md.',
    tags: ['definitions'],
    params: nameParamSchema,
    body: { schema: named('PromotionRequest', promotionRequestSchema) },
    responses: {
      200: json('The decision (promoted or kept experimental), the verdict per criterion, both versions’ measures and runs', z.object({ decision: PromotionDecision, verdict: z.object({ promote: z.boolean(), criteria: z.array(criterion), reasons: z.array(z.string()) }), candidate: side, production: side.optional() })),
      ...errors,
      404: problem('No such definition or candidate version'),
      409: problem('The candidate is not active, or already production'),
    },
  }),
  rollback: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/definitions/{name}/promotions/rollback',
    summary: 'Move production back to the version the last promotion replaced, in one call (audited)',
    tags: ['definitions'],
    params: nameParamSchema,
    body: { schema: rollbackRequestSchema, required: false, absentAs: {} },
    responses: { 200: json('The rollback decision', PromotionDecision), ...errors, 409: problem('Nothing is in production') },
  }),
  promotions: defineRoute({
    method: 'get',
    path: '/v1/definitions/{name}/promotions',
    summary: 'The production version and every promotion decision, newest first (the audit trail)',
    tags: ['definitions'],
    params: nameParamSchema,
    responses: { 200: json('Production and decisions', z.object({ name: z.string(), production: z.string().nullable(), decisions: z.array(PromotionDecision) })), 401: errors[401], 404: problem('No such definition') },
  }),
  dryRun: defineRoute({
    method: 'post',
    roles: ['submit'],
    path: '/v1/definitions/dry-run',
    summary: 'Dry-run a definition: the real interpreter with every effect mocked, in simulated time',
    description:
      'Runs a registered version (`name`, optional `version`: default the version runs without one start, the `production` alias or else the highest active one) or an inline `definition` through the interpreter the workers run, with activities and child runs answered from `mocks` (or a sample of the callee\'s registered output schema), Temporal\'s retry policy applied attempt by attempt, approvals decided as `approvals` scripts them (default: approved by their quorum), timers and deadlines passing in simulated time and `events` delivered at simulated times. Nothing real is touched: no Temporal run, no activity, no HTTP call. Answers the path taken, each step\'s input and output, each call, the approvals with refused attempts, the final output or failure (`blocked` when the run waits for something nothing scripted) and the predicted history events and payload bytes of that path. See docs/authoring.md.',
    tags: ['definitions'],
    body: { schema: named('DryRunRequest', dryRunRequestSchema) },
    responses: {
      200: json('The dry run’s report', named('DryRunReport', dryRunReportSchema)),
      ...errors,
      404: problem('No such registered definition or version'),
      422: problem('The registered version no longer validates against the current catalog'),
    },
  }),
  runGraph: defineRoute({
    method: 'get',
    path: '/v1/runs/{runId}/graph',
    summary: 'The run’s definition as a Mermaid flowchart, each step coloured by its status',
    tags: ['runs'],
    params: runIdParamSchema,
    responses: {
      200: json('The diagram with a class per step status (completed, failed, running, skipped, cancelled)', Graph.extend({ runId: z.string(), status: z.string(), steps: z.record(z.string(), z.string()) })),
      401: errors[401],
      404: problem('No such run'),
    },
  }),
};
