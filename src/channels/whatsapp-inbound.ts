// WhatsApp (Baileys) messages → the host's InboundMessage: which chats count, text, mentions, media.
import type { proto, WAMessage } from '@whiskeysockets/baileys';
import type { InboundMessage } from '../types.js';
import type { MediaKind } from './media.js';

export const WHATSAPP = 'whatsapp';

/** Group chats end in @g.us; people in @s.whatsapp.net (phone numbers) or @lid (WhatsApp's private ids). */
export const isGroupJid = (jid: string) => jid.endsWith('@g.us');
export const isPersonJid = (jid: string) => jid.endsWith('@s.whatsapp.net') || jid.endsWith('@lid');
export const isChatJid = (jid: string) => /^[\d-]{5,40}@g\.us$|^\d{5,20}@(s\.whatsapp\.net|lid)$/.test(jid);

/** "4915112345678:12@s.whatsapp.net" (one device) → "4915112345678@s.whatsapp.net" (the person). */
export function personOf(jid: string | null | undefined): string | null {
  if (!jid) return null;
  const match = /^([^:@]+)(?::\d+)?@(.+)$/.exec(jid);
  return match ? `${match[1]}@${match[2]}` : null;
}

/** Protobuf 64-bit numbers arrive as number or Long. */
export function toNumber(value: number | { toNumber(): number } | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'number' ? value : value.toNumber();
}

const WRAPPERS = [
  'ephemeralMessage',
  'viewOnceMessage',
  'viewOnceMessageV2',
  'viewOnceMessageV2Extension',
  'documentWithCaptionMessage',
] as const;

/** The message inside ephemeral / view-once / document-with-caption wrappers. */
export function unwrap(message: proto.IMessage | null | undefined): proto.IMessage | null {
  let content = message ?? null;
  for (let depth = 0; content && depth < 5; depth++) {
    const inner = WRAPPERS.map((key) => content?.[key]?.message).find(Boolean);
    if (!inner) break;
    content = inner;
  }
  return content;
}

export interface WhatsAppMedia {
  kind: MediaKind;
  mimeType?: string;
  fileName?: string;
  sizeBytes?: number;
}

export function mediaOf(content: proto.IMessage): WhatsAppMedia | null {
  const size = (value: Parameters<typeof toNumber>[0]) => toNumber(value);
  if (content.imageMessage) {
    const image = content.imageMessage;
    return { kind: 'photo', mimeType: image.mimetype ?? 'image/jpeg', sizeBytes: size(image.fileLength) };
  }
  if (content.videoMessage) {
    const video = content.videoMessage;
    return { kind: 'video', mimeType: video.mimetype ?? 'video/mp4', sizeBytes: size(video.fileLength) };
  }
  if (content.audioMessage) {
    const audio = content.audioMessage;
    const kind = audio.ptt ? 'voice' : 'audio';
    return { kind, mimeType: audio.mimetype ?? 'audio/ogg', sizeBytes: size(audio.fileLength) };
  }
  if (content.documentMessage) {
    const document = content.documentMessage;
    return {
      kind: 'document',
      mimeType: document.mimetype ?? undefined,
      fileName: document.fileName ?? undefined,
      sizeBytes: size(document.fileLength),
    };
  }
  return null;
}

export function textOf(content: proto.IMessage): string {
  return (
    content.conversation ??
    content.extendedTextMessage?.text ??
    content.imageMessage?.caption ??
    content.videoMessage?.caption ??
    content.documentMessage?.caption ??
    ''
  );
}

function contextOf(content: proto.IMessage): proto.IContextInfo | null {
  return (
    content.extendedTextMessage?.contextInfo ??
    content.imageMessage?.contextInfo ??
    content.videoMessage?.contextInfo ??
    content.documentMessage?.contextInfo ??
    content.audioMessage?.contextInfo ??
    null
  );
}

/** The bot's own ids (phone-number jid and LID), as people, to recognise mentions and replies. */
export type Me = { ids: Set<string> };

export function meOf(user: { id: string; lid?: string } | undefined): Me {
  return {
    ids: new Set([personOf(user?.id), personOf(user?.lid)].filter((id): id is string => id !== null)),
  };
}

/**
 * The message as the host sees it, before any media line is added; null for what is not a person's message in
 * a group or direct chat (our own messages, status updates, channels, protocol messages, reactions).
 */
export function toInbound(
  message: WAMessage,
  me: Me,
): { inbound: InboundMessage; media: WhatsAppMedia | null } | null {
  const key = message.key;
  const jid = key.remoteJid;
  if (!jid || key.fromMe || !key.id || !(isGroupJid(jid) || isPersonJid(jid))) return null;
  const content = unwrap(message.message);
  if (!content) return null;
  const text = textOf(content);
  const media = mediaOf(content);
  if (text === '' && !media) return null;
  const context = contextOf(content);
  const isMention =
    (context?.mentionedJid ?? []).some((mentioned) => me.ids.has(personOf(mentioned) ?? '')) ||
    me.ids.has(personOf(context?.participant) ?? '');
  const sender = isGroupJid(jid) ? (key.participant ?? jid) : jid;
  const seconds = toNumber(message.messageTimestamp as Parameters<typeof toNumber>[0]);
  return {
    inbound: {
      channel: WHATSAPP,
      chatId: jid,
      // Message ids are unique per chat: a message WhatsApp delivers again after a reconnect is ignored.
      externalId: key.id,
      senderId: personOf(sender) ?? sender,
      senderName: message.pushName || (personOf(sender) ?? sender).split('@')[0] || 'unknown',
      text,
      sentAt: seconds ? seconds * 1000 : Date.now(),
      isDirect: isPersonJid(jid),
      isMention,
      chatName: isPersonJid(jid) ? (message.pushName ?? undefined) : undefined,
    },
    media,
  };
}
