import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup, tempDir } from '../../test/harness.js';
import { openStore, type Store } from './store.js';

let store: Store;
const chat = { channel: 'fake', chatId: 'team' };

beforeEach(() => {
  store = openStore(':memory:');
  registerTestGroup(store, tempDir(), 'team', { now: 1000 });
});
afterEach(() => store.close());

function say(at: number, text: string, id = `x${at}`) {
  const chatRef = store.chats.get(chat.channel, chat.chatId)?.id ?? -1;
  store.messages.insert({
    chatRef,
    externalId: id,
    senderId: 'u',
    senderName: 'Ann',
    text,
    sentAt: at,
    receivedAt: at,
    isTrigger: true,
  });
}
const reply = (at: number, text: string, key = `r${at}`) =>
  store.outbox.enqueue({ idempotencyKey: key, ...chat, text, kind: 'reply' }, at);

describe('chat history', () => {
  it("merges the chat's messages and replies newest first, with keys the live stream uses too", () => {
    say(1000, 'hello');
    reply(2000, 'hi Ann');
    reply(2500, 'for another chat', 'other');
    store.outbox.enqueue(
      { idempotencyKey: 'elsewhere', channel: 'fake', chatId: 'other', text: 'x', kind: 'reply' },
      2600,
    );
    say(3000, 'thanks');
    const page = store.history.page(chat, null, 10);
    expect(page.map(({ key, role, text }) => ({ key, role, text }))).toEqual([
      { key: 'm:x3000', role: 'user', text: 'thanks' },
      { key: 'o:other', role: 'assistant', text: 'for another chat' },
      { key: 'o:r2000', role: 'assistant', text: 'hi Ann' },
      { key: 'm:x1000', role: 'user', text: 'hello' },
    ]);
    expect(page[0]).toMatchObject({ senderName: 'Ann', at: 3000, status: 'pending' });
  });

  it('pages through a long chat without losing or repeating rows that share an instant', () => {
    for (let i = 0; i < 7; i++) {
      say(5000, `m${i}`, `x${i}`);
      reply(5000, `r${i}`, `r${i}`);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let guard = 0; guard < 10; guard++) {
      const page = store.history.page(chat, cursor, 3);
      if (page.length === 0) break;
      seen.push(...page.map((item) => item.text));
      cursor = page.at(-1)?.cursor ?? null;
    }
    expect(seen).toHaveLength(14);
    expect(new Set(seen).size).toBe(14);
  });

  it('refuses a malformed cursor', () => {
    expect(() => store.history.page(chat, '1; DROP TABLE messages', 3)).toThrow(/malformed history cursor/);
  });
});
