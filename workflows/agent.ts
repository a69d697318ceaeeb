import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentDefinition, AgentGuardrails, AgentResult, AgentRunInput, AgentTool, AgentToolCallRecord } from '../activities/agents/types.ts';
import type { ChatMessage, ModelRequest, ModelResult, ToolSpec } from '../activities/models/types.ts';
import type { SkillRequest } from '../activities/skills/types.ts';
import { MODEL_ACTIVITY, activityTaskQueue, platformTaskQueue } from '../common/constants.ts';
import { SA } from '../common/search-attributes.ts';
import { openApprovalRecord, pendingApproverKeys, settlingDecision, type ApprovalRecord, type AuditEntry } from '../interpreter/approvals.ts';
import { installApprovalHandlers } from './approval-handlers.ts';

/**
 * The agent loop: a child workflow per agent run. Model call → tool calls → model call, every call
 * an activity (the model on `<lane>.models`, skills on `<lane>.skills`, integrations on
 * `<lane>.integrations`, MCP tools through `mcp.callTool` on `<lane>.agents`), with the guardrails
 * enforced here: max iterations, allowed tools (a refused call is reported back to the model),
 * a token budget, a wall-clock timeout, and human approval before high-risk tools run (the same
 * update and signal as approval steps, so the API and the Temporal UI work on this workflow id).
 */

/** The MCP activity on the agents queue (activities/agents/mcp.ts). */
const MCP_CALL_TOOL = 'mcp.callTool';
/** What a tool result may take of the conversation; longer results are cut with a note. */
const MAX_TOOL_RESULT_CHARS = 20_000;
const TOOL_TIMEOUT_SECONDS = 120;
const MODEL_TIMEOUT_SECONDS = 600;

/** `model.generate` is registered like a skill: it takes the same envelope. */
type ModelActivities = Record<string, (request: { input: ModelRequest; meta: SkillRequest['meta'] }) => Promise<ModelResult>>;
type ToolActivities = Record<string, (request: SkillRequest) => Promise<unknown>>;
interface PlatformActivities {
  recordAudit(entries: AuditEntry[]): Promise<void>;
}

// ------------------------------------------------------------------ pure helpers (unit-tested)

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

// ------------------------------------------------------------------ the workflow

function failureMessage(error: unknown): { type: string; message: string } {
  if (error instanceof ActivityFailure) {
    const cause = error.cause;
    if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'Error', message: cause.message };
    if (cause instanceof TimeoutFailure) return { type: 'Timeout', message: `timed out (${String(cause.timeoutType)})` };
    return { type: 'ActivityFailure', message: cause?.message ?? error.message };
  }
  return { type: 'Error', message: error instanceof Error ? error.message : String(error) };
}

class AgentStop extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One agent run (the `agent` child workflow): its workflow id is `<parentRunId>/<stepPath>`;
 * approvals of high-risk tools are decided on this id.
 */
export async function agent(args: AgentRunInput): Promise<AgentResult> {
  const { workflowId } = workflowInfo();
  const definition = args.agent;
  const guardrails = effectiveGuardrails(definition.guardrails, args.guardrails as Record<string, unknown> | undefined);
  const tools = offeredTools(definition, guardrails);

  // The API checks tenancy and lists approvals by these attributes; set them even when the
  // starter did not (idempotent when it did).
  upsertSearchAttributes([
    { key: SA.definition, value: args.definition },
    { key: SA.version, value: args.version },
    { key: SA.lane, value: args.lane },
    { key: SA.tenant, value: args.tenant },
    { key: SA.startedBy, value: args.startedBy },
    { key: SA.correlationId, value: args.correlationId },
  ]);

  const messages: ChatMessage[] = [{ role: 'user', content: userMessageFor(args.input) }];
  const calls: AgentToolCallRecord[] = [];
  const turns: TranscriptTurn[] = [];
  const routes: string[] = [];
  const usage = { inputTokens: 0, outputTokens: 0 };
  let iterations = 0;
  const seenCallIds = new Set<string>();
  const showProgress = (status: string) => setCurrentDetails(transcriptMarkdown(definition, guardrails, turns, calls, status));

  // Approvals of high-risk calls: the same rules, update, signal and query as approval steps.
  const approvals: Record<string, ApprovalRecord> = {};
  const directory = args.directory ?? {};
  const audit: AuditEntry[] = [];
  // eslint-disable-next-line no-restricted-properties -- workflow time: deterministic inside workflows
  const nowIso = () => new Date(Date.now()).toISOString();
  installApprovalHandlers({
    workflowId,
    identity: { tenant: args.tenant, definition: args.definition, version: args.version },
    approvals: () => approvals,
    directory,
    audit,
    auditSeq: 0,
    nowIso,
    platformQueue: platformTaskQueue(args.lane),
  });
  const syncApprovers = () => upsertSearchAttributes([{ key: SA.pendingApprovers, value: pendingApproverKeys(approvals) }]);
  const platform = proxyActivities<PlatformActivities>({
    taskQueue: platformTaskQueue(args.lane),
    startToCloseTimeout: 30_000,
    retry: { maximumAttempts: 10, initialInterval: 1000, maximumInterval: 60_000, backoffCoefficient: 2 },
    summary: 'approval audit trail',
  });
  const flushAudit = () =>
    CancellationScope.nonCancellable(async () => {
      while (audit.length > 0) {
        const batch = audit.slice(0, 50);
        try {
          await platform.recordAudit(batch);
        } catch {
          // Retries are bounded; the decisions stay in this history.
        }
        audit.splice(0, batch.length);
      }
    });

  const meta = (stepId: string, key: string): SkillRequest['meta'] => ({
    stepId,
    definition: args.definition,
    version: args.version,
    lane: args.lane,
    tenant: args.tenant,
    correlationId: args.correlationId,
    ...(args.causationId ? { causationId: args.causationId } : {}),
    idempotencyKey: `${workflowId}/${key}`,
  });

  const toolActivity = (kind: AgentTool['kind'], iteration: number, name: string) =>
    proxyActivities<ToolActivities>({
      taskQueue: activityTaskQueue(args.lane, kind === 'skill' ? 'skills' : kind === 'integration' ? 'integrations' : 'agents'),
      startToCloseTimeout: TOOL_TIMEOUT_SECONDS * 1000,
      heartbeatTimeout: 30_000,
      retry: { maximumAttempts: 3, initialInterval: 1000, maximumInterval: 30_000, backoffCoefficient: 2 },
      summary: `tool ${name} · agent ${definition.name} · turn ${iteration}`,
    });

  /** Waits for a human decision on a high-risk call; true when approved. */
  const approve = async (tool: AgentTool, callId: string, iteration: number, callArgs: Record<string, unknown>): Promise<{ approved: boolean; note: string }> => {
    const set = tool.approvers ? approverSetOf(tool.approvers) : { principals: [], groups: Object.keys(directory) };
    if (set.principals.length === 0 && set.groups.length === 0) return { approved: false, note: `the tool "${tool.name}" needs an approval but no approvers are configured` };
    const record = openApprovalRecord({
      stepId: tool.name,
      stepPath: `turn${iteration}/${callId}`,
      summary: `Agent ${definition.name} wants to call ${tool.name} with ${toolMessageContent(callArgs).slice(0, 1000)}`,
      approvers: set,
      quorum: 1,
      allowSelfApproval: false,
      startedBy: args.startedBy,
      requestedAt: nowIso(),
    });
    approvals[record.stepPath] = record;
    syncApprovers();
    showProgress(`waiting for approval of ${tool.name} (turn ${iteration})`);
    try {
      await condition(() => record.status !== 'pending');
    } catch (error) {
      if (isCancellation(error) && record.status === 'pending') {
        record.status = 'cancelled';
        syncApprovers();
      }
      throw error;
    }
    syncApprovers();
    await flushAudit();
    const decider = settlingDecision(record);
    const who = decider ? ` by ${decider.principal}${decider.comment ? `: ${decider.comment}` : ''}` : '';
    return { approved: record.status === 'approved', note: `${record.status}${who}` };
  };

  const runTool = async (tool: AgentTool, callId: string, iteration: number, callArgs: Record<string, unknown>): Promise<unknown> => {
    const target = tool.target ?? tool.name;
    if (tool.kind === 'mcp') {
      const activities = toolActivity('mcp', iteration, tool.name);
      const result = await (activities[MCP_CALL_TOOL] as (r: SkillRequest) => Promise<unknown>)({
        input: { server: tool.server, tool: target, arguments: callArgs },
        meta: meta(args.stepId, `tool/${callId}`),
      });
      const r = result as { isError?: boolean };
      if (r && r.isError) throw new AgentToolError(toolMessageContent(mcpResultText(result)));
      return mcpResultText(result);
    }
    const activities = toolActivity(tool.kind, iteration, tool.name);
    return (activities[target] as (r: SkillRequest) => Promise<unknown>)({ input: callArgs, meta: meta(args.stepId, `tool/${callId}`) });
  };

  const loop = async (): Promise<AgentResult> => {
    for (let iteration = 1; iteration <= guardrails.max_iterations; iteration++) {
      iterations = iteration;
      showProgress(`turn ${iteration}: asking ${definition.model}`);
      const model = proxyActivities<ModelActivities>({
        taskQueue: activityTaskQueue(args.lane, 'models'),
        startToCloseTimeout: MODEL_TIMEOUT_SECONDS * 1000,
        retry: { maximumAttempts: 3, initialInterval: 2000, maximumInterval: 60_000, backoffCoefficient: 2 },
        summary: `agent ${definition.name} · turn ${iteration} · model ${definition.model}`,
      });
      const request: ModelRequest = {
        model: definition.model,
        agent_id: definition.name,
        calling_skill: `agent:${definition.name}`,
        system_prompt: definition.system_prompt,
        messages: [...messages],
        ...(tools.length > 0 ? { tools } : {}),
        ...(definition.max_tokens !== undefined ? { max_tokens: definition.max_tokens } : {}),
        ...(definition.temperature !== undefined ? { temperature: definition.temperature } : {}),
        callback: `${workflowId}/turn/${iteration}`,
      };
      let result: ModelResult;
      try {
        result = await (model[MODEL_ACTIVITY] as ModelActivities[string])({ input: request, meta: meta(args.stepId, `turn/${iteration}`) });
      } catch (error) {
        if (isCancellation(error)) throw error;
        const f = failureMessage(error);
        throw new AgentStop('AgentModelFailed', `the model call of turn ${iteration} failed (${f.type}): ${f.message}`);
      }
      usage.inputTokens += result.usage.inputTokens;
      usage.outputTokens += result.usage.outputTokens;
      routes.push(result.route);
      turns.push({ iteration, route: result.route, text: result.text, usage: result.usage });
      const spent = usage.inputTokens + usage.outputTokens;
      if (guardrails.token_budget !== undefined && spent > guardrails.token_budget) {
        throw new AgentStop('AgentTokenBudgetExceeded', `agent ${definition.name} used ${spent} tokens after turn ${iteration}, over its budget of ${guardrails.token_budget}`);
      }

      if (result.toolCalls.length === 0) {
        if (definition.output_schema) {
          const parsed = parseFinalJson(result.text, definition.output_schema);
          if (!parsed.ok) {
            messages.push({ role: 'assistant', content: result.text });
            messages.push({ role: 'user', content: `Your final answer must be JSON only, valid against this JSON Schema (${parsed.reason}):\n${JSON.stringify(definition.output_schema)}` });
            continue;
          }
          return { output: parsed.value, text: result.text, iterations, toolCalls: calls, usage, routes };
        }
        return { output: result.text, text: result.text, iterations, toolCalls: calls, usage, routes };
      }

      const requested = result.toolCalls.map((c, index) => {
        let id = c.id;
        if (!id || seenCallIds.has(id)) id = `turn${iteration}-${index}`;
        seenCallIds.add(id);
        return { ...c, id };
      });
      messages.push({ role: 'assistant', content: result.text, tool_calls: requested });
      for (const call of requested) {
        const record: AgentToolCallRecord = { iteration, id: call.id, name: call.name, arguments: call.arguments, status: 'ok', result: null };
        calls.push(record);
        const verdict = checkToolCall(definition, guardrails, call.name);
        if (!verdict.run) {
          record.status = 'refused';
          record.result = verdict.reason;
        } else {
          let approved = true;
          if (verdict.tool.risk === 'high') {
            const decision = await approve(verdict.tool, call.id, iteration, call.arguments);
            approved = decision.approved;
            if (!approved) {
              record.status = 'rejected';
              record.result = `Rejected: a human did not approve this call to "${call.name}" (${decision.note}). The call was not run.`;
            }
          }
          if (approved) {
            showProgress(`turn ${iteration}: running ${call.name}`);
            try {
              record.result = await runTool(verdict.tool, call.id, iteration, call.arguments);
            } catch (error) {
              if (isCancellation(error)) throw error;
              record.status = 'error';
              record.result = error instanceof AgentToolError ? `Error: ${error.message}` : `Error: ${failureMessage(error).message}`;
            }
          }
        }
        messages.push({ role: 'tool', content: toolMessageContent(record.result), tool_call_id: call.id, name: call.name });
      }
      showProgress(`turn ${iteration} done`);
    }
    throw new AgentStop('AgentMaxIterations', `agent ${definition.name} did not answer within ${guardrails.max_iterations} turn(s)`);
  };

  const fail = async (type: string, message: string): Promise<never> => {
    showProgress(`failed: ${type}`);
    await flushAudit();
    throw ApplicationFailure.create({
      nonRetryable: true,
      type,
      message,
      details: [{ iterations, toolCalls: calls, usage, routes }],
    });
  };

  // The wall-clock limit: the loop races a timer; the loser is cancelled.
  const scope = new CancellationScope();
  let timedOut = false;
  const timer = guardrails.timeout_seconds === undefined ? undefined : new CancellationScope();
  const timerDone = timer?.run(async () => {
    await sleep((guardrails.timeout_seconds as number) * 1000);
    timedOut = true;
    scope.cancel();
  });
  timerDone?.catch(() => undefined);
  try {
    const result = await scope.run(loop);
    timer?.cancel();
    showProgress(`answered in ${iterations} turn(s) · ${usage.inputTokens + usage.outputTokens} tokens`);
    await flushAudit();
    return result;
  } catch (error) {
    timer?.cancel();
    for (const record of Object.values(approvals)) {
      if (record.status === 'pending') record.status = 'cancelled';
    }
    if (Object.keys(approvals).length > 0) syncApprovers();
    if (timedOut) return fail('AgentTimeout', `agent ${definition.name} did not finish within ${guardrails.timeout_seconds}s (turn ${iterations})`);
    if (error instanceof AgentStop) return fail(error.type, error.message);
    // Cancelled with the parent: decisions made so far still reach the audit trail.
    await flushAudit();
    throw error;
  }
}

/** A tool that ran and reported an error (MCP `isError`): reported to the model, not retried. */
class AgentToolError extends Error {}
