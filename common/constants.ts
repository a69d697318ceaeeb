/**
 * Names that end up in Temporal histories, visibility and the UI. They are defined once here and
 * imported everywhere; renaming one breaks replay of existing histories and saved queries, so treat
 * every value as a public contract.
 */

/** The one generic workflow type that executes any definition. */
export const INTERPRETER_WORKFLOW_TYPE = 'interpreter';

/** The agent child workflow's type (workflows/agent.ts `agent`); stored in histories and visibility. */
export const AGENT_WORKFLOW_TYPE = 'agent';

/** Kinds of activity task queue a lane owns. */
export const ACTIVITY_KINDS = ['skills', 'integrations', 'models', 'agents'] as const;
export type ActivityKind = (typeof ACTIVITY_KINDS)[number];

/** The workflow task queue of a lane, e.g. `prod-critical.workflows`. */
export function workflowTaskQueue(lane: string): string {
  return `${lane}.workflows`;
}

/** The activity a `model` step (and an agent's turn) calls on the lane's models queue. */
export const MODEL_ACTIVITY = 'model.generate';

/** The activity task queue of one kind in a lane, e.g. `prod-critical.skills`. */
export function activityTaskQueue(lane: string, kind: ActivityKind): string {
  return `${lane}.${kind}`;
}

/**
 * Custom search attributes the platform registers. Chosen to fit the dev server's (SQLite) budget
 * of 10 Keyword attributes and 3 KeywordList attributes per namespace.
 */
export const SEARCH_ATTRIBUTES = {
  definition: { name: 'DefinitionName', type: 'Keyword' },
  version: { name: 'DefinitionVersion', type: 'Keyword' },
  lane: { name: 'Lane', type: 'Keyword' },
  tenant: { name: 'Tenant', type: 'Keyword' },
  startedBy: { name: 'StartedBy', type: 'Keyword' },
  correlationId: { name: 'CorrelationId', type: 'Keyword' },
  causationId: { name: 'CausationId', type: 'Keyword' },
  pendingApprovers: { name: 'PendingApprovers', type: 'KeywordList' },
} as const;

/** Query that returns the run's live state (per-step status and outputs). */
export const RUN_STATE_QUERY = 'runState';

/** Query that returns the run's pending approvals. */
export const PENDING_APPROVALS_QUERY = 'pendingApprovals';

/**
 * Signal an approver sends from the Temporal UI or `temporal workflow signal`; its JSON payload is
 * `{"step": "<step id>", "approver": "<principal>", "decision": "approve" | "reject", "comment": "..."}`.
 */
export const APPROVAL_SIGNAL = 'approval';

/** Update the API sends for POST /v1/runs/{runId}/approvals/{stepId}: validated, answered at once. */
export const APPROVAL_UPDATE = 'decideApproval';

/** The lane's queue for the platform's own activities (the approval audit trail). */
export function platformTaskQueue(lane: string): string {
  return `${lane}.platform`;
}

/** Memo keys written at start. */
export const MEMO_KEYS = {
  requestHash: 'requestHash',
  correlationId: 'correlationId',
  /** Unique per start request: tells the request that created a run from later ones. */
  requestId: 'requestId',
  /** The event that caused the run (event-triggered runs). */
  causationId: 'causationId',
  /** The run's OpenTelemetry trace id (GET /v1/runs/{id} `traceId`; shown in Temporal Web). */
  traceId: 'traceId',
  /** W3C traceparent of the request that started the run: a deferred start continues that trace. */
  traceparent: 'traceparent',
} as const;

/** Priority names mapped to Temporal priority keys (lower runs first; 3 is Temporal's default). */
export const PRIORITY_KEYS = { urgent: 1, high: 2, normal: 3, low: 4 } as const;

/**
 * Files the platform itself reads from SECRETS_DIR (the payload codec's keys, the webhook-secret
 * key). A definition's `{"secret": NAME}` may never name one: an http-fetch header could otherwise
 * carry the platform's own keys to a remote host.
 */
export const PLATFORM_SECRET_FILES = ['PAYLOAD_CODEC_KEYS', 'WEBHOOK_SECRET_KEY'] as const;

/** True when a secret reference names one of PLATFORM_SECRET_FILES (in any case). */
export function isPlatformSecretName(name: string): boolean {
  return (PLATFORM_SECRET_FILES as readonly string[]).includes(name.toUpperCase());
}

/**
 * Set (to true) on a failure the workflow writes as its answer to whoever sent a request: an
 * approval update's refusal, which says who may decide which step and holds no run data. The
 * failure converter (common/failure-converter.ts) leaves its message readable, because Temporal
 * Web shows an update's answer as it comes, without the codec server.
 */
export const PLAIN_FAILURE_MESSAGE = 'platformPlainMessage';
