// The Slack channel (@slack/web-api + @slack/socket-mode): Socket Mode in, Web API out, threads, mrkdwn, files.

import type { SocketModeClient } from '@slack/socket-mode';
import type { Logger as SlackLogger, WebClient } from '@slack/web-api';
import { backoffMs, sleep } from '../backoff.js';
import type { Logger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import type { Channel, ChannelHandlers, OutboundMessage, SendResult } from '../types.js';
import { splitMarkdown, toPlainText, toSlackMrkdwn } from './format.js';
import { type MediaSaver, openOutgoingFile } from './media.js';
import { type SentPartsLedger, sendInParts } from './outbound.js';
import {
  describeSlackError,
  isFormattingError,
  isTokenError,
  platformErrorOf,
  toFailure,
} from './slack-errors.js';
import { saveFiles } from './slack-files.js';
import { type MessageEvent, personMessage, SLACK, type SlackIdentity, toInbound } from './slack-inbound.js';

/** A section block's mrkdwn text holds at most 3,000 characters: the limit of one part. */
export const SLACK_MAX_TEXT = 3000;
const MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
/** The reaction that stands in for "typing…" on the message being answered (Slack has none for bots). */
const WORKING_REACTION = 'eyes';

export interface SlackChannelOptions {
  /** xoxb-…: the Web API (messages, files, names). */
  botToken: string;
  /** xapp-… with connections:write: Socket Mode. */
  appToken: string;
  /** https://slack.com/api, or a loopback test server. */
  apiRoot: string;
  log: Logger;
  /** Saves received files into the chat's group folder; null leaves them out. */
  media: MediaSaver | null;
  maxMediaBytes: number;
  sentParts: SentPartsLedger;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** The libraries' own logging goes to ours at debug level: what matters, this adapter logs itself. */
function quietLogger(log: Logger): SlackLogger {
  const debug = (...message: unknown[]) => log.debug({ slack: message.map(String).join(' ') }, 'slack sdk');
  return {
    debug,
    info: debug,
    warn: debug,
    error: debug,
    setLevel: () => {},
    getLevel: () => 'info' as ReturnType<SlackLogger['getLevel']>,
    setName: () => {},
  };
}

export function createSlackChannel(options: SlackChannelOptions): Channel {
  const log = options.log.child({ channel: SLACK });
  const apiUrl = `${options.apiRoot.replace(/\/+$/, '')}/`;
  // No retries inside the libraries: the outbox retries sends, and the loop below reconnects with our backoff.
  const clientOptions = { slackApiUrl: apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true };
  let web: WebClient | null = null;
  let socket: SocketModeClient | null = null;
  let me: SlackIdentity | null = null;
  let handlers: ChannelHandlers | null = null;
  let abort: AbortController | null = null;
  let loop: Promise<void> | null = null;
  let lastState = '';
  const names = new Map<string, string>();
  /** The last message handed over per chat, and the one that carries the working reaction. */
  const lastSeen = new Map<string, string>();
  const reacted = new Map<string, string>();

  function setState(state: ChannelState): void {
    const key = JSON.stringify(state);
    if (key === lastState) return;
    lastState = key;
    log.info({ ...state }, 'slack state');
    handlers?.onStateChange?.(state);
  }

  /** A user's or a channel's name, asked once; the id when Slack will not say. */
  async function nameOf(kind: 'user' | 'channel', id: string): Promise<string | undefined> {
    const cached = names.get(id);
    if (cached || !web) return cached;
    try {
      let name: string | undefined;
      if (kind === 'user') {
        const { user } = await web.users.info({ user: id });
        name = user?.profile?.display_name || user?.real_name || user?.name;
      } else {
        const { channel } = await web.conversations.info({ channel: id });
        name = channel?.is_im ? undefined : channel?.name;
      }
      if (name) names.set(id, name);
      return name;
    } catch (error) {
      log.debug({ reason: describeSlackError(error), kind, id }, 'slack name lookup failed');
      return undefined;
    }
  }

  async function handleEvent(event: unknown, bot: SlackIdentity): Promise<void> {
    const message: (MessageEvent & { user: string }) | null = personMessage(event, bot);
    if (!message) return;
    const isDirect = message.channel_type === 'im';
    const sender = (await nameOf('user', message.user)) ?? message.user;
    const chat = isDirect ? sender : await nameOf('channel', message.channel);
    const inbound = toInbound(message, bot, { sender, chat });
    if (message.files?.length) {
      const lines = await saveFiles(inbound, message.files, { ...options, log });
      inbound.text = [...lines, inbound.text].filter(Boolean).join('\n');
    }
    lastSeen.set(inbound.chatId, inbound.externalId);
    handlers?.onMessage(inbound);
  }

  async function identify(client: WebClient): Promise<SlackIdentity> {
    const identity = await client.auth.test();
    if (!identity.user_id) throw new Error('auth.test named no bot user');
    return { userId: identity.user_id, botId: identity.bot_id, name: identity.user ?? 'app' };
  }

  /** Connects, and after every drop connects again with backoff, until disconnect() or a refused token. */
  async function run(client: WebClient, sockets: SocketModeClient, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        me ??= await identify(client);
        await sockets.start();
        if (signal.aborted) break;
        failures = 0;
        setState({ status: 'connected' });
        await new Promise((resolve) => sockets.once('disconnected', resolve));
        if (signal.aborted) break;
        // Slack closes connections routinely (refresh_requested, warning): the first try is at once.
        setState({ status: 'reconnecting', reason: 'the Socket Mode connection closed' });
      } catch (error) {
        if (signal.aborted) break;
        if (isTokenError(error)) {
          const reason = `Slack refused a token (${platformErrorOf(error)}): check WARREN_SLACK_BOT_TOKEN and WARREN_SLACK_APP_TOKEN`;
          setState({ status: 'logged-out', reason });
          return;
        }
        failures++;
        const delay = backoffMs(failures, {
          baseMs: options.retryBaseMs ?? 1000,
          maxMs: options.retryMaxMs ?? 60_000,
        });
        setState({ status: 'reconnecting', reason: describeSlackError(error) });
        log.warn({ reason: describeSlackError(error), retryInMs: delay }, 'slack connection failed');
        await sleep(delay, signal);
      }
    }
    // A start() under way when disconnect() came may still have connected.
    await sockets.disconnect();
  }

  async function sendTextPart(chatId: string, part: string, threadId?: string): Promise<SendResult> {
    const client = web;
    if (!client) return { status: 'failed', reason: 'slack is not connected', isRetryable: true };
    const plain = toPlainText(part).trim() || part;
    const common = { channel: chatId, unfurl_links: false, unfurl_media: false, thread_ts: threadId };
    try {
      const section = { type: 'section', text: { type: 'mrkdwn', text: toSlackMrkdwn(part) } };
      // text is what notifications show; the section is what the chat shows.
      const sent = await client.chat.postMessage({ ...common, text: plain, blocks: [section] });
      return { status: 'sent', externalId: sent.ts };
    } catch (error) {
      if (!isFormattingError(error)) return toFailure(error);
      log.warn({ reason: describeSlackError(error) }, 'Slack refused the formatting; sending plain text');
    }
    try {
      const sent = await client.chat.postMessage({ ...common, text: plain, mrkdwn: false });
      return { status: 'sent', externalId: sent.ts };
    } catch (error) {
      return toFailure(error);
    }
  }

  /** A reaction on the message being answered while the agent works (what is available to a bot for "typing…"). */
  async function setWorking(chatId: string, isWorking: boolean): Promise<void> {
    const client = web;
    const timestamp = isWorking ? lastSeen.get(chatId) : reacted.get(chatId);
    if (!client || !timestamp || (isWorking && reacted.get(chatId) === timestamp)) return;
    const reaction = { channel: chatId, timestamp, name: WORKING_REACTION };
    try {
      if (isWorking) {
        reacted.set(chatId, timestamp);
        await client.reactions.add(reaction);
      } else {
        reacted.delete(chatId);
        await client.reactions.remove(reaction);
      }
    } catch (error) {
      log.debug({ reason: describeSlackError(error), chatId }, 'working reaction failed');
    }
  }

  return {
    name: SLACK,
    maxTextLength: SLACK_MAX_TEXT,

    async connect(newHandlers) {
      if (loop) throw new Error('slack channel is already connected');
      handlers = newHandlers;
      lastState = '';
      if (!options.botToken || !options.appToken) {
        const missing = options.botToken ? 'WARREN_SLACK_APP_TOKEN' : 'WARREN_SLACK_BOT_TOKEN';
        setState({ status: 'logged-out', reason: `${missing} is not set (Slack needs both tokens)` });
        return;
      }
      const [{ WebClient }, { SocketModeClient }] = await Promise.all([
        import('@slack/web-api'),
        import('@slack/socket-mode'),
      ]);
      const logger = quietLogger(log);
      const client = new WebClient(options.botToken, { ...clientOptions, logger });
      const sockets = new SocketModeClient({
        appToken: options.appToken,
        autoReconnectEnabled: false,
        logger,
        clientOptions,
      });
      // Acknowledged only once the host has the message: an envelope lost with the connection comes again, and
      // the store ignores a redelivery by the message's ts.
      // One event at a time, in the order Slack sent them (name lookups and downloads must not reorder messages).
      let queue = Promise.resolve();
      sockets.on('slack_event', ({ ack, type, body }) => {
        queue = queue.then(async () => {
          try {
            if (type === 'events_api' && me) await handleEvent(body?.event, me);
          } catch (error) {
            log.error({ err: error }, 'slack event could not be handled');
          }
          await ack().catch((error: unknown) => log.debug({ err: error }, 'slack ack failed'));
        });
      });
      web = client;
      socket = sockets;
      abort = new AbortController();
      loop = run(client, sockets, abort.signal);
    },

    async send(message: OutboundMessage): Promise<SendResult> {
      if (!web) return { status: 'failed', reason: 'slack is not connected', isRetryable: true };
      return sendInParts({
        idempotencyKey: message.idempotencyKey,
        parts: splitMarkdown(message.text, SLACK_MAX_TEXT),
        ledger: options.sentParts,
        sendPart: (part) => sendTextPart(message.chatId, part, message.threadId),
      });
    },

    setTyping: (chatId, isTyping) => setWorking(chatId, isTyping),

    async sendFile(chatId, filePath, caption) {
      const client = web;
      if (!client) return { status: 'failed', reason: 'slack is not connected', isRetryable: true };
      const file = await openOutgoingFile(filePath, MAX_UPLOAD_BYTES);
      if (file.status === 'failed') return { ...file, isRetryable: false };
      try {
        const comment = caption ? { initial_comment: toSlackMrkdwn(caption) } : {};
        const uploaded = await client.filesUploadV2({
          channel_id: chatId,
          file: file.data,
          filename: file.fileName,
          title: file.fileName,
          ...comment,
        });
        const id = (uploaded.files as Array<{ files?: Array<{ id?: string }> }>)[0]?.files?.[0]?.id;
        return id ? { status: 'sent', externalId: id } : { status: 'sent' };
      } catch (error) {
        return toFailure(error);
      }
    },

    async disconnect() {
      const running = loop;
      abort?.abort();
      await socket?.disconnect();
      await running;
      socket?.removeAllListeners();
      loop = null;
      abort = null;
      web = null;
      socket = null;
      lastSeen.clear();
      reacted.clear();
      if (handlers) setState({ status: 'disconnected', reason: 'closed' });
      handlers = null;
    },
  };
}
