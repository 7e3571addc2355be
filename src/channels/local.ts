// The "local" channel: a loopback-only web chat and its JSON/SSE API, guarded against other pages and processes.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import type { Channel, ChannelHandlers, InboundMessage, OutboundMessage, SendResult } from '../types.js';
import { createAccessGuard, describeValue, type LocalDenial } from './local-access.js';
import { createLocalApi, type LocalApiDeps } from './local-api.js';
import { type ChatEvent, createChatEvents } from './local-events.js';
import {
  API_CSP,
  formatMessageEvent,
  formatTypingEvent,
  methodNotAllowed,
  parseCursor,
  readPostedMessage,
  securityHeaders,
  sendJson,
} from './local-http.js';
import { createWebApp, DEFAULT_WEB_DIR } from './local-web.js';

export const LOCAL_CHAT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const DEFAULT_LOCAL_CHAT_ID = 'main';
export { LOCAL_TOKEN_FILE, loadOrCreateToken } from './local-access.js';
export type { LocalDenial };

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
const MAX_HISTORY_PER_CHAT = 1000;
const MAX_REMEMBERED_KEYS = 10_000;
const DEFAULT_KEEPALIVE_MS = 15_000;
/** A stream whose reader stopped reading is cut rather than buffered without end. */
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

export interface LocalChannelOptions {
  /** 127.0.0.1 (default), ::1 or localhost; anything else throws, because this is the owner's admin chat. */
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  token: string;
  assistantName: string;
  log: Logger;
  /** Called for every refused request, so the host can audit it. Must not throw. */
  onDenied?: (denial: LocalDenial) => void;
  now?: () => number;
  keepaliveMs?: number;
  /** Where the built web app is (tests); default <package>/dist/web. */
  webDir?: string;
}

export interface LocalChannel extends Channel {
  /** Base url, e.g. http://127.0.0.1:7777 (the real port once connected). */
  readonly url: string;
  readonly port: number;
  /** Adds the page's history, uploads, dashboard and owner operations (the host calls it); without, only the chat API. */
  setApi(deps: Omit<LocalApiDeps, 'deliver' | 'now'>): void;
}

export function createLocalChannel(options: LocalChannelOptions): LocalChannel {
  const host = options.host ?? '127.0.0.1';
  // Loopback only: the page is an admin chat with no login but the token, so nothing on the network may reach it.
  if (!LOOPBACK_HOSTS.has(host)) {
    throw new Error(`local chat host must be 127.0.0.1, ::1 or localhost, not ${JSON.stringify(host)}`);
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65_535) {
    throw new Error(`local chat port must be an integer from 0 to 65535, not ${options.port}`);
  }
  if (options.token.length < 16) throw new Error('local chat token must be at least 16 characters');

  const log = options.log.child({ channel: 'local' });
  const now = options.now ?? Date.now;
  const access = createAccessGuard({ token: options.token, log, onDenied: options.onDenied });
  // Ids start at the clock so a tab that outlives a host restart still sees the new (higher) ids as unseen.
  const events = createChatEvents({ firstId: now(), maxEventsPerChat: MAX_HISTORY_PER_CHAT });
  const sentKeys = new Map<string, string>();
  const streams = new Set<ServerResponse>();
  let server: Server | null = null;
  let handlers: ChannelHandlers | null = null;
  let keepaliveTimer: NodeJS.Timeout | null = null;
  let port = options.port;

  const urlHost = host === '::1' ? '[::1]' : host;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? '';
    let url: URL | null = null;
    try {
      url = new URL(request.url ?? '/', 'http://local.invalid');
    } catch {
      // Checked below, after access: an unparsable target is held to the API's stricter rules.
    }
    const isApi = url === null || url.pathname === '/api' || url.pathname.startsWith('/api/');
    if (!access.checkSource(request, response, isApi)) return;
    // No CORS, ever: a preflight (which never carries the token) gets a plain refusal, so no origin is granted anything.
    if (method === 'OPTIONS') return sendJson(response, 405, { error: 'OPTIONS is not supported' });
    if (url === null) return sendJson(response, 400, { error: 'malformed request target' });
    if (!isApi) return web.serve(method, url.pathname, response);
    if (!access.checkToken(request, response)) return;
    if (api && (await api.handle(request, response, url))) return;

    if (url.pathname === '/api/health') {
      if (method !== 'GET') return methodNotAllowed(response, 'GET');
      return sendJson(response, 200, { ok: true });
    }
    const route = /^\/api\/chats\/([^/]+)\/(messages|events)$/.exec(url.pathname);
    if (!route?.[1]) return sendJson(response, 404, { error: `no such route: ${url.pathname}` });
    const chatId = route[1];
    if (!LOCAL_CHAT_ID_PATTERN.test(chatId)) {
      return sendJson(response, 400, { error: 'chat id must match [a-z0-9][a-z0-9_-]{0,63}' });
    }
    if (route[2] === 'events') {
      if (method !== 'GET') return methodNotAllowed(response, 'GET');
      const cursor = parseCursor(request.headers['last-event-id'] ?? url.searchParams.get('after'));
      if (cursor === 'invalid') return sendJson(response, 400, { error: 'event id must be a whole number' });
      return openStream(request, response, chatId, cursor);
    }
    if (method === 'GET') {
      const cursor = parseCursor(url.searchParams.get('after'));
      if (cursor === 'invalid') return sendJson(response, 400, { error: 'after must be a whole number' });
      return sendJson(response, 200, { events: events.listAfter(chatId, cursor ?? 0) });
    }
    if (method === 'POST') return acceptMessage(request, response, chatId);
    return methodNotAllowed(response, 'GET, POST');
  }

  /** Hands a message to the host and into the live stream (every open tab shows it); null when shutting down. */
  function deliver(message: InboundMessage): ChatEvent | null {
    if (!handlers) return null;
    handlers.onMessage(message);
    log.debug({ chatId: message.chatId, externalId: message.externalId }, 'local message received');
    const { chatId, senderName, text, sentAt: at } = message;
    return events.append(chatId, { key: `m:${message.externalId}`, role: 'user', senderName, text, at });
  }

  async function acceptMessage(request: IncomingMessage, response: ServerResponse, chatId: string) {
    const posted = await readPostedMessage(request);
    if (!posted.ok) return sendJson(response, posted.status, { error: posted.error }, posted.headers);
    const message: InboundMessage = {
      channel: 'local',
      chatId,
      externalId: randomUUID(),
      senderId: 'local-owner',
      senderName: posted.senderName?.trim() || 'You',
      text: posted.text,
      sentAt: now(),
      isDirect: true,
    };
    let event: ChatEvent | null;
    try {
      event = deliver(message);
    } catch (error) {
      log.error({ err: error, chatId }, 'onMessage threw');
      return sendJson(response, 500, { error: 'the message could not be accepted' });
    }
    if (!event) return sendJson(response, 503, { error: 'local chat is shutting down' });
    return sendJson(response, 202, { id: message.externalId, eventId: event.eventId });
  }

  function openStream(
    request: IncomingMessage,
    response: ServerResponse,
    chatId: string,
    after: number | null,
  ) {
    response.writeHead(200, {
      ...securityHeaders(API_CSP),
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
    });
    const write = (chunk: string) => {
      if (response.writableLength > MAX_STREAM_BACKLOG_BYTES) {
        log.warn({ chatId }, 'local event stream not read; closing it');
        response.destroy();
        return;
      }
      response.write(chunk);
    };
    // The comment flushes the headers at once, so the client knows it is connected before any event.
    write(': connected\n\n');
    if (after !== null) for (const event of events.listAfter(chatId, after)) write(formatMessageEvent(event));
    if (events.isTyping(chatId)) write(formatTypingEvent(true));
    const unsubscribe = events.subscribe(chatId, {
      onMessage: (event) => write(formatMessageEvent(event)),
      onTyping: (isTyping) => write(formatTypingEvent(isTyping)),
    });
    streams.add(response);
    request.socket.setTimeout(0);
    response.on('close', () => {
      unsubscribe();
      streams.delete(response);
    });
  }

  let api: ReturnType<typeof createLocalApi> | null = null;
  const web = createWebApp(options.webDir ?? DEFAULT_WEB_DIR, options.assistantName);

  return {
    name: 'local',

    get url() {
      return `http://${urlHost}:${port}`;
    },

    get port() {
      return port;
    },

    setApi(deps) {
      api = createLocalApi({ ...deps, now, deliver });
    },

    async connect(newHandlers) {
      if (server) throw new Error('local channel is already connected');
      const candidate = createServer((request, response) => {
        handle(request, response).catch((error: unknown) => {
          log.error({ err: error, path: request.url?.split('?')[0] }, 'local request failed');
          if (!response.headersSent) sendJson(response, 500, { error: 'internal error' });
          else response.destroy();
        });
      });
      await new Promise<void>((resolve, reject) => {
        candidate.once('error', (error: NodeJS.ErrnoException) => {
          const where = `${host}:${options.port}`;
          if (error.code === 'EADDRINUSE') {
            reject(
              new Error(
                `local chat cannot listen on ${where}: port ${options.port} is already in use ` +
                  '(stop the other program or set WARREN_LOCAL_PORT to another port)',
                { cause: error },
              ),
            );
          } else {
            reject(new Error(`local chat cannot listen on ${where}: ${error.message}`, { cause: error }));
          }
        });
        candidate.listen({ host, port: options.port }, () => resolve());
      });
      candidate.on('error', (error) => log.error({ err: error }, 'local chat server error'));
      port = (candidate.address() as AddressInfo).port;
      access.setPort(port);
      server = candidate;
      handlers = newHandlers;
      // One timer for all streams; comments keep idle connections (and the client's watchdog) alive.
      keepaliveTimer = setInterval(() => {
        for (const stream of streams) stream.write(': keepalive\n\n');
      }, options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS);
      log.info({ url: `http://${urlHost}:${port}` }, 'local chat listening');
      newHandlers.onStateChange?.({ status: 'connected' });
    },

    async send(message: OutboundMessage): Promise<SendResult> {
      if (!LOCAL_CHAT_ID_PATTERN.test(message.chatId)) {
        return {
          status: 'failed',
          reason: `invalid local chat id ${describeValue(message.chatId)}`,
          isRetryable: false,
        };
      }
      if (!server) return { status: 'failed', reason: 'local chat is not running', isRetryable: true };
      const previous = sentKeys.get(message.idempotencyKey);
      if (previous !== undefined) return { status: 'sent', externalId: previous };
      const event = events.append(message.chatId, {
        key: `o:${message.idempotencyKey}`,
        role: 'assistant',
        senderName: options.assistantName,
        text: message.text,
        at: now(),
      });
      const externalId = String(event.eventId);
      sentKeys.set(message.idempotencyKey, externalId);
      if (sentKeys.size > MAX_REMEMBERED_KEYS) {
        const oldest = sentKeys.keys().next().value;
        if (oldest !== undefined) sentKeys.delete(oldest);
      }
      return { status: 'sent', externalId };
    },

    async setTyping(chatId, isTyping) {
      if (!LOCAL_CHAT_ID_PATTERN.test(chatId)) return;
      events.setTyping(chatId, isTyping);
    },

    async disconnect() {
      const closing = server;
      if (!closing) return;
      const closingHandlers = handlers;
      server = null;
      handlers = null;
      if (keepaliveTimer) clearInterval(keepaliveTimer);
      keepaliveTimer = null;
      for (const stream of streams) stream.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        closing.close(() => resolve());
        closing.closeAllConnections();
      });
      log.info('local chat stopped');
      closingHandlers?.onStateChange?.({ status: 'disconnected', reason: 'closed' });
    },
  };
}
