// What the host tells the admin chat by itself (unknown chats, pairing requests, channel trouble): each notice
// once (by key), rate-limited so nobody can flood the owner; channel states kept for `warren status`.
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { ChannelState, ChatAddress } from '../store/records.js';
import type { Store } from '../store/store.js';

export function createAdminNotifier(deps: {
  store: Store;
  now(): number;
  log: Logger;
  /** Queues a notice to a chat (idempotent by key) and wakes delivery. */
  enqueue(chat: ChatAddress, key: string, text: string): void;
  adminChat(): ChatAddress;
  maxPerHour?: number;
}) {
  const maxPerHour = deps.maxPerHour ?? 20;
  const sentAt: number[] = [];
  return {
    /** Queues a notice for the owner unless one with this key was queued before or the hourly cap is reached. */
    notify(key: string, text: string): boolean {
      if (deps.store.outbox.byKey(key)) return false;
      const now = deps.now();
      while (sentAt.length > 0 && (sentAt[0] as number) <= now - 3600_000) sentAt.shift();
      if (sentAt.length >= maxPerHour) {
        deps.log.warn(
          { key },
          'admin notice dropped: too many this hour (see `warren groups list`, `warren pairing list`)',
        );
        return false;
      }
      sentAt.push(now);
      deps.enqueue(deps.adminChat(), key, text);
      return true;
    },
  };
}

export type AdminNotifier = ReturnType<typeof createAdminNotifier>;

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/**
 * Keeps each channel's latest state in the store (the separate `warren status` process reads it) and tells the
 * owner when a channel needs them (logged out, pairing) or has been down for longer than outageNoticeMs.
 */
export function createChannelStatus(deps: {
  store: Store;
  now(): number;
  log: Logger;
  notifier: AdminNotifier;
  outageNoticeMs?: number;
}) {
  const { notifier } = deps;
  const outageNoticeMs = deps.outageNoticeMs ?? 5 * 60_000;
  const outages = new Map<string, { since: number; timer: NodeJS.Timeout; isTold: boolean }>();

  return {
    report(channel: string, state: ChannelState): void {
      deps.log.info({ channel, ...state }, 'channel state');
      try {
        deps.store.channels.setState(channel, state, deps.now());
      } catch (error) {
        deps.log.error({ err: error, channel }, 'failed to record a channel state');
      }
      const outage = outages.get(channel);
      if (state.status === 'connected' && outage) {
        clearTimeout(outage.timer);
        outages.delete(channel);
        if (outage.isTold) {
          notifier.notify(`channel:${channel}:back:${outage.since}`, `✅ ${channel} is connected again.`);
        }
      } else if (state.status === 'logged-out') {
        notifier.notify(
          `channel:${channel}:logged-out:${digest(state.reason)}`,
          `🔌 ${channel} needs you: ${state.reason}`,
        );
      } else if (state.status === 'reconnecting' && !outage) {
        const since = deps.now();
        const timer = setTimeout(() => {
          started.isTold = notifier.notify(
            `channel:${channel}:down:${since}`,
            `⚠️ ${channel} has been disconnected for ${Math.round(outageNoticeMs / 60_000)} minutes and keeps ` +
              `reconnecting (${state.reason}). Messages sent meanwhile are picked up once it is back.`,
          );
        }, outageNoticeMs);
        const started = { since, timer: timer.unref(), isTold: false };
        outages.set(channel, started);
      }
    },
    stop(): void {
      for (const outage of outages.values()) clearTimeout(outage.timer);
      outages.clear();
    },
  };
}
