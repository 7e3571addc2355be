// A remote MCP server for the tests: the MCP SDK's own streamable HTTP transport (stateless, JSON answers) over
// HTTPS on loopback, with one tool, `lookup`. It answers only a request that carries the expected bearer token, and
// records the Authorization header of each request, so a test can see what the egress gateway added.
import { once } from 'node:events';
import https from 'node:https';
import type net from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export interface FakeMcpServer {
  port: number;
  /** The Authorization header of every request, in order. */
  authorizations: Array<string | undefined>;
  /** How many times the lookup tool ran. */
  lookups: number;
  close(): void;
}

export async function startFakeMcpServer(options: {
  key: string;
  cert: string;
  token: string;
  answer: string;
}): Promise<FakeMcpServer> {
  const state = { authorizations: [] as Array<string | undefined>, lookups: 0 };
  const server = https.createServer({ key: options.key, cert: options.cert }, async (req, res) => {
    state.authorizations.push(req.headers.authorization);
    if (req.headers.authorization !== `Bearer ${options.token}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
      return;
    }
    let text = '';
    for await (const chunk of req) text += chunk;
    const mcp = new McpServer({ name: 'fake-crm', version: '1.0.0' });
    mcp.registerTool('lookup', { description: 'Look up the newest lead in the CRM.' }, async () => {
      state.lookups++;
      return { content: [{ type: 'text', text: options.answer }] };
    });
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, text ? JSON.parse(text) : undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get authorizations() {
      return state.authorizations;
    },
    get lookups() {
      return state.lookups;
    },
    close: () => server.close(),
  };
}
