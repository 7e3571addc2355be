import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup } from '../../test/harness.js';
import { ownerOpsFixture } from '../../test/helpers/owner-ops.js';
import { decide } from '../sandbox/egress/policy.js';
import { createEgressQuestions } from '../sandbox/egress/questions.js';
import type { AuditEntry, Store } from '../store/store.js';
import { parseHostPort } from './net-ops.js';
import type { OwnerActor, OwnerOp, OwnerOps } from './owner-ops.js';

let store: Store;
let dataDir: string;
let audits: AuditEntry[];
let woken: { count: number };
let ops: OwnerOps;
const NOW = 1_750_000_000_000;
const cli: OwnerActor = { kind: 'cli' };

beforeEach(() => {
  ({ store, dataDir, audits, ops, woken } = ownerOpsFixture(NOW));
});
afterEach(() => store.close());

const perform = (request: OwnerOp, actor: OwnerActor = cli) => ops.perform(request, actor);
const rules = (folder = 'sales') => store.egress.of(folder).map(({ createdAt: _, ...rule }) => rule);

describe('network rules as owner operations', () => {
  it('nothing is allowed by default; allow and deny store normalized rules the list shows, deny winning', async () => {
    expect(await perform({ op: 'net-list', folder: 'sales' })).toEqual({
      ok: true,
      text: "Group 'sales' may connect nowhere (no rules: the default).\nWeb search: off\nAsk about other hosts: on",
    });
    expect(await perform({ op: 'net-allow', folder: 'sales', host: '*.Example.COM.' })).toEqual({
      ok: true,
      text: "Group 'sales' may connect to *.example.com:443. It applies from its next connection.",
    });
    await perform({ op: 'net-allow', folder: 'sales', host: 'crm.home.arpa', port: 8080, isLan: true });
    await perform({ op: 'net-deny', folder: 'sales', host: 'evil.example.com' });
    expect(rules()).toEqual([
      { host: '*.example.com', port: 443, action: 'allow', isLan: false },
      { host: 'crm.home.arpa', port: 8080, action: 'allow', isLan: true },
      { host: 'evil.example.com', port: 443, action: 'deny', isLan: false },
    ]);
    expect((await perform({ op: 'net-list', folder: 'sales' })).text).toBe(
      [
        "Network rules of group 'sales' (deny wins; nothing else is allowed):",
        '  allow  *.example.com:443',
        '  allow  crm.home.arpa:8080  lan',
        '  deny   evil.example.com:443',
        'Web search: off',
        'Ask about other hosts: on',
      ].join('\n'),
    );
    // The rules as the gateway reads them: the carve-out holds, the rest of the suffix passes, another group has none.
    expect(decide(store.egress.of('sales'), 'evil.example.com', 443)).toMatchObject({ isAllowed: false });
    expect(decide(store.egress.of('sales'), 'api.example.com', 443)).toEqual({
      isAllowed: true,
      isLan: false,
    });
    expect(decide(store.egress.of('main'), 'api.example.com', 443)).toMatchObject({ isAllowed: false });
    expect(woken.count).toBe(0); // read per request by the gateway: nothing to wake
  });

  it('audits each change with its group, what was typed and the rule stored; the list is not audited', async () => {
    await perform({ op: 'net-allow', folder: 'sales', host: 'API.example.com', port: 8443 });
    await perform({ op: 'net-deny', folder: 'sales', host: 'api.example.com', port: 8443 });
    await perform({ op: 'net-list', folder: 'sales' });
    expect(audits).toEqual([
      expect.objectContaining({
        groupFolder: 'sales',
        actor: 'cli',
        action: 'net-allow',
        decision: 'allow',
        detail: {
          folder: 'sales',
          host: 'API.example.com',
          port: 8443,
          rule: { host: 'api.example.com', port: 8443, action: 'allow', isLan: false },
        },
      }),
      expect.objectContaining({
        groupFolder: 'sales',
        action: 'net-deny',
        decision: 'allow',
        detail: expect.objectContaining({
          rule: { host: 'api.example.com', port: 8443, action: 'deny', isLan: false },
          replaced: expect.objectContaining({ action: 'allow' }),
        }),
      }),
    ]);
    expect(rules()).toEqual([{ host: 'api.example.com', port: 8443, action: 'deny', isLan: false }]);
  });

  it('a malformed host or port is refused naming the accepted forms, audited as a denial, nothing stored', async () => {
    for (const host of [
      'https://api.example.com',
      '*.com',
      '*.10.0.0.1',
      'a b.com',
      'api.example.com/v1',
      '',
    ]) {
      const result = await perform({ op: 'net-allow', folder: 'sales', host });
      expect(result, host).toEqual({
        ok: false,
        text: `'${host}' is not a host: give a name (api.example.com), *.example.com (any name under it) or an IP address`,
      });
    }
    for (const port of [0, 65_536, 1.5]) {
      const result = await perform({ op: 'net-deny', folder: 'sales', host: 'example.com', port });
      expect(result).toEqual({ ok: false, text: `'${port}' is not a port (1 to 65535)` });
    }
    expect(rules()).toEqual([]);
    expect(audits).toHaveLength(9);
    expect(audits.every((entry) => entry.decision === 'deny')).toBe(true);
    expect(audits[0]?.detail).toMatchObject({ host: 'https://api.example.com', reason: /is not a host/ });
  });

  it('an address the gateway would refuse is refused now: a private one names --lan, a metadata one not', async () => {
    expect(await perform({ op: 'net-allow', folder: 'sales', host: '192.168.1.20', port: 8080 })).toEqual({
      ok: false,
      text:
        'the gateway would refuse 192.168.1.20:8080 (192.168.1.20 is a private address); ' +
        '--lan allows it (a service on your network)',
    });
    const lan = await perform({
      op: 'net-allow',
      folder: 'sales',
      host: '192.168.1.20',
      port: 8080,
      isLan: true,
    });
    expect(lan).toMatchObject({
      ok: true,
      text: /may connect to 192.168.1.20:8080, also at an address on your network/,
    });
    const metadata = await perform({
      op: 'net-allow',
      folder: 'sales',
      host: '169.254.169.254',
      isLan: true,
    });
    expect(metadata).toEqual({
      ok: false,
      text: 'the gateway would refuse 169.254.169.254:443 (169.254.169.254 is a cloud metadata address)',
    });
    // A deny rule opens nothing, so any address may be denied; IPv6 is shown in brackets.
    expect(await perform({ op: 'net-deny', folder: 'sales', host: '[::1]', port: 22 })).toMatchObject({
      ok: true,
      text: /may not connect to \[::1\]:22/,
    });
    expect(rules().map((rule) => rule.host)).toEqual(['192.168.1.20', '::1']);
  });

  it('remove takes the rule for that host and port away, and says so clearly when there is none', async () => {
    await perform({ op: 'net-allow', folder: 'sales', host: 'api.example.com' });
    await perform({ op: 'net-allow', folder: 'sales', host: 'api.example.com', port: 8443 });
    expect(await perform({ op: 'net-remove', folder: 'sales', host: 'API.example.com' })).toEqual({
      ok: true,
      text: "Group 'sales' has no rule for api.example.com:443 any more.",
    });
    expect(rules()).toEqual([{ host: 'api.example.com', port: 8443, action: 'allow', isLan: false }]);
    expect(await perform({ op: 'net-remove', folder: 'sales', host: 'api.example.com' })).toEqual({
      ok: false,
      text: "group 'sales' has no rule for api.example.com:443 (see `warren net list sales`)",
    });
    expect(audits.at(-1)).toMatchObject({ action: 'net-remove', decision: 'deny', groupFolder: null });
    expect(audits.at(-2)).toMatchObject({
      action: 'net-remove',
      decision: 'allow',
      groupFolder: 'sales',
      detail: { removed: expect.objectContaining({ host: 'api.example.com', port: 443, action: 'allow' }) },
    });
  });

  it('needs an existing group, and a chat other than the admin chat is refused', async () => {
    expect(await perform({ op: 'net-allow', folder: 'nope', host: 'example.com' })).toEqual({
      ok: false,
      text: "no group 'nope' (see `warren groups list`)",
    });
    expect(await perform({ op: 'net-list', folder: 'nope' })).toMatchObject({ ok: false });
    const sales = store.groups.byFolder('sales');
    if (!sales) throw new Error('no sales group');
    const fromSales = await perform(
      { op: 'net-allow', folder: 'sales', host: 'example.com' },
      {
        kind: 'chat',
        id: 'fake:eve',
        group: sales,
      },
    );
    expect(fromSales).toEqual({ ok: false, text: 'owner commands work only in the admin chat' });
    expect(rules('nope')).toEqual([]);
    expect(rules()).toEqual([]);
    expect(audits.at(-1)).toMatchObject({ actor: 'fake:eve', action: 'net-allow', decision: 'deny' });
  });

  it('removing a group takes its rules: a group made again under the name starts with none', async () => {
    await perform({ op: 'net-allow', folder: 'sales', host: 'api.example.com' });
    await perform({ op: 'net-allow', folder: 'main', host: 'api.example.com' });
    expect((await perform({ op: 'remove-group', folder: 'sales' })).ok).toBe(true);
    registerTestGroup(store, dataDir, 'sales', { now: NOW });
    expect(rules()).toEqual([]);
    expect(rules('main')).toHaveLength(1);
  });
});

describe('web search as an owner operation', () => {
  it('is off by default; on warns of the cost, off refuses from now on; each change is audited with was', async () => {
    expect(store.groups.isWebSearchOn('sales')).toBe(false);
    expect(await perform({ op: 'net-websearch', folder: 'sales', isOn: true })).toEqual({
      ok: true,
      text:
        "Group 'sales' may search the web from its agent's next run (a running agent keeps the tools it started " +
        "with). Searches cost money, priced in the group's budget: see `warren usage`.",
    });
    expect(store.groups.isWebSearchOn('sales')).toBe(true);
    expect(store.groups.isWebSearchOn('main')).toBe(false);
    expect((await perform({ op: 'net-list', folder: 'sales' })).text).toBe(
      "Group 'sales' may connect nowhere (no rules: the default).\nWeb search: on\nAsk about other hosts: on",
    );
    expect(await perform({ op: 'net-websearch', folder: 'sales', isOn: true })).toEqual({
      ok: true,
      text: "Web search is already on for group 'sales'.",
    });
    expect(await perform({ op: 'net-websearch', folder: 'sales', isOn: false })).toEqual({
      ok: true,
      text: "Group 'sales' may not search the web: refused from now on; its agent's next run starts without the tool.",
    });
    expect(store.groups.isWebSearchOn('sales')).toBe(false);
    expect(
      audits.map(({ groupFolder, actor, action, decision, detail }) => [
        groupFolder,
        actor,
        action,
        decision,
        detail,
      ]),
    ).toEqual([
      ['sales', 'cli', 'net-websearch', 'allow', { folder: 'sales', isOn: true, was: false }],
      ['sales', 'cli', 'net-websearch', 'allow', { folder: 'sales', isOn: true, was: true }],
      ['sales', 'cli', 'net-websearch', 'allow', { folder: 'sales', isOn: false, was: true }],
    ]);
    expect(woken.count).toBe(0); // read per request by the proxy: nothing to wake
  });

  it('needs an existing group and the owner: refused and audited as a denial, nothing turned on', async () => {
    expect(await perform({ op: 'net-websearch', folder: 'nope', isOn: true })).toEqual({
      ok: false,
      text: "no group 'nope' (see `warren groups list`)",
    });
    expect(audits.at(-1)).toMatchObject({
      action: 'net-websearch',
      decision: 'deny',
      detail: { folder: 'nope', isOn: true, reason: "no group 'nope' (see `warren groups list`)" },
    });
    const sales = store.groups.byFolder('sales');
    if (!sales) throw new Error('no sales group');
    const fromSales = await perform(
      { op: 'net-websearch', folder: 'sales', isOn: true },
      { kind: 'chat', id: 'fake:eve', group: sales },
    );
    expect(fromSales).toEqual({ ok: false, text: 'owner commands work only in the admin chat' });
    expect(store.groups.isWebSearchOn('sales')).toBe(false);
    expect(audits.at(-1)).toMatchObject({ actor: 'fake:eve', action: 'net-websearch', decision: 'deny' });
  });
});

describe('asking the owner about a host not on the list', () => {
  /** Owner operations with the running host's questions; asked() opens one and gives its id and answer. */
  function withQuestions() {
    store.close();
    const told: string[] = [];
    const questions = createEgressQuestions({
      now: () => NOW,
      notifyOwner: (_key, text) => told.push(text),
      waitMs: 600_000,
    });
    ({ store, audits, ops } = ownerOpsFixture(NOW, { egressQuestions: questions }));
    const asked = (folder: string, host: string, port: number) => {
      const answer = questions.ask(folder, host, port);
      const id = /\/allow (\w+) lets/.exec(told.at(-1) ?? '')?.[1] ?? '';
      return { id, answer };
    };
    return { questions, asked };
  }

  it('/allow once lets that connection through and adds no rule; the audit names the group and destination', async () => {
    const { questions, asked } = withQuestions();
    const { id, answer } = asked('sales', 'api.example.com', 8443);
    expect(id).toMatch(/^[0-9a-f]{6}$/);
    expect(await perform({ op: 'net-answer', id, answer: 'once' })).toEqual({
      ok: true,
      text: "Group 'sales' may connect to api.example.com:8443 this once.",
    });
    expect(await answer).toBe('once');
    expect(rules()).toEqual([]);
    expect(questions.list()).toEqual([]);
    expect(audits).toEqual([
      expect.objectContaining({
        groupFolder: 'sales',
        action: 'net-answer',
        decision: 'allow',
        detail: { id, answer: 'once', group: 'sales', host: 'api.example.com', port: 8443 },
      }),
    ]);
  });

  it('/allow always adds the allow rule (the gateway then lets it through unasked) and answers', async () => {
    const { asked } = withQuestions();
    const { id, answer } = asked('sales', 'api.example.com', 443);
    expect(decide(store.egress.of('sales'), 'api.example.com', 443)).toMatchObject({ isAllowed: false });
    expect(await perform({ op: 'net-answer', id, answer: 'always' })).toEqual({
      ok: true,
      text: "Group 'sales' may connect to api.example.com:443 now and from now on (added to its list).",
    });
    expect(await answer).toBe('always');
    expect(rules()).toEqual([{ host: 'api.example.com', port: 443, action: 'allow', isLan: false }]);
    expect(decide(store.egress.of('sales'), 'api.example.com', 443)).toEqual({
      isAllowed: true,
      isLan: false,
    });
    expect(decide(store.egress.of('main'), 'api.example.com', 443)).toMatchObject({ isAllowed: false });
  });

  it('/deny refuses that connection and adds nothing; an answered or unknown id is refused, audited', async () => {
    const { asked } = withQuestions();
    const { id, answer } = asked('sales', 'evil.example.com', 443);
    expect(await perform({ op: 'net-answer', id, answer: 'deny' })).toEqual({
      ok: true,
      text: "🚫 Refused: group 'sales' may not connect to evil.example.com:443.",
    });
    expect(await answer).toBe('deny');
    expect(rules()).toEqual([]);
    const again = await perform({ op: 'net-answer', id, answer: 'always' });
    expect(again).toEqual({
      ok: false,
      text: `no open question '${id}' (answered already, or too late: it was refused)`,
    });
    expect(rules()).toEqual([]);
    expect(audits.at(-1)).toMatchObject({ action: 'net-answer', decision: 'deny', detail: { id } });
  });

  it('without a running host (the CLI) there are no questions to answer', async () => {
    expect(await perform({ op: 'net-answer', id: 'abc123', answer: 'once' })).toEqual({
      ok: false,
      text: 'only the running host has questions to answer',
    });
  });

  it("is on by default; net-ask turns a group's switch off and on, audited with was, and the list shows it", async () => {
    expect(store.groups.isEgressAskOn('sales')).toBe(true);
    expect(await perform({ op: 'net-ask', folder: 'sales', isOn: false })).toEqual({
      ok: true,
      text: "Group 'sales': a host not on its list is refused at once, silently.",
    });
    expect(store.groups.isEgressAskOn('sales')).toBe(false);
    expect(store.groups.isEgressAskOn('main')).toBe(true);
    expect((await perform({ op: 'net-list', folder: 'sales' })).text).toMatch(
      /\nAsk about other hosts: off$/,
    );
    expect(await perform({ op: 'net-ask', folder: 'sales', isOn: false })).toEqual({
      ok: true,
      text: "Asking about hosts not on its list is already off for group 'sales'.",
    });
    expect(await perform({ op: 'net-ask', folder: 'sales', isOn: true })).toEqual({
      ok: true,
      text:
        "Group 'sales': a host not on its list waits while you are asked in the admin chat " +
        '(WARREN_EGRESS_ASK_SECONDS; no answer refuses).',
    });
    expect(store.groups.isEgressAskOn('sales')).toBe(true);
    expect(await perform({ op: 'net-ask', folder: 'nope', isOn: false })).toMatchObject({ ok: false });
    expect(
      audits.map(({ groupFolder, action, decision, detail }) => [groupFolder, action, decision, detail]),
    ).toEqual([
      ['sales', 'net-ask', 'allow', { folder: 'sales', isOn: false, was: true }],
      ['sales', 'net-ask', 'allow', { folder: 'sales', isOn: false, was: false }],
      ['sales', 'net-ask', 'allow', { folder: 'sales', isOn: true, was: false }],
      [
        null,
        'net-ask',
        'deny',
        { folder: 'nope', isOn: false, reason: "no group 'nope' (see `warren groups list`)" },
      ],
    ]);
  });
});

describe('HOST[:PORT] as typed in a front end', () => {
  it('splits a name, an IPv4 or a bracketed IPv6 address from its port; a bare IPv6 address has none', () => {
    expect(parseHostPort('api.example.com')).toEqual({ host: 'api.example.com' });
    expect(parseHostPort('*.example.com:8443')).toEqual({ host: '*.example.com', port: 8443 });
    expect(parseHostPort('10.0.0.5:5432')).toEqual({ host: '10.0.0.5', port: 5432 });
    expect(parseHostPort('[2001:db8::1]:8080')).toEqual({ host: '2001:db8::1', port: 8080 });
    expect(parseHostPort('[::1]')).toEqual({ host: '::1' });
    expect(parseHostPort('2001:db8::1')).toEqual({ host: '2001:db8::1' });
  });

  it('refuses a bad port or a URL with a clear message', () => {
    for (const text of ['example.com:0', 'example.com:65536', 'example.com:', 'example.com:https', '[::1]:x'])
      expect(() => parseHostPort(text), text).toThrow(/is not a port \(1 to 65535\)/);
    expect(() => parseHostPort('https://example.com')).toThrow(
      "'https://example.com' is a URL: give the host alone, e.g. api.example.com or api.example.com:8443",
    );
  });
});
