// Files attached to a Slack message: downloaded with the bot token (only from Slack) into the group's folder.
import type { Logger } from '../log.js';
import type { InboundMessage } from '../types.js';
import { describeMedia, type MediaSaver, readCapped } from './media.js';
import { isSlackFileUrl, mediaKindOf, SLACK, type SlackFile } from './slack-inbound.js';

const DOWNLOAD_TIMEOUT_MS = 120_000;

interface FileDeps {
  botToken: string;
  apiRoot: string;
  media: MediaSaver | null;
  maxMediaBytes: number;
  log: Logger;
}

async function download(file: SlackFile, maxBytes: number, deps: FileDeps): Promise<Buffer> {
  const url = file.url_private_download ?? file.url_private;
  if (!url || !isSlackFileUrl(url, deps.apiRoot)) throw new Error('the file has no Slack download URL');
  // The bot token goes only to Slack's own hosts (checked above); it is never logged.
  const response = await fetch(url, {
    headers: { authorization: `Bearer ${deps.botToken}` },
    signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS),
  });
  const type = response.headers.get('content-type') ?? '';
  // Slack answers a token without files:read with its sign-in page, as 200.
  if (!response.ok || (type.startsWith('text/html') && !file.mimetype?.startsWith('text/html'))) {
    await response.body?.cancel();
    throw new Error(`file download answered HTTP ${response.status} ${type}`);
  }
  return readCapped(response, maxBytes);
}

/** Saves each file of the message (never throws) and returns the lines that tell the agent what became of them. */
export async function saveFiles(
  inbound: InboundMessage,
  files: SlackFile[],
  deps: FileDeps,
): Promise<string[]> {
  const lines: string[] = [];
  for (const file of files) {
    const described = { kind: mediaKindOf(file.mimetype), fileName: file.name, mimeType: file.mimetype };
    const result = deps.media
      ? await deps.media.save({
          ...described,
          sizeBytes: file.size,
          channel: SLACK,
          chatId: inbound.chatId,
          // One message may carry several files: each is named by the message and its own id.
          externalId: `${inbound.externalId}:${file.id}`,
          download: (maxBytes) => download(file, Math.min(maxBytes, deps.maxMediaBytes), deps),
        })
      : { status: 'skipped' as const, reason: 'media saving is off' };
    lines.push(describeMedia(described, result));
  }
  return lines;
}
