import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import type { ChatAddress } from '../store/records.js';
import { type AuditEntry, openStore, type Store } from '../store/store.js';
import type { InboundMessage } from '../types.js';
import { createAdminNotifier } from './admin-notices.js';
import { createPairing, formatCode, normalizeCode, type Pairing } from './pairing.js';
import { registerGroup } from './registration.js';

const ADMIN: ChatAddress = { channel: 'local', chatId: 'main' };
const TTL = 60 * 60_000;

let store: Store;
let clock: number;
let sent: Array<{ chat: ChatAddress; key: string; text: string }>;
let audits: AuditEntry[];
let pairing: Pairing;
let codes: string[];

beforeEach(() => {
  store = openStore(':memory:');
  clock = 1_000_000;
  sent = [];
  audits = [];
  codes = ['AAAABBBB', 'CCCCDDDD', 'EEEEFFFF', 'GGGGHHHH', 'JJJJKKKK'];
  const enqueue = (chat: ChatAddress, key: string, text: string) => {
    if (
      store.outbox.enqueue(
        { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind: 'notice' },
        clock,
      )
    ) {
      sent.push({ chat: { channel: chat.channel, chatId: chat.chatId }, key, text });
    }
  };
  pairing = createPairing({
    store,
    dataDir: tempDir(),
    assistantName: 'Warren',
    log: silentLogger(),
    now: () => clock,
    audit: (entry) => audits.push(entry),
    enqueue,
    notifier: createAdminNotifier({
      store,
      now: () => clock,
      log: silentLogger(),
      enqueue,
      adminChat: () => ADMIN,
      maxPerHour: 5,
    }),
    ttlMs: TTL,
    maxPending: 2,
    newCode: () => codes.shift() as string,
  });
});
afterEach(() => store.close());

const direct = (chatId: string, text = 'hi, can you help?'): InboundMessage => ({
  channel: 'telegram',
  chatId,
  externalId: `x${Math.random()}`,
  senderId: chatId,
  senderName: `Person ${chatId}`,
  text,
  sentAt: clock,
  isDirect: true,
});

const toChat = (chatId: string) =>
  sent.filter((entry) => entry.chat.chatId === chatId).map((entry) => entry.text);
const toAdmin = () => sent.filter((entry) => entry.chat.chatId === 'main').map((entry) => entry.text);

describe('sender pairing', () => {
  it('an unknown person gets one code (not one per message); the owner is told; nothing they wrote is kept', () => {
    pairing.onUnknownMessage(direct('555', 'my secret plans'));
    pairing.onUnknownMessage(direct('555', 'hello??'));
    expect(toChat('555')).toEqual([expect.stringContaining('AAAA-BBBB')]);
    expect(toAdmin()).toEqual([expect.stringContaining('/approve AAAABBBB')]);
    expect(JSON.stringify(sent)).not.toContain('secret plans');
    expect(JSON.stringify(audits)).not.toContain('secret plans');
    expect(audits.every((entry) => entry.decision === 'deny')).toBe(true);
  });

  it('a code expires; after that the person gets a new one, and the old one cannot be approved', () => {
    pairing.onUnknownMessage(direct('555'));
    clock += TTL + 1;
    expect(() => pairing.approve({ code: 'AAAABBBB', actor: 'owner' })).toThrow(/expired/);
    pairing.onUnknownMessage(direct('555'));
    expect(toChat('555')).toEqual([
      expect.stringContaining('AAAA-BBBB'),
      expect.stringContaining('CCCC-DDDD'),
    ]);
    expect(pairing.listPending().map((request) => request.code)).toEqual(['CCCCDDDD']);
  });

  it('only a few requests wait at once: the next person gets no code and the owner is told once', () => {
    pairing.onUnknownMessage(direct('1'));
    pairing.onUnknownMessage(direct('2'));
    pairing.onUnknownMessage(direct('3'));
    pairing.onUnknownMessage(direct('4'));
    expect(toChat('3')).toEqual([]);
    expect(toChat('4')).toEqual([]);
    expect(toAdmin().filter((text) => text.includes('already waiting'))).toHaveLength(1);
    expect(pairing.listPending()).toHaveLength(2);
  });

  it('approving makes the direct chat a group and welcomes the person; a code works once', () => {
    pairing.onUnknownMessage(direct('555'));
    const outcome = pairing.approve({ code: 'aaaa-bbbb', actor: 'local:owner' });
    expect(outcome).toMatchObject({
      request: { status: 'approved' },
      group: { folder: 'telegram-555', trigger: 'always' },
    });
    expect(store.chats.get('telegram', '555')?.groupId).not.toBeNull();
    expect(toChat('555').at(-1)).toMatch(/You're in/);
    expect(() => pairing.approve({ code: 'AAAABBBB', actor: 'local:owner' })).toThrow(/not waiting/);
    // Who decided is recorded here; the audit of the decision is the owner's operation's (owner-ops.test.ts).
    expect(store.pairing.byCode('AAAABBBB')).toMatchObject({ status: 'approved', decidedBy: 'local:owner' });
  });

  it('approving into an existing group shares it; the admin group can never be shared', () => {
    const dataDir = tempDir();
    registerGroup(
      store,
      dataDir,
      { folder: 'main', name: 'Main', chat: ADMIN, isDirect: true, trigger: 'always', isAdmin: true },
      0,
    );
    registerGroup(
      store,
      dataDir,
      {
        folder: 'family',
        name: 'Family',
        chat: { channel: 'telegram', chatId: '-1' },
        isDirect: false,
        trigger: 'always',
      },
      0,
    );
    pairing.onUnknownMessage(direct('555'));
    expect(() => pairing.approve({ code: 'AAAABBBB', shareFolder: 'main', actor: 'owner' })).toThrow(
      /admin group cannot be shared/,
    );
    expect(store.pairing.byCode('AAAABBBB')?.status).toBe('pending');
    expect(pairing.approve({ code: 'AAAABBBB', shareFolder: 'family', actor: 'owner' })).toMatchObject({
      request: { status: 'approved' },
      group: { folder: 'family' },
    });
  });

  it('a denied person stays ignored: no new code, nothing sent', () => {
    pairing.onUnknownMessage(direct('555'));
    expect(pairing.deny({ code: 'AAAABBBB', actor: 'owner' })).toMatchObject({ status: 'denied' });
    clock += TTL * 3;
    pairing.onUnknownMessage(direct('555'));
    expect(toChat('555')).toHaveLength(1);
    expect(audits.at(-1)).toMatchObject({
      decision: 'deny',
      detail: { reason: 'sender was denied pairing' },
    });
  });

  it('on a channel where pairing is off, an unknown person gets nothing and the owner is not bothered', () => {
    const quiet = createPairing({
      store,
      dataDir: tempDir(),
      assistantName: 'Warren',
      log: silentLogger(),
      now: () => clock,
      audit: (entry) => audits.push(entry),
      enqueue: (chat, key, text) => sent.push({ chat, key, text }),
      notifier: { notify: () => true },
      silentChannels: ['whatsapp'],
    });
    quiet.onUnknownMessage({ ...direct('4915112345678@s.whatsapp.net'), channel: 'whatsapp' });
    expect(sent).toEqual([]);
    expect(store.pairing.listPending(clock)).toEqual([]);
    expect(audits.at(-1)).toMatchObject({ decision: 'deny', detail: { reason: /pairing is off/ } });
  });

  it('codes are short, unambiguous and typed any way', () => {
    expect(normalizeCode(' abcd-efgh ')).toBe('ABCDEFGH');
    expect(formatCode('ABCDEFGH')).toBe('ABCD-EFGH');
  });
});

describe('unknown chats', () => {
  it('a message in an unknown group tells the owner once, with how to register it', () => {
    const message = { ...direct('-100123', 'private talk'), isDirect: false };
    store.chats.upsert({
      channel: 'telegram',
      chatId: '-100123',
      name: 'Sales',
      isDirect: false,
      now: clock,
    });
    pairing.onUnknownMessage(message);
    pairing.onUnknownMessage(message);
    expect(toAdmin()).toEqual([expect.stringContaining('/register telegram:-100123 FOLDER')]);
    expect(toAdmin()[0]).toContain('(Sales)');
    expect(toChat('-100123')).toEqual([]);
    expect(JSON.stringify(sent)).not.toContain('private talk');
  });

  it('being added to a group tells the owner; a registered chat is not announced', () => {
    pairing.onChatJoined({
      type: 'chat-joined',
      channel: 'telegram',
      chatId: '-100777',
      chatName: 'Book club',
      isDirect: false,
      byName: 'Ann',
    });
    expect(toAdmin()).toEqual([expect.stringMatching(/Ann added Warren to telegram:-100777 \(Book club\)/)]);
    expect(store.chats.get('telegram', '-100777')?.name).toBe('Book club');
  });

  it('a registered group that gets a new id keeps its registration, audited; a clash is told to the owner', () => {
    const dataDir = tempDir();
    const group = (folder: string, chatId: string) =>
      registerGroup(
        store,
        dataDir,
        { folder, name: folder, chat: { channel: 'telegram', chatId }, isDirect: false, trigger: 'mention' },
        clock,
      );
    const sales = group('sales', '-4001');
    pairing.onChatMoved({
      type: 'chat-moved',
      channel: 'telegram',
      fromChatId: '-4001',
      toChatId: '-1004001',
    });
    expect(store.chats.get('telegram', '-1004001')?.groupId).toBe(sales.id);
    expect(audits.at(-1)).toMatchObject({
      groupFolder: 'sales',
      action: 'chat-moved',
      decision: 'allow',
      detail: { from: 'telegram:-4001', to: 'telegram:-1004001' },
    });
    expect(toAdmin()).toEqual([]);

    group('support', '-1005002');
    group('ops', '-5002');
    pairing.onChatMoved({
      type: 'chat-moved',
      channel: 'telegram',
      fromChatId: '-5002',
      toChatId: '-1005002',
    });
    expect(store.groups.byId(store.chats.get('telegram', '-5002')?.groupId ?? -1)?.folder).toBe('ops');
    expect(audits.at(-1)).toMatchObject({ action: 'chat-moved', decision: 'deny', groupFolder: 'ops' });
    expect(toAdmin()).toEqual([expect.stringMatching(/telegram:-5002 now has the id telegram:-1005002/)]);
    // A chat nobody knows: nothing to move, nothing to say.
    const before = audits.length;
    pairing.onChatMoved({ type: 'chat-moved', channel: 'telegram', fromChatId: '-9', toChatId: '-1009' });
    expect(audits).toHaveLength(before);
  });

  it('notices to the owner are rate-limited, so nobody can flood the admin chat', () => {
    for (let index = 0; index < 20; index++)
      pairing.onUnknownMessage({ ...direct(`-${index}`), isDirect: false });
    expect(toAdmin()).toHaveLength(5);
    expect(audits.filter((entry) => entry.decision === 'deny')).toHaveLength(20);
  });
});
