import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AgentRegistryError, loadAgentRegistry, validateAgents } from '../../activities/agents/registry.ts';
import { loadMcpServers } from '../../activities/agents/mcp.ts';
import type { AgentDefinition } from '../../activities/agents/types.ts';
import { createActivityCatalog } from '../../activities/catalog.ts';
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
} from '../../workflows/agent.ts';

const agent: AgentDefinition = {
  name: 'researcher',
  description: 'Looks things up',
  model: 'local/qwen-14b',
  system_prompt: 'You research.',
  tools: [
    { name: 'echo', kind: 'skill', description: 'Echo' },
    { name: 'search_docs', kind: 'mcp', server: 'docs' },
    { name: 'create_ticket', kind: 'mcp', server: 'docs', risk: 'high', approvers: ['group:finance', 'abby'] },
  ],
  guardrails: { max_iterations: 10, allowed_tools: ['echo', 'search_docs', 'create_ticket'], token_budget: 5000, timeout_seconds: 600 },
};

describe('agent guardrails', () => {
  test('a step tightens the agent: lower limits win, allowed tools narrow, never widen', () => {
    assert.deepEqual(effectiveGuardrails(agent.guardrails, { max_iterations: 3, allowed_tools: ['echo', 'fs_write'], max_tokens: 100, timeout: 30 }), {
      max_iterations: 3,
      allowed_tools: ['echo'],
      token_budget: 100,
      timeout_seconds: 30,
    });
    assert.deepEqual(effectiveGuardrails(agent.guardrails, { max_iterations: 50, token_budget: 9999, timeout_seconds: 9999 }), agent.guardrails);
    assert.deepEqual(effectiveGuardrails({ max_iterations: 5 }, { allowed_tools: ['echo'] }), { max_iterations: 5, allowed_tools: ['echo'] });
    assert.deepEqual(effectiveGuardrails({ max_iterations: 5 }, undefined), { max_iterations: 5 });
  });

  test('disallowed and unknown tools are refused with a message for the model; only allowed tools are offered', () => {
    const g = effectiveGuardrails(agent.guardrails, { allowed_tools: ['echo'] });
    assert.deepEqual(offeredTools(agent, g).map((t) => t.name), ['echo']);
    assert.equal(checkToolCall(agent, g, 'echo').run, true);
    const refused = checkToolCall(agent, g, 'search_docs');
    assert.equal(refused.run, false);
    assert.match(refused.run ? '' : refused.reason, /not allowed in this run \(allowed: echo\)\. The call was not run/);
    const unknown = checkToolCall(agent, g, 'rm_rf');
    assert.match(unknown.run ? '' : unknown.reason, /not a tool of this agent/);
    assert.match(offeredTools(agent, agent.guardrails).find((t) => t.name === 'create_ticket')?.description ?? '', /high risk/);
  });

  test('helpers: input message, tool content bounds, MCP text, approvers', () => {
    assert.equal(userMessageFor('hello'), 'hello');
    assert.match(userMessageFor({ topic: 'x' }), /^Input \(JSON\):\n\{\n {2}"topic": "x"\n\}$/);
    assert.equal(toolMessageContent({ a: 1 }), '{"a":1}');
    assert.match(toolMessageContent('x'.repeat(25_000)), /\[cut: 5000 more characters\]$/);
    assert.equal(mcpResultText({ content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }], isError: false }), 'a\nb');
    assert.deepEqual(mcpResultText({ content: [], structuredContent: { ticket: 'T-1' } }), { ticket: 'T-1' });
    assert.deepEqual(approverSetOf(['group:finance', 'user:bob', 'abby']), { principals: ['bob', 'abby'], groups: ['finance'] });
  });

  test('a final JSON answer is parsed (fenced or bare) and checked for type and required fields', () => {
    const schema = { type: 'object', required: ['summary'] };
    assert.deepEqual(parseFinalJson('{"summary": "ok"}', schema), { ok: true, value: { summary: 'ok' } });
    assert.deepEqual(parseFinalJson('Here:\n```json\n{"summary": "ok"}\n```', schema), { ok: true, value: { summary: 'ok' } });
    assert.deepEqual(parseFinalJson('{"other": 1}', schema), { ok: false, reason: 'missing required field(s): summary' });
    assert.deepEqual(parseFinalJson('[1]', schema), { ok: false, reason: 'expected a JSON object, got array' });
    assert.deepEqual(parseFinalJson('sure thing', schema), { ok: false, reason: 'the answer is not JSON' });
  });

  test('the transcript shows turns, tool calls and refusals', () => {
    const md = transcriptMarkdown(
      agent,
      agent.guardrails,
      [
        { iteration: 1, route: 'local/qwen-14b', text: '', usage: { inputTokens: 10, outputTokens: 2 } },
        { iteration: 2, route: 'local/mistral-small', text: 'All done.' },
      ],
      [
        { iteration: 1, id: 'c1', name: 'echo', arguments: { a: 1 }, status: 'ok', result: { a: 1 } },
        { iteration: 1, id: 'c2', name: 'rm', arguments: {}, status: 'refused', result: 'Refused: no' },
      ],
      'answered',
    );
    assert.match(md, /^## agent researcher · model local\/qwen-14b\n\*\*answered\*\* · max 10 turns · 5000 tokens · 600s/);
    assert.match(md, /### turn 1 · local\/qwen-14b · 10\+2 tokens\n- ✓ `echo` \{"a":1\} → \{"a":1\}\n- ⊘ refused `rm` \{\} → Refused: no/);
    assert.match(md, /### turn 2 · local\/mistral-small\n> All done\./);
  });
});

describe('agent registry', () => {
  const catalog = createActivityCatalog({ HTTP_FETCH_ALLOWED_HOSTS: [] });
  const dir = mkdtempSync(join(tmpdir(), 'agents-'));

  test('a YAML agents file loads; skill tools get their parameters from the skill schema', () => {
    const file = join(dir, 'agents.yaml');
    writeFileSync(
      file,
      [
        'agents:',
        '  - name: fetcher',
        '    description: Fetches pages',
        '    model: local/qwen-14b',
        '    system_prompt: Fetch.',
        '    tools:',
        '      - { name: fetch, kind: skill, target: http-fetch }',
        '      - { name: search_docs, kind: mcp, server: docs, risk: high, approvers: ["group:finance"] }',
        '    guardrails: { max_iterations: 5, allowed_tools: [fetch] }',
      ].join('\n'),
    );
    const registry = loadAgentRegistry({ AGENTS_FILE: file, MCP_SERVERS: JSON.stringify({ docs: { url: 'http://127.0.0.1:1/mcp' } }) }, catalog);
    assert.deepEqual([...registry.names()], ['fetcher']);
    const fetch = registry.get('fetcher')?.tools[0];
    assert.equal((fetch?.parameters as { type?: string } | undefined)?.type, 'object');
    assert.ok(Object.keys((fetch?.parameters as { properties: object }).properties).includes('url'));
  });

  test('every problem is reported with its JSON pointer', () => {
    const { problems } = validateAgents(
      [
        {
          name: 'a',
          description: 'x',
          model: 'm',
          system_prompt: 's',
          tools: [
            { name: 'nope', kind: 'skill' },
            { name: 'm1', kind: 'mcp' },
            { name: 'm2', kind: 'mcp', server: 'elsewhere' },
            { name: 'nope', kind: 'integration', target: 'http.request', approvers: ['bob'] },
          ],
          guardrails: { max_iterations: 5, allowed_tools: ['ghost'] },
        },
        { name: 'b', description: 'x', model: 'm', system_prompt: 's', guardrails: { max_iterations: 1000 } },
        { name: 'a', description: 'x', model: 'm', system_prompt: 's', guardrails: { max_iterations: 1 } },
      ],
      { catalog, mcpServers: {}, models: new Set(['m']) },
      '/agents',
    );
    assert.deepEqual(
      problems.map((p) => p.pointer),
      [
        '/agents/0/tools/0/name',
        '/agents/0/tools/1/server',
        '/agents/0/tools/2/server',
        '/agents/0/tools/3/name',
        '/agents/0/tools/3/approvers',
        '/agents/0/guardrails/allowed_tools/0',
        '/agents/1/guardrails/max_iterations',
        '/agents/2/name',
      ],
    );
    assert.match(problems[0]?.message ?? '', /unknown skill "nope"/);
    assert.match(problems[2]?.message ?? '', /no MCP server "elsewhere" is configured/);
  });

  test('an agent naming a model the routing table lacks is refused', () => {
    const { problems } = validateAgents([{ name: 'x', description: 'd', model: 'local/nope', system_prompt: 's', guardrails: { max_iterations: 1 } }], {
      models: new Set(['local/qwen-14b', 'default']),
    });
    assert.deepEqual(problems, [{ pointer: '/0/model', message: 'unknown model "local/nope"; routes and aliases: default, local/qwen-14b' }]);
  });

  test('a bad file fails loading with every pointer in the message', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify([{ name: 'x', description: 'd', model: 'm', system_prompt: 's', guardrails: { max_iterations: 0 } }]));
    assert.throws(
      () => loadAgentRegistry({ AGENTS_FILE: file }, catalog),
      (error: unknown) => error instanceof AgentRegistryError && /\/0\/guardrails\/max_iterations/.test(error.message),
    );
    assert.equal(loadAgentRegistry({}).names().size, 0);
  });

  test('MCP servers: JSON with secret references; mistakes name their path', () => {
    assert.deepEqual(loadMcpServers({ MCP_SERVERS: JSON.stringify({ docs: { url: 'http://127.0.0.1:9/mcp', headers: { Authorization: { env: 'DOCS_TOKEN' } } } }) }), {
      docs: { url: 'http://127.0.0.1:9/mcp', headers: { Authorization: { env: 'DOCS_TOKEN' } } },
    });
    assert.throws(() => loadMcpServers({ MCP_SERVERS: JSON.stringify({ docs: { url: 'ftp://x' } }) }), /\/docs\/url/);
    assert.deepEqual(loadMcpServers({}), {});
  });
});
