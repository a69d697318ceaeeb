import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createMcpActivities } from '../../activities/agents/mcp.ts';
import type { SkillContext, SkillSpec } from '../../activities/skills/skill.ts';
import { createLogger } from '../../common/logger.ts';
import { startMcpDouble, type McpDouble } from '../support/mcp-double.ts';

/** The MCP activities' boundary against the loopback MCP server (real Streamable HTTP), no Temporal. */
describe('MCP activities', () => {
  let mcp: McpDouble;
  let call: SkillSpec;
  let list: SkillSpec;
  // `as`: the context may carry more than the MCP handlers use (e.g. a heartbeat function).
  const ctx = (): SkillContext =>
    ({
      meta: { stepId: 's', definition: 'd', version: '1', lane: 'l', tenant: 't', correlationId: 'c', idempotencyKey: 'run-1/think/tool/call_1' },
      logger: createLogger('test', 'silent'),
      signal: new AbortController().signal,
      attempt: 1,
      heartbeat: () => undefined,
    }) as SkillContext;

  before(async () => {
    mcp = await startMcpDouble({ requireBearer: 'unit-token' });
    process.env.AGENT_MCP_UNIT_TOKEN = 'unit-token';
    [call, list] = createMcpActivities({
      docs: { url: mcp.url, headers: { Authorization: { env: 'AGENT_MCP_UNIT_TOKEN', prefix: 'Bearer ' } } },
      locked: { url: mcp.url },
    }) as [SkillSpec, SkillSpec];
  });
  after(() => mcp?.close());

  test('lists tools and calls one with the idempotency key in _meta', async () => {
    const tools = (await list.handler({ server: 'docs' }, ctx())) as { tools: Array<{ name: string }> };
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['create_ticket', 'fail_always', 'search_docs']);
    const result = await call.handler({ server: 'docs', tool: 'create_ticket', arguments: { title: 'x' } }, ctx());
    assert.deepEqual(result, { content: [{ type: 'text', text: 'TICKET-7' }], structuredContent: { ticket: 'TICKET-7' }, isError: false });
    assert.deepEqual(mcp.calls.at(-1)?.meta, { idempotencyKey: 'run-1/think/tool/call_1' });
  });

  test('a tool error comes back as isError (for the model), not as a failure', async () => {
    const result = (await call.handler({ server: 'docs', tool: 'fail_always', arguments: {} }, ctx())) as { isError: boolean };
    assert.equal(result.isError, true);
  });

  test('refusals are non-retryable with a type (unknown server, HTTP 401); an unknown tool is a tool error', async () => {
    const refused = async (input: unknown, type: string) =>
      assert.rejects(
        () => call.handler(input, ctx()),
        (e: unknown) => e instanceof ApplicationFailure && e.nonRetryable === true && e.type === type,
      );
    await refused({ server: 'nowhere', tool: 'x', arguments: {} }, 'McpUnknownServer');
    await refused({ server: 'locked', tool: 'search_docs', arguments: { query: 'q' } }, 'McpRequestRefused');
    // The SDK's server reports an unknown tool as a tool error: the model reads it and can recover.
    const unknownTool = (await call.handler({ server: 'docs', tool: 'no_such_tool', arguments: {} }, ctx())) as { isError: boolean; content: Array<{ text: string }> };
    assert.equal(unknownTool.isError, true);
    assert.match(unknownTool.content[0]?.text ?? '', /Tool no_such_tool not found/);
  });
});
