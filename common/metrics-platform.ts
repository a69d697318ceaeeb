import { instruments } from './metrics.ts';

/**
 * The platform's own series (issue 13, seed 003 §6), recorded where the platform already sees
 * what happens: the lifecycle outbox activity (`recordRunEvents`: runs, steps, approvals), the
 * activity interceptor (step attempts and queue wait), the API (backlog, pending approvals,
 * schedules), the admission stage and the webhook dispatcher. Workflow code records nothing (it
 * cannot do I/O). Names are Prometheus names already (counters gain `_total`); docs/OPERATIONS.md
 * lists each with a PromQL example and deploy/prometheus/alerts.yml uses them.
 *
 * Label cardinality is bounded: no run, step or schedule-run ids; lanes and kinds are fixed
 * lists; `definition` and `tenant` pass through `bounded()`, which keeps the first
 * METRIC_LABEL_LIMIT distinct values per label and process and reports the rest as `_other`.
 */

/** How many distinct values of one open-ended label (definition, tenant, schedule) a process reports. */
export const METRIC_LABEL_LIMIT = 200;
export const OTHER_LABEL = '_other';

const seen = new Map<string, Set<string>>();

/** `value`, or `_other` once METRIC_LABEL_LIMIT other values of `label` have been reported. */
export function bounded(label: string, value: string | undefined): string {
  const v = value && value.length > 0 ? value.slice(0, 120) : 'unknown';
  let values = seen.get(label);
  if (!values) seen.set(label, (values = new Set()));
  if (values.has(v)) return v;
  if (values.size >= METRIC_LABEL_LIMIT) return OTHER_LABEL;
  values.add(v);
  return v;
}

/** Seconds buckets for queue waits and start latency: the SLOs' 10 s and 30 s are bucket edges. */
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 900];
const DURATION_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const DECISION_BUCKETS = [1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600];

/** Recorded in the worker that runs `recordRunEvents` (the lane's platform queue), once per stored event. */
export const runMetrics = instruments((m) => ({
  /** {definition, lane, tenant} */
  started: m.createCounter('workflow_runs_started', { description: 'Runs started (lifecycle event workflow.run.started)' }),
  completed: m.createCounter('workflow_runs_completed', { description: 'Runs completed' }),
  failed: m.createCounter('workflow_runs_failed', { description: 'Runs failed' }),
  cancelled: m.createCounter('workflow_runs_cancelled', { description: 'Runs cancelled' }),
  /** {lane, kind, status}: every step that does work (lifecycle events step.completed / step.failed). */
  steps: m.createCounter('workflow_steps', { description: 'Steps finished, by step kind and status' }),
  /** {lane, decision, timed_out}: from the approval's (latest) request to its decision. */
  approvalsDecided: m.createHistogram('workflow_approval_decision_seconds', {
    unit: 's',
    description: 'From an approval being requested to its decision, by lane and decision',
    advice: { explicitBucketBoundaries: DECISION_BUCKETS },
  }),
}));

/** Recorded by the activity interceptor in every worker: one observation per activity attempt. */
export const stepMetrics = instruments((m) => ({
  /** {lane, kind, activity, outcome}: the attempt's own duration (start to end on the worker). */
  duration: m.createHistogram('workflow_step_duration_seconds', {
    unit: 's',
    description: 'Duration of one activity attempt (skill, integration, model, agent, platform), by kind and outcome',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  }),
  /** {lane, task_queue, kind, priority}: schedule-to-start of the attempt (how long it waited in its lane's queue). */
  queueWait: m.createHistogram('workflow_queue_wait_seconds', {
    unit: 's',
    description: 'Schedule-to-start latency of an activity attempt: time waiting in its task queue',
    advice: { explicitBucketBoundaries: WAIT_BUCKETS },
  }),
}));

/** Recorded in the API processes. */
export const apiMetrics = instruments((m) => ({
  /** {lane} */
  admissionDeferrals: m.createCounter('workflow_admission_deferrals', { description: 'Run starts deferred by the admission stage' }),
  /** {lane} */
  admissionDispatched: m.createCounter('workflow_admission_dispatched', { description: 'Deferred run starts started later by the admission dispatcher' }),
  /** {outcome}: delivered, retry (failed, will be retried), dead (dead-lettered). */
  webhookDeliveries: m.createCounter('workflow_webhook_deliveries', { description: 'Webhook delivery attempts by outcome' }),
}));
