// Slack events → the host's InboundMessage: who wrote what where (channel, DM, thread), mentions, files attached.
import { z } from 'zod';
import type { InboundMessage } from '../types.js';
import type { MediaKind } from './media.js';

export const SLACK = 'slack';

const fileSchema = z.object({
  id: z.string(),
  name: z.string().optional(),
  mimetype: z.string().optional(),
  size: z.number().optional(),
  url_private: z.string().optional(),
  url_private_download: z.string().optional(),
});

/** A message (or app_mention) event as Socket Mode delivers it inside an events_api envelope. */
export const messageEventSchema = z.object({
  type: z.enum(['message', 'app_mention']),
  subtype: z.string().optional(),
  channel: z.string().min(1),
  channel_type: z.string().optional(),
  user: z.string().optional(),
  bot_id: z.string().optional(),
  text: z.string().optional(),
  ts: z.string().min(1),
  thread_ts: z.string().optional(),
  files: z.array(fileSchema).optional(),
});
export type MessageEvent = z.infer<typeof messageEventSchema>;
export type SlackFile = z.infer<typeof fileSchema>;

/** Subtypes that are people writing; the rest (edits, deletions, joins, bot posts) are not messages to answer. */
const PERSON_SUBTYPES = new Set([undefined, 'file_share', 'thread_broadcast']);

/** Who the app is (auth.test): its bot user, whose messages are never taken in, and whose mention triggers. */
export interface SlackIdentity {
  userId: string;
  botId?: string;
  name: string;
}

/** The event if a person wrote it, else null (our own posts, other bots, edits, service messages). */
export function personMessage(event: unknown, me: SlackIdentity): (MessageEvent & { user: string }) | null {
  const parsed = messageEventSchema.safeParse(event);
  if (!parsed.success) return null;
  const message = parsed.data;
  if (!PERSON_SUBTYPES.has(message.subtype) || message.bot_id !== undefined || !message.user) return null;
  if (message.user === me.userId) return null;
  if (!message.text && !message.files?.length) return null;
  return { ...message, user: message.user };
}

/** Slack's message text as a person reads it: the app's mention as @name, and &, <, > unescaped. */
export function readableText(text: string, me: SlackIdentity): string {
  return text
    .replaceAll(`<@${me.userId}>`, `@${me.name}`)
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export function toInbound(
  message: MessageEvent & { user: string },
  me: SlackIdentity,
  names: { sender: string; chat?: string },
): InboundMessage {
  const text = message.text ?? '';
  return {
    channel: SLACK,
    chatId: message.channel,
    // ts is unique within a channel: a redelivered envelope is recognised and ignored by the store.
    externalId: message.ts,
    senderId: message.user,
    senderName: names.sender,
    text: readableText(text, me),
    sentAt: Math.round(Number(message.ts) * 1000) || Date.now(),
    isDirect: message.channel_type === 'im',
    isMention: message.type === 'app_mention' || text.includes(`<@${me.userId}>`),
    chatName: names.chat,
    // A thread's replies carry the thread's first ts; a message at the top level has none.
    ...(message.thread_ts ? { threadId: message.thread_ts } : {}),
  };
}

export function mediaKindOf(mimeType: string | undefined): MediaKind {
  if (mimeType?.startsWith('image/')) return 'photo';
  if (mimeType?.startsWith('audio/')) return 'audio';
  if (mimeType?.startsWith('video/')) return 'video';
  return 'document';
}

/**
 * Whether the bot token may be sent to a file's URL: Slack's own https hosts, or the configured API root's origin
 * (a test server). A URL anywhere else never gets the token.
 */
export function isSlackFileUrl(url: string, apiRoot: string): boolean {
  try {
    const parsed = new URL(url);
    if (parsed.origin === new URL(apiRoot).origin) return true;
    return (
      parsed.protocol === 'https:' &&
      (parsed.hostname === 'slack.com' || parsed.hostname.endsWith('.slack.com'))
    );
  } catch {
    return false;
  }
}
