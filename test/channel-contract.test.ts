// The fake channel runs the same contract as the real adapters, so host tests built on it test real behaviour.
import { createDiscordChannel } from '../src/channels/discord.js';
import { memoryLedger } from '../src/channels/outbound.js';
import { createSlackChannel } from '../src/channels/slack.js';
import { silentLogger } from '../src/log.js';
import type { ChannelHandlers } from '../src/types.js';
import { describeChannelContract } from './channel-contract.js';
import { FakeChannel } from './fake-channel.js';
import { startFakeDiscordApi } from './fake-discord-api.js';
import { startFakeSlackApi } from './fake-slack-api.js';

/** The fake channel with a service in front: messages written while it is disconnected wait for it. */
class ServiceBackedFakeChannel extends FakeChannel {
  private readonly waiting: string[] = [];
  private isConnected = false;

  override async connect(handlers: ChannelHandlers): Promise<void> {
    await super.connect(handlers);
    this.isConnected = true;
    for (const text of this.waiting.splice(0)) this.receive({ chatId: 'team', text });
  }

  override async disconnect(): Promise<void> {
    this.isConnected = false;
    await super.disconnect();
  }

  write(text: string): void {
    if (this.isConnected) this.receive({ chatId: 'team', text });
    else this.waiting.push(text);
  }
}

describeChannelContract('fake channel', async () => {
  const channel = new ServiceBackedFakeChannel();
  return {
    channel,
    chatId: 'team',
    inject: (text) => channel.write(text),
    sentTexts: () => channel.textsTo('team'),
    typingCount: () => channel.typing.filter((entry) => entry.isTyping).length,
    failNextSend: (options = {}) => {
      for (let index = 0; index < (options.skip ?? 0); index++) channel.nextResults.push({ status: 'sent' });
      channel.nextResults.push({ status: 'failed', reason: 'service unavailable', isRetryable: true });
    },
    dropConnection: null,
    close: async () => {},
  };
});

describeChannelContract('slack (fake Web API and Socket Mode)', async () => {
  const api = await startFakeSlackApi();
  api.addChannel('C0TEAM', { name: 'team' });
  const channel = createSlackChannel({
    botToken: api.botToken,
    appToken: api.appToken,
    apiRoot: api.url,
    log: silentLogger(),
    media: null,
    maxMediaBytes: 1024 * 1024,
    sentParts: memoryLedger(),
    retryBaseMs: 20,
    retryMaxMs: 200,
  });
  return {
    channel,
    chatId: 'C0TEAM',
    inject: (text) => void api.pushMessage({ channel: 'C0TEAM', text }),
    sentTexts: () => api.textsTo('C0TEAM'),
    typingCount: () => api.reactions.filter((reaction) => reaction.action === 'add').length,
    failNextSend: (options = {}) => api.failNext('chat.postMessage', 'internal_error', options),
    dropConnection: () => api.dropConnection(),
    close: () => api.close(),
  };
});

describeChannelContract('discord (fake REST API and Gateway)', async () => {
  const api = await startFakeDiscordApi();
  api.addChannel('100000000000000001', 'team');
  let cursors: string | null = null;
  const channel = createDiscordChannel({
    token: api.token,
    apiRoot: api.url,
    log: silentLogger(),
    media: null,
    maxMediaBytes: 1024 * 1024,
    sentParts: memoryLedger(),
    // Kept across disconnect and connect, as the store keeps them across a restart.
    cursors: {
      load: () => cursors,
      save: (value) => {
        cursors = value;
      },
    },
    retryBaseMs: 20,
    retryMaxMs: 200,
  });
  return {
    channel,
    chatId: '100000000000000001',
    inject: (text) => void api.pushMessage({ channelId: '100000000000000001', content: text }),
    sentTexts: () => api.textsTo('100000000000000001'),
    typingCount: () => api.typing.length,
    failNextSend: (options = {}) => api.failNext('POST /channels/:id/messages', options),
    dropConnection: () => api.dropConnection(),
    close: () => api.close(),
  };
});
