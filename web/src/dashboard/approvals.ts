// The dashboard's approvals page: people waiting to be paired, and chats waiting to be registered as groups.
import type { Api } from '../api.js';
import { type Child, formatTime, h } from '../dom.js';
import { type Act, actionButton, table } from './parts.js';

export async function approvals(api: Api, act: Act): Promise<Child[]> {
  const data = await api.get<{
    pairing: Array<{
      code: string;
      channel: string;
      chatId: string;
      senderName: string;
      expiresAt: number;
    }>;
    chats: Array<{ channel: string; chatId: string; name: string | null }>;
  }>('/api/dashboard/approvals');
  return [
    table(
      'People waiting to be paired',
      ['Who', 'Chat', 'Code', 'Expires', 'Decide'],
      data.pairing.map((request) => [
        request.senderName,
        `${request.channel}:${request.chatId}`,
        request.code,
        formatTime(request.expiresAt),
        h(
          'div',
          { class: 'row-actions' },
          actionButton(act, `Approve ${request.senderName}`, { op: 'pairing-approve', code: request.code }),
          actionButton(act, `Deny ${request.senderName}`, { op: 'pairing-deny', code: request.code }),
        ),
      ]),
    ),
    table(
      'Chats waiting to be registered',
      ['Chat', 'Name', 'Register as group'],
      data.chats.map((chat) => {
        const folder = h('input', {
          'aria-label': `Folder for ${chat.channel}:${chat.chatId}`,
          placeholder: 'folder',
          size: 12,
        });
        const register = h('button', { type: 'button', class: 'ghost small' }, 'Register');
        register.addEventListener(
          'click',
          () =>
            void act({
              op: 'register-chat',
              chat: { channel: chat.channel, chatId: chat.chatId },
              folder: folder.value,
              trigger: 'mention',
            }),
        );
        return [
          `${chat.channel}:${chat.chatId}`,
          chat.name ?? '',
          h('div', { class: 'row-actions' }, folder, register),
        ];
      }),
    ),
  ];
}
