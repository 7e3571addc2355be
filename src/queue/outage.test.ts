// Replies outlive outages: a chat service down for half an hour, a channel that drops, a reply that never goes.
// Time is compressed with fake timers (the delivery's clock and its one timer); the store is real SQLite.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../log.js';
import { type OutboxItem, openStore, type Store } from '../store/store.js';
import type { Channel, OutboundMessage, SendResult } from '../types.js';
import { createDelivery, type Delivery } from './delivery.js';

const MINUTE = 60_000;
let store: Store;
let delivery: Delivery;
let isServiceUp: boolean;
let tries: OutboundMessage[];
let sent: string[];
let givenUp: Array<{ item: OutboxItem; reason: string }>;

const service: Channel = {
  name: 'chat',
  connect: async () => {},
  disconnect: async () => {},
  async send(message): Promise<SendResult> {
    tries.push(message);
    if (!isServiceUp) return { status: 'failed', reason: 'service unavailable (503)', isRetryable: true };
    sent.push(message.text);
    return { status: 'sent' };
  },
};

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  store = openStore(':memory:');
  isServiceUp = true;
  tries = [];
  sent = [];
  givenUp = [];
  delivery = createDelivery({
    store,
    channels: new Map([[service.name, service]]),
    log: silentLogger(),
    now: Date.now,
    giveUpMs: 24 * 60 * MINUTE,
    baseDelayMs: 2000,
    maxDelayMs: 5 * MINUTE,
    onGiveUp: (item, reason) => givenUp.push({ item, reason }),
  });
  delivery.start();
});
afterEach(async () => {
  await delivery.stop();
  store.close();
  vi.useRealTimers();
});

const queue = (...texts: string[]) => {
  for (const text of texts) {
    store.outbox.enqueue(
      { idempotencyKey: text, channel: 'chat', chatId: 'c1', text, kind: 'reply' },
      Date.now(),
    );
  }
  delivery.kick();
};
const statuses = () => store.outbox.list({ limit: 10 }).map((item) => item.status);

describe('delivery through outages', () => {
  it('a 30-minute outage of the service loses no reply and gives nothing up; they go out in order', async () => {
    delivery.setConnected('chat', true);
    isServiceUp = false;
    queue('one', 'two', 'three');
    await vi.advanceTimersByTimeAsync(30 * MINUTE);
    expect(sent).toEqual([]);
    // Only the oldest reply of the chat is tried, at most every 5 minutes once backed off: a dozen tries, not 8.
    expect(new Set(tries.map((message) => message.text))).toEqual(new Set(['one']));
    expect(tries.length).toBeGreaterThan(8);
    expect(statuses()).toEqual(['pending', 'pending', 'pending']);
    isServiceUp = true;
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    expect(sent).toEqual(['one', 'two', 'three']);
    expect(givenUp).toEqual([]);
  });

  it('while the channel is not connected its replies wait, burning no tries, and go out on reconnecting', async () => {
    queue('waited');
    await vi.advanceTimersByTimeAsync(30 * MINUTE);
    expect(tries).toEqual([]);
    expect(store.outbox.byKey('waited')).toMatchObject({ status: 'pending', attempts: 0 });
    delivery.setConnected('chat', true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual(['waited']);
    // It drops again: a new reply waits for it.
    delivery.setConnected('chat', false);
    queue('later');
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    expect(tries).toHaveLength(1);
    delivery.setConnected('chat', true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual(['waited', 'later']);
  });

  it('a reply the service refuses for the whole give-up time is given up once, and the owner is told', async () => {
    delivery.setConnected('chat', true);
    isServiceUp = false;
    queue('never');
    await vi.advanceTimersByTimeAsync(23 * 60 * MINUTE);
    expect(statuses()).toEqual(['pending']);
    await vi.advanceTimersByTimeAsync(2 * 60 * MINUTE);
    expect(statuses()).toEqual(['failed']);
    expect(givenUp).toHaveLength(1);
    expect(givenUp[0]).toMatchObject({ item: { text: 'never' }, reason: 'service unavailable (503)' });
  });
});
