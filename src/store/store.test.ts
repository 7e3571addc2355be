import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import { createTaskOps } from '../tasks/tasks.js';
import { migrations } from './migrations.js';
import { startRetention } from './retention.js';
import { checkGroupFolder, openStore, type Store } from './store.js';

let store: Store | null = null;
afterEach(() => store?.close());

const setup = () => {
  const dataDir = tempDir();
  store = openStore(join(dataDir, 'warren.db'));
  const group = registerGroup(
    store,
    dataDir,
    {
      folder: 'team',
      name: 'Team',
      chat: { channel: 'fake', chatId: 'c1' },
      isDirect: false,
      trigger: 'mention',
    },
    0,
  );
  const chat = store.chats.get('fake', 'c1');
  if (!chat) throw new Error('chat missing');
  let n = 0;
  const add = (text: string, isTrigger: boolean) =>
    store?.messages.insert({
      chatRef: chat.id,
      externalId: `e${++n}`,
      senderId: 's',
      senderName: 'S',
      text,
      sentAt: n,
      receivedAt: n,
      isTrigger,
    });
  return { dataDir, group, chat, add, store };
};

describe('store', () => {
  it('applies migrations once and records the schema version', () => {
    const dataDir = tempDir();
    const path = join(dataDir, 'warren.db');
    openStore(path).close();
    store = openStore(path); // reopening must not re-run migrations
    const db = new Database(path);
    expect(db.pragma('user_version', { simple: true })).toBe(migrations.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('keeps a consistent copy of a database before taking it to a new schema, and only then', () => {
    const path = join(tempDir(), 'warren.db');
    const old = new Database(path);
    for (const [version, sql] of migrations.slice(0, -1).entries()) {
      old.exec(sql);
      old.pragma(`user_version = ${version + 1}`);
    }
    old
      .prepare('INSERT INTO groups (folder, name, trigger, created_at) VALUES (?, ?, ?, ?)')
      .run('kept', 'k', 'always', 1);
    old.close();
    openStore(path).close();
    const copyPath = `${path}.before-v${migrations.length}`;
    const copy = new Database(copyPath, { readonly: true });
    expect(copy.pragma('user_version', { simple: true })).toBe(migrations.length - 1);
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(copy.prepare('SELECT folder FROM groups').pluck().all()).toEqual(['kept']);
    copy.close();
    rmSync(copyPath);
    openStore(path).close(); // up to date: no copy
    expect(existsSync(copyPath)).toBe(false);
  });

  it('prices usage recorded before budgets were in money, and keeps the spend per day as calls are recorded', () => {
    const path = join(tempDir(), 'warren.db');
    const old = new Database(path);
    const money = migrations.findIndex((migration) => migration.includes('usage_days'));
    for (const [version, sql] of migrations.slice(0, money).entries()) {
      old.exec(sql);
      old.pragma(`user_version = ${version + 1}`);
    }
    const insert = old.prepare(`INSERT INTO usage (at, day, group_folder, model, input_tokens, output_tokens,
      cache_read_tokens, cache_write_tokens) VALUES (1, ?, ?, 'claude-sonnet-4-5', ?, ?, 0, 0)`);
    insert.run('2026-12-01', 'sales', 1_000_000, 0); // 3.00 at Sonnet 4's price
    insert.run('2026-12-01', 'sales', 0, 100_000); // 1.50
    insert.run('2026-12-02', 'family', 1_000_000, 0);
    old.close();
    store = openStore(path);
    expect(store.usage.spent('sales', '2026-12-01', '2026-12-31')).toBeCloseTo(4.5, 9);
    expect(store.usage.spent(null, '2026-12-01', '2026-12-01')).toBeCloseTo(4.5, 9);
    const call = { model: 'x', inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    store.usage.record({ ...call, groupFolder: 'sales', at: 2, day: '2026-12-02', cost: 0.25 });
    expect(store.usage.spent('sales', '2026-12-02', '2026-12-02')).toBeCloseTo(0.25, 9);
    expect(store.usage.spent(null, '2026-12-01', '2026-12-31')).toBeCloseTo(7.75, 9);
    expect(store.usage.byDay('2026-12-01', null).map((row) => [row.day, row.groupFolder, row.cost])).toEqual([
      ['2026-12-01', 'sales', 4.5],
      ['2026-12-02', 'family', 3],
      ['2026-12-02', 'sales', 0.25],
    ]);
  });

  it('backs up while another connection writes: the copy opens and passes integrity_check', async () => {
    const dataDir = tempDir();
    const path = join(dataDir, 'warren.db');
    store = openStore(path);
    const writer = openStore(path);
    const group = writer.groups.create({ folder: 'busy', name: 'busy', trigger: 'always', now: 0 });
    let writes = 0;
    const writing = setInterval(() => {
      for (let i = 0; i < 50; i++)
        writer.audit.record(
          { groupFolder: group.folder, actor: 'test', action: `w${writes++}`, decision: 'allow', detail: {} },
          Date.now(),
        );
    }, 1);
    try {
      await store.backup(join(dataDir, 'copy.db'));
    } finally {
      clearInterval(writing);
      writer.close();
    }
    const copy = new Database(join(dataDir, 'copy.db'), { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(copy.prepare('SELECT folder FROM groups').pluck().all()).toContain('busy');
    copy.close();
  });

  it('refuses a database from a newer Warren', () => {
    const path = join(tempDir(), 'warren.db');
    const db = new Database(path);
    db.pragma(`user_version = ${migrations.length + 1}`);
    db.close();
    expect(() => openStore(path)).toThrow(/newer than this Warren/);
  });

  it('rejects group folder names that could escape the groups directory', () => {
    for (const bad of ['../etc', 'a/b', '.hidden', '', 'UPPER', 'x'.repeat(65), 'global', 'a b']) {
      expect(checkGroupFolder(bad), bad).not.toBeNull();
    }
    expect(checkGroupFolder('sales-team_2')).toBeNull();
    store = openStore(':memory:');
    expect(() => store?.groups.create({ folder: '../x', name: 'x', trigger: 'always', now: 0 })).toThrow(
      /folder/,
    );
  });

  it('allows only one admin group', () => {
    store = openStore(':memory:');
    store.groups.create({ folder: 'main', name: 'Main', trigger: 'always', isAdmin: true, now: 0 });
    expect(() =>
      store?.groups.create({ folder: 'other', name: 'O', trigger: 'always', isAdmin: true, now: 0 }),
    ).toThrow(/admin group already exists/);
  });

  it('claims a batch of the pending messages, keeping only the newest context', () => {
    const { group, add, chat } = setup();
    add('old context', false);
    add('recent context', false);
    add('the question', true);
    const batch = store?.messages.claimBatch(group.id, 'b1', 1, 100);
    expect(batch?.messages.map((m) => m.text)).toEqual(['recent context', 'the question']);
    expect(store?.messages.ofChat(chat.id).map((m) => m.status)).toEqual([
      'done',
      'processing',
      'processing',
    ]);
    expect(store?.messages.claimBatch(group.id, 'b2', 1, 100)).toBeNull();
  });

  it('keeps messages after the last trigger pending for the next batch', () => {
    const { group, add } = setup();
    add('question', true);
    add('chatter after', false);
    const batch = store?.messages.claimBatch(group.id, 'b1', 10, 100);
    expect(batch?.messages.map((m) => m.text)).toEqual(['question']);
  });

  it('completing a batch and queueing its reply happen together', () => {
    const { group, add, chat } = setup();
    add('q', true);
    store?.messages.claimBatch(group.id, 'b1', 10, 100);
    store?.messages.completeBatches(['b1'], {
      idempotencyKey: 'r1',
      channel: 'fake',
      chatId: 'c1',
      text: 'a',
      kind: 'reply',
      now: 5,
    });
    expect(store?.messages.ofChat(chat.id)[0]?.status).toBe('done');
    expect(store?.outbox.byKey('r1')?.status).toBe('pending');
  });

  it('a failed batch waits for its backoff, then fails for good after the last attempt', () => {
    const { group, add, chat } = setup();
    add('q', true);
    store?.messages.claimBatch(group.id, 'b1', 10, 100);
    const policy = { maxAttempts: 2, backoffMs: () => 1000, now: 100 };
    expect(store?.messages.failBatch('b1', 'boom', policy)).toMatchObject({
      outcome: 'retry',
      retryAt: 1100,
    });
    expect(store?.messages.work(500)).toEqual({ dueGroupIds: [], nextDueAt: 1100 });
    expect(store?.messages.work(1100).dueGroupIds).toEqual([group.id]);
    store?.messages.claimBatch(group.id, 'b2', 10, 1100);
    expect(store?.messages.failBatch('b2', 'boom', { ...policy, now: 1100 })).toMatchObject({
      outcome: 'failed',
      attempts: 2,
    });
    expect(store?.messages.ofChat(chat.id)[0]?.status).toBe('failed');
  });

  it('an outbox item with the same idempotency key is queued only once', () => {
    store = openStore(':memory:');
    const item = { idempotencyKey: 'k', channel: 'fake', chatId: 'c', text: 't', kind: 'reply' as const };
    expect(store.outbox.enqueue(item, 0)).toBe(true);
    expect(store.outbox.enqueue({ ...item, text: 'other' }, 0)).toBe(false);
    expect(store.outbox.claimDue(0, 10)).toHaveLength(1);
    expect(store.outbox.claimDue(0, 10)).toHaveLength(0); // claimed items are not handed out twice
  });

  it('retention forgets answered messages and sent replies older than the limit, never waiting work', () => {
    const { group, add, chat } = setup(); // the n-th message is received at time n
    add('answered long ago', true);
    store?.messages.claimBatch(group.id, 'b1', 0, 100);
    store?.messages.completeBatches(['b1'], {
      idempotencyKey: 'r1',
      channel: 'fake',
      chatId: 'c1',
      text: 'a',
      kind: 'reply',
      now: 1,
    });
    store?.outbox.markSent(store.outbox.claimDue(10, 10)[0]?.id ?? -1, 2);
    add('still waiting', true); // old enough to prune, but pending
    add('fresh', false); // received at 3: inside the limit
    const day = 24 * 60 * 60_000;
    startRetention({
      store: store as Store,
      log: silentLogger(),
      now: () => 30 * day + 3,
      days: 30,
      auditDays: 0,
    })();
    expect(store?.messages.ofChat(chat.id).map((m) => m.text)).toEqual(['still waiting', 'fresh']);
    expect(store?.outbox.byKey('r1')).toBeNull();
  });

  it('removing a group deletes the text of its messages, its secret bindings and its MCP servers', () => {
    const { add, chat } = setup();
    add('private', true);
    const binding = { host: 'api.example.com', port: 443, header: 'Authorization', template: '{secret}' };
    store?.egress.bind('team', { ...binding, secretName: 'TOKEN' }, 1);
    store?.egress.setMcpServer('team', 'crm', 'https://crm.example.com/mcp', 1);
    expect(store?.egress.bindingsOf('TOKEN')).toHaveLength(1);
    expect(store?.egress.mcpServers('team')).toHaveLength(1);
    expect(store?.groups.remove('team')).toBe(true);
    expect(store?.messages.ofChat(chat.id)).toEqual([]);
    expect(store?.egress.bindingsOf('TOKEN')).toEqual([]);
    expect(store?.egress.mcpServers('team')).toEqual([]);
    expect(store?.chats.get('fake', 'c1')?.groupId).toBeNull();
  });

  it('a chat moved to a new id keeps its group, messages, replies and tasks; the reply waiting is due at once', () => {
    const { group, chat, add, store: db } = setup();
    add('hello', true);
    db.outbox.enqueue(
      { idempotencyKey: 'r1', channel: 'fake', chatId: 'c1', text: 'reply', kind: 'reply' },
      0,
    );
    db.outbox.markRetry(db.outbox.byKey('r1')?.id ?? -1, 'group chat was upgraded', 60_000);
    const tasks = createTaskOps({ store: db, now: () => 0, defaultTimezone: 'UTC' });
    const task = tasks.create({
      group,
      chat: { channel: 'fake', chatId: 'c1' },
      prompt: 'briefing',
      scheduleKind: 'cron',
      schedule: '0 9 * * *',
      createdBy: 'test',
    });
    if (!task.ok) throw new Error(task.error);
    // An unregistered record under the new id (the service showed it first) is the same chat: it goes.
    db.chats.upsert({ channel: 'fake', chatId: 'c2', isDirect: false, now: 5 });

    expect(db.channels.moveChat('fake', 'c1', 'c2', 1_000)).toBe('moved');
    expect(db.chats.get('fake', 'c1')).toBeNull();
    const moved = db.chats.get('fake', 'c2');
    expect(moved?.id).toBe(chat.id);
    expect(moved?.groupId).toBe(group.id);
    expect(db.messages.ofChat(chat.id).map((message) => message.text)).toEqual(['hello']);
    const [reply] = db.outbox.list({ limit: 10 });
    expect(reply).toMatchObject({ chatId: 'c2', status: 'pending', nextAttemptAt: 1_000 });
    expect(db.tasks.byId(task.value.id)?.chat).toEqual({ channel: 'fake', chatId: 'c2' });
    // Told again (both service messages arrive): nothing left to move.
    expect(db.channels.moveChat('fake', 'c1', 'c2', 2_000)).toBe('unknown');
  });

  it('a chat moved onto an id that is registered to another group moves nothing', () => {
    const { dataDir, store: db } = setup();
    registerGroup(
      db,
      dataDir,
      {
        folder: 'other',
        name: 'Other',
        chat: { channel: 'fake', chatId: 'c2' },
        isDirect: false,
        trigger: 'mention',
      },
      0,
    );
    expect(db.channels.moveChat('fake', 'c1', 'c2', 1_000)).toBe('conflict');
    expect(db.chats.get('fake', 'c1')?.groupId).not.toBeNull();
    expect(db.groups.byId(db.chats.get('fake', 'c2')?.groupId ?? -1)?.folder).toBe('other');
  });
});
