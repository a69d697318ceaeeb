/**
 * The envelope every skill activity receives. Workflows import this type only; the activity side
 * unwraps it, logs with its metadata and hands `input` to the skill.
 */
export interface SkillRequest {
  input: unknown;
  meta: SkillCallMeta;
}

export interface SkillCallMeta {
  stepId: string;
  definition: string;
  version: string;
  lane: string;
  tenant: string;
  correlationId: string;
  /** The id of the event that caused the run, when an event did. */
  causationId?: string;
  /**
   * Stable across retries and replays: `<workflowId>/<stepPath>`. Skills with side effects pass it
   * to the external system so a retried call is not applied twice.
   */
  idempotencyKey: string;
  /** An agent step's guardrails, for the agent implementation to enforce. */
  guardrails?: Record<string, unknown>;
  /**
   * The definition's `resource_limits.max_memory_mb` / `max_cpu_percent`, passed to skills only
   * (and only when set): the sandboxed code skills enforce them.
   */
  resourceLimits?: { max_memory_mb?: number; max_cpu_percent?: number };
  /**
   * The run's definition declares `sensitive` values: an error message may quote one, so the
   * activity's own log line names the error type only (the message stays in the run, masked by the API).
   */
  declaresSensitive?: boolean;
}
