// What goes out to Discord over REST: message parts in Discord Markdown with a plain fallback, and files.
import type { REST } from 'discord.js';
import type { Logger } from '../log.js';
import type { SendResult } from '../types.js';
import { describeDiscordError, isFormattingError, toFailure } from './discord-errors.js';
import { toDiscordMarkdown, toPlainText } from './format.js';
import { openOutgoingFile } from './media.js';

/** Discord's limit for one message's content. */
export const DISCORD_MAX_TEXT = 2000;
/** What a bot may upload to any server (boosted servers allow more). */
const MAX_UPLOAD_BYTES = 10 * 1024 * 1024;

export function createDiscordOutbound(deps: {
  /** The connected session's REST client; null while there is none. */
  rest(): REST | null;
  log: Logger;
}) {
  async function post(
    channelId: string,
    body: Record<string, unknown>,
    files?: unknown[],
  ): Promise<SendResult> {
    const rest = deps.rest();
    if (!rest) return { status: 'failed', reason: 'discord is not connected', isRetryable: true };
    const sent = (await rest.post(`/channels/${channelId}/messages`, {
      // Nobody is pinged by what the agent writes (no @everyone, roles or users).
      body: { ...body, allowed_mentions: { parse: [] } },
      ...(files ? { files: files as never } : {}),
    })) as { id?: string };
    return sent.id ? { status: 'sent', externalId: sent.id } : { status: 'sent' };
  }

  return {
    /** One part (at most DISCORD_MAX_TEXT of Markdown) to a channel or thread. Never throws. */
    async sendText(channelId: string, part: string): Promise<SendResult> {
      const formatted = toDiscordMarkdown(part);
      // Escapes and fenced tables can push a part past the limit: such a part goes as plain text.
      if (formatted.length <= DISCORD_MAX_TEXT) {
        try {
          return await post(channelId, { content: formatted });
        } catch (error) {
          if (!isFormattingError(error)) return toFailure(error);
          deps.log.warn(
            { reason: describeDiscordError(error) },
            'Discord refused the formatting; sending plain text',
          );
        }
      }
      try {
        return await post(channelId, {
          content: (toPlainText(part).trim() || part).slice(0, DISCORD_MAX_TEXT),
        });
      } catch (error) {
        return toFailure(error);
      }
    },

    /** A file from the host, uploaded as multipart with the caption as the message. Never throws. */
    async sendFile(channelId: string, filePath: string, caption?: string): Promise<SendResult> {
      const file = await openOutgoingFile(filePath, MAX_UPLOAD_BYTES);
      if (file.status === 'failed') return { ...file, isRetryable: false };
      try {
        const content = caption ? toDiscordMarkdown(caption).slice(0, DISCORD_MAX_TEXT) : undefined;
        return await post(channelId, { content, attachments: [{ id: 0, filename: file.fileName }] }, [
          { name: file.fileName, data: file.data, contentType: file.mimeType },
        ]);
      } catch (error) {
        return toFailure(error);
      }
    },
  };
}
