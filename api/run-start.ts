import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { canonicalJson, sha256Hex } from '../common/canonical-json.ts';
import { MEMO_KEYS, PRIORITY_KEYS, workflowTaskQueue } from '../common/constants.ts';
import { currentTraceparent, traceIdOf } from '../common/trace-context.ts';
import type { Principal } from './auth.ts';
import { startFromSpec, type Admission } from './admission.ts';
import type { StartSpec } from './admission-store.ts';
import type { StoredDefinition } from './definitions-store.ts';
import { HttpProblem } from './problem.ts';
import { runInputFor, runSearchAttributes, type RunIdentity, type RunPins } from './run-inputs.ts';
import { runStatusOf, type RunStatus } from './run-views.ts';

/** Starting a run: its workflow id, its start request through the admission stage to Temporal, and the idempotency check. */

export interface StartRunRequest {
  definition: StoredDefinition;
  input: unknown;
  idempotencyKey?: string | undefined;
  /** The version the caller asked for (undefined: latest), which the idempotency check compares. */
  requestedVersion?: string | undefined;
  principal: Principal;
  correlationId: string;
  executionTimeoutSeconds: number;
  /** Child definitions and the approval directory, pinned at start (see RunInput). */
  pins?: RunPins;
  /** The event that caused this run (its id becomes the causation id). */
  trigger?: { event: { id: string; [key: string]: unknown } };
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'run';
}

/**
 * The workflow id of a run. With an idempotency key it is derived from tenant, definition and key,
 * so the same key always lands on the same run; without one it is unique.
 */
export function runIdFor(tenant: string, definitionName: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return `${slug(definitionName)}-${randomUUID()}`;
  return `${slug(definitionName)}-${sha256Hex(`${tenant}\u0000${definitionName}\u0000${idempotencyKey}`).slice(0, 32)}`;
}

export function idempotencyConflict(runId: string): HttpProblem {
  return new HttpProblem(
    409,
    'Idempotency key reused',
    `the idempotency key already started run ${runId} with a different version or input`,
    [{ path: '/idempotencyKey', message: 'already used for a different request' }],
    { runId },
  );
}

/** The memo fields that tie a run to the trace of the request starting it (none outside a trace). */
function traceMemo(): Record<string, string> {
  const traceparent = currentTraceparent();
  const traceId = traceIdOf(traceparent);
  return traceparent && traceId ? { [MEMO_KEYS.traceId]: traceId, [MEMO_KEYS.traceparent]: traceparent } : {};
}

/**
 * Starts a run, or returns the run an earlier request with the same idempotency key started.
 * Reusing a key with a different request is a 409, as with any idempotent API.
 */
export async function startRun(
  client: Client,
  admission: Admission | undefined,
  continueAsNewAfterEvents: number | undefined,
  request: StartRunRequest,
): Promise<{ runId: string; created: boolean; status: RunStatus }> {
  const { definition, principal } = request;
  const runId = runIdFor(principal.tenant, definition.name, request.idempotencyKey);
  // The request as the caller sent it: a retry without a version still matches after a newer
  // version was registered, and gets the run it started before.
  const requestHash = sha256Hex(canonicalJson({ version: request.requestedVersion ?? null, input: request.input ?? null }));
  const requestId = randomUUID();
  const who: RunIdentity = {
    tenant: principal.tenant,
    startedBy: principal.principal,
    correlationId: request.correlationId,
    ...(request.trigger ? { trigger: request.trigger } : {}),
  };
  const args = runInputFor(definition, request.input, who, request.pins, continueAsNewAfterEvents);
  const priority = definition.body.priority;
  const spec: StartSpec = {
    workflowId: runId,
    taskQueue: workflowTaskQueue(definition.lane),
    args: [args],
    executionTimeoutMs: request.executionTimeoutSeconds * 1000,
    staticSummary: `${definition.name}@${definition.version}`,
    staticDetails: `Started by ${principal.principal} (tenant ${principal.tenant}), correlation id ${request.correlationId}`,
    memo: {
      [MEMO_KEYS.requestHash]: requestHash,
      [MEMO_KEYS.correlationId]: request.correlationId,
      [MEMO_KEYS.requestId]: requestId,
      ...(request.trigger ? { [MEMO_KEYS.causationId]: request.trigger.event.id } : {}),
      ...traceMemo(),
    },
    searchAttributes: runSearchAttributes(definition, who),
    ...(priority ? { priorityKey: PRIORITY_KEYS[priority] } : {}),
  };
  if (admission) {
    const verdict = await admission.admit({
      spec,
      keyed: request.idempotencyKey !== undefined,
      lane: definition.lane,
      priorityKey: PRIORITY_KEYS[priority ?? 'normal'],
      tenant: principal.tenant,
      definition: { name: definition.name, version: definition.version },
      startedBy: principal.principal,
      correlationId: request.correlationId,
      requestHash,
      reason: '',
    });
    if (verdict.deferred) {
      if (verdict.existing && verdict.existing.requestHash !== requestHash) throw idempotencyConflict(runId);
      return { runId, created: verdict.created, status: 'deferred' };
    }
  }
  await startFromSpec(client, spec);
  const desc = await client.workflow.getHandle(runId).describe();
  if (desc.memo?.[MEMO_KEYS.requestHash] !== requestHash) throw idempotencyConflict(runId);
  return { runId, created: desc.memo?.[MEMO_KEYS.requestId] === requestId, status: runStatusOf(desc.status.name) };
}
