import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import type { Group } from '../store/records.js';
import { openStore, type Store } from '../store/store.js';
import type { InboundMessage } from '../types.js';
import { registerGroup } from './registration.js';
import { createRouter, isTriggered, MAX_MESSAGE_CHARS, mentionsName } from './router.js';

const group = (overrides: Partial<Group> = {}): Group => ({
  id: 1,
  folder: 'team',
  name: 'team',
  trigger: 'mention',
  triggerWord: null,
  isAdmin: false,
  createdAt: 0,
  ...overrides,
});

const message = (overrides: Partial<InboundMessage> = {}): InboundMessage => ({
  channel: 'fake',
  chatId: 'team',
  externalId: 'x1',
  senderId: 'u1',
  senderName: 'Alice',
  text: 'hello',
  sentAt: 0,
  isDirect: false,
  ...overrides,
});

describe('trigger rules', () => {
  it('a group message that does not name the assistant does not trigger', () => {
    expect(isTriggered(group(), message({ text: 'lunch?' }), 'Warren')).toBe(false);
  });

  it('naming the assistant as a word, with or without @, in any case, triggers', () => {
    expect(isTriggered(group(), message({ text: '@warren what time is it' }), 'Warren')).toBe(true);
    expect(isTriggered(group(), message({ text: 'hey Warren, hi' }), 'Warren')).toBe(true);
    expect(isTriggered(group(), message({ text: 'my Warrenty expired' }), 'Warren')).toBe(false);
  });

  it('a per-group trigger word replaces the assistant name', () => {
    const g = group({ triggerWord: 'Jeeves' });
    expect(isTriggered(g, message({ text: 'Jeeves, tea' }), 'Warren')).toBe(true);
    expect(isTriggered(g, message({ text: 'Warren, tea' }), 'Warren')).toBe(false);
  });

  it('a trigger word with regex characters is matched literally', () => {
    expect(mentionsName('ask C++ bot', 'C++')).toBe(true);
    expect(mentionsName('ask CCC bot', 'C++')).toBe(false);
  });

  it('the admin chat, direct chats, always-groups and channel mentions always trigger', () => {
    expect(isTriggered(group({ isAdmin: true }), message({ text: 'x' }), 'Warren')).toBe(true);
    expect(isTriggered(group(), message({ text: 'x', isDirect: true }), 'Warren')).toBe(true);
    expect(isTriggered(group({ trigger: 'always' }), message({ text: 'x' }), 'Warren')).toBe(true);
    expect(isTriggered(group(), message({ text: 'x', isMention: true }), 'Warren')).toBe(true);
  });
});

describe('router', () => {
  let store: Store;
  let dataDir: string;
  let triggered: number[];
  let router: ReturnType<typeof createRouter>;

  beforeEach(() => {
    dataDir = tempDir();
    store = openStore(':memory:');
    triggered = [];
    router = createRouter({
      store,
      assistantName: 'Warren',
      log: silentLogger(),
      now: () => 1000,
      onTrigger: (groupId) => triggered.push(groupId),
    });
  });
  afterEach(() => store.close());

  it('stores nothing of a message from an unregistered chat and starts no agent', () => {
    expect(router.handleInbound(message({ text: 'secret stuff' }))).toBe('unregistered');
    const chat = store.chats.get('fake', 'team');
    expect(chat?.groupId).toBeNull();
    expect(store.messages.ofChat(chat?.id ?? -1)).toEqual([]);
    expect(triggered).toEqual([]);
  });

  it('stores a registered chat message once even if the channel redelivers it', () => {
    const g = registerGroup(
      store,
      dataDir,
      {
        folder: 'team',
        name: 'Team',
        chat: { channel: 'fake', chatId: 'team' },
        isDirect: false,
        trigger: 'mention',
      },
      0,
    );
    expect(router.handleInbound(message({ text: 'Warren hi' }))).toBe('triggered');
    expect(router.handleInbound(message({ text: 'Warren hi' }))).toBe('duplicate');
    expect(router.handleInbound(message({ externalId: 'x2', text: 'just chatting' }))).toBe('context');
    expect(triggered).toEqual([g.id]);
  });

  it('cuts a huge message to the limit and says so to the agent', () => {
    registerGroup(
      store,
      dataDir,
      {
        folder: 'team',
        name: 'Team',
        chat: { channel: 'fake', chatId: 'team' },
        isDirect: true,
        trigger: 'always',
      },
      0,
    );
    router.handleInbound(message({ text: 'a'.repeat(MAX_MESSAGE_CHARS + 500) }));
    const chat = store.chats.get('fake', 'team');
    const [stored] = store.messages.ofChat(chat?.id ?? -1);
    expect(stored?.text.length).toBeLessThan(MAX_MESSAGE_CHARS + 100);
    expect(stored?.text).toMatch(/500 more characters were cut/);
  });
});
