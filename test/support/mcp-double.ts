/**
 * A loopback MCP server built with the official SDK's server classes (McpServer over the
 * Streamable HTTP transport on node:http, stateless: one server and transport per request), so the
 * platform's MCP client speaks the real protocol to it. It exposes a few tools and records every
 * call with its arguments, `_meta` and request headers.
 *
 *   const mcp = await startMcpDouble();
 *   ... MCP_SERVERS = JSON.stringify({ docs: { url: mcp.url } }) ...
 *   mcp.calls   // [{ tool: 'search_docs', arguments: { query: 'x' }, meta: {...}, headers: {...} }]
 *   await mcp.close();
 *
 * Tools: `search_docs {query}` → text hits; `create_ticket {title}` → a ticket id (structured
 * content); `fail_always {}` → a tool error (`isError: true`).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface McpCallRecord {
  tool: string;
  arguments: Record<string, unknown>;
  meta: Record<string, unknown> | undefined;
  headers: IncomingHttpHeaders;
}

export interface McpDouble {
  /** The Streamable HTTP endpoint (`/mcp`). */
  url: string;
  calls: McpCallRecord[];
  /** Every HTTP request's headers (initialize, notifications and calls). */
  requests: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startMcpDouble(options: { requireBearer?: string } = {}): Promise<McpDouble> {
  const calls: McpCallRecord[] = [];
  const requests: IncomingHttpHeaders[] = [];

  const serverFor = (headers: IncomingHttpHeaders) => {
    const server = new McpServer({ name: 'mcp-double', version: '1.0.0' });
    const record = (tool: string, args: Record<string, unknown>, meta: Record<string, unknown> | undefined) => calls.push({ tool, arguments: args, meta, headers });
    server.registerTool(
      'search_docs',
      { description: 'Searches the documentation.', inputSchema: { query: z.string() } },
      async (args, extra) => {
        record('search_docs', args, extra._meta as Record<string, unknown> | undefined);
        return { content: [{ type: 'text', text: `2 hits for "${args.query}": runbook.md, agents.md` }] };
      },
    );
    server.registerTool(
      'create_ticket',
      { description: 'Opens a ticket.', inputSchema: { title: z.string() }, outputSchema: { ticket: z.string() } },
      async (args, extra) => {
        record('create_ticket', args, extra._meta as Record<string, unknown> | undefined);
        return { content: [{ type: 'text', text: 'TICKET-7' }], structuredContent: { ticket: 'TICKET-7' } };
      },
    );
    server.registerTool('fail_always', { description: 'Always reports an error.', inputSchema: {} }, async (args, extra) => {
      record('fail_always', args, extra._meta as Record<string, unknown> | undefined);
      return { content: [{ type: 'text', text: 'the backend is down' }], isError: true };
    });
    return server;
  };

  const http = createServer((req, res) => {
    requests.push(req.headers);
    if (options.requireBearer && req.headers.authorization !== `Bearer ${options.requireBearer}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthorized' }));
      return;
    }
    if (!req.url?.startsWith('/mcp')) {
      res.writeHead(404).end();
      return;
    }
    const server = serverFor(req.headers);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    server
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
