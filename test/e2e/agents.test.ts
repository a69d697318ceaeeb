import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { hang, reply, startLlmDouble, toolCalls, type LlmDouble } from '../support/llm-double.ts';
import { startMcpDouble, type McpDouble } from '../support/mcp-double.ts';
import { KEYS, startTestPlatform, temporalAddress, type TestPlatform } from '../support/platform.ts';

/**
 * Agents end to end, through the API and the lane workers: an agent step whose agent is in the
 * registry (AGENTS_FILE) runs as the child workflow `agent`; its model turns are `model.generate`
 * against the LLM double (real Ollama protocol), its tools are real skills and MCP tools on the
 * MCP double (real Streamable HTTP), and the guardrails trip as configured.
 */
describe('agents end to end', () => {
  let platform: TestPlatform;
  let client: Client;
  let llm: LlmDouble;
  let mcp: McpDouble;
  let dir: string;
  /** The first test's agent workflow, replayed by a later test. */
  let happyAgentId: string | undefined;

  /** One route (and provider model) per agent so each test scripts its own queue. */
  const MODELS = ['happy', 'loop', 'picky', 'spend', 'slow', 'ticket'];

  before(async () => {
    llm = await startLlmDouble();
    mcp = await startMcpDouble({ requireBearer: 'mcp-test-token' });
    process.env.AGENTS_E2E_MCP_TOKEN = 'mcp-test-token';
    dir = mkdtempSync(join(tmpdir(), 'agents-e2e-'));
    const agent = (name: string, model: string, tools: unknown[], guardrails: Record<string, unknown>) => ({
      name,
      description: `${name} (test agent)`,
      model: `local/agent-${model}`,
      system_prompt: `You are ${name}. Use the tools, then answer briefly.`,
      tools,
      guardrails,
    });
    const echo = { name: 'echo', kind: 'skill', description: 'Returns its arguments.' };
    const search = { name: 'search_docs', kind: 'mcp', server: 'docs', description: 'Searches the docs.', parameters: { type: 'object', properties: { query: { type: 'string' } } } };
    const ticket = { name: 'create_ticket', kind: 'mcp', server: 'docs', risk: 'high', approvers: ['group:finance'] };
    const agentsFile = join(dir, 'agents.json');
    writeFileSync(
      agentsFile,
      JSON.stringify({
        agents: [
          agent('researcher', 'happy', [echo, search], { max_iterations: 5 }),
          agent('looper', 'loop', [echo], { max_iterations: 10 }),
          agent('picky', 'picky', [echo, search], { max_iterations: 5, allowed_tools: ['echo', 'search_docs'] }),
          agent('spender', 'spend', [echo], { max_iterations: 5, token_budget: 100 }),
          agent('sleeper', 'slow', [echo], { max_iterations: 5, timeout_seconds: 600 }),
          agent('ticketer', 'ticket', [ticket], { max_iterations: 5 }),
        ],
      }),
    );
    const routes = Object.fromEntries(
      MODELS.map((m) => [`local/agent-${m}`, { provider: 'ollama', providerModel: `agent-${m}`, baseUrl: llm.url, timeouts: { firstTokenMs: 3000, idleMs: 3000, totalMs: 5000 } }]),
    );
    platform = await startTestPlatform({
      database: 'postgres',
      env: {
        AGENTS_FILE: agentsFile,
        MCP_SERVERS: JSON.stringify({ docs: { url: mcp.url, headers: { Authorization: { env: 'AGENTS_E2E_MCP_TOKEN', prefix: 'Bearer ' } } } }),
        MODEL_ROUTES: JSON.stringify({ routes }),
      },
    });
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });

  after(async () => {
    await client?.connection.close();
    await platform?.stop();
    await llm?.close();
    await mcp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function startRun(name: string, step: Record<string, unknown>, input: unknown = { topic: 'durable agents' }): Promise<string> {
    const registered = await platform.api('/v1/definitions', { method: 'POST', json: { name, version: '1.0.0', steps: [{ id: 'think', type: 'agent', ...step }] } });
    assert.ok(registered.status === 201 || registered.status === 200, JSON.stringify(registered.body));
    const started = await platform.api('/v1/runs', { method: 'POST', json: { definition: name, input } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    return started.body.runId as string;
  }

  const toolMessages = (model: string) =>
    llm.requestsFor(model).map((r) => (r.messages as Array<{ role: string; content: string }>).filter((m) => m.role === 'tool').map((m) => m.content));

  /** Activity summaries of a workflow's history (what Temporal Web shows per event). */
  async function summaries(workflowId: string): Promise<string[]> {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    return events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => {
        const data = e.userMetadata?.summary?.data;
        return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as string) : '';
      });
  }

  test('an agent calls a skill and an MCP tool, then answers; result and transcript are in the step output', async () => {
    llm.script('agent-happy', toolCalls([{ name: 'echo', arguments: { note: 'first' } }]), toolCalls([{ name: 'search_docs', arguments: { query: 'guardrails' } }]), reply('Guardrails are documented in agents.md.'));
    const runId = await startRun('agent-happy', { agent: 'researcher', inputs: { topic: 'guardrails' } });
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    const step = view.steps.find((s: any) => s.id === 'think');
    const result = step.output;
    assert.equal(result.output, 'Guardrails are documented in agents.md.');
    assert.equal(result.iterations, 3);
    assert.deepEqual(result.routes, ['local/agent-happy', 'local/agent-happy', 'local/agent-happy']);
    assert.deepEqual(
      result.toolCalls.map((c: any) => [c.iteration, c.name, c.status]),
      [
        [1, 'echo', 'ok'],
        [2, 'search_docs', 'ok'],
      ],
    );
    assert.deepEqual(result.toolCalls[0].result, { note: 'first' });
    assert.match(result.toolCalls[1].result, /2 hits for "guardrails"/);
    assert.ok(result.usage.inputTokens > 0 && result.usage.outputTokens > 0);

    // The MCP double saw the call, with the bearer token from the secret reference and the idempotency key.
    const agentId = `${runId}/think`;
    happyAgentId = agentId;
    const call = mcp.calls.find((c) => c.tool === 'search_docs');
    assert.deepEqual(call?.arguments, { query: 'guardrails' });
    assert.equal(call?.headers.authorization, 'Bearer mcp-test-token');
    assert.equal(call?.meta?.idempotencyKey, `${agentId}/tool/${result.toolCalls[1].id}`);

    // The model saw the system prompt, the tools, the input and each tool's result.
    const requests = llm.requestsFor('agent-happy');
    assert.equal(requests.length, 3);
    const first = requests[0]!.messages as Array<{ role: string; content: string }>;
    assert.equal(first[0]?.role, 'system');
    assert.match(first[1]?.content ?? '', /"topic": "guardrails"/);
    assert.deepEqual((requests[0]!.tools as Array<{ function: { name: string } }>).map((t) => t.function.name), ['echo', 'search_docs']);
    assert.deepEqual(toolMessages('agent-happy')[2], ['{"note":"first"}', '2 hits for "guardrails": runbook.md, agents.md']);

    // Temporal Web: one activity per call, summarised by agent, turn and model or tool.
    assert.deepEqual(await summaries(agentId), [
      'agent researcher · turn 1 · model local/agent-happy',
      'tool echo · agent researcher · turn 1',
      'agent researcher · turn 2 · model local/agent-happy',
      'tool search_docs · agent researcher · turn 2',
      'agent researcher · turn 3 · model local/agent-happy',
    ]);
    const metadata = (await client.workflow.getHandle(agentId).query('__temporal_workflow_metadata')) as { currentDetails?: string };
    assert.match(metadata.currentDetails ?? '', /## agent researcher · model local\/agent-happy\n\*\*answered in 3 turn\(s\)/);
    assert.match(metadata.currentDetails ?? '', /- ✓ `search_docs` \{"query":"guardrails"\} → 2 hits/);
  });

  test('the agent workflow replays its own history deterministically', async (t) => {
    if (!happyAgentId) return t.skip('the first test did not run');
    const history = await client.workflow.getHandle(happyAgentId).fetchHistory();
    const bundlePath = process.env.WORKFLOW_BUNDLE_PATH as string;
    await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath } }, history, happyAgentId);
  });

  test('max_iterations: a model that never answers ends the run with AgentMaxIterations', async () => {
    llm.setDefault('agent-loop', toolCalls([{ name: 'echo', arguments: { again: true } }]));
    const runId = await startRun('agent-loop', { agent: 'looper', guardrails: { max_iterations: 2 } });
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'failed');
    assert.match(JSON.stringify(view.error), /AgentMaxIterations/);
    assert.match(view.error.message, /did not answer within 2 turn\(s\)/);
    assert.equal(llm.requestsFor('agent-loop').length, 2, 'the step tightened the agent from 10 turns to 2');
  });

  test('allowed_tools: a disallowed call is not run; the model is told it was refused', async () => {
    const before = mcp.calls.length;
    llm.script('agent-picky', toolCalls([{ name: 'search_docs', arguments: { query: 'secrets' } }]), reply('I may only echo.'));
    const runId = await startRun('agent-picky', { agent: 'picky', guardrails: { allowed_tools: ['echo'] } });
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    const result = view.steps.find((s: any) => s.id === 'think').output;
    assert.deepEqual(result.toolCalls.map((c: any) => [c.name, c.status]), [['search_docs', 'refused']]);
    assert.equal(mcp.calls.length, before, 'the MCP server was not called');
    const refusal = toolMessages('agent-picky')[1]?.[0] ?? '';
    assert.match(refusal, /Refused: the tool "search_docs" is not allowed in this run \(allowed: echo\)\. The call was not run\./);
    // Only the allowed tool was offered.
    assert.deepEqual((llm.requestsFor('agent-picky')[0]!.tools as Array<{ function: { name: string } }>).map((t) => t.function.name), ['echo']);
  });

  test('token budget: spending past it ends the run with AgentTokenBudgetExceeded', async () => {
    llm.script('agent-spend', toolCalls([{ name: 'echo', arguments: {} }]), reply('A very long answer', { usage: { inputTokens: 80, outputTokens: 40 } }));
    const runId = await startRun('agent-spend', { agent: 'spender' });
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'failed');
    assert.match(JSON.stringify(view.error), /AgentTokenBudgetExceeded/);
    assert.match(view.error.message, /over its budget of 100/);
  });

  test('timeout: the wall-clock limit cancels a hanging turn and ends the run with AgentTimeout', async () => {
    llm.script('agent-slow', hang());
    const started = Date.now();
    const runId = await startRun('agent-slow', { agent: 'sleeper', guardrails: { timeout: 2 } });
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'failed');
    assert.match(JSON.stringify(view.error), /AgentTimeout/);
    assert.match(view.error.message, /did not finish within 2s/);
    assert.ok(Date.now() - started < 15_000, 'the timer, not the model timeouts, ended it');
  });

  async function pendingInInbox(agentId: string, key: string): Promise<any> {
    for (let i = 0; i < 200; i += 1) {
      const inbox = (await platform.api('/v1/approvals', { key })).body.approvals.filter((a: any) => a.runId === agentId);
      if (inbox.length > 0) return inbox[0];
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no pending approval for ${agentId} in the inbox`);
  }

  test('a high-risk tool waits for an approval through the API, then runs', async () => {
    const before = mcp.calls.filter((c) => c.tool === 'create_ticket').length;
    llm.script('agent-ticket', toolCalls([{ name: 'create_ticket', arguments: { title: 'Broken build' } }]), reply('Opened TICKET-7.'));
    const runId = await startRun('agent-ticket', { agent: 'ticketer' });
    const agentId = `${runId}/think`;
    const item = await pendingInInbox(agentId, KEYS.bob);
    assert.equal(item.step, 'create_ticket');
    assert.match(item.summary, /Agent ticketer wants to call create_ticket with \{"title":"Broken build"\}/);
    assert.equal(item.definition.name, 'agent-ticket');
    assert.equal(mcp.calls.filter((c) => c.tool === 'create_ticket').length, before, 'nothing ran before the approval');
    // Not an approver: refused with 403; the tool still waits.
    const refused = await platform.api(`/v1/runs/${encodeURIComponent(agentId)}/approvals/create_ticket`, { method: 'POST', key: KEYS.dave, json: { decision: 'approve' } });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));

    const answer = await platform.api(`/v1/runs/${encodeURIComponent(agentId)}/approvals/create_ticket`, { method: 'POST', key: KEYS.bob, json: { decision: 'approve', comment: 'ok' } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.status, 'approved');
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    const result = view.steps.find((s: any) => s.id === 'think').output;
    assert.deepEqual(result.toolCalls.map((c: any) => [c.name, c.status, c.result]), [['create_ticket', 'ok', { ticket: 'TICKET-7' }]]);
    assert.equal(mcp.calls.filter((c) => c.tool === 'create_ticket').length, before + 1);
    const desc = await client.workflow.getHandle(agentId).describe();
    assert.deepEqual(desc.searchAttributes.PendingApprovers ?? [], []);
    // The decision is in the agent run's audit trail (the refused attempt too, written by the API).
    const audit = (await platform.api(`/v1/runs/${encodeURIComponent(agentId)}/audit`)).body.entries;
    assert.deepEqual(
      audit.map((e: any) => [e.principal, e.decision, e.outcome, e.via]).sort(),
      [
        ['bob', 'approve', 'accepted', 'api'],
        ['dave', 'approve', 'refused', 'api'],
      ],
    );
  });

  test('the Temporal UI path: an approval signal on the agent workflow lets the high-risk tool run', async () => {
    const before = mcp.calls.filter((c) => c.tool === 'create_ticket').length;
    llm.script('agent-ticket', toolCalls([{ name: 'create_ticket', arguments: { title: 'Rotate keys' } }]), reply('Opened TICKET-7.'));
    const runId = await startRun('agent-ticket-3', { agent: 'ticketer' });
    const agentId = `${runId}/think`;
    await pendingInInbox(agentId, KEYS.bob);
    // What the UI's signal form sends: the payload carol's inbox offers, with her decision token.
    const offered = await pendingInInbox(agentId, KEYS.carol);
    assert.equal(offered.signal.input.approver, 'carol');
    await client.workflow.getHandle(agentId).signal('approval', offered.signal.input);
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    assert.deepEqual(view.steps.find((s: any) => s.id === 'think').output.toolCalls.map((c: any) => c.status), ['ok']);
    assert.equal(mcp.calls.filter((c) => c.tool === 'create_ticket').length, before + 1);
  });

  test('cancelling the run cancels the agent and closes its pending approval', async () => {
    llm.script('agent-ticket', toolCalls([{ name: 'create_ticket', arguments: { title: 'Never' } }]));
    const runId = await startRun('agent-ticket-4', { agent: 'ticketer' });
    const agentId = `${runId}/think`;
    await pendingInInbox(agentId, KEYS.bob);
    const cancelled = await platform.api(`/v1/runs/${runId}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 202, JSON.stringify(cancelled.body));
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'cancelled');
    const desc = await client.workflow.getHandle(agentId).describe();
    assert.equal(desc.status.name, 'CANCELLED');
    assert.deepEqual(desc.searchAttributes.PendingApprovers ?? [], []);
    const inbox = (await platform.api('/v1/approvals', { key: KEYS.bob })).body.approvals.filter((a: any) => a.runId === agentId);
    assert.deepEqual(inbox, []);
  });

  test('a rejected high-risk call is not run and the model is told it was rejected', async () => {
    const before = mcp.calls.filter((c) => c.tool === 'create_ticket').length;
    llm.script('agent-ticket', toolCalls([{ name: 'create_ticket', arguments: { title: 'Delete prod' } }]), reply('Understood, no ticket.'));
    const runId = await startRun('agent-ticket-2', { agent: 'ticketer' });
    const agentId = `${runId}/think`;
    await pendingInInbox(agentId, KEYS.carol);
    const answer = await platform.api(`/v1/runs/${encodeURIComponent(agentId)}/approvals/create_ticket`, { method: 'POST', key: KEYS.carol, json: { decision: 'reject', comment: 'too risky' } });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const view = await platform.waitForRun(runId, 60_000);
    assert.equal(view.status, 'completed', JSON.stringify(view.error));
    const result = view.steps.find((s: any) => s.id === 'think').output;
    assert.deepEqual(result.toolCalls.map((c: any) => [c.name, c.status]), [['create_ticket', 'rejected']]);
    assert.equal(mcp.calls.filter((c) => c.tool === 'create_ticket').length, before, 'the tool did not run');
    const messages = toolMessages('agent-ticket');
    assert.match(messages[messages.length - 1]?.[0] ?? '', /Rejected: a human did not approve this call to "create_ticket" \(rejected by carol: too risky\)/);
    assert.equal(result.output, 'Understood, no ticket.');
  });
});
