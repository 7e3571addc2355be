import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/fake-agent-runner.js';
import { FakeChannel } from '../../test/fake-channel.js';
import { silentLogger } from '../log.js';
import { openStore, type Store } from '../store/store.js';
import { createDelivery, type Delivery } from './delivery.js';

let store: Store;
let channel: FakeChannel;
let delivery: Delivery;

beforeEach(() => {
  store = openStore(':memory:');
  channel = new FakeChannel();
  delivery = createDelivery({
    store,
    channels: new Map([[channel.name, channel]]),
    log: silentLogger(),
    now: Date.now,
    giveUpMs: 60_000,
    baseDelayMs: 10,
    maxDelayMs: 100,
  });
  delivery.start();
  delivery.setConnected(channel.name, true);
});
afterEach(async () => {
  await delivery.stop();
  store.close();
});

const queue = (key: string, text: string, chatId = 'c1') => {
  store.outbox.enqueue({ idempotencyKey: key, channel: 'fake', chatId, text, kind: 'reply' }, Date.now());
  delivery.kick();
};

describe('delivery', () => {
  it('retries a failed send with backoff and delivers it exactly once', async () => {
    channel.nextResults.push({ status: 'failed', reason: 'timeout', isRetryable: true });
    queue('k1', 'hello');
    await eventually(() => channel.sent.length === 1, 2000, 'delivery');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(channel.attempts).toHaveLength(2);
    expect(channel.sent.map((m) => m.text)).toEqual(['hello']);
    expect(channel.attempts.every((m) => m.idempotencyKey === 'k1')).toBe(true);
    expect(store.outbox.byKey('k1')).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('queueing the same reply twice delivers it once', async () => {
    queue('k1', 'hello');
    queue('k1', 'hello');
    await eventually(() => store.outbox.byKey('k1')?.status === 'sent');
    await delivery.idle();
    expect(channel.sent).toHaveLength(1);
  });

  it('records a send that keeps failing past the give-up time as failed, with the reason', async () => {
    await delivery.stop();
    delivery = createDelivery({
      store,
      channels: new Map([[channel.name, channel]]),
      log: silentLogger(),
      now: Date.now,
      giveUpMs: 100,
      baseDelayMs: 10,
      maxDelayMs: 20,
    });
    delivery.start();
    delivery.setConnected(channel.name, true);
    for (let i = 0; i < 100; i++)
      channel.nextResults.push({ status: 'failed', reason: 'chat unreachable', isRetryable: true });
    queue('k1', 'hello');
    await eventually(() => store.outbox.byKey('k1')?.status === 'failed', 2000, 'final failure');
    expect(store.outbox.byKey('k1')).toMatchObject({ lastError: 'chat unreachable' });
    expect(store.outbox.byKey('k1')?.attempts).toBeGreaterThan(2);
    expect(channel.sent).toHaveLength(0);
  });

  it('gives up at once on a failure that can never succeed', async () => {
    channel.nextResults.push({ status: 'failed', reason: 'bot was blocked', isRetryable: false });
    queue('k1', 'hello');
    await eventually(() => store.outbox.byKey('k1')?.status === 'failed');
    expect(channel.attempts).toHaveLength(1);
  });

  it('keeps the order of messages to one chat when an earlier one must be retried', async () => {
    channel.nextResults.push({ status: 'failed', reason: 'flaky', isRetryable: true });
    queue('k1', 'first');
    queue('k2', 'second');
    await eventually(() => channel.sent.length === 2, 2000, 'both delivered');
    expect(channel.sent.map((m) => m.text)).toEqual(['first', 'second']);
  });

  it('sends a queued file through the channel with its caption, then removes the host-only copy', async () => {
    const staged = join(mkdtempSync(join(tmpdir(), 'warren-outgoing-')), 'q3.pdf');
    writeFileSync(staged, 'pdf');
    store.outbox.enqueue(
      {
        idempotencyKey: 'f1',
        channel: 'fake',
        chatId: 'c1',
        text: 'Q3',
        kind: 'reply',
        filePath: staged,
      },
      Date.now(),
    );
    delivery.kick();
    await eventually(() => store.outbox.byKey('f1')?.status === 'sent', 2000, 'file delivery');
    expect(channel.files).toEqual([{ chatId: 'c1', path: staged, caption: 'Q3' }]);
    expect(existsSync(staged)).toBe(false);
    expect(channel.sent).toEqual([]);
    expect(store.outbox.byKey('f1')?.status).toBe('sent');
  });

  it('an adapter that throws does not lose the message', async () => {
    const original = channel.send.bind(channel);
    let isFirst = true;
    channel.send = async (message) => {
      if (isFirst) {
        isFirst = false;
        throw new Error('adapter bug');
      }
      return original(message);
    };
    queue('k1', 'hello');
    await eventually(() => channel.sent.length === 1, 2000, 'delivery after throw');
  });

  it('a send interrupted by a crash is tried again on the next start', async () => {
    await delivery.stop();
    store.outbox.enqueue(
      { idempotencyKey: 'k1', channel: 'fake', chatId: 'c1', text: 'hi', kind: 'reply' },
      0,
    );
    store.outbox.claimDue(Date.now(), 10); // left in 'sending' as a crash would
    delivery.start();
    await eventually(() => channel.sent.length === 1, 2000, 'resend');
  });
});
