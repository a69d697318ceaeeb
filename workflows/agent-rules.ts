import type { AgentDefinition, AgentGuardrails, AgentTool, AgentToolCallRecord } from '../activities/agents/types.ts';
import type { ToolSpec } from '../activities/models/types.ts';

/**
 * The agent loop's pure rules (unit-tested, test/unit/agent-guardrails.test.ts): the guardrails in
 * force, the tools offered and allowed, the messages the model reads, the final JSON answer, and
 * the transcript Temporal Web shows. workflows/agent.ts applies them.
 */

/** What a tool result may take of the conversation; longer results are cut with a note. */
const MAX_TOOL_RESULT_CHARS = 20_000;

/**
 * The guardrails in force: the agent's, tightened by the step's (seed 002 spells them
 * `max_iterations`, `allowed_tools`, `max_tokens` for the budget and `timeout` in seconds). A step
 * can lower limits and narrow the allowed tools, never raise or widen them.
 */
export function effectiveGuardrails(agent: AgentGuardrails, step: Record<string, unknown> | undefined): AgentGuardrails {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  const min = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));
  const s = step ?? {};
  const stepAllowed = Array.isArray(s.allowed_tools) ? s.allowed_tools.filter((t): t is string => typeof t === 'string') : undefined;
  const allowed =
    agent.allowed_tools === undefined ? stepAllowed : stepAllowed === undefined ? agent.allowed_tools : agent.allowed_tools.filter((t) => stepAllowed.includes(t));
  const result: AgentGuardrails = { max_iterations: min(agent.max_iterations, num(s.max_iterations)) ?? agent.max_iterations };
  if (allowed !== undefined) result.allowed_tools = allowed;
  const budget = min(agent.token_budget, num(s.token_budget) ?? num(s.max_tokens));
  if (budget !== undefined) result.token_budget = budget;
  const timeout = min(agent.timeout_seconds, num(s.timeout_seconds) ?? num(s.timeout));
  if (timeout !== undefined) result.timeout_seconds = timeout;
  return result;
}

/** The tools offered to the model: the agent's tools the guardrails allow. */
export function offeredTools(agent: AgentDefinition, guardrails: AgentGuardrails): ToolSpec[] {
  return agent.tools
    .filter((t) => guardrails.allowed_tools === undefined || guardrails.allowed_tools.includes(t.name))
    .map((t) => ({
      name: t.name,
      description: `${t.description ?? ''}${t.risk === 'high' ? `${t.description ? ' ' : ''}(high risk: each call waits for a human approval)` : ''}`,
      parameters: t.parameters ?? { type: 'object', properties: {} },
    }));
}

export type ToolVerdict = { run: true; tool: AgentTool } | { run: false; reason: string };

/** Whether a call the model asked for may run: the tool exists and the guardrails allow it. */
export function checkToolCall(agent: AgentDefinition, guardrails: AgentGuardrails, name: string): ToolVerdict {
  const tool = agent.tools.find((t) => t.name === name);
  if (!tool) {
    return { run: false, reason: `Refused: "${name}" is not a tool of this agent (tools: ${agent.tools.map((t) => t.name).join(', ') || 'none'}). The call was not run.` };
  }
  if (guardrails.allowed_tools !== undefined && !guardrails.allowed_tools.includes(name)) {
    return { run: false, reason: `Refused: the tool "${name}" is not allowed in this run (allowed: ${guardrails.allowed_tools.join(', ') || 'none'}). The call was not run.` };
  }
  return { run: true, tool };
}

/** The first user message: the step's input, as text. */
export function userMessageFor(input: unknown): string {
  if (typeof input === 'string') return input;
  if (input === undefined || input === null) return 'Begin.';
  return `Input (JSON):\n${JSON.stringify(input, null, 2)}`;
}

/** A tool's result as the tool message the model reads (cut to a bounded size). */
export function toolMessageContent(result: unknown): string {
  const text = typeof result === 'string' ? result : JSON.stringify(result ?? null);
  return text.length <= MAX_TOOL_RESULT_CHARS ? text : `${text.slice(0, MAX_TOOL_RESULT_CHARS)}… [cut: ${text.length - MAX_TOOL_RESULT_CHARS} more characters]`;
}

/** An MCP result (content blocks) as plain text for the model, structured content preferred. */
export function mcpResultText(result: unknown): unknown {
  if (!result || typeof result !== 'object') return result;
  const r = result as { content?: unknown; structuredContent?: unknown };
  if (r.structuredContent !== undefined) return r.structuredContent;
  if (!Array.isArray(r.content)) return result;
  const texts = r.content.map((c) => (c && typeof c === 'object' && (c as { type?: unknown }).type === 'text' ? String((c as { text?: unknown }).text ?? '') : JSON.stringify(c)));
  return texts.join('\n');
}

/**
 * Parses a final answer that must be JSON (an `output_schema` is set): the whole text, or a fenced
 * block in it; then the schema's top-level `type` and `required` are checked (the models activity
 * validates fully when a turn asks for structured output).
 */
export function parseFinalJson(text: string, schema: Record<string, unknown>): { ok: true; value: unknown } | { ok: false; reason: string } {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(text);
  const candidate = (fenced ? fenced[1] ?? '' : text).trim();
  let value: unknown;
  try {
    value = JSON.parse(candidate);
  } catch {
    return { ok: false, reason: 'the answer is not JSON' };
  }
  const type = schema.type;
  const actual = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value === 'number' && Number.isInteger(value) && type === 'integer' ? 'integer' : typeof value;
  if (typeof type === 'string' && type !== actual && !(type === 'number' && actual === 'integer')) return { ok: false, reason: `expected a JSON ${type}, got ${actual}` };
  if (Array.isArray(schema.required) && value && typeof value === 'object' && !Array.isArray(value)) {
    const missing = schema.required.filter((k): k is string => typeof k === 'string' && !(k in (value as Record<string, unknown>)));
    if (missing.length > 0) return { ok: false, reason: `missing required field(s): ${missing.join(', ')}` };
  }
  return { ok: true, value };
}

/** Approvers as written (`group:<name>`, `user:<principal>` or a bare principal) as an approver set. */
export function approverSetOf(approvers: readonly string[]): { principals: string[]; groups: string[] } {
  const principals: string[] = [];
  const groups: string[] = [];
  for (const a of approvers) {
    if (a.startsWith('group:')) groups.push(a.slice('group:'.length));
    else principals.push(a.startsWith('user:') ? a.slice('user:'.length) : a);
  }
  return { principals, groups };
}

export interface TranscriptTurn {
  iteration: number;
  route?: string;
  text: string;
  usage?: { inputTokens: number; outputTokens: number };
}

/** The transcript as markdown, for Temporal Web's "current details" (turns, tool calls, refusals). */
export function transcriptMarkdown(
  agent: AgentDefinition,
  guardrails: AgentGuardrails,
  turns: readonly TranscriptTurn[],
  calls: readonly AgentToolCallRecord[],
  status: string,
): string {
  const clip = (s: string, n = 300) => (s.length <= n ? s : `${s.slice(0, n)}…`);
  const oneLine = (s: string) => clip(s.replace(/\s+/g, ' ').trim());
  const limits = [
    `max ${guardrails.max_iterations} turns`,
    ...(guardrails.token_budget ? [`${guardrails.token_budget} tokens`] : []),
    ...(guardrails.timeout_seconds ? [`${guardrails.timeout_seconds}s`] : []),
    ...(guardrails.allowed_tools ? [`tools: ${guardrails.allowed_tools.join(', ') || 'none'}`] : []),
  ];
  const lines = [`## agent ${agent.name} · model ${agent.model}`, `**${status}** · ${limits.join(' · ')}`, ''];
  const icon: Record<AgentToolCallRecord['status'], string> = { ok: '✓', error: '✗', refused: '⊘ refused', rejected: '⊘ rejected' };
  for (const turn of turns) {
    const tokens = turn.usage ? ` · ${turn.usage.inputTokens}+${turn.usage.outputTokens} tokens` : '';
    lines.push(`### turn ${turn.iteration}${turn.route ? ` · ${turn.route}` : ''}${tokens}`);
    if (turn.text.trim()) lines.push(`> ${oneLine(turn.text)}`);
    for (const call of calls.filter((c) => c.iteration === turn.iteration)) {
      const result = typeof call.result === 'string' ? call.result : JSON.stringify(call.result ?? null);
      lines.push(`- ${icon[call.status]} \`${call.name}\` ${oneLine(JSON.stringify(call.arguments))} → ${oneLine(result)}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
