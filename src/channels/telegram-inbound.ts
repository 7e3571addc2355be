// Telegram updates → the host's InboundMessage and ChatEvent: text, mentions of the bot, media found in a message.
import type { Message, MessageEntity, Update, UserFromGetMe } from 'grammy/types';
import type { ChatEvent, InboundMessage } from '../types.js';
import type { IncomingMedia, MediaKind } from './media.js';

export const TELEGRAM = 'telegram';

/** A medium of a message as Telegram describes it (downloaded only if the chat is registered). */
export type TelegramMedia = Omit<IncomingMedia, 'download' | 'channel' | 'chatId' | 'externalId'> & {
  fileId: string;
};

/** The medium a message carries, if any; of a photo's sizes, the largest that fits under maxBytes. */
export function mediaOf(message: Message, maxBytes: number): TelegramMedia | null {
  if (message.photo && message.photo.length > 0) {
    const sizes = [...message.photo].sort((a, b) => (a.file_size ?? 0) - (b.file_size ?? 0));
    const fitting = sizes.filter((size) => (size.file_size ?? 0) <= maxBytes);
    const best = fitting.at(-1) ?? sizes[0];
    if (!best) return null;
    return { kind: 'photo', fileId: best.file_id, sizeBytes: best.file_size, mimeType: 'image/jpeg' };
  }
  const candidates: Array<
    [MediaKind, { file_id: string; file_size?: number; mime_type?: string } | undefined]
  > = [
    ['voice', message.voice],
    ['audio', message.audio],
    ['video', message.video],
    ['document', message.document],
  ];
  for (const [kind, file] of candidates) {
    if (!file) continue;
    const fileName = 'file_name' in file && typeof file.file_name === 'string' ? file.file_name : undefined;
    return { kind, fileId: file.file_id, sizeBytes: file.file_size, mimeType: file.mime_type, fileName };
  }
  return null;
}

const entityText = (text: string, entity: MessageEntity) =>
  text.slice(entity.offset, entity.offset + entity.length);

/** The channel itself says the bot is addressed: @username, a text mention, /command@username, or a reply to it. */
export function isBotMentioned(message: Message, me: UserFromGetMe): boolean {
  if (message.reply_to_message?.from?.id === me.id) return true;
  const text = message.text ?? message.caption ?? '';
  const entities = message.entities ?? message.caption_entities ?? [];
  const handle = `@${me.username}`.toLowerCase();
  return entities.some((entity) => {
    if (entity.type === 'text_mention') return entity.user.id === me.id;
    if (entity.type === 'mention') return entityText(text, entity).toLowerCase() === handle;
    if (entity.type === 'bot_command') return entityText(text, entity).toLowerCase().endsWith(handle);
    return false;
  });
}

function senderNameOf(message: Message): string {
  const from = message.from;
  if (from) {
    const full = [from.first_name, from.last_name].filter(Boolean).join(' ').trim();
    return full || from.username || String(from.id);
  }
  return (message.sender_chat && 'title' in message.sender_chat && message.sender_chat.title) || 'unknown';
}

function chatNameOf(chat: Message['chat']): string | undefined {
  if (chat.type === 'private')
    return [chat.first_name, chat.last_name].filter(Boolean).join(' ') || undefined;
  return chat.title;
}

/** The message as the host sees it, before any media line is added. Null for service messages without content. */
export function toInbound(message: Message, me: UserFromGetMe): InboundMessage | null {
  const text = message.text ?? message.caption ?? '';
  const hasMedia = mediaOf(message, Number.POSITIVE_INFINITY) !== null;
  if (text === '' && !hasMedia) return null;
  const senderId = message.from?.id ?? message.sender_chat?.id ?? message.chat.id;
  return {
    channel: TELEGRAM,
    chatId: String(message.chat.id),
    // message_id is unique within a chat: a redelivered update is recognised and ignored by the store.
    externalId: String(message.message_id),
    senderId: String(senderId),
    senderName: senderNameOf(message),
    text,
    sentAt: message.date * 1000,
    isDirect: message.chat.type === 'private',
    isMention: isBotMentioned(message, me),
    chatName: chatNameOf(message.chat),
  };
}

/** What an update says about a chat itself: the bot was added to a group, or a group got a new id. */
export function toChatEvent(update: Update, me: UserFromGetMe): ChatEvent | null {
  // A group upgraded to a supergroup gets a new id: a service message in the old chat names the new one, and one
  // in the new chat names the old one. Either is enough; the move is idempotent.
  const message = update.message;
  if (message?.migrate_to_chat_id !== undefined) {
    return movedChat(message.chat.id, message.migrate_to_chat_id);
  }
  if (message?.migrate_from_chat_id !== undefined) {
    return movedChat(message.migrate_from_chat_id, message.chat.id);
  }
  const change = update.my_chat_member;
  if (!change || change.new_chat_member.user.id !== me.id) return null;
  const wasIn = ['member', 'administrator', 'creator', 'restricted'].includes(change.old_chat_member.status);
  const isIn = ['member', 'administrator', 'creator', 'restricted'].includes(change.new_chat_member.status);
  if (wasIn || !isIn || change.chat.type === 'private') return null;
  return {
    type: 'chat-joined',
    channel: TELEGRAM,
    chatId: String(change.chat.id),
    chatName: chatNameOf(change.chat as Message['chat']),
    isDirect: false,
    byName: [change.from.first_name, change.from.last_name].filter(Boolean).join(' ') || undefined,
  };
}

export function movedChat(fromChatId: number | string, toChatId: number | string): ChatEvent {
  return {
    type: 'chat-moved',
    channel: TELEGRAM,
    fromChatId: String(fromChatId),
    toChatId: String(toChatId),
  };
}
