import type { Request, Response } from 'express';
import type { RunEventStore, StoredRunEvent } from '../activities/platform/events.ts';
import { approvalsCounted, type ApprovalRecord } from '../interpreter/approvals.ts';
import type { PendingActivity, RunsService, RunView, StepView } from './runs-service.ts';

/**
 * A run's live progress as Server-Sent Events (`GET /v1/runs/{runId}/events` with
 * `Accept: text/event-stream`). The API watches the run for the client: the interpreter's state
 * (each step's status), Temporal's pending activities (retries, which write nothing to the history
 * while they happen), the pending approvals and the stored lifecycle events, and pushes what
 * changed. The client holds one connection instead of polling; the stream ends after the run does.
 *
 * Events (docs/cli.md#the-progress-stream):
 *   run        {runId, status, definition, startedAt, links?}   first, the run as it is
 *   step       {stepId, status, at, elapsedMs?, attempt?, error?, approval?}
 *   lifecycle  a stored lifecycle event (SSE id = its seq, so Last-Event-ID resumes)
 *   end        {runId, status, output?, error?}                  last; the server then closes
 */

export interface RunStreamOptions {
  /** How often the API looks at the run (default 500 ms). */
  pollMs?: number;
  /** Keep-alive comment interval (default 15 s), so proxies keep an idle stream open. */
  heartbeatMs?: number;
}

export type StepProgressStatus = 'started' | 'retrying' | 'waiting' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export interface StepProgress {
  stepId: string;
  status: StepProgressStatus;
  /** When the API saw it. */
  at: string;
  /** From when the API first saw the step running to now (completed/failed), when it saw both. */
  elapsedMs?: number;
  /** A retry inside a loop or for_each iteration: which one (`loop[2]/flaky`). */
  stepPath?: string;
  attempt?: number;
  maximumAttempts?: number;
  error?: { message: string; type?: string };
  continued?: boolean;
  nextAttemptAt?: string;
  approval?: { summary: string; approvers: ApprovalRecord['approvers']; quorum: number; approvals: number; deadline?: string; stage: number };
}

/**
 * The running step a pending activity's retry is reported under. Activity summaries carry the
 * step's path (`twice[1]/flaky`, `each[0]/inner`): a loop body's steps have views of their own, a
 * for_each iteration's steps do not (each iteration keeps its own state), so the retry goes to the
 * innermost step on the path that the run's views show running.
 */
function ownerOf(activity: PendingActivity, running: ReadonlySet<string>): string | undefined {
  const segments = (activity.stepPath ?? activity.stepId ?? '').split('/').map((s) => s.replace(/\[\d+\]$/, ''));
  for (let i = segments.length - 1; i >= 0; i--) if (running.has(segments[i]!)) return segments[i];
  return undefined;
}

/** True when the caller asked for the stream rather than the JSON page. */
export function wantsEventStream(req: Request): boolean {
  return (req.get('accept') ?? '').toLowerCase().includes('text/event-stream');
}

/** The change detector, kept apart from HTTP so it is testable on its own. */
export class ProgressTracker {
  private readonly last = new Map<string, string>();
  private readonly startedAt = new Map<string, number>();
  /** Highest attempt reported per activity: each loop iteration's call is an activity of its own. */
  private readonly attempts = new Map<string, number>();
  private readonly approvals = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Step events for what changed since the last call. */
  next(steps: StepView[] | undefined, pending: PendingActivity[], approvals: ApprovalRecord[] | undefined): StepProgress[] {
    const out: StepProgress[] = [];
    const now = this.now();
    const at = new Date(now).toISOString();
    const waiting = new Map((approvals ?? []).filter((a) => a.status === 'pending').map((a) => [a.stepId, a]));
    const running = new Set((steps ?? []).filter((s) => s.status === 'running').map((s) => s.id));
    for (const step of steps ?? []) {
      if (step.status === 'pending') continue;
      const previous = this.last.get(step.id);
      if (step.status === 'running') {
        if (previous !== 'running') {
          this.startedAt.set(step.id, now);
          out.push({ stepId: step.id, status: 'started', at });
        }
        const approval = waiting.get(step.id);
        const counted = approval ? approvalsCounted(approval) : 0;
        const key = approval ? approval.stage * 1000 + counted : -1;
        if (approval && this.approvals.get(step.id) !== key) {
          this.approvals.set(step.id, key);
          out.push({
            stepId: step.id,
            status: 'waiting',
            at,
            elapsedMs: now - (this.startedAt.get(step.id) ?? now),
            approval: {
              summary: approval.summary,
              approvers: approval.approvers,
              quorum: approval.quorum,
              approvals: counted,
              stage: approval.stage,
              ...(approval.deadline ? { deadline: approval.deadline } : {}),
            },
          });
        }
        for (const activity of pending.filter((p) => p.attempt > 1 && ownerOf(p, running) === step.id)) {
          if ((this.attempts.get(activity.activityId) ?? 1) >= activity.attempt) continue;
          this.attempts.set(activity.activityId, activity.attempt);
          out.push({
            stepId: step.id,
            status: 'retrying',
            at,
            ...(activity.stepPath && activity.stepPath !== step.id ? { stepPath: activity.stepPath } : {}),
            attempt: activity.attempt,
            elapsedMs: now - (this.startedAt.get(step.id) ?? now),
            ...(activity.maximumAttempts ? { maximumAttempts: activity.maximumAttempts } : {}),
            ...(activity.lastFailure ? { error: { message: activity.lastFailure } } : {}),
            ...(activity.nextAttemptAt ? { nextAttemptAt: activity.nextAttemptAt } : {}),
          });
        }
      } else if (previous !== step.status) {
        const started = this.startedAt.get(step.id);
        out.push({
          stepId: step.id,
          status: step.status,
          at,
          ...(started === undefined ? {} : { elapsedMs: now - started }),
          ...(step.error ? { error: { message: step.error.message, ...(step.error.type ? { type: step.error.type } : {}) } } : {}),
          ...(step.error?.attempts ? { attempt: step.error.attempts } : {}),
          ...(step.continued ? { continued: true } : {}),
        });
      }
      this.last.set(step.id, step.status);
    }
    return out;
  }
}

function send(res: Response, event: string, data: unknown, id?: number): void {
  res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

function openEventStream(res: Response): void {
  res.status(200).set({
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
}

/** Sends the run's lifecycle events after `seq`, page by page; returns the last one sent. */
async function sendLifecycleEvents(res: Response, deps: Pick<StreamDeps, 'events' | 'mask'>, tenant: string, runId: string, after: number): Promise<number> {
  let seq = after;
  for (;;) {
    const page = await deps.events.forRun(tenant, runId, { after: seq, limit: 500 });
    for (const { tenant: _t, ...event } of deps.mask ? await Promise.all(page.map((e) => deps.mask!.event(e))) : page) {
      send(res, 'lifecycle', event, event.seq);
      seq = event.seq;
    }
    if (page.length < 500) return seq;
  }
}

function sendEnd(res: Response, runId: string, view: RunView): void {
  send(res, 'end', {
    runId,
    status: view.status,
    ...(view.closedAt ? { closedAt: view.closedAt } : {}),
    ...(view.output === undefined ? {} : { output: view.output }),
    ...(view.error ? { error: view.error } : {}),
  });
}

interface StreamDeps {
  runs: RunsService;
  events: RunEventStore;
  links: (runId: string) => Record<string, string>;
  /** For callers without `sensitive-reader`: the run's views and events with sensitive values masked. */
  mask?: { view(view: RunView): Promise<RunView>; event<E extends StoredRunEvent>(event: E): Promise<E> };
}

/** Serves one run's stream until the run ends or the client goes away. The run is known to be the caller's. */
export async function streamRun(
  req: Request,
  res: Response,
  deps: StreamDeps,
  runId: string,
  tenant: string,
  after: number | undefined,
  options: RunStreamOptions = {},
): Promise<void> {
  const pollMs = options.pollMs ?? 500;
  let closed = false;
  let wake: (() => void) | undefined;
  req.on('close', () => {
    closed = true;
    wake?.();
  });
  openEventStream(res);
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), options.heartbeatMs ?? 15_000);
  const tracker = new ProgressTracker();
  let seq = after ?? Number(req.get('last-event-id') ?? 0);
  if (!Number.isSafeInteger(seq) || seq < 0) seq = 0;
  let first = true;
  try {
    while (!closed) {
      let view: RunView;
      try {
        view = await deps.runs.get(runId, tenant);
        if (deps.mask) view = await deps.mask.view(view);
      } catch (error) {
        send(res, 'error', { message: (error as Error).message });
        break;
      }
      if (first) {
        send(res, 'run', { runId, status: view.status, definition: view.definition, startedAt: view.startedAt, startedBy: view.startedBy, links: deps.links(runId) });
        first = false;
      }
      const pending = view.status === 'running' ? await deps.runs.pendingActivities(runId).catch(() => []) : [];
      for (const progress of tracker.next(view.steps, pending, view.approvals)) send(res, 'step', progress);
      try {
        seq = await sendLifecycleEvents(res, deps, tenant, runId, seq);
      } catch (error) {
        // The headers are sent: a failure is an event, not a problem+json answer. The client reconnects.
        send(res, 'error', { message: `lifecycle events unavailable: ${(error as Error).message}` });
        break;
      }
      if (view.status !== 'running') {
        sendEnd(res, runId, view);
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    clearInterval(heartbeat);
    res.end();
  }
}
