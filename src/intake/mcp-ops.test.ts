import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownerOpsFixture } from '../../test/helpers/owner-ops.js';
import type { AuditEntry, Store } from '../store/store.js';
import type { OwnerActor, OwnerOp, OwnerOps } from './owner-ops.js';

let store: Store;
let audits: AuditEntry[];
let ops: OwnerOps;
const NOW = 1_750_000_000_000;
const cli: OwnerActor = { kind: 'cli' };

beforeEach(() => {
  ({ store, audits, ops } = ownerOpsFixture(NOW));
});
afterEach(() => store.close());

const perform = (request: OwnerOp, actor: OwnerActor = cli) => ops.perform(request, actor);
const add = (name: string, url: string, folder = 'sales') => perform({ op: 'mcp-add', folder, name, url });
const servers = (folder = 'sales') =>
  store.egress.mcpServers(folder).map(({ name, url }) => `${name} ${url}`);

describe('MCP servers as owner operations', () => {
  it('add says whether the host is allowed now, naming the net allow command (the port from the scheme)', async () => {
    expect(await add('crm', 'https://crm.example.com/mcp')).toEqual({
      ok: true,
      text:
        "Group 'sales' has MCP server 'crm' at https://crm.example.com/mcp from its agent's next run; " +
        'crm.example.com:443 is not on its allowlist yet: `warren net allow sales crm.example.com:443` lets the ' +
        'agent reach it.',
    });
    await perform({ op: 'net-allow', folder: 'sales', host: '*.example.com' });
    expect((await add('docs', 'https://docs.example.com/mcp')).text).toMatch(
      /; docs\.example\.com:443 is on its allowlist\.$/,
    );
    // http is port 80 unless given; the rule for 443 does not cover it, a given port is checked as given.
    expect((await add('wiki', 'http://wiki.example.com/mcp')).text).toContain(
      '`warren net allow sales wiki.example.com:80`',
    );
    expect((await add('lan', 'http://[::1]:8080/mcp')).text).toContain('`warren net allow sales [::1]:8080`');
    expect((await add('up', ' HTTPS://Up.Example.COM:443/mcp ')).text).toMatch(
      /^Group 'sales' has MCP server 'up' at https:\/\/up\.example\.com\/mcp from .*; up\.example\.com:443 is on/,
    );
    expect(servers()).toEqual([
      'crm https://crm.example.com/mcp',
      'docs https://docs.example.com/mcp',
      'lan http://[::1]:8080/mcp',
      'up https://up.example.com/mcp',
      'wiki http://wiki.example.com/mcp',
    ]);
    expect(servers('main')).toEqual([]);
  });

  it('refuses a bad name, the reserved name, a URL that is not http(s), carries credentials or is too long', async () => {
    const cases: Array<[name: string, url: string, error: RegExp]> = [
      ['CRM', 'https://crm.example.com/mcp', /'CRM' is not a server name/],
      ['1crm', 'https://crm.example.com/mcp', /is not a server name/],
      ['crm.tools', 'https://crm.example.com/mcp', /is not a server name/],
      ['a'.repeat(33), 'https://crm.example.com/mcp', /is not a server name/],
      ['warren', 'https://crm.example.com/mcp', /'warren' is reserved/],
      ['crm', 'crm.example.com/mcp', /is not a URL/],
      ['crm', '/mcp', /is not a URL/],
      ['crm', 'ftp://crm.example.com/mcp', /is not an https:\/\/ or http:\/\/ URL/],
      [
        'crm',
        'https://user:pass@crm.example.com/mcp',
        /must not hold a user name or password.*warren secrets bind/,
      ],
      ['crm', 'https://token@crm.example.com/mcp', /must not hold a user name or password/],
      ['crm', `https://crm.example.com/${'a'.repeat(2000)}`, /longer than 2000 characters/],
    ];
    for (const [name, url, error] of cases) {
      expect(await add(name, url), `${name} ${url}`).toEqual({
        ok: false,
        text: expect.stringMatching(error),
      });
    }
    expect(servers()).toEqual([]);
    // At the limits: 32 characters of name, 2000 of URL.
    expect((await add('a'.repeat(32), `https://crm.example.com/${'a'.repeat(1976)}`)).ok).toBe(true);
    expect(await add('crm', 'https://crm.example.com', 'nope')).toEqual({
      ok: false,
      text: "no group 'nope' (see `warren groups list`)",
    });
  });

  it('at most 10 servers per group; adding one of the same name replaces it, also at the limit', async () => {
    for (let index = 0; index < 10; index++) {
      expect((await add(`s${index}`, `https://s${index}.example.com/mcp`)).ok).toBe(true);
    }
    expect(await add('s10', 'https://s10.example.com/mcp')).toEqual({
      ok: false,
      text: "group 'sales' has 10 MCP servers already: remove one first",
    });
    expect((await add('s10', 'https://s10.example.com/mcp', 'main')).ok).toBe(true); // another group's own ten
    expect((await add('s3', 'https://new.example.com/mcp')).text).toMatch(
      /^Group 'sales' has MCP server 's3' at https:\/\/new\.example\.com\/mcp \(instead of https:\/\/s3\.example\.com\/mcp\)/,
    );
    expect(servers()).toHaveLength(10);
    expect(servers()).toContain('s3 https://new.example.com/mcp');
  });

  it('remove takes one away and says when there is none; list shows name and URL, or that there are none', async () => {
    expect(await perform({ op: 'mcp-list', folder: 'sales' })).toEqual({
      ok: true,
      text: "Group 'sales' has no MCP servers.",
    });
    await add('crm', 'https://crm.example.com/mcp');
    await add('docs', 'https://docs.example.com/mcp?team=1');
    expect(await perform({ op: 'mcp-list', folder: 'sales' })).toEqual({
      ok: true,
      text: "MCP servers of group 'sales':\n  crm  https://crm.example.com/mcp\n  docs  https://docs.example.com/mcp?team=1",
    });
    expect(await perform({ op: 'mcp-remove', folder: 'sales', name: 'crm' })).toEqual({
      ok: true,
      text: "Group 'sales' has no MCP server 'crm' any more, from its agent's next run.",
    });
    expect(await perform({ op: 'mcp-remove', folder: 'sales', name: 'crm' })).toEqual({
      ok: false,
      text: "group 'sales' has no MCP server 'crm' (see `warren mcp list sales`)",
    });
    expect(servers()).toEqual(['docs https://docs.example.com/mcp?team=1']);
  });

  it('audits each change with the name and URL, and each refusal; the list is not audited; only the owner may', async () => {
    await add('crm', 'https://crm.example.com/mcp');
    await add('crm', 'https://crm2.example.com/mcp');
    await add('warren', 'https://crm.example.com/mcp');
    await perform({ op: 'mcp-list', folder: 'sales' });
    await perform({ op: 'mcp-remove', folder: 'sales', name: 'crm' });
    const base = { groupFolder: 'sales', actor: 'cli' };
    expect(audits).toEqual([
      expect.objectContaining({
        ...base,
        action: 'mcp-add',
        decision: 'allow',
        detail: { folder: 'sales', name: 'crm', url: 'https://crm.example.com/mcp' },
      }),
      expect.objectContaining({
        ...base,
        action: 'mcp-add',
        decision: 'allow',
        detail: {
          folder: 'sales',
          name: 'crm',
          url: 'https://crm2.example.com/mcp',
          replaced: 'https://crm.example.com/mcp',
        },
      }),
      expect.objectContaining({
        groupFolder: null,
        action: 'mcp-add',
        decision: 'deny',
        detail: expect.objectContaining({ name: 'warren', reason: expect.stringMatching(/reserved/) }),
      }),
      expect.objectContaining({
        ...base,
        action: 'mcp-remove',
        decision: 'allow',
        detail: { folder: 'sales', name: 'crm', url: 'https://crm2.example.com/mcp' },
      }),
    ]);
    const sales = store.groups.byFolder('sales');
    if (!sales) throw new Error('no sales group');
    const member: OwnerActor = { kind: 'chat', id: 'fake:u1', group: sales };
    expect(
      await perform({ op: 'mcp-add', folder: 'sales', name: 'x', url: 'https://x.example.com' }, member),
    ).toEqual({ ok: false, text: 'owner commands work only in the admin chat' });
    expect(servers()).toEqual([]);
  });
});
