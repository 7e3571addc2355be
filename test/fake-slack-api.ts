// A loopback fake of Slack that speaks its protocols: the Web API over HTTP (form or JSON bodies, Bearer tokens
// checked, `ok: false` errors as Slack words them) and Socket Mode (apps.connections.open hands out a ws:// URL;
// the socket says hello, sends events_api envelopes, takes acks, redelivers what was not acked on the next
// connection, and can be dropped or asked to refresh). Tests push messages, inject failures and read what was sent.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export const FAKE_SLACK_BOT = { userId: 'U0WARREN', botId: 'B0WARREN', name: 'warren' } as const;
export const FAKE_TEAM = 'T0FAKE';

export interface SlackPost {
  channel: string;
  ts: string;
  threadTs?: string;
  /** The text field (the notification fallback when blocks are given). */
  text: string;
  /** The mrkdwn of the section block, when one was sent. */
  mrkdwn?: string;
  /** What a person sees: the section's mrkdwn (or the text), entities decoded. */
  visibleText: string;
  isMrkdwnOff: boolean;
}

export interface SlackUpload {
  channel: string;
  fileId: string;
  fileName: string;
  bytes: Buffer;
  initialComment?: string;
  threadTs?: string;
}

export interface FakeSlackFile {
  id: string;
  name: string;
  mimetype: string;
  size: number;
  url_private: string;
  url_private_download: string;
}

interface Envelope {
  envelopeId: string;
  event: Record<string, unknown>;
  attempts: number;
}

interface Failure {
  method: string;
  skip: number;
  error: string;
  status?: number;
  retryAfter?: number;
}

export interface FakeSlackApi {
  /** The API root to give the app (WARREN_SLACK_API_ROOT). */
  readonly url: string;
  readonly botToken: string;
  readonly appToken: string;
  readonly posts: SlackPost[];
  readonly uploads: SlackUpload[];
  readonly reactions: Array<{ action: 'add' | 'remove'; channel: string; timestamp: string; name: string }>;
  /** Every Web API method called, in order (file downloads as 'GET file'). */
  readonly calls: string[];
  /** Socket Mode connections opened so far. */
  readonly connections: number;
  /** Envelopes sent and not yet acknowledged. */
  readonly unacked: number;
  addChannel(id: string, options?: { name?: string; isIm?: boolean; isPrivate?: boolean }): void;
  /** A person writes; the envelope goes out now if a socket is open, else on the next connection. Returns ts. */
  pushMessage(input: {
    channel: string;
    text?: string;
    user?: string;
    channelType?: 'channel' | 'group' | 'im' | 'mpim';
    threadTs?: string;
    files?: FakeSlackFile[];
    subtype?: string;
    botId?: string;
    type?: 'message' | 'app_mention';
  }): string;
  /** A file people can attach to a message; downloading it needs the bot token. */
  addFile(
    bytes: Buffer,
    options?: { name?: string; mimetype?: string; reportedSize?: number },
  ): FakeSlackFile;
  /** The next call of method (after skip successful ones) answers `ok: false` with error (or an HTTP status). */
  failNext(
    method: string,
    error: string,
    options?: { skip?: number; status?: number; retryAfter?: number },
  ): void;
  /** Acks that arrive are thrown away (as if lost with the connection) until set back. */
  loseAcks(isLosing: boolean): void;
  /** Drops every socket at the TCP level, as a network failure would. */
  dropConnection(): void;
  /** Sends `disconnect` with this reason (refresh_requested, warning …), as Slack does before it closes. */
  askToDisconnect(reason: string): void;
  /** Visible texts posted to a channel (top level and threads), in order. */
  textsTo(channel: string): string[];
  close(): Promise<void>;
}

const decodeEntities = (text: string) =>
  text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Checks blocks the way chat.postMessage does for the section blocks we send; returns Slack's error or null. */
function checkBlocks(blocks: unknown): string | null {
  if (!Array.isArray(blocks) || blocks.length === 0 || blocks.length > 50) return 'invalid_blocks';
  for (const block of blocks as Array<{ type?: unknown; text?: { type?: unknown; text?: unknown } }>) {
    if (block.type !== 'section') return 'invalid_blocks';
    const text = block.text?.text;
    if (!['mrkdwn', 'plain_text'].includes(String(block.text?.type))) return 'invalid_blocks';
    if (typeof text !== 'string' || text.length === 0 || text.length > 3000) return 'invalid_blocks';
  }
  return null;
}

export async function startFakeSlackApi(
  tokens = { bot: 'xoxb-1-fake-bot-token-abcdef', app: 'xapp-1-fake-app-token-abcdef' },
): Promise<FakeSlackApi> {
  const posts: SlackPost[] = [];
  const uploads: SlackUpload[] = [];
  const reactions: FakeSlackApi['reactions'] = [];
  const calls: string[] = [];
  const failures: Failure[] = [];
  const channels = new Map<string, { name: string; isIm: boolean; isPrivate: boolean }>();
  const users = new Map([['U0ALICE', { name: 'alice', realName: 'Alice Archer' }]]);
  const files = new Map<string, { bytes: Buffer; name: string }>();
  const pendingUploads = new Map<string, { name: string; bytes?: Buffer }>();
  const envelopes: Envelope[] = [];
  const tickets = new Set<string>();
  const sockets = new Set<WebSocket>();
  let connections = 0;
  let isLosingAcks = false;
  let clock = 1_700_000_000;
  let counter = 0;
  const nextTs = () =>
    `${clock + Math.floor(++counter / 1000)}.${String(counter % 1_000_000).padStart(6, '0')}`;

  const json = (response: ServerResponse, status: number, body: unknown, headers = {}) => {
    if (response.writableEnded || response.destroyed) return;
    response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    response.end(JSON.stringify(body));
  };
  const ok = (response: ServerResponse, body: Record<string, unknown> = {}) =>
    json(response, 200, { ok: true, ...body });
  // Slack answers a refused call with HTTP 200 and ok: false.
  const refuse = (response: ServerResponse, error: string) => json(response, 200, { ok: false, error });

  async function readBody(
    request: IncomingMessage,
  ): Promise<{ fields: Record<string, unknown>; raw: Buffer }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const type = request.headers['content-type'] ?? '';
    if (raw.length === 0) return { fields: {}, raw };
    if (type.startsWith('application/json')) return { fields: JSON.parse(raw.toString('utf8')), raw };
    if (type.startsWith('application/x-www-form-urlencoded')) {
      const fields: Record<string, unknown> = {};
      for (const [key, value] of new URLSearchParams(raw.toString('utf8'))) {
        // Form bodies carry nested values (blocks, files) as JSON text.
        fields[key] = /^[[{]/.test(value) ? JSON.parse(value) : value;
      }
      return { fields, raw };
    }
    return { fields: {}, raw };
  }

  /** The file part of a multipart upload (the SDK posts the bytes as a form field named "body"). */
  function multipartFile(raw: Buffer, type: string): Buffer | null {
    const boundary = /boundary=([^;]+)/.exec(type)?.[1];
    if (!boundary) return raw;
    const start = raw.indexOf('\r\n\r\n');
    const end = raw.lastIndexOf(Buffer.from(`\r\n--${boundary}`));
    return start === -1 || end === -1 ? null : raw.subarray(start + 4, end);
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

  function sendEnvelope(socket: WebSocket, envelope: Envelope): void {
    envelope.attempts++;
    socket.send(
      JSON.stringify({
        envelope_id: envelope.envelopeId,
        type: 'events_api',
        accepts_response_payload: false,
        retry_attempt: envelope.attempts - 1,
        retry_reason: envelope.attempts > 1 ? 'timeout' : '',
        payload: {
          token: 'verification-token',
          team_id: FAKE_TEAM,
          api_app_id: 'A0FAKE',
          type: 'event_callback',
          event_id: `Ev${envelope.envelopeId.slice(0, 8)}`,
          event_time: clock,
          event: envelope.event,
        },
      }),
    );
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake.invalid');
    const auth = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const download = /^\/files-pri\/[^/]+\/(F\w+)\//.exec(url.pathname);
    if (request.method === 'GET' && download) {
      calls.push('GET file');
      const file = files.get(download[1] as string);
      if (!file) return void response.writeHead(404).end();
      if (auth !== tokens.bot) {
        // As Slack does for a request without a token that may read the file: its sign-in page.
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        return void response.end('<html>Sign in to Slack</html>');
      }
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': file.bytes.length,
      });
      return void response.end(file.bytes);
    }
    const upload = /^\/upload\/v1\/(F\w+)$/.exec(url.pathname);
    if (upload) {
      const pending = pendingUploads.get(upload[1] as string);
      const { raw } = await readBody(request);
      const bytes = multipartFile(raw, request.headers['content-type'] ?? '');
      if (!pending || !bytes) return void response.writeHead(404).end();
      pending.bytes = Buffer.from(bytes);
      response.writeHead(200, { 'content-type': 'text/plain' });
      return void response.end(`OK - ${bytes.length}`);
    }
    const route = /^\/api\/([a-zA-Z.]+)$/.exec(url.pathname);
    if (!route || request.method !== 'POST')
      return json(response, 404, { ok: false, error: 'unknown_method' });
    const method = route[1] as string;
    const { fields } = await readBody(request);
    calls.push(method);
    const token = auth ?? (typeof fields.token === 'string' ? fields.token : undefined);
    const wanted = method === 'apps.connections.open' ? tokens.app : tokens.bot;
    if (!token) return refuse(response, 'not_authed');
    if (token !== wanted) {
      const isOtherKind = token === tokens.app || token === tokens.bot;
      return refuse(response, isOtherKind ? 'not_allowed_token_type' : 'invalid_auth');
    }
    const failure = takeFailure(method);
    if (failure) {
      if (failure.status === 429)
        return json(
          response,
          429,
          { ok: false, error: 'ratelimited' },
          { 'retry-after': failure.retryAfter ?? 1 },
        );
      if (failure.status) return json(response, failure.status, { ok: false, error: failure.error });
      return refuse(response, failure.error);
    }
    const channel = String(fields.channel ?? fields.channel_id ?? '');
    switch (method) {
      case 'auth.test':
        return ok(response, {
          url: 'https://fake.slack.com/',
          team: 'Fake',
          user: FAKE_SLACK_BOT.name,
          team_id: FAKE_TEAM,
          user_id: FAKE_SLACK_BOT.userId,
          bot_id: FAKE_SLACK_BOT.botId,
        });
      case 'apps.connections.open': {
        const ticket = randomUUID();
        tickets.add(ticket);
        const { port } = server.address() as AddressInfo;
        return ok(response, { url: `ws://127.0.0.1:${port}/link/?ticket=${ticket}&app_id=A0FAKE` });
      }
      case 'conversations.info': {
        const found = channels.get(channel);
        if (!found) return refuse(response, 'channel_not_found');
        return ok(response, {
          channel: {
            id: channel,
            name: found.isIm ? undefined : found.name,
            is_im: found.isIm,
            is_private: found.isPrivate,
          },
        });
      }
      case 'users.info': {
        const user = users.get(String(fields.user));
        if (!user) return refuse(response, 'user_not_found');
        return ok(response, {
          user: { id: fields.user, name: user.name, real_name: user.realName, profile: { display_name: '' } },
        });
      }
      case 'chat.postMessage': {
        if (!channels.has(channel)) return refuse(response, 'channel_not_found');
        const text = String(fields.text ?? '');
        let mrkdwn: string | undefined;
        if (fields.blocks !== undefined) {
          const problem = checkBlocks(fields.blocks);
          if (problem) return refuse(response, problem);
          mrkdwn = (fields.blocks as Array<{ text: { text: string } }>)
            .map((block) => block.text.text)
            .join('\n');
        } else if (text.trim() === '') return refuse(response, 'no_text');
        if (text.length > 40_000) return refuse(response, 'msg_too_long');
        const ts = nextTs();
        const threadTs = fields.thread_ts ? String(fields.thread_ts) : undefined;
        const isMrkdwnOff = fields.mrkdwn === false || fields.mrkdwn === 'false';
        posts.push({
          channel,
          ts,
          threadTs,
          text,
          mrkdwn,
          visibleText: decodeEntities(mrkdwn ?? text),
          isMrkdwnOff,
        });
        return ok(response, {
          channel,
          ts,
          message: { type: 'message', text, user: FAKE_SLACK_BOT.userId, ts },
        });
      }
      case 'reactions.add':
      case 'reactions.remove': {
        const entry = {
          action: method === 'reactions.add' ? ('add' as const) : ('remove' as const),
          channel,
          timestamp: String(fields.timestamp),
          name: String(fields.name),
        };
        reactions.push(entry);
        return ok(response);
      }
      case 'files.getUploadURLExternal': {
        const length = Number(fields.length);
        if (!fields.filename || !(length > 0)) return refuse(response, 'invalid_arguments');
        const fileId = `F${randomUUID().replace(/-/g, '').slice(0, 10).toUpperCase()}`;
        pendingUploads.set(fileId, { name: String(fields.filename) });
        const { port } = server.address() as AddressInfo;
        return ok(response, { upload_url: `http://127.0.0.1:${port}/upload/v1/${fileId}`, file_id: fileId });
      }
      case 'files.completeUploadExternal': {
        const list = (fields.files ?? []) as Array<{ id: string; title?: string }>;
        if (channel && !channels.has(channel)) return refuse(response, 'channel_not_found');
        const done = [];
        for (const entry of list) {
          const pending = pendingUploads.get(entry.id);
          if (!pending?.bytes) return refuse(response, 'file_not_found');
          pendingUploads.delete(entry.id);
          uploads.push({
            channel,
            fileId: entry.id,
            fileName: pending.name,
            bytes: pending.bytes,
            initialComment: fields.initial_comment === undefined ? undefined : String(fields.initial_comment),
            threadTs: fields.thread_ts === undefined ? undefined : String(fields.thread_ts),
          });
          done.push({ id: entry.id, name: pending.name, title: entry.title ?? pending.name });
        }
        return ok(response, { files: done });
      }
      default:
        return refuse(response, 'unknown_method');
    }
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) =>
      json(response, 500, { ok: false, error: `fake: ${(error as Error).message}` }),
    );
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => {
    const ticket = new URL(request.url ?? '/', 'http://fake.invalid').searchParams.get('ticket') ?? '';
    // A ticket from apps.connections.open is good for one connection.
    if (!tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      connections++;
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as { envelope_id?: string };
        if (isLosingAcks || !message.envelope_id) return;
        const index = envelopes.findIndex((envelope) => envelope.envelopeId === message.envelope_id);
        if (index !== -1) envelopes.splice(index, 1);
      });
      ws.send(
        JSON.stringify({
          type: 'hello',
          num_connections: sockets.size,
          debug_info: { host: 'applink-fake', approximate_connection_time: 18060 },
          connection_info: { app_id: 'A0FAKE' },
        }),
      );
      // What was sent before and never acknowledged comes again on the new connection, as Slack retries it.
      for (const envelope of envelopes) sendEnvelope(ws, envelope);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const openSocket = () => [...sockets].find((socket) => socket.readyState === socket.OPEN);

  const api: FakeSlackApi = {
    url: `http://127.0.0.1:${port}/api`,
    botToken: tokens.bot,
    appToken: tokens.app,
    posts,
    uploads,
    reactions,
    calls,
    get connections() {
      return connections;
    },
    get unacked() {
      return envelopes.length;
    },
    addChannel(id, options = {}) {
      channels.set(id, {
        name: options.name ?? id.toLowerCase(),
        isIm: options.isIm ?? false,
        isPrivate: options.isPrivate ?? false,
      });
    },
    pushMessage(input) {
      const channelType = input.channelType ?? (input.channel.startsWith('D') ? 'im' : 'channel');
      if (!channels.has(input.channel)) api.addChannel(input.channel, { isIm: channelType === 'im' });
      clock++;
      const ts = nextTs();
      const event: Record<string, unknown> = {
        type: input.type ?? 'message',
        channel: input.channel,
        user: input.user ?? 'U0ALICE',
        text: input.text ?? '',
        ts,
        event_ts: ts,
        team: FAKE_TEAM,
        ...(input.type === 'app_mention' ? {} : { channel_type: channelType }),
        ...(input.threadTs ? { thread_ts: input.threadTs } : {}),
        ...(input.files ? { files: input.files, subtype: 'file_share' } : {}),
        ...(input.subtype ? { subtype: input.subtype } : {}),
        ...(input.botId ? { bot_id: input.botId } : {}),
      };
      const envelope = { envelopeId: randomUUID(), event, attempts: 0 };
      envelopes.push(envelope);
      const socket = openSocket();
      if (socket) sendEnvelope(socket, envelope);
      return ts;
    },
    addFile(bytes, options = {}) {
      const id = `F${String(files.size + 1).padStart(8, '0')}`;
      const name = options.name ?? `${id}.bin`;
      files.set(id, { bytes, name });
      const url = `http://127.0.0.1:${port}/files-pri/${FAKE_TEAM}/${id}/${encodeURIComponent(name)}`;
      return {
        id,
        name,
        mimetype: options.mimetype ?? 'application/octet-stream',
        size: options.reportedSize ?? bytes.length,
        url_private: url,
        url_private_download: `${url}?download=1`,
      };
    },
    failNext(method, error, options = {}) {
      failures.push({
        method,
        error,
        skip: options.skip ?? 0,
        status: options.status,
        retryAfter: options.retryAfter,
      });
    },
    loseAcks(isLosing) {
      isLosingAcks = isLosing;
    },
    dropConnection() {
      for (const socket of sockets) socket.terminate();
    },
    askToDisconnect(reason) {
      for (const socket of sockets) {
        socket.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-fake' } }));
      }
    },
    textsTo(channel) {
      return posts.filter((post) => post.channel === channel).map((post) => post.visibleText);
    },
    async close() {
      for (const socket of sockets) socket.terminate();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return api;
}
