// Stopping is not failing, and a crash costs no attempt: what a crash soak found (issue 14), tested on the real
// host and store with a fake agent that behaves as the runner does on a stop (an error turn-end for what it had).
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, FakeAgentRunner } from '../../test/fake-agent-runner.js';
import {
  registerTestGroup,
  startTestWarren,
  statusesOf,
  type TestWarren,
  tempDir,
} from '../../test/harness.js';
import { databasePath } from '../app.js';
import { openStore } from '../store/store.js';
import type { Channel, SendResult } from '../types.js';

let harness: TestWarren | null = null;
afterEach(async () => {
  await harness?.stop();
  harness = null;
});

describe('restarts', () => {
  it('a stop during a running turn, three times in a row, costs nothing: the answer comes with no notice', async () => {
    const dataDir = tempDir();
    for (let stop = 0; stop < 3; stop += 1) {
      const h = await startTestWarren({ dataDir });
      if (stop === 0) {
        h.addGroup('team');
        h.channel.receive({ chatId: 'team', text: 'a long question' });
      }
      await h.runner.waitForSessions(1);
      await h.stop();
      expect(h.runner.sessions[0]?.stopReasons).toEqual(['Warren is shutting down']);
      expect(h.channel.textsTo('team')).toEqual([]);
    }
    harness = await startTestWarren({
      dataDir,
      runner: new FakeAgentRunner({ autoReply: () => 'the answer' }),
    });
    const h = harness;
    await eventually(() => h.channel.textsTo('team').length > 0, 2000, 'the answer');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(h.channel.textsTo('team')).toEqual(['the answer']);
    expect(h.warren.store.outbox.list({ limit: 10 }).map((item) => item.kind)).toEqual(['reply']);
    expect(statusesOf(h, 'team')).toEqual(['done']);
  });

  it('an agent failure after two host crashes is retried: crashes cost no attempt', () => {
    const dataDir = tempDir();
    const store = openStore(`${dataDir}/warren.db`);
    const group = registerTestGroup(store, dataDir, 'team');
    const chat = store.chats.get('fake', 'team');
    if (!chat) throw new Error('no chat');
    const now = Date.now();
    const message = {
      chatRef: chat.id,
      senderId: 'u',
      senderName: 'U',
      text: 'hi',
      sentAt: now,
      receivedAt: now,
    };
    store.messages.insert({ ...message, externalId: 'm1', isTrigger: true });
    // Two crashes: claimed, and left processing by a host that died; the next start releases them.
    for (const batchId of ['b1', 'b2']) {
      expect(store.messages.claimBatch(group.id, batchId, 10, now)?.messages).toHaveLength(1);
      expect(store.messages.releaseProcessing()).toBe(1);
    }
    store.messages.claimBatch(group.id, 'b3', 10, now);
    const failure = store.messages.failBatch('b3', 'the model failed', {
      maxAttempts: 3,
      backoffMs: () => 10,
      now,
    });
    expect(failure).toMatchObject({ outcome: 'retry', attempt: 1 });
    store.close();
  });

  it('replies waiting at a restart go out once their channel connects, without a try burnt before', async () => {
    const dataDir = tempDir();
    const before = openStore(databasePath(dataDir));
    const reply = {
      idempotencyKey: 'r1',
      channel: 'slow',
      chatId: 'c1',
      text: 'waited',
      kind: 'reply' as const,
    };
    before.outbox.enqueue(reply, Date.now());
    before.close();
    let isConnected = false;
    const sent: string[] = [];
    const slow: Channel = {
      name: 'slow',
      async connect() {
        await new Promise((resolve) => setTimeout(resolve, 300));
        isConnected = true;
      },
      disconnect: async () => {},
      async send(message): Promise<SendResult> {
        if (!isConnected) return { status: 'failed', reason: 'not connected', isRetryable: true };
        sent.push(message.text);
        return { status: 'sent' };
      },
    };
    harness = await startTestWarren({ dataDir, channels: () => [slow] });
    const h = harness;
    await eventually(() => sent.length === 1, 1000, 'the waiting reply');
    expect(h.warren.store.outbox.byKey('r1')).toMatchObject({ status: 'sent', attempts: 1 });
  });

  it('a reply a chat service refuses for good is told to the owner in the admin chat', async () => {
    harness = await startTestWarren();
    const h = harness;
    h.channel.nextResults.push({
      status: 'failed',
      reason: 'bot was blocked by the user',
      isRetryable: false,
    });
    h.warren.store.outbox.enqueue(
      { idempotencyKey: 'lost', channel: 'fake', chatId: 'c9', text: 'an answer', kind: 'reply' },
      Date.now(),
    );
    h.warren.delivery.kick();
    await eventually(() => h.warren.store.outbox.byKey('lost')?.status === 'failed', 2000, 'the failure');
    const id = h.warren.store.outbox.byKey('lost')?.id;
    const notice = h.warren.store.outbox.byKey(`delivery-failed:${id}`);
    expect(notice).toMatchObject({ channel: 'local', chatId: 'main', kind: 'notice' });
    expect(notice?.text).toContain(
      'A reply to fake chat c9 could not be delivered (bot was blocked by the user)',
    );
  });
});
