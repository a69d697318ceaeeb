import { ApplicationFailure, CancellationScope, condition, isCancellation, proxyActivities, setCurrentDetails, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { AgentDefinition, AgentGuardrails, AgentResult, AgentRunInput, AgentTool, AgentToolCallRecord } from '../activities/agents/types.ts';
import type { ChatMessage, ModelRequest, ModelResult, ToolSpec } from '../activities/models/types.ts';
import type { SkillRequest } from '../activities/skills/types.ts';
import { MODEL_ACTIVITY, activityTaskQueue, platformTaskQueue } from '../common/constants.ts';
import { SA, runSearchAttributePairs } from '../common/search-attributes.ts';
import { openApprovalRecord, pendingApproverKeys, settlingDecision, type ApprovalRecord, type AuditEntry } from '../interpreter/approvals.ts';
import {
  approverSetOf,
  checkToolCall,
  effectiveGuardrails,
  mcpResultText,
  offeredTools,
  parseFinalJson,
  toolMessageContent,
  transcriptMarkdown,
  userMessageFor,
  type TranscriptTurn,
} from './agent-rules.ts';
import { installApprovalHandlers } from './approval-handlers.ts';
import { failureMessage } from './failures.ts';
import { auditFlusher } from './recorder.ts';

/** The pure rules live in agent-rules.ts; this module stays their public home for tests and readers. */
export * from './agent-rules.ts';

/**
 * The agent loop: a child workflow per agent run. Model call → tool calls → model call, every call
 * an activity (the model on `<lane>.models`, skills on `<lane>.skills`, integrations on
 * `<lane>.integrations`, MCP tools through `mcp.callTool` on `<lane>.agents`), with the guardrails
 * enforced here (agent-rules.ts): max iterations, allowed tools (a refused call is reported back to
 * the model), a token budget, a wall-clock timeout, and human approval before high-risk tools run
 * (the same update and signal as approval steps, so the API and the Temporal UI work on this
 * workflow id).
 */

/** The MCP activity on the agents queue (activities/agents/mcp.ts). */
const MCP_CALL_TOOL = 'mcp.callTool';
const TOOL_TIMEOUT_SECONDS = 120;
const MODEL_TIMEOUT_SECONDS = 600;

/** `model.generate` is registered like a skill: it takes the same envelope. */
type ModelActivities = Record<string, (request: { input: ModelRequest; meta: SkillRequest['meta'] }) => Promise<ModelResult>>;
type ToolActivities = Record<string, (request: SkillRequest) => Promise<unknown>>;

class AgentStop extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** A tool that ran and reported an error (MCP `isError`): reported to the model, not retried. */
class AgentToolError extends Error {}

/** One agent run's conversation and what it has spent so far. */
interface AgentRun {
  args: AgentRunInput;
  workflowId: string;
  definition: AgentDefinition;
  guardrails: AgentGuardrails;
  tools: ToolSpec[];
  messages: ChatMessage[];
  calls: AgentToolCallRecord[];
  turns: TranscriptTurn[];
  routes: string[];
  usage: { inputTokens: number; outputTokens: number };
  iterations: number;
  seenCallIds: Set<string>;
  approvals: Record<string, ApprovalRecord>;
  directory: Record<string, string[]>;
  nowIso: () => string;
  showProgress: (status: string) => void;
  syncApprovers: () => void;
  flushAudit: () => Promise<void>;
}

/** The run's starting state; installs the approval handlers (the same rules as approval steps). */
function startRun(args: AgentRunInput): AgentRun {
  const { workflowId } = workflowInfo();
  const definition = args.agent;
  const guardrails = effectiveGuardrails(definition.guardrails, args.guardrails as Record<string, unknown> | undefined);
  // The API checks tenancy and lists approvals by these attributes; set them even when the
  // starter did not (idempotent when it did).
  const { definition: name, version, lane, tenant, startedBy, correlationId } = args;
  upsertSearchAttributes(runSearchAttributePairs({ definition: name, version, lane, tenant, startedBy, correlationId }));
  const turns: TranscriptTurn[] = [];
  const calls: AgentToolCallRecord[] = [];
  const approvals: Record<string, ApprovalRecord> = {};
  const audit: AuditEntry[] = [];
  // eslint-disable-next-line no-restricted-properties -- workflow time: deterministic inside workflows
  const nowIso = () => new Date(Date.now()).toISOString();
  const directory = args.directory ?? {};
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
  return {
    args,
    workflowId,
    definition,
    guardrails,
    tools: offeredTools(definition, guardrails),
    messages: [{ role: 'user', content: userMessageFor(args.input) }],
    calls,
    turns,
    routes: [],
    usage: { inputTokens: 0, outputTokens: 0 },
    iterations: 0,
    seenCallIds: new Set<string>(),
    approvals,
    directory,
    nowIso,
    showProgress: (status) => setCurrentDetails(transcriptMarkdown(definition, guardrails, turns, calls, status)),
    syncApprovers: () => upsertSearchAttributes([{ key: SA.pendingApprovers, value: pendingApproverKeys(approvals) }]),
    flushAudit: auditFlusher(args.lane, audit),
  };
}

/** The activity envelope's meta of one call, its idempotency key under the run's workflow id. */
function metaOf(run: AgentRun, stepId: string, key: string): SkillRequest['meta'] {
  const { args } = run;
  return {
    stepId,
    definition: args.definition,
    version: args.version,
    lane: args.lane,
    tenant: args.tenant,
    correlationId: args.correlationId,
    ...(args.causationId ? { causationId: args.causationId } : {}),
    idempotencyKey: `${run.workflowId}/${key}`,
  };
}

function toolActivity(run: AgentRun, kind: AgentTool['kind'], iteration: number, name: string) {
  return proxyActivities<ToolActivities>({
    taskQueue: activityTaskQueue(run.args.lane, kind === 'skill' ? 'skills' : kind === 'integration' ? 'integrations' : 'agents'),
    startToCloseTimeout: TOOL_TIMEOUT_SECONDS * 1000,
    heartbeatTimeout: 30_000,
    retry: { maximumAttempts: 3, initialInterval: 1000, maximumInterval: 30_000, backoffCoefficient: 2 },
    summary: `tool ${name} · agent ${run.definition.name} · turn ${iteration}`,
  });
}

/** Waits for a human decision on a high-risk call; true when approved. */
function approvalGate(run: AgentRun) {
  const { args, definition, approvals, directory, nowIso, syncApprovers, showProgress, flushAudit } = run;
  return async (tool: AgentTool, callId: string, iteration: number, callArgs: Record<string, unknown>): Promise<{ approved: boolean; note: string }> => {
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
}

/** Runs one tool call as its activity: an MCP tool through `mcp.callTool`, a skill or integration by name. */
function toolRunner(run: AgentRun) {
  const { args } = run;
  return async (tool: AgentTool, callId: string, iteration: number, callArgs: Record<string, unknown>): Promise<unknown> => {
    const target = tool.target ?? tool.name;
    if (tool.kind === 'mcp') {
      const activities = toolActivity(run, 'mcp', iteration, tool.name);
      const result = await (activities[MCP_CALL_TOOL] as (r: SkillRequest) => Promise<unknown>)({
        input: { server: tool.server, tool: target, arguments: callArgs },
        meta: metaOf(run, args.stepId, `tool/${callId}`),
      });
      const r = result as { isError?: boolean };
      if (r && r.isError) throw new AgentToolError(toolMessageContent(mcpResultText(result)));
      return mcpResultText(result);
    }
    const activities = toolActivity(run, tool.kind, iteration, tool.name);
    return (activities[target] as (r: SkillRequest) => Promise<unknown>)({ input: callArgs, meta: metaOf(run, args.stepId, `tool/${callId}`) });
  };
}

/** The model activity of a turn, and the request it is sent. */
function modelCall(run: AgentRun, iteration: number): { model: ModelActivities; request: ModelRequest } {
  const { definition, tools } = run;
  const model = proxyActivities<ModelActivities>({
    taskQueue: activityTaskQueue(run.args.lane, 'models'),
    startToCloseTimeout: MODEL_TIMEOUT_SECONDS * 1000,
    retry: { maximumAttempts: 3, initialInterval: 2000, maximumInterval: 60_000, backoffCoefficient: 2 },
    summary: `agent ${definition.name} · turn ${iteration} · model ${definition.model}`,
  });
  const request: ModelRequest = {
    model: definition.model,
    agent_id: definition.name,
    calling_skill: `agent:${definition.name}`,
    system_prompt: definition.system_prompt,
    messages: [...run.messages],
    ...(tools.length > 0 ? { tools } : {}),
    ...(definition.max_tokens !== undefined ? { max_tokens: definition.max_tokens } : {}),
    ...(definition.temperature !== undefined ? { temperature: definition.temperature } : {}),
    callback: `${run.workflowId}/turn/${iteration}`,
  };
  return { model, request };
}

/** Counts a turn's tokens against the budget; stops the run when it is spent. */
function countTurn(run: AgentRun, iteration: number, result: ModelResult): void {
  const { usage, guardrails, definition } = run;
  usage.inputTokens += result.usage.inputTokens;
  usage.outputTokens += result.usage.outputTokens;
  run.routes.push(result.route);
  run.turns.push({ iteration, route: result.route, text: result.text, usage: result.usage });
  const spent = usage.inputTokens + usage.outputTokens;
  if (guardrails.token_budget !== undefined && spent > guardrails.token_budget) {
    throw new AgentStop('AgentTokenBudgetExceeded', `agent ${definition.name} used ${spent} tokens after turn ${iteration}, over its budget of ${guardrails.token_budget}`);
  }
}

/** A turn without tool calls: the answer, or undefined when it must be asked again (not the JSON the schema wants). */
function finalAnswer(run: AgentRun, result: ModelResult): AgentResult | undefined {
  const { definition, iterations, calls, usage, routes } = run;
  if (!definition.output_schema) return { output: result.text, text: result.text, iterations, toolCalls: calls, usage, routes };
  const parsed = parseFinalJson(result.text, definition.output_schema);
  if (parsed.ok) return { output: parsed.value, text: result.text, iterations, toolCalls: calls, usage, routes };
  run.messages.push({ role: 'assistant', content: result.text });
  run.messages.push({ role: 'user', content: `Your final answer must be JSON only, valid against this JSON Schema (${parsed.reason}):\n${JSON.stringify(definition.output_schema)}` });
  return undefined;
}

/** The turn's tool calls, each with an id unique in the run. */
function requestedCalls(run: AgentRun, iteration: number, result: ModelResult) {
  return result.toolCalls.map((c, index) => {
    let id = c.id;
    if (!id || run.seenCallIds.has(id)) id = `turn${iteration}-${index}`;
    run.seenCallIds.add(id);
    return { ...c, id };
  });
}

/** The loop: a model turn, then its tool calls (checked, approved when high-risk, run), until an answer. */
function agentLoop(run: AgentRun) {
  const { args, definition, guardrails, messages, calls, showProgress } = run;
  const approve = approvalGate(run);
  const runTool = toolRunner(run);
  return async (): Promise<AgentResult> => {
    for (let iteration = 1; iteration <= guardrails.max_iterations; iteration++) {
      run.iterations = iteration;
      showProgress(`turn ${iteration}: asking ${definition.model}`);
      const { model, request } = modelCall(run, iteration);
      let result: ModelResult;
      try {
        result = await (model[MODEL_ACTIVITY] as ModelActivities[string])({ input: request, meta: metaOf(run, args.stepId, `turn/${iteration}`) });
      } catch (error) {
        if (isCancellation(error)) throw error;
        const f = failureMessage(error);
        throw new AgentStop('AgentModelFailed', `the model call of turn ${iteration} failed (${f.type}): ${f.message}`);
      }
      countTurn(run, iteration, result);
      if (result.toolCalls.length === 0) {
        const answer = finalAnswer(run, result);
        if (answer === undefined) continue;
        return answer;
      }
      const requested = requestedCalls(run, iteration, result);
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
}

/**
 * One agent run (the `agent` child workflow): its workflow id is `<parentRunId>/<stepPath>`;
 * approvals of high-risk tools are decided on this id.
 */
export async function agent(args: AgentRunInput): Promise<AgentResult> {
  const run = startRun(args);
  const { definition, guardrails, approvals, showProgress, flushAudit } = run;
  const loop = agentLoop(run);
  const fail = async (type: string, message: string): Promise<never> => {
    showProgress(`failed: ${type}`);
    await flushAudit();
    throw ApplicationFailure.create({ nonRetryable: true, type, message, details: [{ iterations: run.iterations, toolCalls: run.calls, usage: run.usage, routes: run.routes }] });
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
    showProgress(`answered in ${run.iterations} turn(s) · ${run.usage.inputTokens + run.usage.outputTokens} tokens`);
    await flushAudit();
    return result;
  } catch (error) {
    timer?.cancel();
    for (const record of Object.values(approvals)) {
      if (record.status === 'pending') record.status = 'cancelled';
    }
    if (Object.keys(approvals).length > 0) run.syncApprovers();
    if (timedOut) return fail('AgentTimeout', `agent ${definition.name} did not finish within ${guardrails.timeout_seconds}s (turn ${run.iterations})`);
    if (error instanceof AgentStop) return fail(error.type, error.message);
    // Cancelled with the parent: decisions made so far still reach the audit trail.
    await flushAudit();
    throw error;
  }
}
