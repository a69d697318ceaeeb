import { CancellationScope, condition, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { platformTaskQueue } from '../common/constants.ts';
import type { LifecycleEvent, LifecycleEventType, RunEventsBatch } from '../common/contracts/run-events.ts';
import type { AuditEntry } from '../interpreter/approvals.ts';
import type { RunInput } from './types.ts';

/**
 * The run's records, written by the platform activities outside cancellation and in the order
 * they happened: the approval audit outbox (both workflows) and the lifecycle events (interpreter
 * runs that record them). Every write is bounded; a write that fails for good is dropped here, and
 * what it carried stays in the history and the run's state.
 */

interface PlatformActivities {
  recordAudit(entries: AuditEntry[]): Promise<void>;
  recordRunEvents(batch: RunEventsBatch): Promise<void>;
}

/** Records are written in batches of at most this many. */
const BATCH = 50;
/** An unwritten lifecycle event older than this (workflow time) is written at the next step boundary. */
export const LIFECYCLE_MAX_DELAY_MS = 2000;

/** The platform activities of a lane; with lifecycle events, a write is shorter and bounded overall. */
function platformActivities(lane: string, recordEvents: boolean) {
  return proxyActivities<PlatformActivities>({
    taskQueue: platformTaskQueue(lane),
    // One small transaction: a write lost with a stopped worker is retried after 10 s, not 30.
    startToCloseTimeout: recordEvents ? 10_000 : 30_000,
    // Bounded however it fails (no platform worker, database down): a run never hangs on its records.
    ...(recordEvents ? { scheduleToCloseTimeout: 300_000 } : {}),
    retry: { maximumAttempts: 10, initialInterval: 1000, maximumInterval: 60_000, backoffCoefficient: 2 },
    summary: recordEvents ? 'lifecycle events and audit trail' : 'approval audit trail',
  });
}

/**
 * Writes the outbox in batches, each taken out written or not (retries are bounded): until it is
 * empty, or with `finishing`, for as long as the run lasts (waiting for entries) and then until
 * it is empty.
 */
async function writeAudit(platform: PlatformActivities, audit: AuditEntry[], finishing?: () => boolean): Promise<void> {
  for (;;) {
    if (finishing) await condition(() => audit.length > 0 || finishing());
    if (audit.length === 0) return;
    const batch = audit.slice(0, BATCH);
    try {
      await platform.recordAudit(batch);
    } catch {
      // Retries are bounded; the decisions stay in this history and in the run's state.
    }
    audit.splice(0, batch.length);
  }
}

/** The agent workflow's outbox: written when the workflow says so (after a decision, at its end). */
export function auditFlusher(lane: string, audit: AuditEntry[]): () => Promise<void> {
  const platform = platformActivities(lane, false);
  return () => CancellationScope.nonCancellable(() => writeAudit(platform, audit));
}

export interface RunRecorder {
  /** Queues a lifecycle event (runs that record them); `urgent` when someone may be waiting on it. */
  emit(type: LifecycleEventType, data: Record<string, unknown>, urgent?: boolean): void;
  /** The run is about to wait on something slow: write what is queued meanwhile. */
  flushSoon(): void;
  /** Writes everything queued and stops the writers (the run's end). */
  drain(): Promise<void>;
  /** The same in the caller's own awaits (before continue-as-new): stop, then await both writers. */
  finish(): void;
  readonly writers: readonly [Promise<void>, Promise<void>];
  /** After drain: what is left for the next run of a continue-as-new. */
  carried(): Pick<NonNullable<RunInput['resume']>, 'audit' | 'lifecycle' | 'lifecycleSeq'>;
}

/**
 * The interpreter's recorder (seed 004 §6). Lifecycle events are numbered per run and written by
 * the same platform activity as the audit entries, in batches: a batch goes out when someone may
 * be waiting on it (an approval, the run's end, a long wait), when it is full, or when its oldest
 * event is a couple of seconds old; a run of fast steps thus adds one write, not one per step.
 * Runs started before this existed (no `recordEvents`) write only the audit trail, so their
 * histories replay unchanged.
 */
export function runRecorder(args: RunInput, audit: AuditEntry[], nowIso: () => string): RunRecorder {
  const platform = platformActivities(args.lane, args.recordEvents === true);
  let finishing = false;
  // Runs that record lifecycle events write audit entries with them (eventsWriter below).
  const auditWriter = args.recordEvents ? Promise.resolve() : CancellationScope.nonCancellable(() => writeAudit(platform, audit, () => finishing));
  const lifecycle: LifecycleEvent[] = [...(args.resume?.lifecycle ?? [])];
  let lifecycleSeq = args.resume?.lifecycleSeq ?? 0;
  let flushRequested = false;
  const eventsWriter = args.recordEvents
    ? CancellationScope.nonCancellable(async () => {
        for (;;) {
          await condition(() => ((flushRequested || audit.length > 0) && (lifecycle.length > 0 || audit.length > 0)) || finishing);
          if (lifecycle.length === 0 && audit.length === 0) return;
          flushRequested = false;
          const batch: RunEventsBatch = { events: lifecycle.slice(0, BATCH), audit: audit.slice(0, BATCH) };
          try {
            await platform.recordRunEvents(batch);
          } catch {
            // Retries are bounded; the events stay in this history and in the run's state.
          }
          lifecycle.splice(0, batch.events.length);
          audit.splice(0, batch.audit.length);
          if (lifecycle.length > 0 || audit.length > 0) flushRequested = true;
        }
      })
    : Promise.resolve();
  return {
    emit(type, data, urgent = false) {
      if (!args.recordEvents) return;
      lifecycleSeq += 1;
      const { workflowId } = workflowInfo();
      const event: LifecycleEvent = {
        id: `${workflowId}/event/${lifecycleSeq}`,
        type,
        runId: workflowId,
        seq: lifecycleSeq,
        tenant: args.tenant,
        definition: args.definition.name,
        version: args.definition.version,
        correlationId: args.correlationId,
        ...(args.causationId ? { causationId: args.causationId } : {}),
        time: nowIso(),
        data,
      };
      lifecycle.push(event);
      // eslint-disable-next-line no-restricted-properties -- workflow time: deterministic inside workflows
      if (urgent || lifecycle.length >= BATCH || Date.now() - Date.parse((lifecycle[0] as LifecycleEvent).time) >= LIFECYCLE_MAX_DELAY_MS) {
        flushRequested = true;
      }
    },
    flushSoon() {
      if (lifecycle.length > 0 || (args.recordEvents && audit.length > 0)) flushRequested = true;
    },
    async drain() {
      finishing = true;
      await auditWriter;
      await eventsWriter;
    },
    finish() {
      finishing = true;
    },
    writers: [auditWriter, eventsWriter],
    carried: () => ({ audit: audit.splice(0), ...(args.recordEvents ? { lifecycle: lifecycle.splice(0), lifecycleSeq } : {}) }),
  };
}
