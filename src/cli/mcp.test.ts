import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliOpsFixture } from '../../test/helpers/cli-ops.js';
import type { Store } from '../store/store.js';
import { runMcpCommand } from './mcp.js';

let store: Store;
let ops: ReturnType<typeof cliOpsFixture>['ops'];
const now = () => 5_000_000;

beforeEach(() => {
  ({ store, ops } = cliOpsFixture(now));
});
afterEach(() => store.close());

const mcp = (...args: string[]) => runMcpCommand(args, ops());

describe('warren mcp', () => {
  it('add, list and remove a server; the change is audited as the CLI', async () => {
    expect(await mcp('list', 'sales')).toEqual({ code: 0, text: "Group 'sales' has no MCP servers." });
    expect(await mcp('add', 'sales', 'crm', 'https://crm.example.com:8443/mcp')).toEqual({
      code: 0,
      text:
        "Group 'sales' has MCP server 'crm' at https://crm.example.com:8443/mcp from its agent's next run; " +
        'crm.example.com:8443 is not on its allowlist yet: `warren net allow sales crm.example.com:8443` lets the ' +
        'agent reach it.',
    });
    expect(await mcp('list', 'sales')).toEqual({
      code: 0,
      text: "MCP servers of group 'sales':\n  crm  https://crm.example.com:8443/mcp",
    });
    expect(store.audit.recent(1)[0]).toMatchObject({ actor: 'cli', action: 'mcp-add', groupFolder: 'sales' });
    expect(await mcp('remove', 'sales', 'crm')).toMatchObject({
      code: 0,
      text: /no MCP server 'crm' any more/,
    });
    expect(store.egress.mcpServers('sales')).toEqual([]);
  });

  it('a refusal exits 1; a missing or extra argument or an unknown verb is a usage error (2), changing nothing', async () => {
    expect(await mcp('add', 'sales', 'crm', 'https://me:pw@crm.example.com/mcp')).toMatchObject({
      code: 1,
      text: /must not hold a user name or password/,
    });
    expect(await mcp('remove', 'sales', 'crm')).toMatchObject({ code: 1, text: /has no MCP server 'crm'/ });
    expect(await mcp('list', 'nope')).toEqual({
      code: 1,
      text: "no group 'nope' (see `warren groups list`)",
    });
    for (const args of [
      ['add', 'sales', 'crm'],
      ['add', 'sales', 'crm', 'https://crm.example.com', 'extra'],
      ['remove', 'sales'],
      ['list'],
      ['show', 'sales'],
    ]) {
      expect((await mcp(...args)).code, args.join(' ')).toBe(2);
    }
    expect(store.egress.mcpServers('sales')).toEqual([]);
  });
});
