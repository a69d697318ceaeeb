import { readFileSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/activity';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Config } from '../../common/config.ts';
import { defineSkill, type SkillSpec } from '../skills/skill.ts';

/**
 * MCP server tools for agents: the activities `mcp.callTool` and `mcp.listTools` on the lane's
 * `agents` queue, talking to servers configured by name (MCP_SERVERS / MCP_SERVERS_FILE) through
 * the official SDK's Client over the Streamable HTTP transport. Header values may reference
 * secrets (`{"env": "NAME", "prefix": "Bearer "}` or `{"file": "/path"}`) so tokens stay out of
 * config files and logs.
 */
export const MCP_CALL_TOOL = 'mcp.callTool';
export const MCP_LIST_TOOLS = 'mcp.listTools';
export const MCP_ACTIVITY_NAMES: readonly string[] = [MCP_CALL_TOOL, MCP_LIST_TOOLS];

/** A header value: literal, or read from an environment variable or a file; `prefix` e.g. `Bearer `. */
const secretRef = z.union([
  z.string(),
  z.strictObject({ env: z.string().min(1), prefix: z.string().max(100).optional() }),
  z.strictObject({ file: z.string().min(1), prefix: z.string().max(100).optional() }),
]);

const serverSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string().min(1), secretRef).optional(),
  /** Per-call limit; the activity's own start-to-close timeout bounds it too. @default 60 */
  timeout_seconds: z.number().int().min(1).max(3600).optional(),
});
export type McpServerConfig = z.infer<typeof serverSchema>;

const serversSchema = z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'server names are letters, digits, ".", "_" or "-"'), serverSchema);
export type McpServers = Record<string, McpServerConfig>;

/** Parses MCP_SERVERS (JSON) or the file MCP_SERVERS_FILE names; errors carry the JSON path. */
export function loadMcpServers(config: Pick<Config, 'MCP_SERVERS' | 'MCP_SERVERS_FILE'>): McpServers {
  let source: string;
  let text: string | undefined;
  if (config.MCP_SERVERS) {
    source = 'MCP_SERVERS';
    text = config.MCP_SERVERS;
  } else if (config.MCP_SERVERS_FILE) {
    source = `MCP_SERVERS_FILE (${config.MCP_SERVERS_FILE})`;
    text = readFileSync(config.MCP_SERVERS_FILE, 'utf8');
  } else {
    return {};
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: not JSON: ${(error as Error).message}`);
  }
  const parsed = serversSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `/${i.path.map(String).join('/')}: ${i.message}`);
    throw new Error(`${source} is invalid:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

/** Resolves a server's headers at call time (so a rotated secret file is picked up). */
function resolveHeaders(name: string, server: McpServerConfig): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [header, ref] of Object.entries(server.headers ?? {})) {
    if (typeof ref === 'string') headers[header] = ref;
    else if ('env' in ref) {
      const value = process.env[ref.env];
      if (value === undefined) throw ApplicationFailure.nonRetryable(`MCP server "${name}": header ${header} references environment variable ${ref.env}, which is not set`, 'McpConfigError');
      headers[header] = `${ref.prefix ?? ''}${value}`;
    } else {
      try {
        headers[header] = `${ref.prefix ?? ''}${readFileSync(ref.file, 'utf8').trim()}`;
      } catch (error) {
        throw ApplicationFailure.nonRetryable(`MCP server "${name}": header ${header} references a secret file that cannot be read: ${(error as Error).message}`, 'McpConfigError');
      }
    }
  }
  return headers;
}

/**
 * Classifies at the boundary: the server refusing the request (4xx but 429, unknown tool, bad
 * arguments) is permanent; 429, 5xx and network errors are retried by the activity's policy.
 */
function classify(server: string, tool: string, error: unknown): unknown {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof StreamableHTTPError && error.code !== undefined && error.code >= 400 && error.code < 500 && error.code !== 429 && error.code !== 408) {
    return ApplicationFailure.nonRetryable(`MCP server "${server}" refused the request (HTTP ${error.code}): ${error.message}`, 'McpRequestRefused');
  }
  if (error instanceof McpError && (error.code === ErrorCode.InvalidParams || error.code === ErrorCode.MethodNotFound || error.code === ErrorCode.InvalidRequest)) {
    return ApplicationFailure.nonRetryable(`MCP tool "${tool}" on "${server}": ${error.message}`, 'McpToolRefused');
  }
  return error;
}

async function withClient<T>(name: string, server: McpServerConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: resolveHeaders(name, server) } });
  const client = new Client({ name: 'durable-workflows-agent', version: '1.0.0' });
  await client.connect(transport);
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => undefined);
  }
}

const callInput = z.strictObject({
  server: z.string().min(1),
  tool: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()).default({}),
});
const callOutput = z.object({
  /** The tool's content blocks (text, images, resources) as the server sent them. */
  content: z.array(z.unknown()),
  structuredContent: z.unknown().optional(),
  /** True when the tool ran and reported an error (the model sees it; not retried). */
  isError: z.boolean(),
});

const listInput = z.strictObject({ server: z.string().min(1) });
const listOutput = z.object({
  tools: z.array(z.object({ name: z.string(), description: z.string().optional(), inputSchema: z.unknown() })),
});

function serverOf(servers: McpServers, name: string): McpServerConfig {
  const server = servers[name];
  if (!server) {
    throw ApplicationFailure.nonRetryable(`no MCP server "${name}" is configured (MCP_SERVERS: ${Object.keys(servers).join(', ') || 'none'})`, 'McpUnknownServer');
  }
  return server;
}

/** The MCP activities for the `agents` family (registered only when servers are configured). */
export function createMcpActivities(servers: McpServers): SkillSpec[] {
  const call = defineSkill({
    name: MCP_CALL_TOOL,
    description: 'Calls a tool on a configured MCP server (Streamable HTTP); the run\'s idempotency key travels in `_meta`.',
    input: callInput,
    output: callOutput,
    sideEffects: true,
    async handler(input, ctx) {
      const server = serverOf(servers, input.server);
      try {
        return await withClient(input.server, server, async (client) => {
          const result = await client.callTool(
            { name: input.tool, arguments: input.arguments, _meta: { idempotencyKey: ctx.meta.idempotencyKey } },
            undefined,
            { signal: ctx.signal, timeout: (server.timeout_seconds ?? 60) * 1000 },
          );
          ctx.logger.info({ server: input.server, tool: input.tool, isError: result.isError === true }, 'mcp tool called');
          return {
            content: Array.isArray(result.content) ? result.content : [],
            ...(result.structuredContent === undefined ? {} : { structuredContent: result.structuredContent }),
            isError: result.isError === true,
          };
        });
      } catch (error) {
        throw classify(input.server, input.tool, error);
      }
    },
  });
  const list = defineSkill({
    name: MCP_LIST_TOOLS,
    description: 'Lists the tools a configured MCP server offers.',
    input: listInput,
    output: listOutput,
    sideEffects: false,
    async handler(input, ctx) {
      const server = serverOf(servers, input.server);
      try {
        return await withClient(input.server, server, async (client) => {
          const { tools } = await client.listTools(undefined, { signal: ctx.signal, timeout: (server.timeout_seconds ?? 60) * 1000 });
          return { tools: tools.map((t) => ({ name: t.name, ...(t.description ? { description: t.description } : {}), inputSchema: t.inputSchema })) };
        });
      } catch (error) {
        throw classify(input.server, '(list)', error);
      }
    },
  });
  return [call, list];
}
