/**
 * The contract between the interpreter and agent runs. An agent (seed 002 `agent` step, seed 004
 * `agent_ref`) that is defined in the agent registry runs as a child workflow `agent` on the
 * lane's workflow queue: model call → tool calls → model call, every call an activity, guardrails
 * enforced by the workflow. Workflows import these types only (the workflow type is
 * common/constants.ts `AGENT_WORKFLOW_TYPE`).
 */

export type AgentToolKind = 'skill' | 'integration' | 'mcp';

export interface AgentTool {
  /** The name the model sees and calls. */
  name: string;
  kind: AgentToolKind;
  /** skill/integration: the catalog name (defaults to `name`); mcp: the tool name on the server. */
  target?: string;
  /** mcp: the configured server's name. */
  server?: string;
  description?: string;
  /** JSON Schema of the arguments (skills: generated from the skill's input schema). */
  parameters?: Record<string, unknown>;
  /** High-risk tools wait for a human approval before they run. */
  risk?: 'normal' | 'high';
  /** Approvers for high-risk calls (principals and/or `group:<name>`); the run's approvers by default. */
  approvers?: string[];
}

export interface AgentGuardrails {
  max_iterations: number;
  /** Tool names the model may call; a call outside the list is refused and reported back. */
  allowed_tools?: string[];
  /** Input + output tokens across every model call of the run. */
  token_budget?: number;
  /** Wall-clock limit of the whole agent run. */
  timeout_seconds?: number;
}

export interface AgentDefinition {
  name: string;
  description: string;
  /** A model route or alias from the routing table. */
  model: string;
  system_prompt: string;
  tools: AgentTool[];
  guardrails: AgentGuardrails;
  max_tokens?: number;
  temperature?: number;
  /** When set, the final answer must be JSON valid against this JSON Schema. */
  output_schema?: Record<string, unknown>;
}

/** The child workflow's input, built by the interpreter from the pinned agent and the step. */
export interface AgentRunInput {
  agent: AgentDefinition;
  /** The step's resolved input. */
  input: unknown;
  /** The step's own guardrails (seed 002); they can only tighten the agent's. */
  guardrails?: Partial<AgentGuardrails>;
  lane: string;
  tenant: string;
  definition: string;
  version: string;
  startedBy: string;
  correlationId: string;
  causationId?: string;
  /** The parent run (platform run id) and the step's path in it. */
  parentRunId: string;
  stepId: string;
  stepPath: string;
  /** Group members captured at the parent's start, for approvals of high-risk tools. */
  directory?: Record<string, string[]>;
}

export interface AgentToolCallRecord {
  iteration: number;
  id: string;
  name: string;
  arguments: Record<string, unknown>;
  status: 'ok' | 'error' | 'refused' | 'rejected';
  /** Result (ok) or error/refusal message as reported back to the model. */
  result: unknown;
}

export interface AgentResult {
  /** The final answer: parsed JSON when `output_schema` is set, else the text. */
  output: unknown;
  text: string;
  iterations: number;
  toolCalls: AgentToolCallRecord[];
  usage: { inputTokens: number; outputTokens: number };
  /** Routes that answered, in order (fallbacks visible). */
  routes: string[];
}
