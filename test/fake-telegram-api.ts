// A loopback fake of the Telegram Bot API that speaks its HTTP protocol: getUpdates long polling with offset
// confirmation, sendMessage (HTML checked the way Telegram does), sendChatAction, getFile and file downloads,
// sendPhoto/sendDocument (multipart). Tests queue updates, inject failures and read what the bot sent.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Message, Update } from 'grammy/types';
import { htmlVisibleText } from '../src/channels/format.js';

export const FAKE_BOT = {
  id: 7001,
  is_bot: true,
  first_name: 'Warren',
  username: 'warren_test_bot',
} as const;

export interface SentRecord {
  method: 'sendMessage' | 'sendPhoto' | 'sendDocument';
  chatId: string;
  messageId: number;
  /** For sendMessage: the text as sent (HTML when parseMode is HTML). */
  text?: string;
  /** What a person would see: text without tags and entities. */
  visibleText?: string;
  parseMode?: string;
  caption?: string;
  fileName?: string;
  fileBytes?: Buffer;
}

interface PendingPoll {
  response: ServerResponse;
  offset: number | undefined;
  limit: number;
  timer: NodeJS.Timeout;
}

interface Failure {
  method: string;
  skip: number;
  errorCode: number;
  description: string;
  retryAfter?: number;
  /** As the Bot API answers a send to a group that became a supergroup. */
  migrateToChatId?: number;
}

const ALLOWED_TAGS = new Set([
  'b',
  'strong',
  'i',
  'em',
  'u',
  'ins',
  's',
  'strike',
  'del',
  'code',
  'pre',
  'a',
  'tg-spoiler',
  'span',
  'blockquote',
  'tg-emoji',
]);

/** Checks HTML the way Telegram's parser does (known tags, balanced, known entities); returns the error or null. */
export function checkTelegramHtml(html: string): string | null {
  const stack: string[] = [];
  const tag = /<(\/?)([a-z-]+)((?:\s+[a-z-]+(?:="[^"]*")?)*)\s*>|<|&(?:#\d+|#x[\da-f]+|[a-z]+);|&/gi;
  for (const match of html.matchAll(tag)) {
    const token = match[0];
    if (token === '<') return `Can't parse entities: unexpected "<" at byte offset ${match.index}`;
    if (token === '&') return `Can't parse entities: unescaped "&" at byte offset ${match.index}`;
    if (token.startsWith('&')) {
      if (!/^&(lt|gt|amp|quot|#\d+|#x[\da-f]+);$/i.test(token)) {
        return `Can't parse entities: unsupported HTML entity ${token}`;
      }
      continue;
    }
    const name = (match[2] ?? '').toLowerCase();
    if (!ALLOWED_TAGS.has(name)) return `Can't parse entities: unsupported start tag "${name}"`;
    if (match[1] === '/') {
      if (stack.pop() !== name) return `Can't parse entities: can't find end tag corresponding to start tag`;
    } else stack.push(name);
  }
  return stack.length > 0
    ? `Can't parse entities: can't find end tag corresponding to start tag "${stack.at(-1)}"`
    : null;
}

/** Parses multipart/form-data as grammY writes it (lenient: lower-case headers, unquoted file names). */
function parseMultipart(
  raw: Buffer,
  boundary: string,
): Array<{ name: string; fileName?: string; data: Buffer }> {
  const parts: Array<{ name: string; fileName?: string; data: Buffer }> = [];
  const delimiter = Buffer.from(`--${boundary}`);
  let start = raw.indexOf(delimiter);
  while (start !== -1) {
    const next = raw.indexOf(delimiter, start + delimiter.length);
    if (next === -1) break;
    const chunk = raw.subarray(start + delimiter.length + 2, next - 2);
    const split = chunk.indexOf('\r\n\r\n');
    if (split !== -1) {
      const headers = chunk.subarray(0, split).toString('utf8');
      const name = /name="([^"]*)"/i.exec(headers)?.[1] ?? '';
      const fileName = /filename="?([^";\r\n]*)"?/i.exec(headers)?.[1];
      parts.push({ name, fileName, data: Buffer.from(chunk.subarray(split + 4)) });
    }
    start = next;
  }
  return parts;
}

export interface FakeTelegramApi {
  /** The apiRoot to give the bot. */
  readonly url: string;
  readonly token: string;
  readonly sent: SentRecord[];
  readonly chatActions: Array<{ chatId: string; action: string }>;
  /** Every method called, in order. */
  readonly calls: string[];
  /** The highest offset the bot has confirmed (updates below it are gone, as on Telegram). */
  readonly confirmedOffset: number;
  /** Queues a message update; returns the message. */
  pushMessage(input: {
    chatId: number;
    chatType?: 'private' | 'group' | 'supergroup';
    chatTitle?: string;
    text?: string;
    caption?: string;
    from?: { id: number; first_name: string; last_name?: string; username?: string };
    entities?: Message['entities'];
    photo?: Message['photo'];
    document?: Message['document'];
    voice?: Message['voice'];
    replyToBot?: boolean;
  }): Message;
  pushUpdate(update: Omit<Update, 'update_id'>): number;
  /** Stores a file the bot can fetch with getFile; returns its file_id. */
  addFile(bytes: Buffer, options?: { path?: string; reportedSize?: number }): string;
  /** The next call of method (after skip successful ones) fails with this Bot API error. */
  failNext(
    method: string,
    error: {
      errorCode: number;
      description: string;
      retryAfter?: number;
      migrateToChatId?: number;
      skip?: number;
    },
  ): void;
  /** Drops every open long poll at the TCP level, as a network failure would. */
  dropPolls(): void;
  /** Texts (visible) sent to a chat, in order. */
  textsTo(chatId: string | number): string[];
  close(): Promise<void>;
}

export async function startFakeTelegramApi(
  token = '123456:TEST-token_abcdefghijklmnop',
): Promise<FakeTelegramApi> {
  const updates: Update[] = [];
  const polls = new Set<PendingPoll>();
  const files = new Map<string, { path: string; bytes: Buffer; reportedSize: number }>();
  const failures: Failure[] = [];
  const sent: SentRecord[] = [];
  const chatActions: Array<{ chatId: string; action: string }> = [];
  const calls: string[] = [];
  let nextUpdateId = 1000;
  let nextMessageId = 1;
  let confirmedOffset = 0;

  const reply = (response: ServerResponse, status: number, body: unknown) => {
    if (response.writableEnded || response.destroyed) return;
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const ok = (response: ServerResponse, result: unknown) => reply(response, 200, { ok: true, result });
  const fail = (
    response: ServerResponse,
    errorCode: number,
    description: string,
    retryAfter?: number,
    migrateToChatId?: number,
  ) =>
    reply(response, errorCode, {
      ok: false,
      error_code: errorCode,
      description,
      ...(retryAfter ? { parameters: { retry_after: retryAfter } } : {}),
      ...(migrateToChatId ? { parameters: { migrate_to_chat_id: migrateToChatId } } : {}),
    });

  function confirm(offset: number | undefined): void {
    if (offset === undefined) return;
    confirmedOffset = Math.max(confirmedOffset, offset);
    while (updates.length > 0 && (updates[0] as Update).update_id < confirmedOffset) updates.shift();
  }

  function available(offset: number | undefined, limit: number): Update[] {
    return updates.filter((update) => offset === undefined || update.update_id >= offset).slice(0, limit);
  }

  function wakePolls(): void {
    for (const poll of [...polls]) {
      const ready = available(poll.offset, poll.limit);
      if (ready.length === 0) continue;
      clearTimeout(poll.timer);
      polls.delete(poll);
      ok(poll.response, ready);
    }
  }

  async function readBody(
    request: IncomingMessage,
  ): Promise<Record<string, unknown> & { _files?: Record<string, { name: string; bytes: Buffer }> }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const type = request.headers['content-type'] ?? '';
    if (raw.length === 0) return {};
    if (type.startsWith('application/json'))
      return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (type.startsWith('multipart/form-data')) {
      const boundary = /boundary=([^;]+)/.exec(type)?.[1];
      if (!boundary) throw new Error('multipart without boundary');
      const body: Record<string, unknown> & { _files: Record<string, { name: string; bytes: Buffer }> } = {
        _files: {},
      };
      for (const part of parseMultipart(raw, boundary)) {
        if (part.fileName === undefined) body[part.name] = tryJson(part.data.toString('utf8'));
        else body._files[part.name] = { name: part.fileName, bytes: part.data };
      }
      return body;
    }
    return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  }

  function tryJson(value: string): unknown {
    if (/^-?\d+$/.test(value)) return value;
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }

  function takeFailure(method: string): Failure | null {
    const index = failures.findIndex((failure) => failure.method === method);
    if (index === -1) return null;
    const failure = failures[index] as Failure;
    if (failure.skip > 0) {
      failure.skip--;
      return null;
    }
    failures.splice(index, 1);
    return failure;
  }

  function fileFrom(
    body: Record<string, unknown> & { _files?: Record<string, { name: string; bytes: Buffer }> },
    field: string,
  ) {
    const value = body[field];
    const files = body._files ?? {};
    if (typeof value === 'string' && value.startsWith('attach://'))
      return files[value.slice('attach://'.length)];
    return files[field];
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake.invalid');
    const fileRoute = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
    if (fileRoute) {
      if (fileRoute[1] !== token) return fail(response, 401, 'Unauthorized');
      const file = [...files.values()].find((entry) => entry.path === fileRoute[2]);
      if (!file) return fail(response, 404, 'Not Found');
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': file.bytes.length,
      });
      response.end(file.bytes);
      return;
    }
    const route = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (!route) return fail(response, 404, 'Not Found');
    if (route[1] !== token) return fail(response, 401, 'Unauthorized');
    const method = route[2] as string;
    const body = await readBody(request);
    calls.push(method);
    const failure = takeFailure(method);
    if (failure) {
      return fail(
        response,
        failure.errorCode,
        failure.description,
        failure.retryAfter,
        failure.migrateToChatId,
      );
    }
    const chatId = body.chat_id === undefined ? '' : String(body.chat_id);
    switch (method) {
      case 'getMe':
        return ok(response, {
          ...FAKE_BOT,
          can_join_groups: true,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
        });
      case 'deleteWebhook':
        return ok(response, true);
      case 'getUpdates': {
        const offset = body.offset === undefined ? undefined : Number(body.offset);
        const limit = Number(body.limit ?? 100);
        confirm(offset);
        // Telegram allows one poller: a newer getUpdates ends an older one with 409.
        for (const poll of [...polls]) {
          clearTimeout(poll.timer);
          polls.delete(poll);
          fail(
            poll.response,
            409,
            'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
          );
        }
        const ready = available(offset, limit);
        const timeout = Number(body.timeout ?? 0);
        if (ready.length > 0 || timeout === 0) return ok(response, ready);
        const poll: PendingPoll = {
          response,
          offset,
          limit,
          timer: setTimeout(() => {
            polls.delete(poll);
            ok(response, []);
          }, timeout * 1000),
        };
        polls.add(poll);
        response.on('close', () => {
          clearTimeout(poll.timer);
          polls.delete(poll);
        });
        return;
      }
      case 'sendMessage': {
        const text = String(body.text ?? '');
        const parseMode = body.parse_mode === undefined ? undefined : String(body.parse_mode);
        if (parseMode === 'HTML') {
          const problem = checkTelegramHtml(text);
          if (problem) return fail(response, 400, `Bad Request: ${problem}`);
        }
        const visibleText = parseMode === 'HTML' ? htmlVisibleText(text) : text;
        if (visibleText.trim() === '') return fail(response, 400, 'Bad Request: message text is empty');
        if (visibleText.length > 4096) return fail(response, 400, 'Bad Request: message is too long');
        const messageId = nextMessageId++;
        sent.push({ method: 'sendMessage', chatId, messageId, text, visibleText, parseMode });
        return ok(response, {
          message_id: messageId,
          date: Math.floor(Date.now() / 1000),
          chat: { id: Number(chatId), type: 'private' },
          text: visibleText,
        });
      }
      case 'sendChatAction':
        chatActions.push({ chatId, action: String(body.action) });
        return ok(response, true);
      case 'getFile': {
        const file = files.get(String(body.file_id));
        if (!file) return fail(response, 400, 'Bad Request: invalid file_id');
        return ok(response, {
          file_id: body.file_id,
          file_unique_id: `u${body.file_id}`,
          file_size: file.reportedSize,
          file_path: file.path,
        });
      }
      case 'sendPhoto':
      case 'sendDocument': {
        const field = method === 'sendPhoto' ? 'photo' : 'document';
        const file = fileFrom(body, field);
        if (!file) return fail(response, 400, `Bad Request: there is no ${field} in the request`);
        const caption = body.caption === undefined ? undefined : String(body.caption);
        if (caption && body.parse_mode === 'HTML') {
          const problem = checkTelegramHtml(caption);
          if (problem) return fail(response, 400, `Bad Request: ${problem}`);
        }
        const messageId = nextMessageId++;
        sent.push({
          method,
          chatId,
          messageId,
          caption,
          parseMode: body.parse_mode as string | undefined,
          fileName: file.name,
          fileBytes: file.bytes,
        });
        return ok(response, {
          message_id: messageId,
          date: Math.floor(Date.now() / 1000),
          chat: { id: Number(chatId), type: 'private' },
        });
      }
      default:
        return fail(response, 404, 'Not Found: method not found');
    }
  }

  function pushUpdate(update: Omit<Update, 'update_id'>): number {
    const updateId = nextUpdateId++;
    updates.push({ ...update, update_id: updateId } as Update);
    wakePolls();
    return updateId;
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) =>
      fail(response, 500, `Internal Server Error: ${(error as Error).message}`),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    sent,
    chatActions,
    calls,
    get confirmedOffset() {
      return confirmedOffset;
    },
    pushMessage(input) {
      const from = input.from ?? { id: 42, first_name: 'Alice' };
      const chatType = input.chatType ?? (input.chatId > 0 ? 'private' : 'supergroup');
      const chat =
        chatType === 'private'
          ? { id: input.chatId, type: 'private' as const, first_name: from.first_name }
          : { id: input.chatId, type: chatType, title: input.chatTitle ?? 'Team' };
      const message = {
        message_id: nextMessageId++,
        date: Math.floor(Date.now() / 1000),
        chat,
        from: { ...from, is_bot: false },
        ...(input.text !== undefined ? { text: input.text } : {}),
        ...(input.caption !== undefined ? { caption: input.caption } : {}),
        ...(input.entities ? { entities: input.entities } : {}),
        ...(input.photo ? { photo: input.photo } : {}),
        ...(input.document ? { document: input.document } : {}),
        ...(input.voice ? { voice: input.voice } : {}),
        ...(input.replyToBot
          ? { reply_to_message: { message_id: 1, date: 0, chat, from: { ...FAKE_BOT }, text: 'earlier' } }
          : {}),
      } as unknown as Message;
      pushUpdate({ message } as Omit<Update, 'update_id'>);
      return message;
    },
    pushUpdate,
    addFile(bytes, fileOptions = {}) {
      const fileId = `file-${files.size + 1}`;
      files.set(fileId, {
        path: fileOptions.path ?? `documents/${fileId}.bin`,
        bytes,
        reportedSize: fileOptions.reportedSize ?? bytes.length,
      });
      return fileId;
    },
    failNext(method, error) {
      failures.push({
        method,
        skip: error.skip ?? 0,
        errorCode: error.errorCode,
        description: error.description,
        retryAfter: error.retryAfter,
        migrateToChatId: error.migrateToChatId,
      });
    },
    dropPolls() {
      for (const poll of [...polls]) {
        clearTimeout(poll.timer);
        polls.delete(poll);
        poll.response.socket?.destroy();
      }
    },
    textsTo(chatId) {
      return sent
        .filter((record) => record.chatId === String(chatId) && record.method === 'sendMessage')
        .map((record) => record.visibleText ?? '');
    },
    async close() {
      for (const poll of polls) clearTimeout(poll.timer);
      polls.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
