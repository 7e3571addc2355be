import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup, tempDir } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import { type AuditEntry, openStore, type Store } from '../store/store.js';
import { createMemoryProposals } from './memory-proposals.js';
import { createOwnerOps, type OwnerActor, type OwnerOps, type OwnerOpsDeps } from './owner-ops.js';
import { createPairing } from './pairing.js';

let store: Store;
let dataDir: string;
let audits: AuditEntry[];
let changes: number;
let ops: OwnerOps;
let opsDeps: OwnerOpsDeps;
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
  opsDeps = {
    store,
    dataDir,
    now: () => NOW,
    audit,
    pairing,
    timezone: 'UTC',
    defaultDiskQuotaMb: 4096,
    budgets: { groupDailyBudget: 5, groupMonthlyBudget: 50, currency: 'USD' },
    mountAllowlistPath: path.join(dataDir, 'mount-allowlist.json'),
    protectedPaths: [],
    onChange: () => changes++,
  };
  ops = createOwnerOps(opsDeps);
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

  it("sets a group's budgets, keeps what is not named, and audits each change", async () => {
    register('sales');
    const set = (daily?: number | null, monthly?: number | null) =>
      ops.perform({ op: 'set-budget', folder: 'sales', daily, monthly }, cli);
    expect(await set(2.5)).toEqual({
      ok: true,
      text: "Budget of group 'sales': 2.50 USD daily, 50.00 USD monthly (the default). It applies from its next model call.",
    });
    expect(store.groups.budget('sales')).toEqual({ daily: 2.5, monthly: null });
    expect((await set(undefined, 0)).text).toMatch(/2\.50 USD daily, no monthly limit\./);
    expect(store.groups.budget('sales')).toEqual({ daily: 2.5, monthly: 0 });
    expect((await set(null)).text).toMatch(/5\.00 USD daily \(the default\), no monthly limit/);
    expect(audits.map((entry) => [entry.action, entry.decision, entry.groupFolder, entry.detail])).toEqual([
      ['set-budget', 'allow', 'sales', { folder: 'sales', daily: 2.5, monthly: null }],
      ['set-budget', 'allow', 'sales', { folder: 'sales', daily: 2.5, monthly: 0 }],
      ['set-budget', 'allow', 'sales', { folder: 'sales', daily: null, monthly: 0 }],
    ]);
    expect(await ops.perform({ op: 'set-budget', folder: 'nobody', daily: 1 }, cli)).toMatchObject({
      ok: false,
    });
  });

  it('a pairing code that is not waiting is refused and audited here (pairing.ts audits only what it did)', async () => {
    const result = await ops.perform({ op: 'pairing-approve', code: 'ZZZZZZZZ' }, cli);
    expect(result).toMatchObject({ ok: false, text: expect.stringMatching(/not waiting for approval/) });
    expect(audits).toEqual([
      expect.objectContaining({ actor: 'cli', action: 'pairing-approve', decision: 'deny' }),
    ]);
  });

  it('a pairing decision is audited here, with who asked', async () => {
    const limits = { now: NOW, ttlMs: 3600_000, maxPending: 3 };
    for (const [code, chatId] of [
      ['AAAABBBB', '555'],
      ['CCCCDDDD', '556'],
    ] as const) {
      store.pairing.create(
        { code, channel: 'telegram', chatId, senderId: chatId, senderName: 'Bob' },
        limits,
      );
    }
    expect(await ops.perform({ op: 'pairing-approve', code: 'aaaa-bbbb' }, cli)).toMatchObject({ ok: true });
    expect(await ops.perform({ op: 'pairing-deny', code: 'CCCCDDDD' }, cli)).toMatchObject({ ok: true });
    expect(audits).toEqual([
      expect.objectContaining({
        actor: 'cli',
        action: 'pairing-approve',
        decision: 'allow',
        groupFolder: 'telegram-555',
        detail: expect.objectContaining({ code: 'AAAABBBB', chat: 'telegram:555', sender: '555' }),
      }),
      expect.objectContaining({
        actor: 'cli',
        action: 'pairing-deny',
        decision: 'allow',
        groupFolder: null,
        detail: expect.objectContaining({ code: 'CCCCDDDD', chat: 'telegram:556', sender: '556' }),
      }),
    ]);
  });

  it('a global memory decision is audited here: what was written, and a stale proposal as a denial', async () => {
    const main = register('main', true);
    mkdirSync(path.join(dataDir, 'global'));
    const memoryPath = path.join(dataDir, 'global', 'CLAUDE.md');
    writeFileSync(memoryPath, 'old');
    const memory = createMemoryProposals({ ...opsDeps, log: silentLogger(), notifyAdmin: () => true });
    const withMemory = createOwnerOps({ ...opsDeps, memory });
    const owner: OwnerActor = { kind: 'chat', id: 'fake:me', group: main };
    await memory.propose(main, 'rejected text');
    await memory.propose(main, 'stale text');
    writeFileSync(memoryPath, 'changed by hand');
    await memory.propose(main, 'new text');
    expect(await withMemory.perform({ op: 'global-memory-reject', id: 1 }, owner)).toMatchObject({
      ok: true,
    });
    expect(await withMemory.perform({ op: 'global-memory-approve', id: 2 }, owner)).toMatchObject({
      ok: true,
      text: expect.stringMatching(/^⚠️ Global memory changed/),
    });
    expect(await withMemory.perform({ op: 'global-memory-approve', id: 3 }, owner)).toMatchObject({
      ok: true,
    });
    expect(audits.filter((entry) => entry.actor === 'fake:me')).toEqual([
      expect.objectContaining({ action: 'global-memory-reject', decision: 'allow', groupFolder: 'main' }),
      expect.objectContaining({
        action: 'global-memory-approve',
        decision: 'deny',
        detail: { id: 2, reason: 'global memory changed after the proposal was made' },
      }),
      expect.objectContaining({
        action: 'global-memory-approve',
        decision: 'allow',
        groupFolder: 'main',
        detail: { id: 3, bytes: 8, staleCount: 0 },
      }),
    ]);
  });
});

describe('removing a group with purge', () => {
  it('deletes its folder, session, IPC and socket folders; links the agent planted go as links, their targets stay', async () => {
    register('acme');
    register('globex');
    const outside = tempDir('warren-outside-');
    writeFileSync(path.join(outside, 'passwd'), 'root:x:0:0');
    const at = (...parts: string[]) => path.join(dataDir, ...parts);
    // What an agent can leave in its own folders: links to a host folder and file, at the top and deeper down.
    symlinkSync(outside, at('groups', 'acme', 'etc'));
    mkdirSync(at('groups', 'acme', 'notes', 'old'), { recursive: true });
    symlinkSync(path.join(outside, 'passwd'), at('groups', 'acme', 'notes', 'old', 'passwd'));
    mkdirSync(at('sessions', 'acme', 'projects'), { recursive: true });
    writeFileSync(at('sessions', 'acme', 'projects', 'session.jsonl'), '{}');
    symlinkSync(outside, at('sessions', 'acme', 'projects', 'etc'));
    for (const part of ['input', 'output', 'trash-1/deep'])
      mkdirSync(at('ipc', 'acme', part), { recursive: true });
    mkdirSync(at('sockets', 'acme'), { recursive: true });
    writeFileSync(at('sockets', 'acme', 'api.sock'), '');
    // Staged files of replies not sent yet: the purged group's goes, another group's stays.
    mkdirSync(at('outgoing'));
    for (const folder of ['acme', 'globex']) {
      writeFileSync(at('outgoing', `${folder}.pdf`), 'file');
      const item = {
        idempotencyKey: folder,
        channel: 'fake',
        chatId: folder,
        text: '',
        kind: 'reply' as const,
      };
      store.outbox.enqueue({ ...item, filePath: at('outgoing', `${folder}.pdf`) }, NOW);
    }

    const result = await ops.perform({ op: 'remove-group', folder: 'acme', purge: true }, cli);

    expect(result).toMatchObject({ ok: true, text: expect.stringContaining("Purged group 'acme'") });
    for (const part of ['groups', 'sessions', 'ipc', 'sockets'])
      expect(existsSync(at(part, 'acme'))).toBe(false);
    expect(existsSync(at('outgoing', 'acme.pdf'))).toBe(false);
    expect(readdirSync(outside)).toEqual(['passwd']);
    expect(readFileSync(path.join(outside, 'passwd'), 'utf8')).toBe('root:x:0:0');
    expect(existsSync(at('groups', 'globex', 'CLAUDE.md'))).toBe(true);
    expect(existsSync(at('outgoing', 'globex.pdf'))).toBe(true);
    expect(store.groups.byFolder('acme')).toBeNull();
    expect(changes).toBe(1); // the host is told at once, to stop the group's agent
    expect(audits.at(-1)).toMatchObject({
      action: 'remove-group',
      decision: 'allow',
      groupFolder: 'acme',
      detail: {
        purge: true,
        purged: true,
        deleted: expect.objectContaining({ outbox: 1, groups: 1 }),
        removed: ['groups/acme', 'sessions/acme', 'ipc/acme', 'sockets/acme'],
        left: [],
      },
    });
  });

  it('refuses the admin group, touching nothing', async () => {
    register('main', true);
    const result = await ops.perform({ op: 'remove-group', folder: 'main', purge: true }, cli);
    expect(result).toEqual({ ok: false, text: 'the admin group cannot be removed' });
    expect(existsSync(path.join(dataDir, 'groups', 'main', 'CLAUDE.md'))).toBe(true);
    expect(store.groups.byFolder('main')).not.toBeNull();
  });
});

describe("the owner's web page", () => {
  it('stops a turn and starts a new conversation as the owner, audited as the page', async () => {
    const team = register('team');
    store.groups.setSession(team.id, 'old-session', NOW);
    const stopped: number[] = [];
    const web = createOwnerOps({ ...opsDeps, stopAgent: (groupId) => stopped.push(groupId) > 0 });
    const fresh = await web.perform({ op: 'new-session', folder: 'team' }, { kind: 'web' });
    expect(fresh).toEqual({ ok: true, text: "Group 'team': stopped its agent; a new conversation starts." });
    expect(store.groups.session(team.id)).toBeNull();
    expect(stopped).toEqual([team.id]);
    expect(audits.at(-1)).toMatchObject({
      actor: 'web',
      action: 'new-session',
      decision: 'allow',
      groupFolder: 'team',
    });
    expect((await web.perform({ op: 'stop-turn', folder: 'team' }, { kind: 'web' })).ok).toBe(true);
    expect(audits.at(-1)).toMatchObject({
      actor: 'web',
      action: 'stop-turn',
      detail: { folder: 'team', stopped: true },
    });
  });

  it('refuses to stop a turn where no host runs (the CLI), and says why', async () => {
    register('team');
    const result = await ops.perform({ op: 'stop-turn', folder: 'team' }, cli);
    expect(result).toEqual({ ok: false, text: 'only the running host can stop a turn' });
    expect(audits.at(-1)).toMatchObject({ action: 'stop-turn', decision: 'deny' });
  });
});
