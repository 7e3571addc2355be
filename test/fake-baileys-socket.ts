// A fake WhatsApp behind the adapter's seam (WhatsAppConnector/WhatsAppSocket): one event emitter per connection,
// messages queued while no connection is open and delivered on the next one, pairing, failures on request.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AnyMessageContent, WAMessage } from '@whiskeysockets/baileys';
import { MediaTooLargeError } from '../src/channels/media.js';
import type { WhatsAppConnector, WhatsAppEvent, WhatsAppSocket } from '../src/channels/whatsapp.js';

export const FAKE_ME = { id: '4915100000000:3@s.whatsapp.net', lid: '99887766:3@lid' } as const;

export interface SentWhatsApp {
  jid: string;
  content: AnyMessageContent;
  messageId: string;
  /** The text as sent (text messages) or the caption. */
  text?: string;
}

/** Builds an incoming WAMessage the way Baileys shapes them. */
export function incomingMessage(input: {
  jid: string;
  text?: string;
  id?: string;
  participant?: string;
  pushName?: string;
  mentionedJid?: string[];
  image?: { mimetype?: string; fileLength?: number; caption?: string };
  document?: { mimetype?: string; fileName?: string; fileLength?: number };
  voice?: { fileLength?: number };
  timestamp?: number;
}): WAMessage {
  const contextInfo = input.mentionedJid ? { mentionedJid: input.mentionedJid } : undefined;
  const message = input.image
    ? { imageMessage: { ...input.image, caption: input.image.caption ?? input.text, contextInfo } }
    : input.document
      ? { documentMessage: { ...input.document, caption: input.text } }
      : input.voice
        ? {
            audioMessage: {
              ptt: true,
              mimetype: 'audio/ogg; codecs=opus',
              fileLength: input.voice.fileLength,
            },
          }
        : contextInfo
          ? { extendedTextMessage: { text: input.text ?? '', contextInfo } }
          : { conversation: input.text ?? '' };
  return {
    key: {
      remoteJid: input.jid,
      fromMe: false,
      id: input.id ?? randomBytes(10).toString('hex').toUpperCase(),
      participant: input.participant,
    },
    message,
    messageTimestamp: input.timestamp ?? Math.floor(Date.now() / 1000),
    pushName: input.pushName ?? 'Bob',
  } as WAMessage;
}

export class FakeWhatsAppSocket implements WhatsAppSocket {
  private readonly emitter = new EventEmitter();
  isEnded = false;
  isOpen = false;

  constructor(private readonly server: FakeWhatsApp) {}

  get user() {
    return this.server.isLinked ? { ...FAKE_ME } : undefined;
  }

  /** What Baileys does after connecting: open (paired) or offer a QR code (not paired). */
  start(): void {
    if (this.isEnded) return;
    this.emit('connection.update', { connection: 'connecting' });
    if (!this.server.isLinked) {
      this.emit('connection.update', { qr: `fake-qr-${this.server.sockets.length}` });
      return;
    }
    this.isOpen = true;
    this.emit('connection.update', { connection: 'open' });
    const waiting = this.server.takeOffline();
    if (waiting.length > 0) this.emit('messages.upsert', { messages: waiting, type: 'append' });
  }

  on<E extends WhatsAppEvent>(event: E, listener: (data: never) => void): void {
    this.emitter.on(event, listener as (data: unknown) => void);
  }

  emit(event: WhatsAppEvent, data: unknown): void {
    if (!this.isEnded) this.emitter.emit(event, data);
  }

  /** The connection closes with a Baileys status code (as a Boom error carries it). */
  close(statusCode: number): void {
    this.isOpen = false;
    const error = Object.assign(new Error('Connection Closed'), { output: { statusCode } });
    this.emit('connection.update', { connection: 'close', lastDisconnect: { error, date: new Date() } });
  }

  async sendMessage(jid: string, content: AnyMessageContent, options?: { messageId?: string }) {
    if (!this.isOpen) throw new Error('Connection Closed');
    const failure = this.server.takeSendFailure();
    if (failure) throw failure;
    const messageId = options?.messageId ?? randomBytes(10).toString('hex').toUpperCase();
    const text =
      'text' in content
        ? content.text
        : 'caption' in content
          ? (content.caption as string | undefined)
          : undefined;
    this.server.sent.push({ jid, content, messageId, text });
    return { key: { remoteJid: jid, fromMe: true, id: messageId } } as WAMessage;
  }

  async sendPresenceUpdate(presence: 'composing' | 'paused', jid: string): Promise<void> {
    this.server.presence.push({ jid, presence });
  }

  async requestPairingCode(phoneNumber: string): Promise<string> {
    this.server.pairingRequests.push(phoneNumber);
    return this.server.pairingCode;
  }

  async groupMetadata(jid: string): Promise<{ subject: string }> {
    return { subject: this.server.groupSubjects.get(jid) ?? 'A group' };
  }

  async downloadMedia(message: WAMessage, maxBytes: number): Promise<Buffer> {
    const bytes = this.server.media.get(message.key.id ?? '');
    if (!bytes) throw new Error('media not found');
    if (bytes.length > maxBytes) throw new MediaTooLargeError(maxBytes);
    return bytes;
  }

  end(): void {
    this.isEnded = true;
    this.isOpen = false;
    this.emitter.removeAllListeners();
  }
}

/** The fake service and the connector the adapter opens sockets with. */
export class FakeWhatsApp implements WhatsAppConnector {
  /** Whether this device is linked (paired credentials are stored). */
  isLinked = true;
  readonly sockets: FakeWhatsAppSocket[] = [];
  readonly sent: SentWhatsApp[] = [];
  readonly presence: Array<{ jid: string; presence: string }> = [];
  readonly pairingRequests: string[] = [];
  readonly groupSubjects = new Map<string, string>();
  /** Bytes of received media, by message id. */
  readonly media = new Map<string, Buffer>();
  pairingCode = 'ABCD1234';
  authClears = 0;
  private offline: WAMessage[] = [];
  private sendFailures: Array<{ skip: number; error: Error }> = [];

  /** The open connection, if any. */
  get current(): FakeWhatsAppSocket | null {
    const last = this.sockets.at(-1);
    return last && !last.isEnded && last.isOpen ? last : null;
  }

  async open(): Promise<WhatsAppSocket> {
    const socket = new FakeWhatsAppSocket(this);
    this.sockets.push(socket);
    setImmediate(() => socket.start());
    return socket;
  }

  async clearAuth(): Promise<void> {
    this.authClears++;
    this.isLinked = false;
  }

  async isPaired(): Promise<boolean> {
    return this.isLinked;
  }

  /** A person sends a message: delivered at once ('notify') if a connection is open, else on the next one. */
  deliver(message: WAMessage): WAMessage {
    const socket = this.current;
    if (socket) socket.emit('messages.upsert', { messages: [message], type: 'notify' });
    else this.offline.push(message);
    return message;
  }

  takeOffline(): WAMessage[] {
    return this.offline.splice(0);
  }

  /** The network drops the open connection (Baileys: connectionClosed 428 unless told otherwise). */
  drop(statusCode = 428): void {
    this.current?.close(statusCode);
  }

  /** The owner finished pairing on the phone: WhatsApp asks for a restart (515), then the device is linked. */
  completePairing(): void {
    this.isLinked = true;
    const last = this.sockets.at(-1);
    last?.close(515);
  }

  failNextSend(options: { skip?: number; error?: Error } = {}): void {
    this.sendFailures.push({ skip: options.skip ?? 0, error: options.error ?? new Error('Timed Out') });
  }

  takeSendFailure(): Error | null {
    const failure = this.sendFailures[0];
    if (!failure) return null;
    if (failure.skip > 0) {
      failure.skip--;
      return null;
    }
    this.sendFailures.shift();
    return failure.error;
  }

  textsTo(jid: string): string[] {
    return this.sent
      .filter((record) => record.jid === jid && 'text' in record.content)
      .map((record) => record.text ?? '');
  }
}
