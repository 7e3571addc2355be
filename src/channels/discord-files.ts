// Files attached to a Discord message: downloaded (only from Discord's CDN) into the group's folder.
import type { Attachment } from 'discord.js';
import type { Logger } from '../log.js';
import type { InboundMessage } from '../types.js';
import { DISCORD, isDiscordFileUrl, mediaKindOf } from './discord-inbound.js';
import { describeMedia, type MediaSaver, readCapped } from './media.js';

const DOWNLOAD_TIMEOUT_MS = 120_000;

interface FileDeps {
  apiRoot: string;
  media: MediaSaver | null;
  maxMediaBytes: number;
  log: Logger;
}

async function download(attachment: Attachment, maxBytes: number, apiRoot: string): Promise<Buffer> {
  if (!isDiscordFileUrl(attachment.url, apiRoot)) throw new Error('the attachment is not on Discord');
  // CDN URLs are signed: no token is sent, so none can leak to wherever the URL points.
  const response = await fetch(attachment.url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`attachment download answered HTTP ${response.status}`);
  }
  return readCapped(response, maxBytes);
}

/** Saves each attachment (never throws) and returns the lines that tell the agent what became of them. */
export async function saveAttachments(
  inbound: InboundMessage,
  attachments: Attachment[],
  deps: FileDeps,
): Promise<string[]> {
  const lines: string[] = [];
  for (const attachment of attachments) {
    const described = {
      kind: mediaKindOf(attachment.contentType),
      fileName: attachment.name,
      mimeType: attachment.contentType ?? undefined,
    };
    const result = deps.media
      ? await deps.media.save({
          ...described,
          sizeBytes: attachment.size,
          channel: DISCORD,
          // The registered chat (a thread's parent): its group's folder, never one named by the message.
          chatId: inbound.chatId,
          externalId: `${inbound.externalId}:${attachment.id}`,
          download: (maxBytes) => download(attachment, Math.min(maxBytes, deps.maxMediaBytes), deps.apiRoot),
        })
      : { status: 'skipped' as const, reason: 'media saving is off' };
    lines.push(describeMedia(described, result));
  }
  return lines;
}
