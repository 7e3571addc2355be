import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/fake-agent-runner.js';
import { formatStatus } from '../cli/status.js';
import { silentLogger } from '../log.js';
import { openStore, type Store } from '../store/store.js';
import { createAdminNotifier, createChannelStatus } from './admin-notices.js';

let store: Store;
let notices: string[];
let status: ReturnType<typeof createChannelStatus>;

beforeEach(() => {
  store = openStore(':memory:');
  notices = [];
  const notifier = createAdminNotifier({
    store,
    now: Date.now,
    log: silentLogger(),
    enqueue: (chat, key, text) => {
      store.outbox.enqueue(
        { idempotencyKey: key, channel: chat.channel, chatId: chat.chatId, text, kind: 'notice' },
        Date.now(),
      );
      notices.push(text);
    },
    adminChat: () => ({ channel: 'local', chatId: 'main' }),
  });
  status = createChannelStatus({ store, now: Date.now, log: silentLogger(), notifier, outageNoticeMs: 30 });
});
afterEach(() => {
  status.stop();
  store.close();
});

describe('channel status', () => {
  it('keeps the latest state of each channel for `warren status`', () => {
    status.report('telegram', { status: 'connected' });
    status.report('whatsapp', { status: 'logged-out', reason: 'not paired: scan the QR code' });
    const text = formatStatus(store, Date.now());
    expect(text).toMatch(/telegram\s+connected/);
    expect(text).toMatch(/whatsapp\s+logged out — needs you .*not paired: scan the QR code/);
  });

  it('tells the owner once when a channel needs them, and again only for a new reason', () => {
    status.report('whatsapp', { status: 'logged-out', reason: 'pair with code ABCD-1234' });
    status.report('whatsapp', { status: 'logged-out', reason: 'pair with code ABCD-1234' });
    status.report('whatsapp', { status: 'logged-out', reason: 'pair with code WXYZ-5678' });
    expect(notices).toEqual([
      '🔌 whatsapp needs you: pair with code ABCD-1234',
      '🔌 whatsapp needs you: pair with code WXYZ-5678',
    ]);
  });

  it('a short reconnect stays quiet; a long outage is told, and so is the recovery', async () => {
    status.report('telegram', { status: 'reconnecting', reason: 'network' });
    status.report('telegram', { status: 'connected' });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(notices).toEqual([]);
    status.report('telegram', { status: 'reconnecting', reason: 'network: ECONNRESET' });
    await eventually(() => notices.length === 1, 1000, 'the outage notice');
    expect(notices[0]).toMatch(/telegram has been disconnected/);
    status.report('telegram', { status: 'connected' });
    expect(notices[1]).toBe('✅ telegram is connected again.');
  });
});
