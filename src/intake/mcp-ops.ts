// The owner's operations on a group's remote MCP servers (streamable HTTP), for the one table in owner-ops.ts. The
// agent reaches them through the egress gateway like any host: the server's host must be allowed (warren net allow),
// and its credentials are a secret bound to that host (warren secrets bind), never part of the URL.
import { decide, normalizeHost } from '../sandbox/egress/policy.js';
import type { Group } from '../store/records.js';
import { type Store, StoreError } from '../store/store.js';
import { shown } from './net-ops.js';

/** A group's remote MCP servers: add (or replace the one of that name), remove, list. */
export type McpOp =
  | { op: 'mcp-add'; folder: string; name: string; url: string }
  | { op: 'mcp-remove'; folder: string; name: string }
  | { op: 'mcp-list'; folder: string };

// The name becomes part of the agent's tool names (mcp__NAME__tool); 'warren' is Warren's own tools' server.
const NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const MAX_URL = 2000;
const MAX_SERVERS = 10;

function parseUrl(text: string): URL {
  if (text.length > MAX_URL) throw new StoreError(`the URL is longer than ${MAX_URL} characters`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StoreError(`'${text}' is not a URL: give one like https://mcp.example.com/mcp`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new StoreError(`'${text}' is not an https:// or http:// URL`);
  // The URL is shown in lists and passed into the container: a credential must be a secret the gateway adds.
  if (url.username || url.password)
    throw new StoreError(
      'a URL must not hold a user name or password: bind a secret to its host instead (`warren secrets bind`)',
    );
  return url;
}

/** Runs one operation on an existing group's MCP servers; the agent is given them from its next run. */
export function mcpOp(store: Store, { folder }: Group, request: McpOp, now: number) {
  const servers = store.egress.mcpServers(folder);
  if (request.op === 'mcp-list') {
    if (servers.length === 0) return { text: `Group '${folder}' has no MCP servers.` };
    const lines = servers.map((server) => `  ${server.name}  ${server.url}`);
    return { text: [`MCP servers of group '${folder}':`, ...lines].join('\n') };
  }
  const { name } = request;
  const before = servers.find((server) => server.name === name);
  if (request.op === 'mcp-remove') {
    if (!store.egress.removeMcpServer(folder, name))
      throw new StoreError(
        `group '${folder}' has no MCP server '${name}' (see \`warren mcp list ${folder}\`)`,
      );
    return {
      text: `Group '${folder}' has no MCP server '${name}' any more, from its agent's next run.`,
      detail: { url: before?.url },
    };
  }
  if (!NAME.test(name))
    throw new StoreError(
      `'${name}' is not a server name: a lower-case letter, then up to 31 letters, digits, _ or -`,
    );
  if (name === 'warren') throw new StoreError("'warren' is reserved: it is the name of Warren's own tools");
  const url = parseUrl(request.url);
  if (!before && servers.length >= MAX_SERVERS)
    throw new StoreError(`group '${folder}' has ${MAX_SERVERS} MCP servers already: remove one first`);
  // Stored as parsed (spaces trimmed, host lower-cased): the URL checked here is the one the agent is given.
  store.egress.setMcpServer(folder, name, url.href, now);
  // As the gateway will see the connection: the host normalized (an IPv6 address unbracketed), the scheme's port.
  const host = normalizeHost(url.hostname) ?? url.hostname;
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const where = shown(host, port);
  const reach = decide(store.egress.of(folder), host, port).isAllowed
    ? `${where} is on its allowlist`
    : `${where} is not on its allowlist yet: \`warren net allow ${folder} ${where}\` lets the agent reach it`;
  const replaced = before ? ` (instead of ${before.url})` : '';
  return {
    text: `Group '${folder}' has MCP server '${name}' at ${url.href}${replaced} from its agent's next run; ${reach}.`,
    detail: { replaced: before?.url },
  };
}
