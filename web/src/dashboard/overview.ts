// The dashboard's overview: groups and their agents, channels, the outbox and failed deliveries.
import type { Api } from '../api.js';
import { type Child, formatTime, h } from '../dom.js';
import { table } from './parts.js';

export async function overview(api: Api): Promise<Child[]> {
  const data = await api.get<{
    groups: Array<{
      folder: string;
      name: string;
      chats: string[];
      state: string;
      queued: number;
      lastActiveAt: number | null;
      isWaiting: boolean;
    }>;
    outbox: Record<string, number>;
    failed: Array<{
      id: number;
      channel: string;
      chatId: string;
      lastError: string | null;
      createdAt: number;
    }>;
    channels: Array<{ channel: string; state: { status: string; reason?: string } }>;
    emergencyStop: { by: string; at: number } | null;
  }>('/api/dashboard/overview');
  return [
    data.emergencyStop
      ? h(
          'p',
          { class: 'alert', role: 'alert' },
          `Emergency stop is on (by ${data.emergencyStop.by}, ${formatTime(data.emergencyStop.at)}): nothing runs until Resume all.`,
        )
      : null,
    table(
      'Groups',
      ['Group', 'Chats', 'Agent', 'Queued', 'Last activity'],
      data.groups.map((group) => [
        `${group.name} (${group.folder})`,
        group.chats.join(', '),
        h('span', { class: `state ${group.state}` }, group.isWaiting ? 'waiting' : group.state),
        group.queued,
        group.lastActiveAt ? formatTime(group.lastActiveAt) : '—',
      ]),
    ),
    table(
      'Channels',
      ['Channel', 'State'],
      data.channels.map((row) => [
        row.channel,
        row.state.status + (row.state.reason ? `: ${row.state.reason}` : ''),
      ]),
    ),
    h(
      'p',
      {},
      `Outbox: ${data.outbox.pending ?? 0} waiting, ${data.outbox.sending ?? 0} sending, ${data.outbox.failed ?? 0} failed.`,
    ),
    table(
      'Failed deliveries',
      ['When', 'To', 'Error'],
      data.failed.map((item) => [
        formatTime(item.createdAt),
        `${item.channel}:${item.chatId}`,
        item.lastError ?? '',
      ]),
    ),
  ];
}
