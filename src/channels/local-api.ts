// The owner's web page's API beyond chatting: chat history from SQLite, uploads, the dashboard's read-only views, and
// owner operations (run through the one owner-ops table as the page's actor, so they are authorized and audited).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Config } from '../config.js';
import { dayIn } from '../sandbox/agent-proxy.js';
import type { Store } from '../store/store.js';
import type { InboundMessage, OwnerWindow } from '../types.js';
import { methodNotAllowed, readBody, readBytes, sendJson } from './local-http.js';
import { describeMedia, type MediaSaver } from './media.js';

export interface LocalApiDeps {
  store: Store;
  window: OwnerWindow;
  config: Pick<Config, 'timezone' | 'currency' | 'groupDailyBudget' | 'groupMonthlyBudget'>;
  media?: MediaSaver;
  maxUploadBytes: number;
  now(): number;
  /** Hands a message typed (or a file sent) on the page to the host, as the channel's own messages are. */
  deliver(message: InboundMessage): void;
}

const DAY_MS = 86_400_000;
const folder = z.string().min(1).max(64);
/** The owner operations the page offers; anything else is refused before it reaches the table. */
const pageOpSchema = z.discriminatedUnion('op', [
  z.object({ op: z.enum(['emergency-stop', 'resume-all']) }),
  z.object({ op: z.enum(['stop-turn', 'new-session']), folder }),
  z.object({
    op: z.enum(['task-pause', 'task-resume', 'task-cancel', 'task-run-now']),
    id: z.string().min(1),
  }),
  z.object({ op: z.literal('pairing-approve'), code: z.string().min(1), folder: folder.optional() }),
  z.object({ op: z.literal('pairing-deny'), code: z.string().min(1) }),
  z.object({
    op: z.literal('register-chat'),
    chat: z.object({ channel: z.string().min(1), chatId: z.string().min(1) }),
    folder,
    trigger: z.enum(['always', 'mention']),
  }),
]);
const HISTORY_PAGE = 50;

export function createLocalApi(deps: LocalApiDeps) {
  const { store } = deps;
  const groupOf = (chatId: string) => {
    const groupId = store.chats.get('local', chatId)?.groupId ?? null;
    return groupId === null ? null : store.groups.byId(groupId);
  };

  /** The owner's local chats (the admin chat first), each with the group it belongs to, if any. */
  function chats() {
    const local = store.chats.list().filter((chat) => chat.channel === 'local');
    const ids = [...new Set(['main', ...local.map((chat) => chat.chatId)])];
    return ids.map((chatId) => ({ chatId, group: groupOf(chatId)?.folder ?? null }));
  }

  function overview() {
    const { running, waiting } = deps.window.agents();
    const pending = new Map<number | null, number>();
    for (const row of store.messages.countByStatus())
      if (row.status === 'pending') pending.set(row.groupId, row.count);
    const lastSeen = new Map<number, number>();
    const allChats = store.chats.list();
    for (const chat of allChats)
      if (chat.groupId !== null)
        lastSeen.set(chat.groupId, Math.max(lastSeen.get(chat.groupId) ?? 0, chat.lastSeenAt));
    const groups = store.groups.list().map((group) => ({
      folder: group.folder,
      name: group.name,
      isAdmin: group.isAdmin,
      chats: allChats
        .filter((chat) => chat.groupId === group.id)
        .map(({ channel, chatId }) => `${channel}:${chatId}`),
      state: running.find((run) => run.groupId === group.id)?.state ?? 'stopped',
      isWaiting: waiting.includes(group.id),
      queued: pending.get(group.id) ?? 0,
      lastActiveAt: lastSeen.get(group.id) ?? null,
    }));
    const failed = store.outbox
      .list({ status: 'failed', limit: 20 })
      .map(({ id, channel, chatId, lastError, createdAt }) => ({
        id,
        channel,
        chatId,
        lastError,
        createdAt,
      }));
    return {
      groups,
      outbox: store.outbox.counts(),
      failed,
      channels: store.channels.states(),
      emergencyStop: store.emergencyStop.get() ?? null,
    };
  }

  function spend() {
    const { timezone, currency, groupDailyBudget, groupMonthlyBudget } = deps.config;
    const from = dayIn(timezone)(deps.now() - 29 * DAY_MS);
    const budgets = store.groups.list().map((group) => {
      const own = store.groups.budget(group.folder);
      return {
        folder: group.folder,
        daily: own?.daily ?? groupDailyBudget,
        monthly: own?.monthly ?? groupMonthlyBudget,
      };
    });
    return { from, currency, timezone, rows: store.usage.byDay(from, null), budgets };
  }

  function tasks() {
    return store.tasks.list({ isFinishedIncluded: true }).map((task) => ({
      ...task,
      runs: store.tasks.runsOf(task.id, 5),
    }));
  }

  function audit(params: URLSearchParams) {
    const since = Number(params.get('since') ?? '');
    const until = Number(params.get('until') ?? '');
    const rows = store.audit.find(
      {
        ...(params.get('group') ? { groupFolder: params.get('group') as string } : {}),
        ...(params.get('kind') ? { action: params.get('kind') as string } : {}),
        ...(params.get('denied') === '1' ? { decision: 'deny' as const } : {}),
        ...(Number.isFinite(since) && since > 0 ? { since } : {}),
      },
      1000,
    );
    return Number.isFinite(until) && until > 0 ? rows.filter((row) => row.at <= until) : rows;
  }

  function approvals() {
    const pairing = store.pairing.listPending(deps.now());
    const chats = store.chats.list().filter((chat) => chat.groupId === null && chat.channel !== 'local');
    return { pairing, chats };
  }

  async function upload(request: IncomingMessage, response: ServerResponse, chatId: string) {
    if (!deps.media) return sendJson(response, 503, { error: 'uploads are not available here' });
    if (!groupOf(chatId)) return sendJson(response, 409, { error: `local chat ${chatId} has no group` });
    const body = await readBytes(request, deps.maxUploadBytes);
    const megabytes = Math.round(deps.maxUploadBytes / 1024 / 1024);
    if (body === null)
      return sendJson(
        response,
        413,
        { error: `the file is larger than ${megabytes} MB` },
        { connection: 'close' },
      );
    const fileName = decodeHeader(request.headers['x-file-name']) ?? 'upload';
    const externalId = randomUUID();
    const media = { channel: 'local', chatId, externalId, kind: 'document' as const, fileName };
    const result = await deps.media.save({ ...media, sizeBytes: body.length, download: async () => body });
    const text = describeMedia(media, result);
    const at = deps.now();
    deps.deliver({
      channel: 'local',
      chatId,
      externalId,
      senderId: 'local-owner',
      senderName: 'You',
      text,
      sentAt: at,
      isDirect: true,
    });
    return sendJson(response, result.status === 'saved' ? 201 : 422, { ...result, text });
  }

  /** True when it answered the request (it knew the route). */
  async function handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean> {
    const method = request.method ?? '';
    const path = url.pathname;
    const views: Record<string, () => unknown> = {
      '/api/chats': chats,
      '/api/dashboard/overview': overview,
      '/api/dashboard/spend': spend,
      '/api/dashboard/tasks': tasks,
      '/api/dashboard/audit': () => audit(url.searchParams),
      '/api/dashboard/approvals': approvals,
    };
    const view = views[path];
    if (view) {
      if (method !== 'GET') methodNotAllowed(response, 'GET');
      else sendJson(response, 200, view());
      return true;
    }
    if (path === '/api/ops') {
      if (method !== 'POST') methodNotAllowed(response, 'POST');
      else await performOp(request, response);
      return true;
    }
    const route = /^\/api\/chats\/([a-z0-9][a-z0-9_-]{0,63})\/(history|upload)$/.exec(path);
    if (!route?.[1]) return false;
    const chatId = route[1];
    if (route[2] === 'upload') {
      if (method !== 'POST') methodNotAllowed(response, 'POST');
      else await upload(request, response, chatId);
      return true;
    }
    if (method !== 'GET') {
      methodNotAllowed(response, 'GET');
      return true;
    }
    const before = url.searchParams.get('before');
    if (before !== null && !/^\d{1,16}-[01]-\d{1,16}$/.test(before)) {
      sendJson(response, 400, { error: 'before must be a cursor from an earlier page' });
      return true;
    }
    const items = store.history.page({ channel: 'local', chatId }, before, HISTORY_PAGE + 1);
    const group = groupOf(chatId)?.folder ?? null;
    sendJson(response, 200, {
      items: items.slice(0, HISTORY_PAGE),
      hasMore: items.length > HISTORY_PAGE,
      group,
    });
    return true;
  }

  async function performOp(request: IncomingMessage, response: ServerResponse) {
    const body = await readBody(request, 16 * 1024);
    let json: unknown = null;
    try {
      json = body === null ? null : JSON.parse(body);
    } catch {
      // Answered below like any other malformed body.
    }
    const parsed = pageOpSchema.safeParse(json);
    if (!parsed.success) return sendJson(response, 400, { error: 'not an operation this page offers' });
    const result = await deps.window.perform(parsed.data);
    return sendJson(response, result.ok ? 200 : 409, result);
  }

  return { handle };
}

function decodeHeader(value: string | string[] | undefined): string | null {
  if (typeof value !== 'string' || value === '') return null;
  try {
    return decodeURIComponent(value).slice(0, 200);
  } catch {
    return null;
  }
}
