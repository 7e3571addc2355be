// The Discord channel (discord.js): the Gateway in, REST out; guild channels, threads, DMs, Discord Markdown, files.
import type { Client, Message } from 'discord.js';
import { z } from 'zod';
import { backoffMs, sleep } from '../backoff.js';
import type { Logger } from '../log.js';
import type { ChannelState } from '../store/records.js';
import type { Channel, ChannelHandlers, OutboundMessage, SendResult } from '../types.js';
import { describeDiscordError, isTokenError } from './discord-errors.js';
import { saveAttachments } from './discord-files.js';
import {
  DISCORD,
  type DiscordIdentity,
  type DiscordPlace,
  isNewer,
  isPersonMessage,
  senderNameOf,
  toInbound,
} from './discord-inbound.js';
import { createDiscordOutbound, DISCORD_MAX_TEXT } from './discord-outbound.js';
import { splitMarkdown } from './format.js';
import type { MediaSaver } from './media.js';
import { createTypingKeeper, type SentPartsLedger, sendInParts } from './outbound.js';

export { DISCORD_MAX_TEXT };

/** The library resumes at once after a drop; after this many failures in a row our backoff takes over. */
const MAX_QUICK_RECONNECTS = 3;
/** How many channels' last message ids are kept for catching up after a fresh session. */
const MAX_CURSORS = 500;
/** Gateway close codes that no reconnect fixes, in the owner's words. */
const FATAL_CLOSES: Record<number, string> = {
  4004: 'Discord refused the bot token: check WARREN_DISCORD_BOT_TOKEN',
  4013: 'Discord refused the intents Warren asked for',
  4014: 'Discord refused the Message Content intent: turn it on under Bot → Privileged Gateway Intents',
};

export interface DiscordChannelOptions {
  /** The bot's token from the developer portal (Bot → Reset Token). */
  token: string;
  /** https://discord.com/api, or a loopback test server (REST; the Gateway's URL comes from GET /gateway/bot). */
  apiRoot: string;
  log: Logger;
  /** Saves received files into the chat's group folder; null leaves them out. */
  media: MediaSaver | null;
  maxMediaBytes: number;
  sentParts: SentPartsLedger;
  /** The last message id taken in per Discord channel (JSON), kept across restarts. */
  cursors: { load(): string | null; save(value: string): void };
  retryBaseMs?: number;
  retryMaxMs?: number;
  typingIntervalMs?: number;
}

const cursorsSchema = z.record(z.string().regex(/^\d+$/), z.string().regex(/^\d+$/));

/** The saved cursors, or none when they are missing or unreadable (then nothing is caught up after a restart). */
function loadCursors(saved: string | null): Map<string, string> {
  try {
    const parsed = cursorsSchema.safeParse(JSON.parse(saved ?? '{}'));
    return new Map(Object.entries(parsed.success ? parsed.data : {}));
  } catch {
    return new Map();
  }
}

type SessionEnd = { reason: string; isFatal: boolean };

export function createDiscordChannel(options: DiscordChannelOptions): Channel {
  const log = options.log.child({ channel: DISCORD });
  let client: Client | null = null;
  let me: DiscordIdentity | null = null;
  let handlers: ChannelHandlers | null = null;
  let abort: AbortController | null = null;
  let loop: Promise<void> | null = null;
  let lastState = '';
  /** Resolves connect() at the first outcome (ready, refused, or retrying). */
  let settled: (() => void) | null = null;
  /** One message at a time, in the order they came (downloads and lookups must not reorder them). */
  let queue = Promise.resolve();
  /** Where "typing…" goes for a chat: the thread (or channel) of the last message handed over. */
  const typingTarget = new Map<string, string>();
  const cursors = loadCursors(options.cursors.load());

  function setState(state: ChannelState): void {
    const key = JSON.stringify(state);
    if (key === lastState) return;
    lastState = key;
    log.info({ ...state }, 'discord state');
    handlers?.onStateChange?.(state);
    settled?.();
  }

  function remember(channelId: string, messageId: string): void {
    cursors.delete(channelId);
    cursors.set(channelId, messageId);
    // The least recently written channels go first.
    while (cursors.size > MAX_CURSORS) cursors.delete(cursors.keys().next().value as string);
    options.cursors.save(JSON.stringify(Object.fromEntries(cursors)));
  }

  /**
   * In Discord a thread is a channel of its own with a parent channel. A thread's message is addressed to the parent
   * (chatId) so that registering a channel covers its threads and they share its group, with the thread's id as
   * threadId, so the reply is posted into the thread (its channel id) rather than the parent.
   */
  async function placeOf(message: Message): Promise<DiscordPlace> {
    const channel = message.channel.partial ? await message.channel.fetch() : message.channel;
    if (channel.isDMBased()) return { chatId: channel.id, isDirect: true, chatName: senderNameOf(message) };
    if (channel.isThread()) {
      const parentId = channel.parentId ?? (await channel.fetch(true)).parentId;
      if (parentId)
        return { chatId: parentId, threadId: channel.id, chatName: channel.parent?.name, isDirect: false };
    }
    return {
      chatId: channel.id,
      chatName: 'name' in channel ? (channel.name ?? undefined) : undefined,
      isDirect: false,
    };
  }

  async function handleMessage(message: Message): Promise<void> {
    if (!me || !isPersonMessage(message, me)) return;
    // A dispatch replayed on resume, or a message fetched again when catching up, was handed over already.
    if (!isNewer(message.id, cursors.get(message.channelId))) return;
    const inbound = toInbound(message, me, await placeOf(message));
    if (message.attachments.size) {
      const lines = await saveAttachments(inbound, [...message.attachments.values()], { ...options, log });
      inbound.text = [...lines, inbound.text].filter(Boolean).join('\n');
    }
    typingTarget.set(inbound.chatId, message.channelId);
    handlers?.onMessage(inbound);
    remember(message.channelId, message.id);
  }

  const enqueue = (work: () => Promise<void>) => {
    queue = queue
      .then(work)
      .catch((error: unknown) => log.error({ err: error }, 'discord message not handled'));
  };

  /** After a fresh session (not a resume) Discord replays nothing: what was written meanwhile is fetched. */
  async function catchUp(session: Client): Promise<void> {
    const places = [...cursors];
    // A thread with nothing taken in yet, in a channel that has: messages after the parent's last (snowflakes are
    // in time order), so a thread started while the bot was away is not missed.
    for (const thread of session.channels.cache.values()) {
      const after = thread.isThread() && thread.parentId ? cursors.get(thread.parentId) : undefined;
      if (after && !cursors.has(thread.id)) places.push([thread.id, after]);
    }
    for (const [channelId, after] of places) {
      try {
        const channel = await session.channels.fetch(channelId);
        if (!channel?.isTextBased()) continue;
        const missed = await channel.messages.fetch({ after, limit: 100 });
        const ordered = [...missed.values()].sort((a, b) => (isNewer(a.id, b.id) ? 1 : -1));
        for (const message of ordered) await handleMessage(message);
      } catch (error) {
        log.debug({ reason: describeDiscordError(error), channelId }, 'discord catch-up failed');
      }
    }
  }

  async function build(signal: AbortSignal): Promise<{ session: Client; ended: Promise<SessionEnd> }> {
    const { Client, Events, GatewayIntentBits, Partials } = await import('discord.js');
    const session = new Client({
      // Only what Warren reads: servers and their channels, messages in them and in DMs, and their text.
      intents: [
        GatewayIntentBits.Guilds,
        GatewayIntentBits.GuildMessages,
        GatewayIntentBits.DirectMessages,
        GatewayIntentBits.MessageContent,
      ],
      // DM channels are never cached: without this their messages would be dropped.
      partials: [Partials.Channel],
      // No retries inside the library: the outbox retries sends, and run() reconnects with our backoff.
      rest: { api: options.apiRoot.replace(/\/+$/, ''), retries: 0, timeout: 30_000 },
      allowedMentions: { parse: [] },
    });
    let quickReconnects = 0;
    const ended = new Promise<SessionEnd>((resolve) => {
      signal.addEventListener('abort', () => resolve({ reason: 'closed', isFatal: false }), { once: true });
      session.on(Events.ShardReady, () => {
        quickReconnects = 0;
        // READY named the bot: known before the first message is handled.
        if (session.user) me = { userId: session.user.id, name: session.user.username };
        setState({ status: 'connected' });
        enqueue(() => catchUp(session));
      });
      session.on(Events.ShardResume, () => {
        quickReconnects = 0;
        setState({ status: 'connected' });
      });
      session.on(Events.ShardReconnecting, () => {
        if (signal.aborted) return;
        setState({ status: 'reconnecting', reason: 'the Gateway connection closed' });
        if (++quickReconnects > MAX_QUICK_RECONNECTS)
          resolve({ reason: 'reconnecting failed', isFatal: false });
      });
      session.on(Events.ShardDisconnect, ({ code }) =>
        resolve({ reason: FATAL_CLOSES[code] ?? `the Gateway closed with code ${code}`, isFatal: true }),
      );
    });
    session.on(Events.ShardError, (error) => log.debug({ reason: error.message }, 'discord gateway error'));
    session.on(Events.MessageCreate, (message) => enqueue(() => handleMessage(message)));
    return { session, ended };
  }

  /** Logs in, and after a session ends logs in again with backoff, until disconnect() or a refused token. */
  async function run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const { session, ended } = await build(signal);
      client = session;
      let end: SessionEnd;
      try {
        // login() resolves at READY; it may never settle while the Gateway cannot be reached, hence the race.
        const first = await Promise.race([session.login(options.token).then(() => null), ended]);
        end = first ?? (await ended);
      } catch (error) {
        end = isTokenError(error)
          ? { reason: FATAL_CLOSES[4004] as string, isFatal: true }
          : { reason: describeDiscordError(error), isFatal: false };
      }
      client = null;
      await session.destroy().catch(() => {});
      if (signal.aborted) return;
      if (end.isFatal) {
        setState({ status: 'logged-out', reason: end.reason });
        return;
      }
      failures++;
      const delay = backoffMs(failures, {
        baseMs: options.retryBaseMs ?? 1000,
        maxMs: options.retryMaxMs ?? 60_000,
      });
      setState({ status: 'reconnecting', reason: end.reason });
      log.warn({ reason: end.reason, retryInMs: delay }, 'discord connection failed');
      await sleep(delay, signal);
    }
  }

  const typing = createTypingKeeper({
    intervalMs: options.typingIntervalMs ?? 8000,
    maxMs: 5 * 60_000,
    log,
    // Discord's indicator lasts about ten seconds or until the bot posts; there is nothing to send to stop it.
    send: async (chatId, isTyping) => {
      if (isTyping) await client?.rest.post(`/channels/${typingTarget.get(chatId) ?? chatId}/typing`);
    },
  });

  const outbound = createDiscordOutbound({
    rest: () => (me ? (client?.rest ?? null) : null),
    log,
  });

  return {
    name: DISCORD,
    maxTextLength: DISCORD_MAX_TEXT,

    async connect(newHandlers) {
      if (loop) throw new Error('discord channel is already connected');
      handlers = newHandlers;
      lastState = '';
      if (!options.token) {
        setState({ status: 'logged-out', reason: 'WARREN_DISCORD_BOT_TOKEN is not set' });
        return;
      }
      abort = new AbortController();
      // Resolves once messages can flow (READY) or the first try failed: a message written after connect() has
      // resolved is never missed, as a fresh session does not replay what came before it.
      const firstOutcome = new Promise<void>((resolve) => {
        settled = resolve;
      });
      loop = run(abort.signal);
      await firstOutcome;
      settled = null;
    },

    async send(message: OutboundMessage): Promise<SendResult> {
      return sendInParts({
        idempotencyKey: message.idempotencyKey,
        parts: splitMarkdown(message.text, DISCORD_MAX_TEXT),
        ledger: options.sentParts,
        // A thread is a channel: the reply is posted to the thread's own id.
        sendPart: (part) => outbound.sendText(message.threadId ?? message.chatId, part),
      });
    },

    setTyping: (chatId, isTyping) => typing.set(chatId, isTyping),

    sendFile: (chatId, filePath, caption) => outbound.sendFile(chatId, filePath, caption),

    async disconnect() {
      const running = loop;
      abort?.abort();
      typing.stopAll();
      await running;
      await queue;
      loop = null;
      abort = null;
      typingTarget.clear();
      if (handlers) setState({ status: 'disconnected', reason: 'closed' });
      handlers = null;
    },
  };
}
