// The WhatsApp channel (Baileys 7 behind a small socket seam): pairing, reconnection with backoff, media, formatting.
import { createHash } from 'node:crypto';
import type { AnyMessageContent, BaileysEventMap, WAMessage } from '@whiskeysockets/baileys';
import { backoffMs } from '../backoff.js';
import type { Logger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import type { Channel, ChannelHandlers, OutboundMessage, SendResult } from '../types.js';
import { splitMarkdown, toWhatsApp } from './format.js';
import { describeMedia, type MediaSaver, MediaTooLargeError, openOutgoingFile } from './media.js';
import { createTypingKeeper, type SentPartsLedger, sendInParts } from './outbound.js';
import { isChatJid, isGroupJid, meOf, toInbound, WHATSAPP } from './whatsapp-inbound.js';
import {
  closeOutcome,
  type PairingProgress,
  pairingState,
  type WhatsAppConnector,
  type WhatsAppSocket,
} from './whatsapp-socket.js';

// test/fake-baileys-socket.ts implements the seam through these names.
export type { WhatsAppConnector, WhatsAppEvent, WhatsAppSocket } from './whatsapp-socket.js';

/** WhatsApp takes about 65,536 characters; a little room is kept for the formatting marks. */
export const WHATSAPP_MAX_TEXT = 65_000;
const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;

export interface WhatsAppChannelOptions {
  connector: WhatsAppConnector;
  log: Logger;
  media: MediaSaver | null;
  sentParts: SentPartsLedger;
  /** Digits with country code: pair by entering a code on the phone instead of scanning a QR code. */
  phoneNumber?: string;
  /** A QR code to show to the owner (the host prints it in its terminal). */
  onQr?(qr: string): void;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** connect() resolves when the connection opens, pairing is needed, or after this long. */
  connectTimeoutMs?: number;
  typingIntervalMs?: number;
}

/** A message id derived from the part's idempotency key: a retried send carries the same id, never a new one. */
export const messageIdFor = (partKey: string) =>
  `3EB0${createHash('sha256').update(partKey).digest('hex').slice(0, 36).toUpperCase()}`;

export function createWhatsAppChannel(options: WhatsAppChannelOptions): Channel {
  const log = options.log.child({ channel: WHATSAPP });
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 60_000;
  let handlers: ChannelHandlers | null = null;
  let socket: WhatsAppSocket | null = null;
  let isOpen = false;
  let isStopped = true;
  let failures = 0;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let settleConnect: (() => void) | null = null;
  let isPairingCodeRequested = false;
  let inbound: Promise<void> = Promise.resolve();
  let lastState = '';
  const groupNames = new Map<string, string>();

  const typing = createTypingKeeper({
    intervalMs: options.typingIntervalMs ?? 20_000,
    maxMs: 5 * 60_000,
    log,
    send: async (chatId, isTyping) => {
      if (socket && isOpen) await socket.sendPresenceUpdate(isTyping ? 'composing' : 'paused', chatId);
    },
  });

  function setState(state: ChannelState): void {
    const key = JSON.stringify(state);
    if (key === lastState) return;
    lastState = key;
    log.info({ ...state }, 'whatsapp state');
    handlers?.onStateChange?.(state);
  }

  function scheduleReconnect(reason: string, delayMs?: number): void {
    if (isStopped) return;
    failures++;
    const delay = delayMs ?? backoffMs(failures, { baseMs: retryBaseMs, maxMs: retryMaxMs });
    setState({ status: 'reconnecting', reason });
    log.warn({ reason, retryInMs: delay }, 'whatsapp connection closed; reconnecting');
    if (reconnectTimer) clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      void openSocket();
    }, delay);
    settleConnect?.();
  }

  async function groupName(sock: WhatsAppSocket, jid: string): Promise<string | undefined> {
    const known = groupNames.get(jid);
    if (known !== undefined) return known;
    try {
      const { subject } = await sock.groupMetadata(jid);
      groupNames.set(jid, subject);
      return subject;
    } catch (error) {
      log.debug({ err: error, jid }, 'group metadata unavailable');
      return undefined;
    }
  }

  async function handleMessage(sock: WhatsAppSocket, message: WAMessage): Promise<void> {
    const parsed = toInbound(message, meOf(sock.user));
    if (!parsed) return;
    const { inbound: result, media } = parsed;
    if (isGroupJid(result.chatId)) result.chatName = await groupName(sock, result.chatId);
    if (media) {
      const saved = options.media
        ? await options.media.save({
            ...media,
            channel: WHATSAPP,
            chatId: result.chatId,
            externalId: result.externalId,
            download: (maxBytes) => {
              if (media.sizeBytes !== undefined && media.sizeBytes > maxBytes)
                throw new MediaTooLargeError(maxBytes);
              return sock.downloadMedia(message, maxBytes);
            },
          })
        : { status: 'skipped' as const, reason: 'media saving is off' };
      result.text = [describeMedia(media, saved), result.text].filter(Boolean).join('\n');
    }
    handlers?.onMessage(result);
  }

  function onConnectionUpdate(
    sock: WhatsAppSocket,
    update: BaileysEventMap['connection.update'],
    pairing: PairingProgress,
  ) {
    if (update.qr) {
      pairing.hasOfferedQr = true;
      if (!options.phoneNumber) {
        options.onQr?.(update.qr);
        setState(pairingState());
      } else if (!isPairingCodeRequested) {
        isPairingCodeRequested = true;
        sock.requestPairingCode(options.phoneNumber).then(
          (code) => setState(pairingState(code)),
          (error: unknown) => log.error({ err: error }, 'whatsapp pairing code request failed'),
        );
      }
      settleConnect?.();
    }
    if (update.connection === 'open') {
      isOpen = true;
      failures = 0;
      isPairingCodeRequested = false;
      setState({ status: 'connected' });
      settleConnect?.();
      return;
    }
    if (update.connection !== 'close') return;
    isOpen = false;
    socket = null;
    sock.end();
    const outcome = closeOutcome(update.lastDisconnect?.error, pairing);
    if (outcome.kind === 'reconnect') return scheduleReconnect(outcome.reason, outcome.delayMs);
    if (outcome.clearAuth) {
      void options.connector
        .clearAuth()
        .catch((error: unknown) => log.error({ err: error }, 'clearing auth failed'));
    }
    setState({ status: 'logged-out', reason: outcome.reason });
    settleConnect?.();
  }

  async function openSocket(): Promise<void> {
    if (isStopped) return;
    let sock: WhatsAppSocket;
    let isPaired: boolean;
    try {
      isPaired = await options.connector.isPaired();
      sock = await options.connector.open();
    } catch (error) {
      scheduleReconnect(`could not open a connection: ${(error as Error).message}`);
      return;
    }
    if (isStopped) {
      sock.end();
      return;
    }
    socket = sock;
    const pairing = { isPaired, hasOfferedQr: false };
    sock.on('connection.update', (update) => {
      if (socket === sock) onConnectionUpdate(sock, update, pairing);
    });
    sock.on('messages.upsert', ({ messages }) => {
      if (socket !== sock) return;
      // One at a time, in order: media downloads must not let a later message overtake an earlier one.
      for (const message of messages) {
        inbound = inbound.then(() =>
          handleMessage(sock, message).catch((error: unknown) =>
            log.error({ err: error, id: message.key.id }, 'whatsapp message could not be handled'),
          ),
        );
      }
    });
    sock.on('groups.upsert', (groups) => {
      if (socket !== sock) return;
      for (const group of groups) {
        groupNames.set(group.id, group.subject);
        handlers?.onChatEvent?.({
          type: 'chat-joined',
          channel: WHATSAPP,
          chatId: group.id,
          chatName: group.subject,
          isDirect: false,
        });
      }
    });
  }

  async function sendPart(jid: string, part: string, partKey: string): Promise<SendResult> {
    const sock = socket;
    if (!sock || !isOpen) return { status: 'failed', reason: 'WhatsApp is not connected', isRetryable: true };
    try {
      const sent = await sock.sendMessage(
        jid,
        { text: toWhatsApp(part) },
        { messageId: messageIdFor(partKey) },
      );
      return { status: 'sent', externalId: sent?.key.id ?? undefined };
    } catch (error) {
      return { status: 'failed', reason: (error as Error).message, isRetryable: true };
    }
  }

  return {
    name: WHATSAPP,
    maxTextLength: WHATSAPP_MAX_TEXT,

    async connect(newHandlers) {
      if (!isStopped) throw new Error('whatsapp channel is already connected');
      isStopped = false;
      handlers = newHandlers;
      lastState = '';
      failures = 0;
      const settled = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.connectTimeoutMs ?? 20_000);
        settleConnect = () => {
          clearTimeout(timer);
          settleConnect = null;
          resolve();
        };
      });
      await openSocket();
      await settled;
    },

    async send(message: OutboundMessage): Promise<SendResult> {
      if (!isChatJid(message.chatId)) {
        return { status: 'failed', reason: `not a WhatsApp chat id: ${message.chatId}`, isRetryable: false };
      }
      return sendInParts({
        idempotencyKey: message.idempotencyKey,
        parts: splitMarkdown(message.text, WHATSAPP_MAX_TEXT),
        ledger: options.sentParts,
        sendPart: (part, partKey) => sendPart(message.chatId, part, partKey),
      });
    },

    setTyping: (chatId, isTyping) => (isChatJid(chatId) ? typing.set(chatId, isTyping) : Promise.resolve()),

    async sendFile(chatId, filePath, caption) {
      const sock = socket;
      if (!isChatJid(chatId))
        return { status: 'failed', reason: `not a WhatsApp chat id: ${chatId}`, isRetryable: false };
      if (!sock || !isOpen)
        return { status: 'failed', reason: 'WhatsApp is not connected', isRetryable: true };
      const file = await openOutgoingFile(filePath, MAX_UPLOAD_BYTES);
      if (file.status === 'failed') return { ...file, isRetryable: false };
      const text = caption ? toWhatsApp(caption) : undefined;
      const content: AnyMessageContent = file.mimeType.startsWith('image/')
        ? { image: file.data, mimetype: file.mimeType, caption: text }
        : file.mimeType === 'video/mp4'
          ? { video: file.data, mimetype: file.mimeType, caption: text }
          : { document: file.data, mimetype: file.mimeType, fileName: file.fileName, caption: text };
      try {
        const sent = await sock.sendMessage(chatId, content);
        return { status: 'sent', externalId: sent?.key.id ?? undefined };
      } catch (error) {
        return { status: 'failed', reason: (error as Error).message, isRetryable: true };
      }
    },

    async disconnect() {
      if (isStopped) return;
      isStopped = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      reconnectTimer = null;
      typing.stopAll();
      const closing = socket;
      socket = null;
      isOpen = false;
      closing?.end();
      settleConnect?.();
      await inbound;
      setState({ status: 'disconnected', reason: 'closed' });
      handlers = null;
    },
  };
}
