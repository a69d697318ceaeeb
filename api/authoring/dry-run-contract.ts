// The dry run's request and report: zod schemas (the OpenAPI and the route parse from them) and the types the simulation fills.
import { z } from 'zod';
import type { Directory } from '../../interpreter/approvals.ts';
import type { RunState, StepError } from '../../interpreter/engine.ts';
import type { CaseEstimate } from '../../interpreter/estimate.ts';
import type { OutputContracts } from '../../interpreter/output-shapes.ts';
import { MAX_WAIT_SECONDS } from '../../interpreter/schema.ts';
import type { PinnedDefinition } from '../../workflows/types.ts';
import type { ActivityDefaults } from '../../interpreter/activity-defaults.ts';

const stepKey = z.string().min(1).max(64);
const seconds = z.number().min(0).max(MAX_WAIT_SECONDS);

const mockAttemptSchema = z.union([
  z.strictObject({
    output: z.unknown().describe('what the attempt returns'),
    durationSeconds: seconds.optional().describe('simulated time the attempt takes (past the step timeout it times out)'),
  }),
  z.strictObject({
    error: z.strictObject({
      type: z.string().min(1).max(200).describe('the error type, as an activity reports it (NetworkError, HttpError, ...)'),
      message: z.string().max(2000).optional(),
      nonRetryable: z.boolean().optional().describe('the activity marks it non-retryable (no further attempt)'),
    }),
    durationSeconds: seconds.optional(),
  }),
]);

const decisionScriptSchema = z.strictObject({
  decision: z.enum(['approve', 'reject', 'timeout']).describe('timeout: nobody decides; the step’s timeout policy applies'),
  by: z.string().min(1).max(200).optional().describe('the approver (default: a member of the approver set who did not start the run)'),
  groups: z.array(z.string().min(1).max(200)).max(50).optional().describe('groups the approver’s key vouches for (default: from the API keys)'),
  comment: z.string().max(2000).optional(),
  afterSeconds: seconds.optional().describe('simulated seconds after the approval is requested (default 0)'),
  stage: z.union([z.literal(0), z.literal(1)]).optional().describe('the approver set it is made to: 0 (default), or 1 after an escalation'),
});

export const dryRunRequestSchema = z
  .strictObject({
    definition: z.unknown().optional().describe('an inline definition (not registered); or give name (and version)'),
    name: z.string().min(1).max(100).optional().describe('a registered definition'),
    version: z.string().min(1).max(100).optional().describe('its version (default: the highest active one)'),
    input: z.unknown().optional().describe('the run input'),
    signal: z.unknown().optional().describe('the triggering event (read as `signal`; default: the input)'),
    startedBy: z.string().min(1).max(200).optional().describe('who starts the run (default: the caller); refused as approver unless self-approval is allowed'),
    mocks: z
      .record(stepKey, z.union([mockAttemptSchema, z.array(mockAttemptSchema).min(1).max(100)]))
      .optional()
      .describe('per step id (activity or sub_workflow steps): one answer for every attempt, or a list consumed attempt by attempt (the last repeats)'),
    approvals: z
      .record(stepKey, z.union([decisionScriptSchema, z.array(decisionScriptSchema).min(1).max(50)]))
      .optional()
      .describe('per approval step id: one decision or several (a quorum, a refused one then another), made each time the step is reached (default: approved by its quorum)'),
    events: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(200),
          payload: z.unknown().optional(),
          afterSeconds: seconds.optional().describe('simulated seconds after the run starts (default 0)'),
        }),
      )
      .max(1000)
      .optional()
      .describe('events (signals) delivered to the run'),
  })
  .refine((r) => (r.definition === undefined) !== (r.name === undefined), {
    message: 'give either "definition" (inline) or "name" (a registered definition), not both',
    path: ['definition'],
  })
  .refine((r) => r.version === undefined || r.name !== undefined, { message: '"version" needs "name"', path: ['version'] });

const stepErrorSchema = z.object({ message: z.string(), type: z.string(), attempts: z.number().optional(), step: z.string().optional() });

/** The answer (documented in the OpenAPI; DryRunReport below is its type). */
export const dryRunReportSchema = z.object({
  definition: z.object({ name: z.string(), version: z.string(), source: z.enum(['inline', 'registered']) }),
  status: z.enum(['completed', 'failed', 'blocked', 'aborted']).describe('blocked: the run waits for something nothing scripted (see `blocked`); aborted: the simulation hit its own limits'),
  output: z.unknown().optional().describe('the run output, when completed'),
  error: stepErrorSchema.optional().describe('why the run failed: the failing step’s error, with `step`'),
  blocked: z.object({ waitingFor: z.array(z.string()) }).optional(),
  path: z.array(z.object({ run: z.string(), step: z.string(), type: z.string(), atSeconds: z.number() })).describe('every step start in order (`run` is "" for the run, a child run’s step path otherwise)'),
  steps: z.array(z.record(z.string(), z.unknown())).describe('every step: id, type, status (or "not reached"), callee, input, output, error, branch, iterations, items, attempts, source (mock, generated, simulated)'),
  calls: z
    .array(
      z.object({
        stepId: z.string(),
        stepPath: z.string(),
        kind: z.enum(['activity', 'sub_workflow']),
        callee: z.string(),
        input: z.unknown(),
        output: z.unknown().optional(),
        error: stepErrorSchema.optional(),
        attempts: z.number(),
        source: z.enum(['mock', 'generated', 'simulated']),
        run: z.string(),
        startedAtSeconds: z.number(),
        endedAtSeconds: z.number().optional(),
      }),
    )
    .describe('every activity and child-run call, with its simulated attempts'),
  approvals: z.array(z.record(z.string(), z.unknown())).describe('each approval reached: status, decisions accepted, attempts refused (code, reason)'),
  events: z.object({ delivered: z.array(z.object({ name: z.string(), atSeconds: z.number() })), undelivered: z.array(z.object({ name: z.string() })) }),
  rollback: z.unknown().optional(),
  simulatedSeconds: z.number().describe('simulated time from start to end'),
  predicted: z.object({
    events: z.number().describe('history events of this path (interpreter/estimate.ts over the branches, iterations, items and decisions taken)'),
    eventsPerRun: z.number(),
    runs: z.number().describe('runs after continue-as-new'),
    payloadBytes: z.number().describe('bytes of every payload written: the run input and output, each call’s input and output'),
    largestPayloadBytes: z.number(),
    estimate: z.record(z.string(), z.unknown()).describe('the estimator’s case for this path'),
  }),
  warnings: z.array(z.string()),
});

export type DryRunRequest = z.infer<typeof dryRunRequestSchema>;
export type MockAttempt = z.infer<typeof mockAttemptSchema>;
export type DecisionScript = z.infer<typeof decisionScriptSchema>;

/** What the dry run knows about the installation (all of it read before the simulation starts). */
export interface DryRunEnvironment {
  tenant: string;
  startedBy: string;
  /** Registered output schemas by `<family>:<name>`, for generated outputs. */
  outputs?: OutputContracts;
  activityDefaults?: Record<string, ActivityDefaults>;
  /** Group members, from the API keys (approvals by a group member). */
  directory: Directory;
  /** The definitions its sub_workflow steps start, transitively, by `name@version`. */
  subDefinitions: Record<string, PinnedDefinition>;
  continueAsNewAfterEvents?: number;
  /** Caps on the simulation itself. */
  maxAttempts?: number;
  maxWallMs?: number;
}

export interface CallRecord {
  stepId: string;
  stepPath: string;
  kind: 'activity' | 'sub_workflow';
  /** `skill http-fetch`, `sub_workflow child@1.0.0`, ... */
  callee: string;
  input: unknown;
  output?: unknown;
  error?: StepError;
  attempts: number;
  /** Where the answer came from. */
  source: 'mock' | 'generated' | 'simulated';
  /** The run (or child run path) the call belongs to. */
  run: string;
  startedAtSeconds: number;
  endedAtSeconds?: number;
}

export interface PathEntry {
  run: string;
  step: string;
  type: string;
  atSeconds: number;
}

export interface DryRunReport {
  definition: { name: string; version: string; source: 'inline' | 'registered' };
  status: 'completed' | 'failed' | 'blocked' | 'aborted';
  output?: unknown;
  error?: StepError & { message: string };
  /** Why the run could not go on: what it was waiting for when nothing else was scheduled. */
  blocked?: { waitingFor: string[] };
  /** Steps in the order they started (top-level run `""`, a child run by its step path). */
  path: PathEntry[];
  /** Every step of the definition: what it did (its last state, for steps repeated in loops). */
  steps: Array<Record<string, unknown>>;
  calls: CallRecord[];
  approvals: Array<Record<string, unknown>>;
  events: { delivered: Array<{ name: string; atSeconds: number }>; undelivered: Array<{ name: string }> };
  rollback?: RunState['rollback'];
  simulatedSeconds: number;
  predicted: {
    /** History events of this path (estimate.ts over the branches, iterations, items and decisions taken). */
    events: number;
    eventsPerRun: number;
    runs: number;
    /** Bytes of every payload the run writes: its input and output, each call's input and output, events. */
    payloadBytes: number;
    largestPayloadBytes: number;
    estimate: CaseEstimate;
  };
  warnings: string[];
}
