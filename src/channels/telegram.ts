// The Telegram channel (grammY's API client): long polling with a durable offset, HTML replies, media in and out.
import type { Api } from 'grammy';
import type { Message, Update, UserFromGetMe } from 'grammy/types';
import { backoffMs, sleep } from '../backoff.js';
import type { Logger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import type { Channel, ChannelHandlers, OutboundMessage, SendResult } from '../types.js';
import { splitMarkdown, toPlainText, toTelegramHtml } from './format.js';
import { describeMedia, type MediaSaver, MediaTooLargeError, openOutgoingFile, readCapped } from './media.js';
import { createTypingKeeper, type SentPartsLedger, sendInParts } from './outbound.js';
import { describeTelegramError, isApiError, isFormattingError, toFailure } from './telegram-errors.js';
import { mediaOf, movedChat, TELEGRAM, toChatEvent, toInbound } from './telegram-inbound.js';

/** Telegram's limit for one message, counted after entities are parsed. */
export const TELEGRAM_MAX_TEXT = 4096;
const MAX_CAPTION = 1024;
/** Bot API limits: downloads of 20 MB, uploads of 50 MB (a self-hosted Bot API server allows more). */
const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
const MAX_INLINE_PHOTO_BYTES = 10 * 1024 * 1024;
const DOWNLOAD_TIMEOUT_MS = 120_000;
const TOKEN_REFUSED: ChannelState = {
  status: 'logged-out',
  reason: 'Telegram refused the bot token (401): check it with BotFather',
};

export interface TelegramChannelOptions {
  token: string;
  /** https://api.telegram.org, or a self-hosted Bot API server. */
  apiRoot: string;
  log: Logger;
  /** Saves received media into the chat's group folder; null leaves media out. */
  media: MediaSaver | null;
  /** Largest medium to download. */
  maxMediaBytes: number;
  /** The getUpdates offset, kept across restarts so a restart neither loses nor replays updates. */
  offsets: { load(): number | null; save(offset: number): void };
  sentParts: SentPartsLedger;
  pollTimeoutSeconds?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  typingIntervalMs?: number;
}

/** grammY types its signals with its abort-controller shim; Node's own AbortSignal is what it gets at runtime. */
type GrammySignal = Parameters<Api['getMe']>[0];
const asGrammySignal = (signal: AbortSignal) => signal as unknown as GrammySignal;

export function createTelegramChannel(options: TelegramChannelOptions): Channel {
  const log = options.log.child({ channel: TELEGRAM });
  const pollTimeout = options.pollTimeoutSeconds ?? 30;
  const retryBaseMs = options.retryBaseMs ?? 1000;
  const retryMaxMs = options.retryMaxMs ?? 60_000;
  let sdk: typeof import('grammy') | null = null;
  let api: Api | null = null;
  let me: UserFromGetMe | null = null;
  let handlers: ChannelHandlers | null = null;
  let abort: AbortController | null = null;
  let loop: Promise<void> | null = null;
  let lastState = '';

  const typing = createTypingKeeper({
    intervalMs: options.typingIntervalMs ?? 4500,
    maxMs: 5 * 60_000,
    log,
    // Telegram has no "stopped typing": the indicator ends by itself or when the reply arrives.
    send: async (chatId, isTyping) => {
      if (isTyping && api) await api.sendChatAction(chatId, 'typing');
    },
  });

  function setState(state: ChannelState): void {
    const key = JSON.stringify(state);
    if (key === lastState) return;
    lastState = key;
    log.info({ ...state }, 'telegram state');
    handlers?.onStateChange?.(state);
  }

  async function download(fileId: string, maxBytes: number): Promise<Buffer> {
    if (!api) throw new Error('telegram is not connected');
    const file = await api.getFile(fileId);
    if ((file.file_size ?? 0) > maxBytes) throw new MediaTooLargeError(maxBytes);
    if (!file.file_path) throw new Error('Telegram gave no file path');
    // The token is part of this URL: it is never logged, and errors below do not carry it.
    const url = `${options.apiRoot.replace(/\/+$/, '')}/file/bot${options.token}/${file.file_path}`;
    const response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`file download answered HTTP ${response.status}`);
    }
    return readCapped(response, maxBytes);
  }

  async function handleMessage(message: Message, bot: UserFromGetMe): Promise<void> {
    const inbound = toInbound(message, bot);
    if (!inbound) return;
    const medium = mediaOf(message, options.maxMediaBytes);
    if (medium) {
      const { fileId, ...described } = medium;
      const result = options.media
        ? await options.media.save({
            ...described,
            channel: TELEGRAM,
            chatId: inbound.chatId,
            externalId: inbound.externalId,
            download: (maxBytes) => download(fileId, maxBytes),
          })
        : { status: 'skipped' as const, reason: 'media saving is off' };
      inbound.text = [describeMedia(described, result), inbound.text].filter(Boolean).join('\n');
    }
    handlers?.onMessage(inbound);
  }

  async function handleUpdate(update: Update, bot: UserFromGetMe): Promise<void> {
    try {
      const event = toChatEvent(update, bot);
      if (event) handlers?.onChatEvent?.(event);
      if (update.message) await handleMessage(update.message, bot);
    } catch (error) {
      // One bad update must not stop the loop (or be retried forever): log it and move on.
      log.error({ err: error, updateId: update.update_id }, 'telegram update could not be handled');
    }
  }

  async function poll(client: Api, signal: AbortSignal): Promise<void> {
    let offset = options.offsets.load() ?? undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        me ??= await client.getMe(asGrammySignal(signal));
        const updates = await client.getUpdates(
          { offset, timeout: pollTimeout, allowed_updates: ['message', 'my_chat_member'] },
          asGrammySignal(signal),
        );
        failures = 0;
        setState({ status: 'connected' });
        for (const update of updates) {
          if (signal.aborted) return;
          await handleUpdate(update, me);
          // Saved after each update: a crash replays at most the update being handled, which the store ignores.
          offset = update.update_id + 1;
          options.offsets.save(offset);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (isApiError(error) && error.error_code === 401) {
          setState(TOKEN_REFUSED);
          return;
        }
        failures++;
        const retryAfter = isApiError(error) ? error.parameters?.retry_after : undefined;
        const delay = retryAfter
          ? retryAfter * 1000
          : backoffMs(failures, { baseMs: retryBaseMs, maxMs: retryMaxMs });
        setState({ status: 'reconnecting', reason: describeTelegramError(error) });
        log.warn({ reason: describeTelegramError(error), retryInMs: delay }, 'telegram polling failed');
        await sleep(delay, signal);
      }
    }
  }

  /**
   * A send's failure. Telegram refuses a group that became a supergroup and names its new id: the host is told the
   * chat moved (its outbox follows), and the send is worth retrying, there.
   */
  function failureOf(chatId: string, error: unknown): SendResult {
    const movedTo = isApiError(error) ? error.parameters?.migrate_to_chat_id : undefined;
    if (movedTo === undefined) return toFailure(error);
    handlers?.onChatEvent?.(movedChat(chatId, movedTo));
    return { status: 'failed', reason: describeTelegramError(error), isRetryable: true };
  }

  async function sendTextPart(chatId: string, part: string): Promise<SendResult> {
    const client = api;
    if (!client) return { status: 'failed', reason: 'telegram is not connected', isRetryable: true };
    const noPreview = { link_preview_options: { is_disabled: true } };
    try {
      const sent = await client.sendMessage(chatId, toTelegramHtml(part), {
        parse_mode: 'HTML',
        ...noPreview,
      });
      return { status: 'sent', externalId: String(sent.message_id) };
    } catch (error) {
      if (!isFormattingError(error)) return failureOf(chatId, error);
      log.warn(
        { reason: describeTelegramError(error) },
        'Telegram refused the formatting; sending plain text',
      );
    }
    try {
      const sent = await client.sendMessage(chatId, toPlainText(part).trim() || part, noPreview);
      return { status: 'sent', externalId: String(sent.message_id) };
    } catch (error) {
      return failureOf(chatId, error);
    }
  }

  return {
    name: TELEGRAM,
    maxTextLength: TELEGRAM_MAX_TEXT,

    async connect(newHandlers) {
      if (loop) throw new Error('telegram channel is already connected');
      sdk ??= await import('grammy');
      const client = new sdk.Api(options.token, { apiRoot: options.apiRoot });
      api = client;
      handlers = newHandlers;
      lastState = '';
      abort = new AbortController();
      const signal = abort.signal;
      try {
        me = await client.getMe(asGrammySignal(signal));
        // A webhook left behind by another program would make every getUpdates fail.
        await client.deleteWebhook({}, asGrammySignal(signal));
        log.info({ username: me.username }, 'telegram bot identified');
      } catch (error) {
        if (isApiError(error) && error.error_code === 401) {
          setState(TOKEN_REFUSED);
          return;
        }
        // Offline at start: the polling loop keeps trying.
        setState({ status: 'reconnecting', reason: describeTelegramError(error) });
      }
      loop = poll(client, signal);
    },

    async send(message: OutboundMessage): Promise<SendResult> {
      if (!api) return { status: 'failed', reason: 'telegram is not connected', isRetryable: true };
      return sendInParts({
        idempotencyKey: message.idempotencyKey,
        parts: splitMarkdown(message.text, TELEGRAM_MAX_TEXT),
        ledger: options.sentParts,
        sendPart: (part) => sendTextPart(message.chatId, part),
      });
    },

    setTyping: (chatId, isTyping) => typing.set(chatId, isTyping),

    async sendFile(chatId, filePath, caption) {
      const client = api;
      const grammy = sdk;
      if (!client || !grammy)
        return { status: 'failed', reason: 'telegram is not connected', isRetryable: true };
      const file = await openOutgoingFile(filePath, MAX_UPLOAD_BYTES);
      if (file.status === 'failed') return { ...file, isRetryable: false };
      const isPhoto =
        /^image\/(jpeg|png|webp)$/.test(file.mimeType) && file.data.length <= MAX_INLINE_PHOTO_BYTES;
      const markdown =
        caption && caption.length > MAX_CAPTION ? `${caption.slice(0, MAX_CAPTION - 1)}…` : caption;
      const upload = (formatted: boolean): Promise<{ message_id: number }> => {
        const input = new grammy.InputFile(file.data, file.fileName);
        const other = markdown
          ? formatted
            ? { caption: toTelegramHtml(markdown), parse_mode: 'HTML' as const }
            : { caption: toPlainText(markdown) }
          : {};
        return isPhoto ? client.sendPhoto(chatId, input, other) : client.sendDocument(chatId, input, other);
      };
      try {
        const sent = await upload(true).catch((error: unknown) => {
          if (markdown && isFormattingError(error)) return upload(false);
          throw error;
        });
        return { status: 'sent', externalId: String(sent.message_id) };
      } catch (error) {
        return failureOf(chatId, error);
      }
    },

    async disconnect() {
      const running = loop;
      abort?.abort();
      typing.stopAll();
      await running;
      loop = null;
      abort = null;
      api = null;
      if (handlers) setState({ status: 'disconnected', reason: 'closed' });
      handlers = null;
    },
  };
}
