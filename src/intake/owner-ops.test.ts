import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup, tempDir } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import { type AuditEntry, openStore, type Store } from '../store/store.js';
import { createOwnerOps, type OwnerActor, type OwnerOps } from './owner-ops.js';
import { createPairing } from './pairing.js';

let store: Store;
let dataDir: string;
let audits: AuditEntry[];
let changes: number;
let ops: OwnerOps;
const NOW = 1_750_000_000_000;
const cli: OwnerActor = { kind: 'cli' };

beforeEach(() => {
  store = openStore(':memory:');
  dataDir = tempDir();
  audits = [];
  changes = 0;
  const audit = (entry: AuditEntry) => audits.push(entry);
  const pairing = createPairing({
    store,
    dataDir,
    assistantName: 'Warren',
    log: silentLogger(),
    now: () => NOW,
    audit,
    enqueue: () => {},
    notifier: { notify: () => false },
  });
  ops = createOwnerOps({
    store,
    dataDir,
    now: () => NOW,
    audit,
    pairing,
    timezone: 'UTC',
    defaultDiskQuotaMb: 4096,
    mountAllowlistPath: path.join(dataDir, 'mount-allowlist.json'),
    protectedPaths: [],
    onChange: () => changes++,
  });
});
afterEach(() => store.close());

const register = (folder: string, isAdmin = false) =>
  registerTestGroup(store, dataDir, folder, { isAdmin, now: NOW });

describe('owner operations', () => {
  it('a person in a chat that is not the admin chat is refused every operation, and each refusal is audited', async () => {
    const team = register('team');
    const actor: OwnerActor = { kind: 'chat', id: 'fake:eve', group: team };
    const result = await ops.perform({ op: 'set-quota', folder: 'team', mb: 0 }, actor);
    expect(result).toEqual({ ok: false, text: 'owner commands work only in the admin chat' });
    expect(store.groups.byFolder('team')).toBeTruthy();
    expect(await ops.perform({ op: 'remove-group', folder: 'team' }, actor)).toMatchObject({ ok: false });
    expect(store.groups.byFolder('team')).not.toBeNull();
    expect(audits).toEqual([
      expect.objectContaining({
        actor: 'fake:eve',
        action: 'set-quota',
        decision: 'deny',
        groupFolder: 'team',
      }),
      expect.objectContaining({
        actor: 'fake:eve',
        action: 'remove-group',
        decision: 'deny',
        groupFolder: 'team',
      }),
    ]);
  });

  it('the admin chat and the CLI get the same operation, audited the same way', async () => {
    const main = register('main', true);
    const fromChat = await ops.perform(
      {
        op: 'register-chat',
        chat: { channel: 'fake', chatId: 'sales' },
        folder: 'sales',
        trigger: 'mention',
      },
      { kind: 'chat', id: 'fake:me', group: main },
    );
    expect(fromChat).toMatchObject({
      ok: true,
      text: "Registered fake:sales as group 'sales' (answers when named).",
    });
    const fromCli = await ops.perform({ op: 'set-quota', folder: 'sales', mb: 250 }, cli);
    expect(fromCli.text).toMatch(/may use 250 MiB/);
    expect(store.groups.byFolder('sales')).toBeTruthy();
    expect(audits).toEqual([
      expect.objectContaining({
        actor: 'fake:me',
        action: 'register-chat',
        decision: 'allow',
        groupFolder: 'sales',
      }),
      expect.objectContaining({ actor: 'cli', action: 'set-quota', decision: 'allow', groupFolder: 'sales' }),
    ]);
  });

  it('a refusal (unknown group, admin group, no allowlist) is an answer and an audited denial, never a throw', async () => {
    register('main', true);
    expect(await ops.perform({ op: 'remove-group', folder: 'nope' }, cli)).toEqual({
      ok: false,
      text: "no group 'nope' (see `warren groups list`)",
    });
    expect(await ops.perform({ op: 'remove-group', folder: 'main' }, cli)).toEqual({
      ok: false,
      text: 'the admin group cannot be removed',
    });
    register('team');
    const mount = await ops.perform({ op: 'mount', folder: 'team', hostPath: '/etc', isReadOnly: true }, cli);
    expect(mount.ok).toBe(false);
    expect(store.groups.extraMounts((store.groups.byFolder('team') as { id: number }).id)).toEqual([]);
    expect(audits.map((entry) => [entry.action, entry.decision])).toEqual([
      ['remove-group', 'deny'],
      ['remove-group', 'deny'],
      ['mount', 'deny'],
    ]);
    expect(audits[2]?.detail).toMatchObject({ folder: 'team', hostPath: '/etc' });
  });

  it('mounts what the allowlist allows and wakes the host only for task changes', async () => {
    const team = register('team');
    const shared = tempDir('warren-shared-');
    writeFileSync(
      path.join(dataDir, 'mount-allowlist.json'),
      JSON.stringify({ allowedRoots: [{ path: shared }], blockedPatterns: [] }),
    );
    const result = await ops.perform(
      { op: 'mount', folder: 'team', hostPath: shared, isReadOnly: true },
      cli,
    );
    expect(result).toMatchObject({
      ok: true,
      text: expect.stringMatching(/read-only under \/workspace\/extra/),
    });
    expect(store.groups.extraMounts(team.id)).toEqual([
      expect.objectContaining({ hostPath: shared, isReadOnly: true }),
    ]);
    expect(changes).toBe(0);
    expect(await ops.perform({ op: 'task-pause', id: 'none' }, cli)).toMatchObject({ ok: false });
    expect(changes).toBe(0);
  });

  it('a pairing code that is not waiting is refused and audited here (pairing.ts audits only what it did)', async () => {
    const result = await ops.perform({ op: 'pairing-approve', code: 'ZZZZZZZZ' }, cli);
    expect(result).toMatchObject({ ok: false, text: expect.stringMatching(/not waiting for approval/) });
    expect(audits).toEqual([
      expect.objectContaining({ actor: 'cli', action: 'pairing-approve', decision: 'deny' }),
    ]);
  });
});
