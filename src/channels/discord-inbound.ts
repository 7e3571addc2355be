// Discord messages → the host's InboundMessage: who wrote what where (guild channel, thread, DM), mentions, files.
import type { Message } from 'discord.js';
import type { InboundMessage } from '../types.js';
import type { MediaKind } from './media.js';

export const DISCORD = 'discord';

/** Message types that are people writing (DEFAULT, REPLY); joins, pins, thread starters and the like are not. */
const PERSON_MESSAGE_TYPES = new Set([0, 19]);

/** Who the bot is (GET /users/@me, or READY's user): its own messages are never taken in; its mention triggers. */
export interface DiscordIdentity {
  userId: string;
  name: string;
}

/** Where a message was written, as the host addresses it. */
export interface DiscordPlace {
  /** A guild channel's id (a thread's parent's), or the DM channel's id. */
  chatId: string;
  /** The thread's own channel id when the message was written in a thread. */
  threadId?: string;
  chatName?: string;
  isDirect: boolean;
}

/** Whether a person wrote the message (not a bot, not us, not a webhook or a system message) and it has content. */
export function isPersonMessage(message: Message, me: DiscordIdentity): boolean {
  if (message.author.bot || message.author.id === me.userId || message.webhookId || message.system)
    return false;
  if (!PERSON_MESSAGE_TYPES.has(message.type)) return false;
  return message.content !== '' || message.attachments.size > 0;
}

/** The bot's mention in Discord's syntax (`<@id>`, or `<@!id>` from older clients). */
export const mentionsMe = (content: string, me: DiscordIdentity) =>
  content.includes(`<@${me.userId}>`) || content.includes(`<@!${me.userId}>`);

/** The text as a person reads it: user mentions as @name (ours as @the bot's name). */
export function readableText(message: Message, me: DiscordIdentity): string {
  return message.content.replace(/<@!?(\d+)>/g, (whole, id: string) => {
    if (id === me.userId) return `@${me.name}`;
    const user = message.mentions.users.get(id);
    return user ? `@${user.globalName ?? user.username}` : whole;
  });
}

export function senderNameOf(message: Message): string {
  return message.member?.displayName ?? message.author.globalName ?? message.author.username;
}

export function toInbound(message: Message, me: DiscordIdentity, place: DiscordPlace): InboundMessage {
  return {
    channel: DISCORD,
    chatId: place.chatId,
    // Snowflakes are unique across Discord: a replayed dispatch or a message fetched again is ignored by the store.
    externalId: message.id,
    senderId: message.author.id,
    senderName: senderNameOf(message),
    text: readableText(message, me),
    sentAt: message.createdTimestamp,
    isDirect: place.isDirect,
    isMention: message.mentions.users.has(me.userId) || mentionsMe(message.content, me),
    chatName: place.chatName,
    ...(place.threadId ? { threadId: place.threadId } : {}),
  };
}

export function mediaKindOf(contentType: string | null | undefined): MediaKind {
  if (contentType?.startsWith('image/')) return 'photo';
  if (contentType?.startsWith('audio/')) return 'audio';
  if (contentType?.startsWith('video/')) return 'video';
  return 'document';
}

const CDN_HOSTS = new Set(['cdn.discordapp.com', 'media.discordapp.net']);

/**
 * Whether an attachment may be downloaded from this URL: Discord's own CDN over https, or the configured API root's
 * origin (a test server). A message cannot make the host fetch anything anywhere else.
 */
export function isDiscordFileUrl(url: string, apiRoot: string): boolean {
  try {
    const parsed = new URL(url);
    if (parsed.origin === new URL(apiRoot).origin) return true;
    return parsed.protocol === 'https:' && CDN_HOSTS.has(parsed.hostname);
  } catch {
    return false;
  }
}

/** Snowflakes compared as numbers (they are 64-bit: too large for a double). */
export const isNewer = (id: string, than: string | undefined) =>
  than === undefined || BigInt(id) > BigInt(than);
