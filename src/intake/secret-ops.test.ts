import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup } from '../../test/harness.js';
import { ownerOpsFixture } from '../../test/helpers/owner-ops.js';
import { readSecrets } from '../sandbox/egress/secrets.js';
import type { AuditEntry, Store } from '../store/store.js';
import type { OpResult, OwnerActor, OwnerOp, OwnerOps } from './owner-ops.js';

let store: Store;
let dataDir: string;
let audits: AuditEntry[];
let results: OpResult[];
let ops: OwnerOps;
const NOW = 1_750_000_000_000;
const cli: OwnerActor = { kind: 'cli' };
// Split so that no line of this file holds the value a check searches for.
const VALUE = ['ghp', 'S3cr3tV4lue', '9f2c'].join('_');

beforeEach(() => {
  ({ store, dataDir, audits, ops } = ownerOpsFixture(NOW));
  results = [];
});
afterEach(() => store.close());

/** Every answer is kept, for the check that none of them holds the value. */
const perform = async (request: OwnerOp, actor: OwnerActor = cli) => {
  const result = await ops.perform(request, actor);
  results.push(result);
  return result;
};
const bindings = (folder = 'sales') =>
  store.egress.bindings(folder).map(({ createdAt: _, ...binding }) => binding);
const adminChat = (): OwnerActor => {
  const group = store.groups.byFolder('main');
  if (!group) throw new Error('no admin group');
  return { kind: 'chat', id: 'fake:owner', group };
};

describe('secrets as owner operations', () => {
  it('set stores the value 0600 and answers with the name only; list shows names and bindings, never values', async () => {
    expect(await perform({ op: 'secret-list' })).toEqual({
      ok: true,
      text: 'No secrets. Set one with: printf %s "$VALUE" | warren secrets set NAME',
    });
    expect(await perform({ op: 'secret-set', name: 'GITHUB_TOKEN', value: VALUE })).toEqual({
      ok: true,
      text: "Stored secret 'GITHUB_TOKEN' (bind it to a group's host: warren secrets bind GITHUB_TOKEN FOLDER HOST).",
    });
    expect(readSecrets(dataDir).get('GITHUB_TOKEN')).toBe(VALUE);
    expect(statSync(path.join(dataDir, 'secrets.json')).mode & 0o777).toBe(0o600);
    await perform({ op: 'secret-set', name: 'STRIPE', value: 'sk_other' });
    await perform({ op: 'secret-bind', folder: 'sales', name: 'GITHUB_TOKEN', host: 'API.GitHub.com' });
    await perform({
      op: 'secret-bind',
      folder: 'main',
      name: 'GITHUB_TOKEN',
      host: '10.0.0.5',
      port: 8443,
      header: 'X-Api-Key',
      template: '{secret}',
    });
    expect((await perform({ op: 'secret-list' })).text).toBe(
      [
        'Secrets (values are never shown) and the groups and hosts they go to:',
        '  GITHUB_TOKEN',
        '    main  10.0.0.5:8443  X-Api-Key: {secret}',
        '    sales  api.github.com:443  Authorization: Bearer {secret}',
        '  STRIPE  (bound to nothing)',
      ].join('\n'),
    );
    const replaced = await perform({ op: 'secret-set', name: 'GITHUB_TOKEN', value: `${VALUE}2` });
    expect(replaced.text).toContain('it replaces the value before');
    expect(readSecrets(dataDir).get('GITHUB_TOKEN')).toBe(`${VALUE}2`);
    // Only changes are audited, the value of none: the name, and whether one was replaced.
    expect(audits.filter((entry) => entry.action === 'secret-set').map((entry) => entry.detail)).toEqual([
      { name: 'GITHUB_TOKEN', isReplaced: false },
      { name: 'STRIPE', isReplaced: false },
      { name: 'GITHUB_TOKEN', isReplaced: true },
    ]);
  });

  it('the value appears in no answer and no audit entry, whatever happens (the file holds it: the search can find it)', async () => {
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    await perform({ op: 'secret-set', name: 'bad name', value: VALUE });
    await perform({ op: 'secret-set', name: 'TOKEN', value: `${VALUE}\nX-Evil: 1` });
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE }, adminChat());
    await perform({ op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com' });
    await perform({ op: 'secret-list' });
    await perform({ op: 'secret-remove', name: 'TOKEN' });
    await perform({ op: 'secret-remove', name: 'TOKEN', force: true });
    expect(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')).not.toContain(VALUE); // removed for good
    expect(results).toHaveLength(8);
    expect(audits.length).toBeGreaterThanOrEqual(6);
    const everything = JSON.stringify({ results, audits, rows: store.audit.recent(100) });
    expect(everything).toContain('TOKEN'); // the names are there
    expect(everything).not.toContain(VALUE.slice(4));
    // Control: the same search finds the value where it is kept.
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    expect(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')).toContain(VALUE.slice(4));
  });

  it('set is refused from a chat, even the admin chat, and from the web page: the value would stay in its history', async () => {
    for (const actor of [adminChat(), { kind: 'web' } as const]) {
      expect(await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE }, actor)).toEqual({
        ok: false,
        text: 'a secret is set only on the host: warren secrets set NAME',
      });
    }
    expect(readSecrets(dataDir).size).toBe(0);
    expect(audits.map((entry) => [entry.decision, entry.detail])).toEqual([
      ['deny', { name: 'TOKEN', reason: 'a secret is set only on the host: warren secrets set NAME' }],
      ['deny', { name: 'TOKEN', reason: 'a secret is set only on the host: warren secrets set NAME' }],
    ]);
  });

  it('set refuses a bad name or value, with the reason', async () => {
    for (const [name, value, reason] of [
      ['1TOKEN', VALUE, "'1TOKEN' is not a secret name: a letter, then letters, digits or _ (64 at most)"],
      ['TOKEN', '', 'the secret is empty'],
      ['TOKEN', 'a\r\nb', 'the secret holds a line break, a control character or non-ASCII text'],
      ['TOKEN', 'tökén', 'the secret holds a line break, a control character or non-ASCII text'],
      ['TOKEN', 'x'.repeat(8193), 'the secret is over 8192 bytes'],
    ]) {
      expect(await perform({ op: 'secret-set', name: name as string, value: value as string })).toEqual({
        ok: false,
        text: reason,
      });
    }
    expect(readSecrets(dataDir).size).toBe(0);
  });

  it('bind adds the header with defaults, says whether the host is allowed, and replaces one for the same header', async () => {
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    await perform({ op: 'secret-set', name: 'OTHER', value: 'other' });
    expect(
      await perform({ op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com' }),
    ).toEqual({
      ok: true,
      text:
        "Group 'sales' sends secret 'TOKEN' to api.example.com:443 as `Authorization: Bearer {secret}`; " +
        'api.example.com:443 is not on its allowlist yet: `warren net allow sales api.example.com:443` lets the agent reach it.',
    });
    await perform({ op: 'net-allow', folder: 'sales', host: '*.example.com' });
    const again = await perform({
      op: 'secret-bind',
      folder: 'sales',
      name: 'OTHER',
      host: 'api.example.com',
      header: 'authorization',
      template: 'token {secret}',
    });
    expect(again.text).toBe(
      "Group 'sales' sends secret 'OTHER' (instead of secret 'TOKEN') to api.example.com:443 as " +
        '`authorization: token {secret}`; api.example.com:443 is on its allowlist.',
    );
    await perform({
      op: 'secret-bind',
      folder: 'sales',
      name: 'TOKEN',
      host: '[::1]',
      port: 8080,
      header: 'X-Key',
    });
    expect(bindings()).toEqual([
      { host: '::1', port: 8080, header: 'X-Key', template: 'Bearer {secret}', secretName: 'TOKEN' },
      {
        host: 'api.example.com',
        port: 443,
        header: 'authorization',
        template: 'token {secret}',
        secretName: 'OTHER',
      },
    ]);
    expect(bindings('main')).toEqual([]);
    expect(audits.at(-2)).toMatchObject({
      action: 'secret-bind',
      decision: 'allow',
      groupFolder: 'sales',
      detail: {
        binding: { host: 'api.example.com', header: 'authorization', secretName: 'OTHER' },
        replaced: 'TOKEN',
      },
    });
  });

  it('bind refuses every bad request with the reason, audited as a denial, storing nothing', async () => {
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    const bind = { op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com' } as const;
    const refusals: Array<[Partial<Extract<OwnerOp, { op: 'secret-bind' }>>, string | RegExp]> = [
      [{ folder: 'nope' }, "no group 'nope' (see `warren groups list`)"],
      [
        { name: 'MISSING' },
        `no secret 'MISSING': set it first (printf %s "$VALUE" | warren secrets set MISSING)`,
      ],
      [{ host: '*.example.com' }, /^a secret goes to one named host, not '\*\.example\.com'/],
      [
        { host: 'https://api.example.com' },
        /is not a host: give a name \(api\.example\.com\) or an IP address/,
      ],
      [{ host: '' }, /is not a host/],
      [{ port: 0 }, "'0' is not a port (1 to 65535)"],
      [{ port: 70_000 }, "'70000' is not a port (1 to 65535)"],
      [{ header: 'X Key' }, "'X Key' is not a header name"],
      [{ header: 'X-Key:' }, "'X-Key:' is not a header name"],
      [{ header: '' }, "'' is not a header name"],
      [{ template: 'Bearer' }, "the template must hold {secret} exactly once (e.g. 'Bearer {secret}')"],
      [{ template: '{secret}{secret}' }, /exactly once/],
      [{ template: 'Bearer {secret}\r\nX-Evil: 1' }, /only printable ASCII: no line break or other control/],
      [{ template: 'Bearer\t{secret}' }, /only printable ASCII/],
    ];
    for (const header of [
      'Host',
      'connection',
      'Content-Length',
      'Transfer-Encoding',
      'Upgrade',
      'TE',
      'Trailer',
    ]) {
      refusals.push([
        { header },
        `${header} frames the request or steers the connection: a secret cannot go in it`,
      ]);
    }
    for (const header of ['Keep-Alive', 'Proxy-Authorization', 'proxy-connection'])
      refusals.push([{ header }, /frames the request/]);
    const before = audits.length;
    for (const [change, reason] of refusals) {
      const result = await perform({ ...bind, ...change });
      expect(result.ok, JSON.stringify(change)).toBe(false);
      expect(result.text, JSON.stringify(change)).toMatch(reason);
    }
    expect(bindings()).toEqual([]);
    expect(audits.slice(before).map((entry) => entry.decision)).toEqual(refusals.map(() => 'deny'));
    // Control: the same request without the change is accepted.
    expect((await perform(bind)).ok).toBe(true);
  });

  it('unbind removes one header or all for the host and port, and says when there was nothing', async () => {
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    for (const header of ['Authorization', 'X-Key'])
      await perform({ op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com', header });
    await perform({ op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com', port: 8443 });
    expect(
      await perform({ op: 'secret-unbind', folder: 'sales', host: 'API.example.com', header: 'x-key' }),
    ).toEqual({
      ok: true,
      text: "Group 'sales' no longer sends 'TOKEN' (X-Key) to api.example.com:443.",
    });
    expect(
      await perform({ op: 'secret-unbind', folder: 'sales', host: 'api.example.com', header: 'X-Key' }),
    ).toEqual({
      ok: false,
      text: "group 'sales' sends no secret to api.example.com:443 in X-Key (see `warren secrets list`)",
    });
    expect(
      (await perform({ op: 'secret-unbind', folder: 'sales', host: 'api.example.com', port: 8443 })).ok,
    ).toBe(true);
    expect(bindings()).toEqual([
      expect.objectContaining({ host: 'api.example.com', port: 443, header: 'Authorization' }),
    ]);
    expect(await perform({ op: 'secret-unbind', folder: 'nope', host: 'api.example.com' })).toMatchObject({
      ok: false,
      text: "no group 'nope' (see `warren groups list`)",
    });
    expect(audits.at(-4)).toMatchObject({
      action: 'secret-unbind',
      decision: 'allow',
      detail: { removed: [{ host: 'api.example.com', port: 443, header: 'X-Key', secretName: 'TOKEN' }] },
    });
  });

  it('remove is refused while bound, naming where; --force also unbinds; a secret that is not there is said so', async () => {
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    await perform({ op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com' });
    await perform({
      op: 'secret-bind',
      folder: 'main',
      name: 'TOKEN',
      host: 'api.example.com',
      header: 'X-Key',
    });
    expect(await perform({ op: 'secret-remove', name: 'TOKEN' })).toEqual({
      ok: false,
      text:
        "secret 'TOKEN' is bound for main (api.example.com:443 X-Key), sales (api.example.com:443 Authorization): " +
        'unbind it first, or remove with --force (which removes those bindings too)',
    });
    expect(readSecrets(dataDir).has('TOKEN')).toBe(true);
    expect(await perform({ op: 'secret-remove', name: 'TOKEN', force: true })).toEqual({
      ok: true,
      text: "Removed secret 'TOKEN' and its 2 bindings.",
    });
    expect(readSecrets(dataDir).has('TOKEN')).toBe(false);
    expect(store.egress.bindingsOf('TOKEN')).toEqual([]);
    expect(await perform({ op: 'secret-remove', name: 'TOKEN', force: true })).toEqual({
      ok: false,
      text: "no secret 'TOKEN' (see `warren secrets list`)",
    });
    await perform({ op: 'secret-set', name: 'LONE', value: VALUE });
    expect(await perform({ op: 'secret-remove', name: 'LONE' })).toEqual({
      ok: true,
      text: "Removed secret 'LONE'.",
    });
  });

  it('a binding whose secret went from the file by hand is listed as not set, and --force clears it', async () => {
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    await perform({ op: 'secret-bind', folder: 'sales', name: 'TOKEN', host: 'api.example.com' });
    writeFileSync(path.join(dataDir, 'secrets.json'), '{}\n');
    expect((await perform({ op: 'secret-list' })).text).toContain(
      '  TOKEN  (not set!)\n    sales  api.example.com:443',
    );
    expect(await perform({ op: 'secret-remove', name: 'TOKEN', force: true })).toEqual({
      ok: true,
      text: "There was no secret 'TOKEN'; removed its 1 binding.",
    });
    expect(bindings()).toEqual([]);
  });

  it('a secrets file that does not parse is refused by name, without quoting what it holds', async () => {
    writeFileSync(path.join(dataDir, 'secrets.json'), `{"TOKEN": "${VALUE}",,}`);
    for (const request of [
      { op: 'secret-list' },
      { op: 'secret-set', name: 'OTHER', value: 'x' },
      { op: 'secret-remove', name: 'TOKEN' },
    ] as const) {
      const result = await perform(request);
      expect(result).toEqual({
        ok: false,
        text: `${path.join(dataDir, 'secrets.json')} does not parse: fix it, or move it away and set the secrets again`,
      });
    }
    expect(readFileSync(path.join(dataDir, 'secrets.json'), 'utf8')).toContain(VALUE); // left as it was
  });

  it('removing or purging a group takes its bindings; the secrets stay, and another group keeps its own', async () => {
    registerTestGroup(store, dataDir, 'ops', { now: NOW });
    await perform({ op: 'secret-set', name: 'TOKEN', value: VALUE });
    for (const folder of ['sales', 'ops', 'main'])
      await perform({ op: 'secret-bind', folder, name: 'TOKEN', host: 'api.example.com' });
    expect((await perform({ op: 'remove-group', folder: 'sales' })).ok).toBe(true);
    expect((await perform({ op: 'remove-group', folder: 'ops', purge: true })).ok).toBe(true);
    expect(audits.at(-1)?.detail).toMatchObject({ deleted: { secretBindings: 1 } });
    for (const folder of ['sales', 'ops']) registerTestGroup(store, dataDir, folder, { now: NOW });
    expect(bindings('sales')).toEqual([]);
    expect(bindings('ops')).toEqual([]);
    expect(bindings('main')).toHaveLength(1);
    expect(readSecrets(dataDir).get('TOKEN')).toBe(VALUE);
  });

  it('a chat other than the admin chat is refused every secret operation', async () => {
    const sales = store.groups.byFolder('sales');
    if (!sales) throw new Error('no sales group');
    const actor: OwnerActor = { kind: 'chat', id: 'fake:eve', group: sales };
    expect(await perform({ op: 'secret-list' }, actor)).toEqual({
      ok: false,
      text: 'owner commands work only in the admin chat',
    });
    expect((await perform({ op: 'secret-remove', name: 'TOKEN' }, actor)).ok).toBe(false);
    expect(audits.map((entry) => [entry.actor, entry.action, entry.decision])).toEqual([
      ['fake:eve', 'secret-list', 'deny'],
      ['fake:eve', 'secret-remove', 'deny'],
    ]);
  });
});
