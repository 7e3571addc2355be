// The channel contract suite: every adapter (and the fake channel) runs it against a fake of its service.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { createDelivery } from '../src/queue/delivery.js';
import { openStore } from '../src/store/store.js';
import type { Channel, InboundMessage } from '../src/types.js';
import { eventually } from './fake-agent-runner.js';

/** What the suite needs from an adapter and the fake service behind it. */
export interface ContractHarness {
  channel: Channel;
  /** A chat of the service the suite may use. */
  chatId: string;
  /** A person writes text to the bot in chatId. The service holds it while the adapter is offline. */
  inject(text: string): void;
  /** What people in chatId saw from the bot, one entry per message, in order. */
  sentTexts(): string[];
  /** How many typing indicators the service got for chatId. */
  typingCount(): number;
  /** The next send (after skip successful ones) fails at the service, as a timeout or a 5xx would. */
  failNextSend(options?: { skip?: number }): void;
  /** The service drops the connection, as a network failure would; null when the channel has no connection. */
  dropConnection: (() => void) | null;
  close(): Promise<void>;
}

const words = (text: string) => text.split(/\s+/).filter(Boolean);

function longText(limit: number): string {
  const out: string[] = [];
  let length = 0;
  for (let index = 0; length < limit * 2.5; index++) {
    const word = `word${index}`;
    out.push(index % 40 === 39 ? `${word}.\n\n` : word);
    length += word.length + 1;
  }
  return out.join(' ');
}

export function describeChannelContract(name: string, setup: () => Promise<ContractHarness>): void {
  describe(`channel contract: ${name}`, () => {
    let harness: ContractHarness;
    let received: InboundMessage[];
    const connect = () => harness.channel.connect({ onMessage: (message) => received.push(message) });
    /** Each message once, by its id (the store ignores a redelivery with the same id). */
    const uniqueTexts = () => [...new Map(received.map((m) => [m.externalId, m.text])).values()];

    beforeEach(async () => {
      received = [];
      harness = await setup();
    });
    afterEach(async () => {
      await harness.channel.disconnect();
      await harness.close();
    });

    it('connects and receives a text', async () => {
      await connect();
      harness.inject('hello bot');
      await eventually(() => received.length === 1, 5000, 'the message');
      expect(received[0]).toMatchObject({
        channel: harness.channel.name,
        chatId: harness.chatId,
        text: 'hello bot',
      });
      expect(received[0]?.externalId).not.toBe('');
    });

    it('sends a text', async () => {
      await connect();
      const result = await harness.channel.send({
        chatId: harness.chatId,
        text: 'hi there',
        idempotencyKey: 'k1',
      });
      expect(result.status).toBe('sent');
      expect(harness.sentTexts()).toEqual(['hi there']);
    });

    it('splits a long text at the channel limit, in order, every part within it', async (context) => {
      const limit = harness.channel.maxTextLength;
      if (limit === undefined) return context.skip();
      await connect();
      const text = longText(limit);
      const result = await harness.channel.send({ chatId: harness.chatId, text, idempotencyKey: 'long' });
      expect(result.status).toBe('sent');
      const parts = harness.sentTexts();
      expect(parts.length).toBeGreaterThanOrEqual(3);
      for (const part of parts) expect(part.length).toBeLessThanOrEqual(limit);
      expect(words(parts.join(' '))).toEqual(words(text));
    });

    it('retries a split text without repeating the parts that arrived', async (context) => {
      const limit = harness.channel.maxTextLength;
      if (limit === undefined) return context.skip();
      await connect();
      const text = longText(limit);
      harness.failNextSend({ skip: 1 });
      const first = await harness.channel.send({ chatId: harness.chatId, text, idempotencyKey: 'split' });
      expect(first).toMatchObject({ status: 'failed', isRetryable: true });
      const second = await harness.channel.send({ chatId: harness.chatId, text, idempotencyKey: 'split' });
      expect(second.status).toBe('sent');
      expect(words(harness.sentTexts().join(' '))).toEqual(words(text));
    });

    it('shows a typing indicator where the channel has one', async (context) => {
      const setTyping = harness.channel.setTyping?.bind(harness.channel);
      if (!setTyping) return context.skip();
      await connect();
      // As in the host: the indicator answers a message (Slack marks the message itself).
      harness.inject('are you there?');
      await eventually(() => received.length === 1, 5000, 'the message');
      await setTyping(harness.chatId, true);
      await eventually(() => harness.typingCount() >= 1, 2000, 'a typing indicator');
      await setTyping(harness.chatId, false);
    });

    it('reconnects after the service drops the connection, losing and repeating nothing', async (context) => {
      const drop = harness.dropConnection;
      if (!drop) return context.skip();
      await connect();
      harness.inject('before the drop');
      await eventually(() => received.length === 1, 5000, 'the first message');
      drop();
      harness.inject('during the drop');
      harness.inject('after the drop');
      await eventually(() => uniqueTexts().length === 3, 10_000, 'messages after reconnecting');
      expect(uniqueTexts()).toEqual(['before the drop', 'during the drop', 'after the drop']);
      const sent = await harness.channel.send({
        chatId: harness.chatId,
        text: 'still here',
        idempotencyKey: 'k2',
      });
      expect(sent.status).toBe('sent');
    });

    it('a restart (disconnect, then connect) loses and repeats nothing', async () => {
      await connect();
      harness.inject('first');
      await eventually(() => received.length === 1, 5000, 'the first message');
      await harness.channel.disconnect();
      harness.inject('while stopped');
      await connect();
      await eventually(() => uniqueTexts().length === 2, 10_000, 'the message sent while stopped');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(uniqueTexts()).toEqual(['first', 'while stopped']);
    });

    it('a send that fails is retried through the outbox and arrives once', async () => {
      await connect();
      const store = openStore(':memory:');
      const delivery = createDelivery({
        store,
        channels: new Map([[harness.channel.name, harness.channel]]),
        log: silentLogger(),
        now: Date.now,
        giveUpMs: 60_000,
        baseDelayMs: 20,
        maxDelayMs: 100,
      });
      try {
        harness.failNextSend();
        delivery.start();
        delivery.setConnected(harness.channel.name, true);
        store.outbox.enqueue(
          {
            idempotencyKey: 'retry-me',
            channel: harness.channel.name,
            chatId: harness.chatId,
            text: 'once only',
            kind: 'reply',
          },
          Date.now(),
        );
        delivery.kick();
        await eventually(() => store.outbox.byKey('retry-me')?.status === 'sent', 5000, 'delivery');
        expect(store.outbox.byKey('retry-me')?.attempts).toBe(2);
        expect(harness.sentTexts()).toEqual(['once only']);
      } finally {
        await delivery.stop();
        store.close();
      }
    });
  });
}
