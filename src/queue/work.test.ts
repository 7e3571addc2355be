import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import { openStore, type Store } from '../store/store.js';
import { createTaskOps } from '../tasks/tasks.js';
import { createWork, type WorkQueue } from './work.js';

const NOW = Date.parse('2025-06-02T09:00:00Z');
const chat = { channel: 'fake', chatId: 'team' };
let store: Store;
let work: WorkQueue;
let ids: number;

beforeEach(() => {
  store = openStore(':memory:');
  ids = 0;
  work = createWork({
    store,
    log: silentLogger(),
    now: () => NOW,
    newId: () => `b${++ids}`,
    contextLimit: 10,
    timezone: 'UTC',
    maxAttempts: 3,
    retryBaseMs: 1000,
    onOutbox: () => {},
    onTaskChange: () => {},
  });
});
afterEach(() => store.close());

describe('work', () => {
  it("a task's bookkeeping failing does not undo the turn's messages: they still end and the chat is told", () => {
    const group = registerGroup(
      store,
      tempDir(),
      { folder: 'team', name: 'team', chat, isDirect: false, trigger: 'always' },
      NOW,
    );
    const ops = createTaskOps({ store, now: () => NOW - 60_000, defaultTimezone: 'UTC' });
    const created = ops.create({
      group,
      chat,
      prompt: 'brief me',
      scheduleKind: 'interval',
      schedule: '1h',
      createdBy: 'test',
    });
    if (!created.ok) throw new Error(created.error);
    expect(store.tasks.queueManual(created.value.id, NOW)).not.toBeNull();
    const chatRef = (store.chats.get(chat.channel, chat.chatId) as { id: number }).id;
    store.messages.insert({
      chatRef,
      externalId: 'm1',
      senderId: 'u',
      senderName: 'U',
      text: 'hi',
      sentAt: NOW,
      receivedAt: NOW,
      isTrigger: true,
    });
    const messages = work.claim(group.id, 'run-1');
    const task = work.claim(group.id, 'run-1');
    expect([messages?.kind, task?.kind]).toEqual(['messages', 'task']);
    // A timezone the system no longer knows: reporting the task's failure throws.
    store.tasks.update(
      created.value.id,
      { schedule: { kind: 'interval', value: '3600000', timezone: 'Nowhere/Gone' } },
      NOW,
    );
    work.settle([messages, task] as never, {
      status: 'failed',
      error: 'budget used up',
      isRetryable: false,
    });
    expect(store.messages.ofChat(chatRef).map((message) => message.status)).toEqual(['failed']);
    expect(store.outbox.byKey('notice:b1:failed')?.text).toMatch(/could not answer \(budget used up\)/);
    expect(store.tasks.runsOf(created.value.id, 1)[0]?.status).toBe('running');
  });
});
