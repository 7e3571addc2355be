import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliOpsFixture } from '../../test/helpers/cli-ops.js';
import type { Store } from '../store/store.js';
import { runNetCommand } from './net.js';

let store: Store;
let ops: ReturnType<typeof cliOpsFixture>['ops'];
const now = () => 5_000_000;

beforeEach(() => {
  ({ store, ops } = cliOpsFixture(now));
});
afterEach(() => store.close());

const net = (...args: string[]) => runNetCommand(args, ops());
const rules = () => store.egress.of('sales').map(({ createdAt: _, ...rule }) => rule);

describe('warren net', () => {
  it('allow, deny and list: port 443 unless given, --lan only on allow, IPv6 in brackets or bare', async () => {
    expect(await net('list', 'sales')).toEqual({
      code: 0,
      text: "Group 'sales' may connect nowhere (no rules: the default).\nWeb search: off\nAsk about other hosts: on",
    });
    expect(await net('allow', 'sales', 'api.example.com')).toEqual({
      code: 0,
      text: "Group 'sales' may connect to api.example.com:443. It applies from its next connection.",
    });
    expect((await net('allow', 'sales', '[::1]:8080', '--lan')).code).toBe(0);
    expect((await net('deny', 'sales', '2001:db8::5')).code).toBe(0);
    expect((await net('deny', 'sales', 'evil.example.com:8443')).code).toBe(0);
    expect(rules()).toEqual([
      { host: '2001:db8::5', port: 443, action: 'deny', isLan: false },
      { host: '::1', port: 8080, action: 'allow', isLan: true },
      { host: 'api.example.com', port: 443, action: 'allow', isLan: false },
      { host: 'evil.example.com', port: 8443, action: 'deny', isLan: false },
    ]);
    expect((await net('list', 'sales')).text).toContain('  allow  [::1]:8080  lan\n');
    expect(store.audit.recent(1)[0]).toMatchObject({
      actor: 'cli',
      action: 'net-deny',
      groupFolder: 'sales',
    });
  });

  it('remove takes a rule away; a rule or group that is not there is refused (1)', async () => {
    await net('allow', 'sales', 'api.example.com:8443');
    expect(await net('remove', 'sales', 'api.example.com')).toEqual({
      code: 1,
      text: "group 'sales' has no rule for api.example.com:443 (see `warren net list sales`)",
    });
    expect((await net('remove', 'sales', 'api.example.com:8443')).code).toBe(0);
    expect(rules()).toEqual([]);
    expect(await net('allow', 'nope', 'api.example.com')).toEqual({
      code: 1,
      text: "no group 'nope' (see `warren groups list`)",
    });
    expect(await net('allow', 'sales', '*.com')).toMatchObject({ code: 1, text: /'\*\.com' is not a host/ });
  });

  it('a bad port, a URL, --lan on a deny rule or a missing argument is a usage error (2), changing nothing', async () => {
    for (const args of [
      ['allow', 'sales', 'api.example.com:99999'],
      ['allow', 'sales', 'https://api.example.com'],
      ['deny', 'sales', 'api.example.com', '--lan'],
      ['remove', 'sales'],
      ['list'],
      ['open', 'sales', 'api.example.com'],
    ]) {
      expect((await net(...args)).code, args.join(' ')).toBe(2);
    }
    expect(await net('allow', 'sales', 'api.example.com:99999')).toEqual({
      code: 2,
      text: "'99999' is not a port (1 to 65535)\nRun `warren net allow --help` for usage.",
    });
    expect(rules()).toEqual([]);
  });

  it('websearch turns the switch on and off; a value other than on|off is a usage error (2)', async () => {
    expect(await net('websearch', 'sales', 'on')).toMatchObject({
      code: 0,
      text: /^Group 'sales' may search the web from its agent's next run .*see `warren usage`\.$/,
    });
    expect(store.groups.isWebSearchOn('sales')).toBe(true);
    expect((await net('list', 'sales')).text).toMatch(/\nWeb search: on\n/);
    expect(store.audit.recent(1)[0]).toMatchObject({
      actor: 'cli',
      action: 'net-websearch',
      detail: { isOn: true, was: false },
    });
    for (const args of [['yes'], ['ON'], [], ['on', 'extra']]) {
      const outcome = await net('websearch', 'sales', ...args);
      expect(outcome.code, args.join(' ')).toBe(2);
    }
    expect((await net('websearch', 'sales', 'yes')).text).toMatch(/'yes'.*on, off/);
    expect(store.groups.isWebSearchOn('sales')).toBe(true);
    expect(await net('websearch', 'sales', 'off')).toMatchObject({ code: 0, text: /refused from now on/ });
    expect(store.groups.isWebSearchOn('sales')).toBe(false);
    expect(await net('websearch', 'nope', 'on')).toEqual({
      code: 1,
      text: "no group 'nope' (see `warren groups list`)",
    });
  });

  it("ask turns off (refused at once) and on (the admin chat is asked) a group's questions; else usage (2)", async () => {
    expect(store.groups.isEgressAskOn('sales')).toBe(true);
    expect(await net('ask', 'sales', 'off')).toEqual({
      code: 0,
      text: "Group 'sales': a host not on its list is refused at once, silently.",
    });
    expect(store.groups.isEgressAskOn('sales')).toBe(false);
    expect((await net('list', 'sales')).text).toMatch(/\nAsk about other hosts: off$/);
    expect(store.audit.recent(1)[0]).toMatchObject({
      actor: 'cli',
      action: 'net-ask',
      groupFolder: 'sales',
      detail: { isOn: false, was: true },
    });
    for (const args of [['yes'], [], ['on', 'extra']])
      expect((await net('ask', 'sales', ...args)).code).toBe(2);
    expect(store.groups.isEgressAskOn('sales')).toBe(false);
    expect(await net('ask', 'sales', 'on')).toMatchObject({ code: 0, text: /asked in the admin chat/ });
    expect(store.groups.isEgressAskOn('sales')).toBe(true);
    expect(await net('ask', 'nope', 'off')).toEqual({
      code: 1,
      text: "no group 'nope' (see `warren groups list`)",
    });
  });
});
