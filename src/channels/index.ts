// The table of channel adapters. Each factory returns null when its channel is not configured.
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { containerUserFor } from '../sandbox/group-folder.js';
import type { Store } from '../store/store.js';
import type { Channel, HostContext } from '../types.js';
import { createDiscordChannel } from './discord.js';
import { createLocalChannel } from './local.js';
import { createMediaSaver } from './media.js';
import type { SentPartsLedger } from './outbound.js';
import { createSlackChannel } from './slack.js';
import { createTelegramChannel } from './telegram.js';
import { createWhatsAppChannel } from './whatsapp.js';
import { createBaileysConnector } from './whatsapp-baileys.js';

export interface ChannelFactoryInput extends HostContext {
  config: Config;
  log: Logger;
  /** The local chat's access token (from the data directory). */
  localToken: string;
}

/** The store's durable record of the parts of split replies a channel has sent. */
const sentPartsOf = (store: Store, now: () => number): SentPartsLedger => ({
  get: (partKey) => store.channels.sentPart(partKey),
  record: (partKey, externalId) => store.channels.recordSentPart(partKey, externalId, now()),
});

const mediaOf = (input: ChannelFactoryInput) =>
  createMediaSaver({
    dataDir: input.config.dataDir,
    store: input.store,
    maxBytes: input.config.mediaMaxMb * 1024 * 1024,
    now: input.now,
    log: input.log,
    owner: containerUserFor(),
  });

async function printQr(qr: string): Promise<void> {
  const { default: qrcode } = await import('qrcode-terminal');
  qrcode.generate(qr, { small: true }, (code: string) => {
    process.stderr.write(
      `\nScan this with WhatsApp on your phone (Linked devices → Link a device):\n\n${code}\n`,
    );
  });
}

export const channelFactories: ReadonlyArray<{
  name: string;
  create(input: ChannelFactoryInput): Channel | null;
}> = [
  {
    name: 'local',
    create: (input) =>
      input.config.isLocalChatEnabled
        ? createLocalChannel({
            port: input.config.localPort,
            token: input.localToken,
            assistantName: input.config.assistantName,
            log: input.log.child({ channel: 'local' }),
            onDenied: (denial) =>
              input.audit({
                groupFolder: null,
                actor: `local:${denial.remoteAddress ?? 'unknown'}`,
                action: 'local-chat-request',
                decision: 'deny',
                detail: { ...denial },
              }),
          })
        : null,
  },
  {
    name: 'telegram',
    create: (input) =>
      input.config.telegramBotToken
        ? createTelegramChannel({
            token: input.config.telegramBotToken,
            apiRoot: input.config.telegramApiRoot,
            log: input.log,
            media: mediaOf(input),
            maxMediaBytes: input.config.mediaMaxMb * 1024 * 1024,
            offsets: {
              load: () =>
                Number(input.store.channels.getCursor('telegram', 'update-offset') ?? Number.NaN) || null,
              save: (offset) =>
                input.store.channels.setCursor('telegram', 'update-offset', String(offset), input.now()),
            },
            sentParts: sentPartsOf(input.store, input.now),
          })
        : null,
  },
  {
    name: 'slack',
    // Either token turns Slack on: with one missing, `warren status` says which (rather than silence).
    create: (input) =>
      input.config.slackBotToken || input.config.slackAppToken
        ? createSlackChannel({
            botToken: input.config.slackBotToken,
            appToken: input.config.slackAppToken,
            apiRoot: input.config.slackApiRoot,
            log: input.log,
            media: mediaOf(input),
            maxMediaBytes: input.config.mediaMaxMb * 1024 * 1024,
            sentParts: sentPartsOf(input.store, input.now),
          })
        : null,
  },
  {
    name: 'discord',
    create: (input) =>
      input.config.discordBotToken
        ? createDiscordChannel({
            token: input.config.discordBotToken,
            apiRoot: input.config.discordApiRoot,
            log: input.log,
            media: mediaOf(input),
            maxMediaBytes: input.config.mediaMaxMb * 1024 * 1024,
            sentParts: sentPartsOf(input.store, input.now),
            cursors: {
              load: () => input.store.channels.getCursor('discord', 'last-messages'),
              save: (value) => input.store.channels.setCursor('discord', 'last-messages', value, input.now()),
            },
          })
        : null,
  },
  {
    name: 'whatsapp',
    create: (input) =>
      input.config.isWhatsAppEnabled
        ? createWhatsAppChannel({
            connector: createBaileysConnector({ dataDir: input.config.dataDir, log: input.log }),
            log: input.log,
            media: mediaOf(input),
            sentParts: sentPartsOf(input.store, input.now),
            phoneNumber: input.config.whatsappPhoneNumber || undefined,
            onQr: (qr) =>
              printQr(qr).catch((error: unknown) =>
                input.log.error({ err: error }, 'cannot show the QR code'),
              ),
          })
        : null,
  },
];

export function createChannels(input: ChannelFactoryInput): Channel[] {
  return channelFactories.map((factory) => factory.create(input)).filter((channel) => channel !== null);
}
