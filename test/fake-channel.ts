// A fake Channel for host tests: records what was sent, lets tests inject inbound messages and send failures.
import type {
  Channel,
  ChannelHandlers,
  ChatEvent,
  InboundMessage,
  OutboundMessage,
  SendResult,
} from '../src/types.js';

export class FakeChannel implements Channel {
  /** Every successful send, duplicates included (so a test can see one). */
  readonly sent: OutboundMessage[] = [];
  /** Every send attempt. */
  readonly attempts: OutboundMessage[] = [];
  readonly typing: Array<{ chatId: string; isTyping: boolean }> = [];
  /** Results to return for the next sends, in order; when empty, sends succeed. */
  readonly nextResults: SendResult[] = [];
  private handlers: ChannelHandlers | null = null;
  private counter = 0;

  constructor(readonly name = 'fake') {}

  async connect(handlers: ChannelHandlers): Promise<void> {
    this.handlers = handlers;
  }

  async disconnect(): Promise<void> {
    this.handlers = null;
  }

  async send(message: OutboundMessage): Promise<SendResult> {
    const result = this.nextResults.shift() ?? { status: 'sent' };
    this.attempts.push(message);
    if (result.status === 'sent') this.sent.push(message);
    return result;
  }

  /** Files sent (path and caption), for the send_file path. */
  readonly files: Array<{ chatId: string; path: string; caption?: string }> = [];

  async sendFile(chatId: string, path: string, caption?: string): Promise<SendResult> {
    this.files.push({ chatId, path, ...(caption === undefined ? {} : { caption }) });
    return { status: 'sent' };
  }

  async setTyping(chatId: string, isTyping: boolean): Promise<void> {
    this.typing.push({ chatId, isTyping });
  }

  /** Delivers an inbound message as the service would. */
  receive(partial: Partial<InboundMessage> & { chatId: string; text: string }): void {
    if (!this.handlers) throw new Error('fake channel is not connected');
    this.handlers.onMessage({
      channel: this.name,
      externalId: `m${++this.counter}`,
      senderId: 'user-1',
      senderName: 'Alice',
      sentAt: Date.now(),
      isDirect: false,
      ...partial,
    });
  }

  /** Reports a chat event (joined, moved) as the service would. */
  emitChatEvent(event: ChatEvent): void {
    if (!this.handlers) throw new Error('fake channel is not connected');
    this.handlers.onChatEvent?.(event);
  }

  textsTo(chatId: string): string[] {
    return this.sent.filter((message) => message.chatId === chatId).map((message) => message.text);
  }
}
