// A loopback fake of Discord that speaks its protocols: REST v10 over HTTP (Bot token checked, JSON or multipart
// bodies, errors shaped as Discord's `{ message, code, errors }`) and the Gateway over a WebSocket (GET /gateway/bot
// hands out a ws:// URL; Hello, Identify → READY and GUILD_CREATE, Heartbeat/ACK, Dispatch with sequence numbers,
// Resume with the missed dispatches replayed then RESUMED, Reconnect (op 7) and Invalid Session (op 9)).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export const FAKE_DISCORD_BOT = { id: '900000000000000001', username: 'warren' } as const;
export const FAKE_GUILD = '800000000000000001';
export const FAKE_PERSON = { id: '700000000000000001', username: 'ada', global_name: 'Ada' } as const;
/** The MESSAGE_CONTENT intent, privileged: a bot whose portal setting is off is refused with close 4014. */
const MESSAGE_CONTENT = 1 << 15;

type Json = Record<string, unknown>;

export interface DiscordPost {
  channelId: string;
  id: string;
  content: string;
  allowedMentions?: unknown;
  files: Array<{ name: string; bytes: Buffer }>;
}

export interface FakeAttachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type: string;
}

interface Session {
  id: string;
  seq: number;
  /** Every dispatch of the session with its sequence number: what a Resume replays from. */
  history: Array<{ s: number; t: string; d: unknown }>;
  socket: WebSocket | null;
  isResumable: boolean;
}

const user = (person: { id: string; username: string; global_name?: string | null }, isBot = false) => ({
  id: person.id,
  username: person.username,
  global_name: person.global_name ?? null,
  discriminator: '0',
  avatar: null,
  ...(isBot ? { bot: true } : {}),
});
const botUser = () => user(FAKE_DISCORD_BOT, true);

export async function startFakeDiscordApi(
  options: { heartbeatIntervalMs?: number; allowMessageContent?: boolean } = {},
) {
  const token = 'MTAwMDAwMDAwMDAwMDAwMDAx.GfAkE0.fake-discord-bot-token-0123456789';
  const channels = new Map<string, Json>();
  const messages = new Map<string, Json[]>();
  const files = new Map<string, Buffer>();
  const posts: DiscordPost[] = [];
  const typing: string[] = [];
  const calls: string[] = [];
  const failures: Array<{ route: string; skip: number; status: number; code: number; message: string }> = [];
  const sockets = new Set<WebSocket>();
  let session: Session | null = null;
  let nextId = 1_000_000n;
  let identifies = 0;
  let resumes = 0;
  let heartbeats = 0;
  const snowflake = () => String((BigInt(Date.now() - 1_420_070_400_000) << 22n) + nextId++);

  const server: Server = createServer((request, response) => {
    void handleHttp(request, response).catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  const gateway = new WebSocketServer({ server, path: '/gateway' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const reply = (response: ServerResponse, status: number, body?: unknown) => {
    if (body === undefined) return void response.writeHead(status).end();
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const unknownChannel = { message: 'Unknown Channel', code: 10003 };

  async function readBody(request: IncomingMessage): Promise<{ json: Json; files: DiscordPost['files'] }> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const type = request.headers['content-type'] ?? '';
    if (!type.startsWith('multipart/form-data'))
      return { json: raw.length ? JSON.parse(raw.toString()) : {}, files: [] };
    const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
    const found: DiscordPost['files'] = [];
    for (const [key, value] of form.entries()) {
      if (key.startsWith('files[') && typeof value !== 'string') {
        found.push({ name: value.name, bytes: Buffer.from(await value.arrayBuffer()) });
      }
    }
    return { json: JSON.parse(String(form.get('payload_json') ?? '{}')), files: found };
  }

  function failure(route: string) {
    const index = failures.findIndex((entry) => entry.route === route);
    const entry = failures[index];
    if (!entry) return null;
    if (entry.skip > 0) {
      entry.skip--;
      return null;
    }
    failures.splice(index, 1);
    return entry;
  }

  async function handleHttp(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', base);
    if (url.pathname.startsWith('/attachments/')) {
      calls.push('GET attachment');
      const bytes = files.get(url.pathname);
      return bytes
        ? void response.writeHead(200).end(bytes)
        : reply(response, 404, { message: '404: Not Found', code: 0 });
    }
    const path = url.pathname.replace(/^\/api\/v10/, '');
    const route = `${request.method} ${path.replace(/\d{6,}/g, ':id')}`;
    calls.push(route);
    if (request.headers.authorization !== `Bot ${token}`)
      return reply(response, 401, { message: '401: Unauthorized', code: 0 });
    const failed = failure(route);
    if (failed) return reply(response, failed.status, { message: failed.message, code: failed.code });
    if (route === 'GET /gateway/bot') {
      return reply(response, 200, {
        url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/gateway`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
      });
    }
    if (route === 'GET /users/@me') return reply(response, 200, botUser());
    if (route === 'GET /applications/@me') {
      // GATEWAY_MESSAGE_CONTENT_LIMITED (1 << 19): the portal's Message Content switch is on.
      const flags = options.allowMessageContent === false ? 0 : 1 << 19;
      return reply(response, 200, { id: FAKE_DISCORD_BOT.id, name: 'warren', flags });
    }
    const channelId = /^\/channels\/(\d+)/.exec(path)?.[1] ?? '';
    const channel = channels.get(channelId);
    if (route === 'GET /channels/:id')
      return channel ? reply(response, 200, channel) : reply(response, 404, unknownChannel);
    if (!channel) return reply(response, 404, unknownChannel);
    if (route === 'POST /channels/:id/typing') {
      typing.push(channelId);
      return reply(response, 204);
    }
    if (route === 'GET /channels/:id/messages') {
      const after = BigInt(url.searchParams.get('after') ?? '0');
      const limit = Number(url.searchParams.get('limit') ?? 50);
      const newer = (messages.get(channelId) ?? []).filter((message) => BigInt(message.id as string) > after);
      // Discord answers newest first; with `after`, the oldest `limit` after it.
      return reply(response, 200, newer.slice(0, limit).reverse());
    }
    if (route === 'POST /channels/:id/messages') {
      const { json, files: uploaded } = await readBody(request);
      const content = typeof json.content === 'string' ? json.content : '';
      if (content.length > 2000) {
        return reply(response, 400, {
          message: 'Invalid Form Body',
          code: 50035,
          errors: {
            content: {
              _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }],
            },
          },
        });
      }
      if (!content && uploaded.length === 0)
        return reply(response, 400, { message: 'Cannot send an empty message', code: 50006 });
      const message = messageObject(channelId, botUser(), content, []);
      posts.push({
        channelId,
        id: message.id as string,
        content,
        allowedMentions: json.allowed_mentions,
        files: uploaded,
      });
      store(channelId, message);
      dispatch('MESSAGE_CREATE', withGuild(channelId, message));
      return reply(response, 200, message);
    }
    return reply(response, 404, { message: '404: Not Found', code: 0 });
  }

  function messageObject(
    channelId: string,
    author: Json,
    content: string,
    attachments: FakeAttachment[],
    mentions: Json[] = [],
  ): Json {
    return {
      id: snowflake(),
      channel_id: channelId,
      author,
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions,
      mention_roles: [],
      attachments,
      embeds: [],
      pinned: false,
      type: 0,
      flags: 0,
    };
  }
  const store = (channelId: string, message: Json) =>
    messages.set(channelId, [...(messages.get(channelId) ?? []), message]);
  /** MESSAGE_CREATE carries guild_id and member in a server, neither in a DM (as REST's message objects never do). */
  function withGuild(channelId: string, message: Json): Json {
    const channel = channels.get(channelId);
    // channel_type tells discord.js what kind of channel an uncached one is (a DM's is never cached).
    if (!channel?.guild_id) return { ...message, channel_type: channel?.type };
    return {
      ...message,
      channel_type: channel.type,
      guild_id: channel.guild_id,
      member: { roles: [], joined_at: new Date(0).toISOString() },
    };
  }

  function send(socket: WebSocket, payload: Json) {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(payload));
  }

  /** Sends a dispatch to the session's socket now, or keeps it for a Resume while the socket is gone. */
  function dispatch(t: string, d: unknown) {
    if (!session?.isResumable) return;
    const s = ++session.seq;
    session.history.push({ s, t, d });
    if (session.socket) send(session.socket, { op: 0, s, t, d });
  }

  function guildCreate() {
    const inGuild = [...channels.values()].filter((channel) => channel.guild_id === FAKE_GUILD);
    return {
      id: FAKE_GUILD,
      name: 'Fake Guild',
      icon: null,
      owner_id: FAKE_PERSON.id,
      unavailable: false,
      member_count: 2,
      large: false,
      joined_at: new Date(0).toISOString(),
      roles: [
        {
          id: FAKE_GUILD,
          name: '@everyone',
          permissions: '1024',
          position: 0,
          color: 0,
          hoist: false,
          managed: false,
          mentionable: false,
        },
      ],
      emojis: [],
      stickers: [],
      features: [],
      members: [{ user: botUser(), roles: [], joined_at: new Date(0).toISOString() }],
      channels: inGuild.filter((channel) => channel.type === 0),
      threads: inGuild.filter((channel) => channel.type === 11),
      presences: [],
      voice_states: [],
      stage_instances: [],
      guild_scheduled_events: [],
    };
  }

  gateway.on('connection', (socket) => {
    sockets.add(socket);
    send(socket, {
      op: 10,
      s: null,
      t: null,
      d: { heartbeat_interval: options.heartbeatIntervalMs ?? 1000 },
    });
    socket.on('close', (code) => {
      sockets.delete(socket);
      if (session?.socket !== socket) return;
      session.socket = null;
      // A client that closes with 1000 or 1001 ends its session; any other close may be resumed.
      if (code === 1000 || code === 1001) session = null;
    });
    socket.on('message', (raw) => {
      const payload = JSON.parse(String(raw)) as { op: number; d: Json & { seq?: number } };
      if (payload.op === 1) {
        heartbeats++;
        return send(socket, { op: 11, s: null, t: null, d: null });
      }
      if (payload.op === 2) {
        if (payload.d.token !== token) return socket.close(4004, 'Authentication failed.');
        if (Number(payload.d.intents) & MESSAGE_CONTENT && options.allowMessageContent === false) {
          return socket.close(4014, 'Disallowed intent(s).');
        }
        identifies++;
        if (session?.socket) session.socket.terminate();
        session = { id: `session-${identifies}`, seq: 0, history: [], socket, isResumable: true };
        dispatch('READY', {
          v: 10,
          user: botUser(),
          guilds: [{ id: FAKE_GUILD, unavailable: true }],
          session_id: session.id,
          resume_gateway_url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/gateway`,
          shard: [0, 1],
          application: { id: FAKE_DISCORD_BOT.id, flags: 0 },
        });
        return dispatch('GUILD_CREATE', guildCreate());
      }
      if (payload.op === 6) {
        if (payload.d.token !== token) return socket.close(4004, 'Authentication failed.');
        if (!session || session.id !== payload.d.session_id || !session.isResumable) {
          session = null;
          return send(socket, { op: 9, s: null, t: null, d: false });
        }
        resumes++;
        session.socket = socket;
        for (const missed of session.history.filter((entry) => entry.s > Number(payload.d.seq))) {
          send(socket, { op: 0, ...missed });
        }
        dispatch('RESUMED', {});
      }
    });
  });

  return {
    url: `${base}/api`,
    token,
    posts,
    typing,
    calls,
    get identifies() {
      return identifies;
    },
    get resumes() {
      return resumes;
    },
    get heartbeats() {
      return heartbeats;
    },
    get isConnected() {
      return Boolean(session?.socket);
    },
    addChannel(id: string, name: string) {
      channels.set(id, {
        id,
        type: 0,
        guild_id: FAKE_GUILD,
        name,
        position: 0,
        parent_id: null,
        permission_overwrites: [],
      });
      dispatch('CHANNEL_CREATE', channels.get(id));
    },
    /** A public thread (type 11) under parentId; THREAD_CREATE goes out if the bot is connected. */
    addThread(id: string, parentId: string, name: string) {
      const thread = {
        id,
        type: 11,
        guild_id: FAKE_GUILD,
        parent_id: parentId,
        name,
        owner_id: FAKE_PERSON.id,
        thread_metadata: {
          archived: false,
          locked: false,
          auto_archive_duration: 1440,
          archive_timestamp: new Date().toISOString(),
        },
        message_count: 0,
        member_count: 1,
      };
      channels.set(id, thread);
      dispatch('THREAD_CREATE', { ...thread, newly_created: true });
    },
    addDm(id: string, person: { id: string; username: string } = FAKE_PERSON) {
      channels.set(id, { id, type: 1, recipients: [user(person)], last_message_id: null });
    },
    /** A file on the fake's CDN to attach to a message (no token needed, as Discord's signed CDN URLs). */
    addAttachment(
      bytes: Buffer,
      input: { filename?: string; contentType?: string; reportedSize?: number } = {},
    ): FakeAttachment {
      const id = snowflake();
      const filename = input.filename ?? 'file.bin';
      const path = `/attachments/${id}/${filename}`;
      files.set(path, bytes);
      return {
        id,
        filename,
        size: input.reportedSize ?? bytes.length,
        url: `${base}${path}`,
        proxy_url: `${base}${path}`,
        content_type: input.contentType ?? 'application/octet-stream',
      };
    },
    /** A person writes in a channel, thread or DM: stored, and dispatched to the session (or kept for its Resume). */
    pushMessage(input: {
      channelId: string;
      content?: string;
      author?: { id: string; username: string; global_name?: string };
      isBot?: boolean;
      mentionsBot?: boolean;
      attachments?: FakeAttachment[];
    }): string {
      const author = user(input.author ?? FAKE_PERSON, input.isBot);
      const content = input.mentionsBot
        ? `<@${FAKE_DISCORD_BOT.id}> ${input.content ?? ''}`
        : (input.content ?? '');
      const mentions = input.mentionsBot ? [botUser()] : [];
      const message = messageObject(input.channelId, author, content, input.attachments ?? [], mentions);
      store(input.channelId, message);
      dispatch('MESSAGE_CREATE', withGuild(input.channelId, message));
      return message.id as string;
    },
    /** The next call of route (e.g. 'POST /channels/:id/messages'), after skip good ones, answers with this error. */
    failNext(route: string, error: { status?: number; code?: number; message?: string; skip?: number } = {}) {
      failures.push({
        route,
        skip: error.skip ?? 0,
        status: error.status ?? 500,
        code: error.code ?? 0,
        message: error.message ?? '500: Internal Server Error',
      });
    },
    /** Drops every Gateway socket at the TCP level; the session stays resumable. */
    dropConnection() {
      for (const socket of sockets) socket.terminate();
    },
    /** Op 7: Discord asks the client to reconnect and resume. */
    askToReconnect() {
      for (const socket of sockets) send(socket, { op: 7, s: null, t: null, d: null });
    },
    /** The session can no longer be resumed (it timed out at Discord): the next Resume gets op 9, d false. */
    invalidateSession() {
      if (session) session.isResumable = false;
    },
    /** Texts the bot posted in a channel (or thread), in order. */
    textsTo(channelId: string): string[] {
      return posts.filter((post) => post.channelId === channelId).map((post) => post.content);
    },
    async close() {
      for (const socket of sockets) socket.terminate();
      gateway.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export type FakeDiscordApi = Awaited<ReturnType<typeof startFakeDiscordApi>>;
