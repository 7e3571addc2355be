// The fake channel runs the same contract as the real adapters, so host tests built on it test real behaviour.
import type { ChannelHandlers } from '../src/types.js';
import { describeChannelContract } from './channel-contract.js';
import { FakeChannel } from './fake-channel.js';

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
